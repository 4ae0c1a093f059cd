// Host-driven procs: a thread that is not the runtime's lends itself with step()/run_until().
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"

using namespace myriad;

TEST(HostStep, TasksRunOnlyWhileTheHostDrives) {
  Runtime rt(Config{.procs = 1, .host_procs = 1});  // no runtime threads at all
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i)
    rt.spawn_detached([&] {
      this_task::yield();
      ran.fetch_add(1);
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(ran.load(), 0);
  StepResult r = rt.step(std::chrono::nanoseconds(0));
  EXPECT_EQ(ran.load(), 100);
  EXPECT_TRUE(r.idle);
  EXPECT_EQ(r.dispatched, 200u);  // each task ran twice (before and after its yield)
}

TEST(HostStep, BudgetBoundsTheStep) {
  Runtime rt(Config{.procs = 1, .host_procs = 1});
  std::atomic<bool> stop{false};
  std::atomic<long> spins{0};
  rt.spawn_detached([&] {
    while (!stop.load()) {
      spins.fetch_add(1);
      this_task::yield();
    }
  });
  StepResult r = rt.step(std::chrono::milliseconds(2));
  EXPECT_FALSE(r.idle);
  EXPECT_GT(r.dispatched, 0u);
  long before = spins.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(spins.load(), before);  // nothing runs between steps
  stop = true;
  r = rt.step(std::chrono::nanoseconds(0));
  EXPECT_TRUE(r.idle);
}

TEST(HostStep, RunUntilStopsOnThePredicate) {
  Runtime rt(Config{.procs = 1, .host_procs = 1});
  std::atomic<int> count{0};
  rt.spawn_detached([&] {
    while (count.fetch_add(1) < 100) this_task::yield();
  });
  StepResult r = rt.run_until([&] { return count.load() >= 10; });
  EXPECT_FALSE(r.idle);
  EXPECT_EQ(count.load(), 10);
  r = rt.run_until([] { return false; });
  EXPECT_TRUE(r.idle);
  EXPECT_EQ(count.load(), 101);
}

TEST(HostStep, HostAndRuntimeThreadsShareWork) {
  Runtime rt(Config{.procs = 2, .host_procs = 1});
  std::atomic<int> ran{0};
  WaitGroup wg;
  wg.add(1000);
  auto h = rt.spawn([&] {
    for (int i = 0; i < 1000; ++i)
      go([&] {
        ran.fetch_add(1);
        wg.done();
      }).detach();
  });
  // The runtime thread alone finishes everything if the host never steps.
  wg.wait();
  h.join();
  EXPECT_EQ(ran.load(), 1000);
  // And tasks spawned by a host step that are left over are picked up by the runtime thread.
  std::atomic<int> later{0};
  WaitGroup wg2;
  wg2.add(1);
  rt.spawn_detached([&] {
    for (int i = 0; i < 100; ++i) go([&] { later.fetch_add(1); }).detach();
    wg2.done();
  });
  rt.step(std::chrono::microseconds(1));
  wg2.wait();
  rt.shutdown();
  EXPECT_EQ(later.load(), 100);
}

TEST(HostStep, BusyWithoutAHostProcOrWhenNested) {
  Runtime plain(Config{.procs = 1});
  try {
    plain.step(std::chrono::milliseconds(1));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::busy);
  }
  Runtime hosted(Config{.procs = 1, .host_procs = 1});
  Errc nested = Errc::ok;
  hosted.spawn_detached([&] {
    try {
      hosted.step(std::chrono::milliseconds(1));
    } catch (const Error& e) {
      nested = e.code();
    }
  });
  hosted.step(std::chrono::nanoseconds(0));
  EXPECT_EQ(nested, Errc::busy);
}

TEST(HostStep, ForeignJoinWhileTheHostDrivesFromAnotherThread) {
  Runtime rt(Config{.procs = 1, .host_procs = 1});
  std::atomic<bool> done{false};
  auto h = rt.spawn([] {});
  std::thread host([&] {
    while (!done.load()) rt.step(std::chrono::milliseconds(1));
  });
  h.join();  // blocks this OS thread until the host's step runs the task
  done = true;
  host.join();
  SUCCEED();
}
