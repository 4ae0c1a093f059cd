// Spawning and joining: counts, trees, foreign threads, identity and exceptions.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

using namespace myriad;

TEST(SpawnJoin, MillionTasksExactCount) {
  const long n = test::scaled(1'000'000);
  Runtime rt;
  std::atomic<long> count{0};
  WaitGroup wg;
  rt.spawn([&] {
      wg.add(n);
      for (long i = 0; i < n; ++i)
        rt.spawn_detached([&] {
          count.fetch_add(1, std::memory_order_relaxed);
          wg.done();
        });
    }).join();
  wg.wait();
  EXPECT_EQ(count.load(), n);
  Stats s = rt.stats();
  EXPECT_GE(s.tasks_spawned, static_cast<uint64_t>(n + 1));
  // Slots are recycled while spawning: far fewer stacks than tasks.
  EXPECT_LT(s.stacks_reserved, static_cast<uint64_t>(n / 10));
}

TEST(SpawnJoin, JoinHandlesFromTheSpawningTask) {
  Runtime rt(Config{.procs = 2});
  std::atomic<int> ran{0};
  rt.spawn([&] {
      std::vector<JoinHandle> hs;
      for (int i = 0; i < 1000; ++i) hs.push_back(go([&] { ran.fetch_add(1); }));
      for (auto& h : hs) h.join();
      EXPECT_EQ(ran.load(), 1000);
    }).join();
  EXPECT_EQ(ran.load(), 1000);
}

namespace {
long tree_sum(long ordinal, int depth) {
  if (depth == 0) return ordinal;
  std::atomic<long> sum{0};
  std::vector<JoinHandle> kids;
  for (long i = 0; i < 10; ++i)
    kids.push_back(go([&sum, child = ordinal * 10 + i, depth] {
      sum.fetch_add(tree_sum(child, depth - 1));
    }));
  for (auto& k : kids) k.join();
  return sum.load();
}
}  // namespace

TEST(SpawnJoin, NestedSpawnTree) {
  Runtime rt;
  long result = 0;
  const int depth = test::kSanitized ? 4 : 5;  // 10^depth leaves
  rt.spawn([&] { result = tree_sum(0, depth); }).join();
  long leaves = 1;
  for (int i = 0; i < depth; ++i) leaves *= 10;
  EXPECT_EQ(result, leaves * (leaves - 1) / 2);
}

TEST(SpawnJoin, SpawnAndJoinFromForeignThreads) {
  Runtime rt(Config{.procs = 2});
  std::atomic<long> total{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::vector<JoinHandle> hs;
      for (int i = 0; i < 2000; ++i) hs.push_back(rt.spawn([&total, t] { total.fetch_add(t + 1); }));
      for (auto& h : hs) h.join();
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(total.load(), 2000L * (1 + 2 + 3 + 4));
}

TEST(SpawnJoin, IdsParentsAndCurrentRuntime) {
  Runtime rt(Config{.procs = 2});
  uint64_t parent = 0, child_handle_id = 0, child = 0;
  Runtime* seen = nullptr;
  EXPECT_EQ(this_task::id(), 0u);
  EXPECT_FALSE(this_task::in_task());
  EXPECT_EQ(Runtime::current(), nullptr);
  auto h = rt.spawn([&] {
    parent = this_task::id();
    seen = Runtime::current();
    auto c = go([&] { child = this_task::id(); });
    child_handle_id = c.id();
    c.join();
  });
  uint64_t hid = h.id();
  h.join();
  EXPECT_NE(parent, 0u);
  EXPECT_EQ(parent, hid);
  EXPECT_EQ(child, child_handle_id);
  EXPECT_NE(child, parent);
  EXPECT_EQ(seen, &rt);
}

TEST(SpawnJoin, ExceptionIsReportedWithIdentityAndRethrownByJoin) {
  std::vector<TaskFailure> failures;
  std::mutex mu;
  Config cfg;
  cfg.procs = 2;
  cfg.on_task_exception = OnTaskException::silent;
  cfg.on_task_failure = [&](const TaskFailure& f) {
    std::lock_guard<std::mutex> g(mu);
    failures.push_back(f);
  };
  Runtime rt(cfg);
  auto h = rt.spawn([] { throw std::runtime_error("boom"); }, {.label = "thrower"});
  uint64_t id = h.id();
  EXPECT_THROW(
      {
        try {
          h.join();
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "boom");
          throw;
        }
      },
      std::runtime_error);
  // A detached failing task is not lost either: the handler sees it.
  rt.spawn_detached([] { throw 42; }, {.label = "detached"});
  rt.shutdown();
  std::lock_guard<std::mutex> g(mu);
  ASSERT_EQ(failures.size(), 2u);
  const TaskFailure* boom = failures[0].label == "thrower" ? &failures[0] : &failures[1];
  const TaskFailure* other = boom == &failures[0] ? &failures[1] : &failures[0];
  EXPECT_EQ(boom->task_id, id);
  EXPECT_EQ(boom->what, "boom");
  EXPECT_NE(std::string(boom->site.file).find("spawn_join_test.cpp"), std::string::npos);
  EXPECT_EQ(other->label, "detached");
  EXPECT_EQ(other->what, "unknown exception");
  EXPECT_EQ(rt.stats().tasks_failed, 2u);
}

TEST(SpawnJoin, DefaultPolicyLogsAndContinues) {
  Runtime rt(Config{.procs = 1});
  testing::internal::CaptureStderr();
  auto h = rt.spawn([] { throw std::logic_error("logged"); }, {.label = "noisy"});
  EXPECT_EQ(h.try_join(), Errc::task_failed);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("noisy"), std::string::npos) << err;
  EXPECT_NE(err.find("logged"), std::string::npos) << err;
  EXPECT_NE(err.find("spawn_join_test.cpp"), std::string::npos) << err;
  // The runtime keeps working.
  std::atomic<bool> ran{false};
  rt.spawn([&] { ran = true; }).join();
  EXPECT_TRUE(ran.load());
}

TEST(SpawnJoin, AbortPolicyAborts) {
  EXPECT_DEATH(
      {
        Config cfg;
        cfg.procs = 1;
        cfg.on_task_exception = OnTaskException::abort_process;
        Runtime rt(cfg);
        rt.spawn([] { throw std::runtime_error("fatal-boom"); }).join();
      },
      "fatal-boom");
}

TEST(SpawnJoin, JoinHandleMisuse) {
  Runtime rt(Config{.procs = 1});
  JoinHandle empty;
  EXPECT_FALSE(empty.joinable());
  EXPECT_EQ(empty.try_join(), Errc::bad_handle);
  EXPECT_THROW(empty.join(), Error);
  auto h = rt.spawn([] {});
  h.join();
  EXPECT_FALSE(h.joinable());
  EXPECT_EQ(h.try_join(), Errc::bad_handle);
  // Self-join is refused instead of deadlocking.
  JoinHandle self;
  std::atomic<bool> ready{false};
  std::atomic<Errc> got{Errc::ok};
  auto outer = rt.spawn([&] {
    while (!ready.load()) this_task::yield();
    got = self.try_join();
  });
  // Hand the task its own handle through `self`.
  self = std::move(outer);
  ready = true;
  // `self` is being joined by the task itself; wait for it through a fresh spawn that ends.
  while (rt.stats().tasks_exited < 2) std::this_thread::yield();
  EXPECT_EQ(got.load(), Errc::would_deadlock);
}

TEST(SpawnJoin, LongLabelIsTruncatedNotOverflowed) {
  std::string label(500, 'x');
  std::string seen;
  Config cfg;
  cfg.procs = 1;
  cfg.on_task_exception = OnTaskException::silent;
  cfg.on_task_failure = [&](const TaskFailure& f) { seen = f.label; };
  Runtime rt(cfg);
  rt.spawn([] { throw 1; }, {.label = label.c_str()}).try_join();
  EXPECT_EQ(seen, std::string(63, 'x'));
}

TEST(SpawnJoin, GoOutsideATaskThrows) {
  EXPECT_THROW(go([] {}), Error);
  EXPECT_THROW(this_task::yield(), Error);
}
