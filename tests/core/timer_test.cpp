// Timers: sleep, after, Timer stop/reset (Go 1.23 semantics), Ticker, after_func, and many
// sleepers at once. Lateness is printed, never asserted (tests check behaviour only).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "myriad/runtime.hpp"
#include "myriad/time.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using myriad::Clock;
using myriad::TimePoint;

TEST(Timer, SleepingTasksWakeInDeadlineOrder) {
  myriad::Runtime rt({.procs = 1});
  std::mutex mu;
  std::vector<int> order;
  myriad::WaitGroup wg;
  const int delays_ms[] = {40, 10, 30, 0, 20};
  wg.add(5);
  for (int d : delays_ms)
    rt.spawn_detached([&, d] {
      myriad::this_task::sleep_for(std::chrono::milliseconds(d));
      std::lock_guard<std::mutex> g(mu);
      order.push_back(d);
      wg.done();
    });
  wg.wait();
  EXPECT_EQ(order, (std::vector<int>{0, 10, 20, 30, 40}));
}

TEST(Timer, SleepNeverReturnsEarly) {
  myriad::Runtime rt({.procs = 2});
  auto h = rt.spawn([] {
    for (int i = 0; i < 20; ++i) {
      auto d = std::chrono::microseconds(100 * (i + 1));
      auto t0 = Clock::now();
      myriad::this_task::sleep_for(d);
      EXPECT_GE(Clock::now() - t0, d);
    }
  });
  h.join();
}

TEST(Timer, AfterFiresOnceAndSelectSeesIt) {
  myriad::Runtime rt({.procs = 2});
  auto h = rt.spawn([] {
    myriad::Chan<int> never(0);
    auto timeout = myriad::after(5ms);
    int v = 0;
    TimePoint fired;
    auto t0 = Clock::now();
    auto r = myriad::select(myriad::recv_case(never, v), myriad::recv_case(timeout, fired));
    EXPECT_EQ(r.index, 1);
    EXPECT_TRUE(r.ok);
    EXPECT_GE(fired - t0, 5ms);
    EXPECT_EQ(timeout.size(), 0u);
    TimePoint again;
    EXPECT_EQ(timeout.try_recv(again), myriad::Errc::would_block);  // once only
  });
  h.join();
}

TEST(Timer, StopBeforeFiringReturnsTrueAndNothingArrives) {
  myriad::Runtime rt({.procs = 2});
  auto h = rt.spawn([] {
    myriad::Timer t(20ms);
    EXPECT_TRUE(t.stop());
    EXPECT_FALSE(t.stop());
    myriad::this_task::sleep_for(40ms);
    TimePoint v;
    EXPECT_EQ(t.channel().try_recv(v), myriad::Errc::would_block);
  });
  h.join();
}

TEST(Timer, StopAfterFiringDiscardsTheStaleValue) {
  // Go 1.23: after Stop returns, no value from before it can be received; a fired but
  // unreceived value counts as the timer still running (Stop returns true).
  myriad::Runtime rt({.procs = 2});
  auto h = rt.spawn([] {
    myriad::Timer t(1ms);
    myriad::this_task::sleep_for(20ms);
    EXPECT_TRUE(t.stop());
    TimePoint v;
    EXPECT_EQ(t.channel().try_recv(v), myriad::Errc::would_block);
    EXPECT_FALSE(t.stop());
  });
  h.join();
}

TEST(Timer, ResetDiscardsStaleValueAndFiresAgain) {
  myriad::Runtime rt({.procs = 2});
  auto h = rt.spawn([] {
    myriad::Timer t(1ms);
    myriad::this_task::sleep_for(20ms);  // fired, value unreceived
    auto before = Clock::now();
    EXPECT_TRUE(t.reset(10ms));
    auto v = t.channel().recv();
    ASSERT_TRUE(v.has_value());
    EXPECT_GE(*v, before + 10ms);  // the new firing, not the stale one
    EXPECT_FALSE(t.reset(1h));     // had fired and was received: not active
    EXPECT_TRUE(t.stop());
  });
  h.join();
}

TEST(Timer, StopResetRaceNeverDeliversStaleValues) {
  // Many short timers stopped and reset around their firing time: after each stop, the channel
  // must be empty and stay empty.
  myriad::Runtime rt({.procs = 2});
  const int rounds = static_cast<int>(myriad::test::scaled(2000));
  auto h = rt.spawn([&] {
    myriad::Timer t(50us);
    for (int i = 0; i < rounds; ++i) {
      t.reset(std::chrono::microseconds(i % 50));
      if (i % 3 == 0) myriad::this_task::yield();
      t.stop();
      TimePoint v;
      ASSERT_EQ(t.channel().try_recv(v), myriad::Errc::would_block) << "round " << i;
    }
  });
  h.join();
}

TEST(Timer, TickerTicksUntilStopped) {
  myriad::Runtime rt({.procs = 2});
  auto h = rt.spawn([] {
    myriad::Ticker tick(2ms);
    TimePoint prev{};
    for (int i = 0; i < 5; ++i) {
      auto v = tick.channel().recv();
      ASSERT_TRUE(v.has_value());
      EXPECT_GT(*v, prev);
      prev = *v;
    }
    tick.stop();
    myriad::this_task::sleep_for(10ms);
    TimePoint v;
    EXPECT_EQ(tick.channel().try_recv(v), myriad::Errc::would_block);
    tick.reset(1ms);
    EXPECT_TRUE(tick.channel().recv().has_value());
  });
  h.join();
  EXPECT_THROW(myriad::Ticker(rt, 0ms), myriad::Error);
}

TEST(Timer, AfterFuncRunsInATaskUnlessStopped) {
  myriad::Runtime rt({.procs = 2});
  std::atomic<int> ran{0};
  myriad::WaitGroup wg;
  wg.add(1);
  auto t1 = myriad::after_func(rt, 2ms, [&] {
    EXPECT_TRUE(myriad::this_task::in_task());
    ran += 1;
    wg.done();
  });
  auto t2 = myriad::after_func(rt, 30ms, [&] { ran += 100; });
  EXPECT_TRUE(t2.stop());
  wg.wait();
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(ran.load(), 1);
  EXPECT_TRUE(t1.channel().is_nil());
}

TEST(Timer, ForeignThreadUsesTheOldestRuntimeOrAnExplicitOne) {
  myriad::Runtime rt({.procs = 1});
  auto ch = myriad::after(1ms);  // this thread is not a task: the oldest live runtime
  EXPECT_TRUE(ch.recv().has_value());
  myriad::Timer t(rt, 1ms);
  EXPECT_TRUE(t.channel().recv().has_value());
  auto t0 = Clock::now();
  myriad::this_task::sleep_for(2ms);  // a foreign thread sleeps as a thread
  EXPECT_GE(Clock::now() - t0, 2ms);
}

TEST(Timer, ManySleepersAllWakeAndLatenessIsReported) {
  const long n = myriad::test::kTsan ? 3000 : myriad::test::scaled(100000);
  myriad::Runtime rt({.procs = 2});
  std::vector<double> late(static_cast<size_t>(n));
  myriad::WaitGroup wg;
  wg.add(n);
  auto t0 = Clock::now();
  for (long i = 0; i < n; ++i)
    rt.spawn_detached([&, i] {
      auto d = std::chrono::milliseconds(1 + (i * 7919) % 100);
      auto start = Clock::now();
      myriad::this_task::sleep_for(d);
      late[static_cast<size_t>(i)] =
          std::chrono::duration<double, std::milli>(Clock::now() - start - d).count();
      wg.done();
    });
  wg.wait();
  auto wall = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  std::sort(late.begin(), late.end());
  EXPECT_GE(late.front(), 0.0);
  std::printf("[ info ] %ld sleepers: wall %.1f ms, lateness p50 %.3f ms, p99 %.3f ms\n", n,
              wall, late[late.size() / 2], late[late.size() * 99 / 100]);
  // Not every sleep needs its timer: a task descheduled for longer than its whole duration
  // between computing the deadline and parking finds it already passed (seen under ASan).
  EXPECT_GT(rt.stats().timers_fired, 0u);
}

TEST(Timer, TimersPendingAtShutdownNeverFire) {
  std::atomic<bool> ran{false};
  {
    myriad::Runtime rt({.procs = 1, .report_abandoned = false});
    auto t = myriad::after_func(rt, 1h, [&] { ran = true; });
    auto ch = myriad::after(rt, 1h);
    rt.spawn_detached([] { myriad::this_task::sleep_for(1h); });
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_FALSE(ran.load());
}

}  // namespace

// Regression: a yield that found no task to switch to directly because a timer was due took
// that for "nothing else to run" and returned without visiting g0 — so with one proc, a task
// yielding in a loop kept a sleeper's timer from ever firing.
TEST(TimerRegression, SleeperWakesWhileAnotherTaskYieldsOnTheSameProc) {
  myriad::Config c;
  c.procs = 1;
  myriad::Runtime rt(c);
  std::atomic<bool> woke{false};
  std::atomic<bool> gave_up{false};
  rt.spawn_detached([&] {
    myriad::this_task::sleep_for(std::chrono::milliseconds(2));
    woke = true;
  });
  auto spinner = rt.spawn([&] {
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!woke.load()) {
      myriad::this_task::yield();
      if (std::chrono::steady_clock::now() > give_up) {
        gave_up = true;
        break;
      }
    }
  });
  spinner.join();
  EXPECT_FALSE(gave_up.load());
  EXPECT_TRUE(woke.load());
}
