// The one wait mechanism (wait_queue.hpp): park/ready across threads, no lost wake-ups.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "scheduler.hpp"
#include "test_util.hpp"
#include "wait_queue.hpp"

using namespace myriad;

namespace {

// A counting semaphore built only from the shared mechanism, the way every later primitive
// (channels, mutexes) is: a post hands its permit straight to the oldest waiter.
class TestSemaphore {
 public:
  void post() {
    detail::lock(list_);
    if (detail::Waiter* w = detail::pop_front(list_)) {
      detail::unlock(list_);
      detail::wake(w);
      return;
    }
    ++permits_;
    detail::unlock(list_);
  }
  void wait() {
    detail::lock(list_);
    if (permits_ > 0) {
      --permits_;
      detail::unlock(list_);
      return;
    }
    detail::Waiter w;
    detail::block_locked(list_, w, WaitReason::test_park);
  }

 private:
  detail::WaitList list_;
  long permits_ = 0;  // guarded by list_'s lock
};

}  // namespace

TEST(Park, PingPongBetweenTasksAcrossProcs) {
  const long rounds = test::scaled(200'000);
  Runtime rt(Config{.procs = 2});
  constexpr int kPairs = 4;
  std::vector<TestSemaphore> ping(kPairs), pong(kPairs);
  std::atomic<long> total{0};
  WaitGroup wg;
  wg.add(2 * kPairs);
  for (int p = 0; p < kPairs; ++p) {
    rt.spawn_detached([&, p] {
      for (long i = 0; i < rounds; ++i) {
        ping[p].post();
        pong[p].wait();
      }
      wg.done();
    });
    rt.spawn_detached([&, p] {
      for (long i = 0; i < rounds; ++i) {
        ping[p].wait();
        total.fetch_add(1, std::memory_order_relaxed);
        pong[p].post();
      }
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(total.load(), rounds * kPairs);
}

TEST(Park, PingPongBetweenATaskAndAForeignThread) {
  // Every round crosses threads: the task parks, the OS thread wakes it, and back.
  const long rounds = test::scaled(100'000);
  Runtime rt(Config{.procs = 2});
  TestSemaphore to_task, to_thread;
  long seen = 0;
  auto h = rt.spawn([&] {
    for (long i = 0; i < rounds; ++i) {
      to_task.wait();
      ++seen;
      to_thread.post();
    }
  });
  for (long i = 0; i < rounds; ++i) {
    to_task.post();
    to_thread.wait();
  }
  h.join();
  EXPECT_EQ(seen, rounds);
}

TEST(Park, ManyWaitersReleasedFromManyThreads) {
  // Rounds of: 500 tasks park on a wait group; 4 foreign threads finish it together.
  Runtime rt(Config{.procs = 2});
  const int rounds = test::kSanitized ? 10 : 100;
  for (int r = 0; r < rounds; ++r) {
    WaitGroup gate, exited;
    gate.add(4);
    const int waiters = 500;
    exited.add(waiters);
    for (int i = 0; i < waiters; ++i)
      rt.spawn_detached([&] {
        gate.wait();
        exited.done();
      });
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) ts.emplace_back([&] { gate.done(); });
    for (auto& t : ts) t.join();
    exited.wait();
    ASSERT_EQ(exited.count(), 0);
  }
}

TEST(Park, ParkedStateAndReasonAreVisible) {
  Runtime rt(Config{.procs = 1});
  WaitGroup wg;
  wg.add(1);
  std::atomic<detail::Task*> task{nullptr};
  auto h = rt.spawn([&] {
    task = detail::current_task();
    wg.wait();
  });
  while (!task.load() || task.load()->state.load() != TaskState::waiting) std::this_thread::yield();
  EXPECT_EQ(task.load()->wait_reason, WaitReason::wait_group);
  EXPECT_GT(task.load()->wait_since_ns, 0);
  wg.done();
  h.join();
}
