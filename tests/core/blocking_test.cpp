// Blocking calls and proc handoff (this_task::blocking, enter/leave_blocking), the thread cap.
// No timing thresholds: each test checks an ordering that only the handoff makes possible.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <thread>

#include "myriad/blocking.hpp"
#include "myriad/chan.hpp"
#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using myriad::Config;
using myriad::Runtime;

namespace {

Config one_proc() {
  Config c;
  c.procs = 1;
  return c;
}

void sleep_thread(std::chrono::milliseconds d) {
  timespec ts{static_cast<time_t>(d.count() / 1000), static_cast<long>(d.count() % 1000) * 1000000};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

// The check: with one proc, a task in a 100 ms blocking call does not stop 1,000
// other tasks — they all finish before the call returns. (Sanitized builds run a tenth: TSan
// makes each spawn and switch ~50x slower.)
TEST(Blocking, OtherTasksRunWhileOneBlocks) {
  const int n = static_cast<int>(myriad::test::scaled(1000));
  Runtime rt(one_proc());
  std::atomic<int> finished{0};
  std::atomic<int> finished_when_call_returned{-1};
  myriad::WaitGroup wg;
  wg.add(n + 1);
  rt.spawn_detached([&] {
    // 100 ms as the issue states; sanitized builds (a spawn and switch ~50x slower, and a
    // loaded CI machine) get a longer call so the check stays about ordering, not speed.
    myriad::this_task::blocking([] { sleep_thread(myriad::test::kSanitized ? 2000ms : 100ms); });
    finished_when_call_returned = finished.load();
    wg.done();
  });
  for (int i = 0; i < n; ++i) {
    rt.spawn_detached([&] {
      myriad::this_task::yield();
      finished.fetch_add(1);
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(finished_when_call_returned.load(), n);
  EXPECT_GE(rt.stats().proc_handoffs, 1u);
  EXPECT_GE(rt.stats().blocking_calls, 1u);
}

// Stronger and timing-free: the blocking call itself waits until the other tasks are done;
// without a handoff it would wait forever (bounded here by a long safety timeout → failure).
TEST(Blocking, CallWaitingForOtherTasksCompletes) {
  Runtime rt(one_proc());
  std::atomic<int> finished{0};
  std::atomic<bool> saw_all{false};
  myriad::WaitGroup wg;
  wg.add(1);
  rt.spawn_detached([&] {
    myriad::this_task::blocking([&] {
      auto give_up = std::chrono::steady_clock::now() + 30s;
      while (finished.load() < 100 && std::chrono::steady_clock::now() < give_up)
        sleep_thread(1ms);
      saw_all = finished.load() == 100;
    });
    wg.done();
  });
  for (int i = 0; i < 100; ++i) rt.spawn_detached([&] { finished.fetch_add(1); });
  wg.wait();
  EXPECT_TRUE(saw_all.load());
}

// The task continues after its proc was taken: it runs again (on any thread) and can park.
TEST(Blocking, TaskContinuesAfterRetakenCall) {
  Runtime rt(one_proc());
  myriad::Chan<int> ch(0);
  std::atomic<int> got{0};
  auto h = rt.spawn([&] {
    for (int round = 0; round < 5; ++round) {
      myriad::this_task::blocking([] { sleep_thread(5ms); });
      got += ch.recv().value();
    }
  });
  // A busy sender keeps the proc: each blocking return finds it taken.
  rt.spawn_detached([&] {
    for (int i = 1; i <= 5; ++i) ch.send(i);
  });
  h.join();
  EXPECT_EQ(got.load(), 15);
}

// Short calls need no handoff; the counters still see them.
TEST(Blocking, ShortCallsKeepTheirProc) {
  Runtime rt(one_proc());
  auto h = rt.spawn([] {
    long sum = 0;
    for (int i = 0; i < 10000; ++i) sum += myriad::this_task::blocking([i] { return i; });
    EXPECT_EQ(sum, 10000L * 9999 / 2);
  });
  h.join();
  EXPECT_EQ(rt.stats().blocking_calls, 10000u);
}

TEST(Blocking, ExceptionLeavesTheCall) {
  Runtime rt(one_proc());
  auto h = rt.spawn([] {
    EXPECT_THROW(myriad::this_task::blocking([]() -> int { throw std::runtime_error("x"); }),
                 std::runtime_error);
    // Left properly: the task can park again.
    myriad::Chan<int> c(1);
    c.send(1);
    EXPECT_EQ(c.recv().value(), 1);
  });
  h.join();
}

TEST(Blocking, ForeignThreadIsANoOp) {
  Runtime rt(one_proc());
  EXPECT_EQ(myriad::this_task::try_enter_blocking(), myriad::Errc::ok);
  myriad::this_task::leave_blocking();
  EXPECT_EQ(myriad::this_task::blocking([] { return 7; }), 7);
}

// Config::max_threads: procs + tasks in blocking calls may not exceed it.
TEST(Blocking, ThreadLimitIsAClearError) {
  Config c = one_proc();
  c.max_threads = 2;  // the proc's thread + one blocked call
  Runtime rt(c);
  std::atomic<bool> release{false};
  std::atomic<bool> first_in{false};
  myriad::Errc second = myriad::Errc::ok;
  auto a = rt.spawn([&] {
    myriad::this_task::blocking([&] {
      first_in = true;
      while (!release.load()) sleep_thread(1ms);
    });
  });
  auto b = rt.spawn([&] {
    while (!first_in.load()) myriad::this_task::yield();
    second = myriad::this_task::try_enter_blocking();
    if (second == myriad::Errc::ok) myriad::this_task::leave_blocking();
    EXPECT_THROW(myriad::this_task::enter_blocking(), myriad::Error);
    release = true;
  });
  b.join();
  a.join();
  EXPECT_EQ(second, myriad::Errc::thread_limit);
  EXPECT_LE(rt.stats().threads, 2u);
}

// Many tasks blocking at once on several procs: every one returns, nothing is lost, and the
// runtime never exceeds its thread cap.
TEST(Blocking, ManyConcurrentBlockingCalls) {
  Config c;
  c.procs = 2;
  c.max_threads = 64;
  Runtime rt(c);
  std::atomic<int> done{0};
  std::atomic<int> refused{0};
  myriad::WaitGroup wg;
  const int n = 200;
  wg.add(n);
  for (int i = 0; i < n; ++i) {
    rt.spawn_detached([&, i] {
      if (myriad::this_task::try_enter_blocking() == myriad::Errc::ok) {
        sleep_thread(std::chrono::milliseconds(1 + i % 3));
        myriad::this_task::leave_blocking();
        done.fetch_add(1);
      } else {
        refused.fetch_add(1);
      }
      myriad::this_task::yield();
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(done.load() + refused.load(), n);
  EXPECT_GT(done.load(), 0);
  EXPECT_LE(rt.stats().threads, 64u);
}

}  // namespace
