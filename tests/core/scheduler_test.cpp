// Scheduling order and fairness: yield interleaving, runnext, stealing, starvation bounds.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

using namespace myriad;

TEST(Scheduler, YieldInterleavesTasksOnOneProc) {
  Runtime rt(Config{.procs = 1});
  std::string log;  // only touched by tasks of the single proc
  rt.spawn([&] {
      auto a = go([&] {
        for (int i = 0; i < 5; ++i) {
          log += 'a';
          this_task::yield();
        }
      });
      auto b = go([&] {
        for (int i = 0; i < 5; ++i) {
          log += 'b';
          this_task::yield();
        }
      });
      a.join();
      b.join();
    }).join();
  ASSERT_EQ(log.size(), 10u);
  for (size_t i = 1; i < log.size(); ++i) EXPECT_NE(log[i], log[i - 1]) << log;
  EXPECT_EQ(rt.stats().yields, 10u);
}

TEST(Scheduler, NewestSpawnRunsNextThenQueueOrder) {
  Runtime rt(Config{.procs = 1});
  std::string log;
  rt.spawn([&] {
      go([&] { log += 'x'; }).detach();
      go([&] { log += 'y'; }).detach();
      go([&] { log += 'z'; }).detach();
      this_task::yield();  // z sits in runnext; x and y in the ring ahead of us
      log += 'p';
    }).join();
  EXPECT_EQ(log, "zxyp");
}

TEST(Scheduler, ReadiedTaskRunsNext) {
  Runtime rt(Config{.procs = 1});
  std::string log;
  rt.spawn([&] {
      WaitGroup wg;
      wg.add(1);
      auto waiter = go([&] {
        wg.wait();
        log += 'w';
      });
      this_task::yield();  // the waiter parks
      go([&] { log += '1'; }).detach();
      go([&] { log += '2'; }).detach();
      this_task::yield();  // 2 (runnext) and 1 run; queue is empty again
      log += '|';
      go([&] { log += '3'; }).detach();  // in runnext
      go([&] { log += '4'; }).detach();  // in runnext, 3 moves to the ring
      wg.done();                         // the waiter takes runnext, 4 moves to the ring
      this_task::yield();
      log += 'p';
      waiter.join();
    }).join();
  EXPECT_EQ(log, "21|w34p");
}

TEST(Scheduler, StealsHappenWhenOneProcSpawnsEverything) {
  Runtime rt(Config{.procs = 2});
  std::atomic<long> elsewhere{0};
  std::thread::id spawner_thread;
  WaitGroup wg;
  // Fewer than a local queue holds (256 + runnext): nothing spills to the global queue, so a
  // task that runs on the other thread can only have got there by stealing. (With more, the
  // other proc may find all its work in the global queue and never steal — seen once in CI.)
  const int n = 200;
  wg.add(n);
  rt.spawn_detached([&] {
    spawner_thread = std::this_thread::get_id();
    for (int i = 0; i < n; ++i)
      go([&] {
        auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(2);
        while (std::chrono::steady_clock::now() < until) {
        }
        if (std::this_thread::get_id() != spawner_thread) elsewhere.fetch_add(1);
        wg.done();
      }).detach();
    // Keep this proc busy (no yield point) until the other proc has stolen something, so the
    // queue cannot simply be drained here first. Bounded: a liveness limit, not a timing check.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (elsewhere.load() == 0 && std::chrono::steady_clock::now() < give_up) {
    }
  });
  wg.wait();
  Stats s = rt.stats();
  EXPECT_GT(s.steal_operations, 0u);
  EXPECT_GT(s.tasks_stolen, 0u);
  EXPECT_GT(elsewhere.load(), 0);
  EXPECT_EQ(s.global_queue_spills, 0u);
}

TEST(Scheduler, SelfRespawningTaskCannotStarveTheGlobalQueue) {
  Runtime rt(Config{.procs = 1});
  std::atomic<bool> stop{false};
  std::atomic<long> generations{0};
  struct Loop {
    std::atomic<bool>* stop;
    std::atomic<long>* generations;
    void operator()() const {
      generations->fetch_add(1, std::memory_order_relaxed);
      if (!stop->load()) go(Loop{*this}).detach();
    }
  };
  rt.spawn_detached(Loop{&stop, &generations});
  while (generations.load() < 1000) std::this_thread::yield();
  // From outside: lands in the global queue while the loop keeps the proc busy.
  rt.spawn([&] { stop = true; }).join();
  EXPECT_TRUE(stop.load());
}

TEST(Scheduler, SelfRespawningTaskCannotStarveTheLocalQueue) {
  Runtime rt(Config{.procs = 1});
  std::atomic<bool> stop{false};
  struct Loop {
    std::atomic<bool>* stop;
    void operator()() const {
      if (!stop->load()) go(Loop{*this}).detach();
    }
  };
  rt.spawn([&] {
      // The setter goes to the ring; every later spawn of the loop takes runnext.
      go([&] { stop = true; }).detach();
      go(Loop{&stop}).detach();
    }).join();
  while (!stop.load()) std::this_thread::yield();
  SUCCEED();
}

TEST(Scheduler, OverflowSpillsToTheGlobalQueueAndEverythingRuns) {
  // A foreign-free burst: one task readies more tasks than the ring holds without yielding.
  Runtime rt(Config{.procs = 1});
  const int n = test::kTsan ? 1000 : 5000;
  std::atomic<int> ran{0};
  std::vector<WaitGroup> gates(1);
  WaitGroup& gate = gates[0];
  gate.add(1);
  WaitGroup all;
  all.add(n);
  rt.spawn([&] {
      // Park n tasks, then release them all at once: done() readies every one of them from
      // this task, so they overflow the local ring into the global queue.
      for (int i = 0; i < n; ++i)
        go([&] {
          gate.wait();
          ran.fetch_add(1);
          all.done();
        }).detach();
      while (rt.stats().parks < static_cast<uint64_t>(n)) this_task::yield();
      gate.done();
      all.wait();
    }).join();
  EXPECT_EQ(ran.load(), n);
  EXPECT_GT(rt.stats().global_queue_spills, 0u);
}

TEST(Scheduler, MultipleRuntimesCoexistAndCrossSpawn) {
  Runtime a(Config{.procs = 1});
  Runtime b(Config{.procs = 2});
  std::atomic<int> in_b{0};
  Runtime* seen_from_b = nullptr;
  a.spawn([&] {
      // Spawning into another runtime from a task is a foreign spawn for that runtime.
      b.spawn([&] {
          in_b.fetch_add(1);
          seen_from_b = Runtime::current();
        }).join();
    }).join();
  EXPECT_EQ(in_b.load(), 1);
  EXPECT_EQ(seen_from_b, &b);
}

TEST(Scheduler, ProcsFromEnvironment) {
  ::setenv("MYRIAD_PROCS", "3", 1);
  {
    Runtime rt;
    EXPECT_EQ(rt.procs(), 3u);
  }
  ::setenv("MYRIAD_PROCS", "zero", 1);
  EXPECT_THROW({ Runtime rt; }, Error);
  ::setenv("MYRIAD_PROCS", "0", 1);
  EXPECT_THROW({ Runtime rt; }, Error);
  ::unsetenv("MYRIAD_PROCS");
  Runtime rt;
  EXPECT_GE(rt.procs(), 1u);
  EXPECT_EQ(Runtime(Config{.procs = 5}).procs(), 5u);
}

TEST(Scheduler, BadConfigIsRejected) {
  EXPECT_THROW(Runtime(Config{.procs = 2, .host_procs = 3}), Error);
  EXPECT_THROW(Runtime(Config{.procs = 5000}), Error);
  Config big;
  big.stack_size = std::size_t{1} << 40;
  EXPECT_THROW(Runtime{big}, Error);
}
