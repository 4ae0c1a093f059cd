// The monitor: long-running tasks are noticed, reported and asked to yield.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "myriad/blocking.hpp"
#include "myriad/chan.hpp"
#include "myriad/runtime.hpp"

using namespace std::chrono_literals;

namespace {

void spin_for(std::chrono::milliseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

// The check: a task that spins for 50 ms without a yield point is reported with its
// id, label and creation site.
TEST(Monitor, ReportsATaskSpinning50ms) {
  std::mutex mu;
  std::vector<myriad::LongRunningTask> reports;
  myriad::Config c;
  c.procs = 2;
  c.on_long_running = [&](const myriad::LongRunningTask& t) {
    std::lock_guard<std::mutex> g(mu);
    reports.push_back(t);
  };
  myriad::Runtime rt(c);
  const int line = __LINE__ + 1;
  auto h = rt.spawn([] { spin_for(50ms); }, {.label = "spinner"});
  const uint64_t id = h.id();
  h.join();
  rt.shutdown();
  std::lock_guard<std::mutex> g(mu);
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports[0].task_id, id);
  EXPECT_EQ(reports[0].label, "spinner");
  EXPECT_EQ(reports[0].site.line, static_cast<uint32_t>(line));
  EXPECT_NE(std::string(reports[0].site.file).find("monitor_test.cpp"), std::string::npos);
  EXPECT_GE(reports[0].running_for, c.preempt_after);
  EXPECT_GE(rt.stats().preempt_requests, 1u);
}

// A request is honoured at a preemption point: with one proc, a task spinning on a flag that
// only another task of the same proc can set finishes only because it is made to yield.
TEST(Monitor, PreemptPointYieldsWhenAsked) {
  myriad::Config c;
  c.procs = 1;
  myriad::Runtime rt(c);
  std::atomic<bool> flag{false};
  std::atomic<bool> gave_up{false};
  auto spinner = rt.spawn([&] {
    auto give_up = std::chrono::steady_clock::now() + 30s;
    while (!flag.load()) {
      myriad::this_task::preempt_point();
      if (std::chrono::steady_clock::now() > give_up) {
        gave_up = true;
        break;
      }
    }
  });
  rt.spawn_detached([&] { flag = true; });
  spinner.join();
  EXPECT_FALSE(gave_up.load());
  EXPECT_GE(rt.stats().preemptions, 1u);
  EXPECT_GE(rt.stats().preempt_requests, rt.stats().preemptions);
}

// A channel operation is a preemption point too.
TEST(Monitor, ChannelOperationHonoursRequest) {
  myriad::Config c;
  c.procs = 1;
  myriad::Runtime rt(c);
  std::atomic<bool> flag{false};
  std::atomic<bool> gave_up{false};
  myriad::Chan<int> ch(1);
  auto spinner = rt.spawn([&] {
    auto give_up = std::chrono::steady_clock::now() + 30s;
    while (!flag.load()) {
      ch.send(1);  // never blocks: the buffer is emptied right after
      (void)ch.recv();
      if (std::chrono::steady_clock::now() > give_up) {
        gave_up = true;
        break;
      }
    }
  });
  rt.spawn_detached([&] { flag = true; });
  spinner.join();
  EXPECT_FALSE(gave_up.load());
  EXPECT_GE(rt.stats().preemptions, 1u);
}

// Yielding tasks and parked tasks are never reported; preempt_after = 0 turns the check off.
TEST(Monitor, QuietTasksAreNotReported) {
  std::atomic<int> reports{0};
  myriad::Config c;
  c.procs = 2;
  c.on_long_running = [&](const myriad::LongRunningTask&) { ++reports; };
  myriad::Runtime rt(c);
  auto h = rt.spawn([] {
    auto end = std::chrono::steady_clock::now() + 60ms;
    while (std::chrono::steady_clock::now() < end) {
      spin_for(1ms);
      myriad::this_task::yield();
    }
  });
  h.join();
  EXPECT_EQ(reports.load(), 0);

  myriad::Config off;
  off.procs = 1;
  off.preempt_after = std::chrono::nanoseconds(0);
  off.on_long_running = [&](const myriad::LongRunningTask&) { ++reports; };
  myriad::Runtime rt2(off);
  rt2.spawn([] { spin_for(30ms); }).join();
  EXPECT_EQ(reports.load(), 0);
  EXPECT_EQ(rt2.stats().preempt_requests, 0u);
}

}  // namespace
