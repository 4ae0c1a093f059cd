// WaitGroup semantics (Go's sync.WaitGroup) from tasks and from OS threads.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"

using namespace myriad;

TEST(WaitGroup, WaitAtZeroReturnsAtOnce) {
  WaitGroup wg;
  wg.wait();
  EXPECT_EQ(wg.count(), 0);
}

TEST(WaitGroup, NegativeCounterIsAnErrorAndLeavesTheCounter) {
  WaitGroup wg;
  wg.add(2);
  EXPECT_EQ(wg.try_add(-3), Errc::negative_counter);
  EXPECT_EQ(wg.count(), 2);
  try {
    wg.add(-5);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::negative_counter);
  }
  wg.done();
  wg.done();
  EXPECT_THROW(wg.done(), Error);
  EXPECT_EQ(wg.count(), 0);
}

TEST(WaitGroup, ForeignThreadsWaitForTasks) {
  Runtime rt(Config{.procs = 2});
  WaitGroup wg;
  wg.add(100);
  std::atomic<int> released{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 4; ++i)
    waiters.emplace_back([&] {
      wg.wait();
      released.fetch_add(1);
    });
  for (int i = 0; i < 100; ++i) rt.spawn_detached([&] { wg.done(); });
  for (auto& t : waiters) t.join();
  EXPECT_EQ(released.load(), 4);
}

TEST(WaitGroup, TasksWaitForForeignThreadsAndTheGroupIsReusable) {
  Runtime rt(Config{.procs = 2});
  WaitGroup wg;
  for (int round = 0; round < 50; ++round) {
    wg.add(3);
    std::atomic<int> woke{0};
    WaitGroup tasks_done;
    tasks_done.add(10);
    for (int i = 0; i < 10; ++i)
      rt.spawn_detached([&] {
        wg.wait();
        woke.fetch_add(1);
        tasks_done.done();
      });
    std::vector<std::thread> ts;
    for (int i = 0; i < 3; ++i) ts.emplace_back([&] { wg.done(); });
    for (auto& t : ts) t.join();
    tasks_done.wait();
    ASSERT_EQ(woke.load(), 10);
  }
}

TEST(WaitGroup, DestroyingRightAfterWaitReturnsIsSafe) {
  // Regression test (found by TSan): the done() that releases the waiters used to touch the
  // group after a late waiter could already have returned and destroyed it.
  Runtime rt(Config{.procs = 2});
  for (int round = 0; round < 2000; ++round) {
    auto* wg = new WaitGroup();
    wg->add(2);
    WaitGroup* raw = wg;
    rt.spawn_detached([raw] { raw->done(); });
    std::thread helper([raw] { raw->wait(); });  // a second waiter, registered or late
    rt.spawn_detached([raw] { raw->done(); });
    wg->wait();
    helper.join();
    delete wg;  // both waiters returned: the releaser must be done with it
  }
}

TEST(WaitGroup, OutOfRangeDeltaIsRejected) {
  WaitGroup wg;
  EXPECT_EQ(wg.try_add(int64_t{1} << 40), Errc::invalid_argument);
  EXPECT_EQ(wg.count(), 0);
}
