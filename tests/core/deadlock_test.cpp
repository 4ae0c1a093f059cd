// The deadlock report: a foreign thread blocked on a channel while every task is parked gets
// Errc::deadlock and the runtime reports the parked tasks; pending timers and runnable work
// prevent it; it can be turned off.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "myriad/chan.hpp"
#include "myriad/runtime.hpp"
#include "myriad/time.hpp"
#include "myriad/wait_group.hpp"

namespace {

using namespace std::chrono_literals;

struct Reports {
  std::mutex mu;
  std::string last;
  std::atomic<int> count{0};
  std::function<void(const std::string&)> callback() {
    return [this](const std::string& r) {
      std::lock_guard<std::mutex> g(mu);
      last = r;
      ++count;
    };
  }
};

TEST(Deadlock, ForeignReceiverGetsAnErrorAndTheParkedTasksAreReported) {
  Reports reports;
  myriad::Runtime rt({.procs = 2, .report_abandoned = false, .on_deadlock = reports.callback()});
  myriad::Chan<int> never(0), result(0);
  rt.spawn_detached([never] { never.recv(); }, {.label = "stuck-receiver"});
  try {
    result.recv();  // nobody will ever send
    FAIL() << "expected a deadlock error";
  } catch (const myriad::Error& e) {
    EXPECT_EQ(e.code(), myriad::Errc::deadlock);
  }
  EXPECT_GE(reports.count.load(), 1);
  {
    std::lock_guard<std::mutex> g(reports.mu);
    EXPECT_NE(reports.last.find("deadlock"), std::string::npos) << reports.last;
    EXPECT_NE(reports.last.find("stuck-receiver"), std::string::npos) << reports.last;
    EXPECT_NE(reports.last.find("chan receive"), std::string::npos) << reports.last;
  }
  never.close();  // release the parked task: nothing is abandoned (its closure holds `never`)
}

TEST(Deadlock, ForeignSenderAndSelectGetTheErrorToo) {
  Reports reports;
  myriad::Runtime rt({.procs = 1, .report_abandoned = false, .on_deadlock = reports.callback()});
  myriad::Chan<int> a(0), b(0), never(0);
  rt.spawn_detached([never] { never.recv(); });
  try {
    a.send(1);
    FAIL() << "expected a deadlock error";
  } catch (const myriad::Error& e) {
    EXPECT_EQ(e.code(), myriad::Errc::deadlock);
  }
  int x = 0, y = 0;
  try {
    myriad::select(myriad::recv_case(a, x), myriad::send_case(b, y));
    FAIL() << "expected a deadlock error";
  } catch (const myriad::Error& e) {
    EXPECT_EQ(e.code(), myriad::Errc::deadlock);
  }
  // The withdrawn waiters left nothing behind: the channels still work.
  rt.spawn_detached([a] { a.send(7); });
  EXPECT_EQ(a.recv().value(), 7);
  EXPECT_GE(reports.count.load(), 2);
  never.close();
}

TEST(Deadlock, APendingTimerIsNotADeadlock) {
  Reports reports;
  myriad::Runtime rt({.procs = 2, .on_deadlock = reports.callback()});
  myriad::Chan<int> result(0);
  rt.spawn_detached([result] {
    myriad::this_task::sleep_for(30ms);  // every task parked, but a timer will wake this one
    result.send(42);
  });
  EXPECT_EQ(result.recv().value(), 42);
  EXPECT_EQ(reports.count.load(), 0);
}

TEST(Deadlock, ReceiverWokenJustBeforeTheTasksParkIsNotFlagged) {
  // A task hands the foreign thread a value and then parks for good: the foreign thread was
  // notified, so it must get its value, never a deadlock error. Repeated to hit the window.
  Reports reports;
  myriad::Runtime rt({.procs = 2, .report_abandoned = false, .on_deadlock = reports.callback()});
  myriad::Chan<int> never(0);
  for (int i = 0; i < 200; ++i) {
    myriad::Chan<int> result(0);
    rt.spawn_detached([result, never, i] {
      result.send(i);
      never.recv();
    });
    EXPECT_EQ(result.recv().value(), i);
  }
  EXPECT_EQ(reports.count.load(), 0);
  never.close();
}

TEST(Deadlock, CanBeTurnedOffForProgramsFedByPlainThreads) {
  Reports reports;
  myriad::Runtime rt({.procs = 1,
                      .report_abandoned = false,
                      .detect_deadlock = false,
                      .on_deadlock = reports.callback()});
  myriad::Chan<int> never(0), result(0);
  rt.spawn_detached([never] { never.recv(); });
  std::thread feeder([result] {
    std::this_thread::sleep_for(30ms);  // invisible to the check
    result.send(5);
  });
  EXPECT_EQ(result.recv().value(), 5);
  feeder.join();
  EXPECT_EQ(reports.count.load(), 0);
  never.close();
}

TEST(Deadlock, AnUnknownThreadThatFeedsWithinTheGracePeriodIsNoDeadlock) {
  // The feeder has never touched myriad when the candidate forms; it sends well within
  // kDeadlockGraceNs (100 ms), so the report is never made.
  Reports reports;
  myriad::Runtime rt({.procs = 1, .report_abandoned = false, .on_deadlock = reports.callback()});
  myriad::Chan<int> never(0), result(0);
  rt.spawn_detached([never] { never.recv(); });
  std::thread feeder([result] {
    std::this_thread::sleep_for(20ms);
    result.send(9);
  });
  EXPECT_EQ(result.recv().value(), 9);
  feeder.join();
  EXPECT_EQ(reports.count.load(), 0);
  never.close();
}

TEST(Deadlock, AWaitGroupWaiterSeesTheReportAndKeepsWaiting) {
  Reports reports;
  myriad::Runtime rt({.procs = 1, .on_deadlock = reports.callback()});
  myriad::Chan<int> gate(0);
  myriad::WaitGroup wg;
  wg.add(1);
  rt.spawn_detached([&] {
    gate.recv();  // parked until the helper below closes the gate
    wg.done();
  });
  std::thread opener([&] {
    while (reports.count.load() == 0) std::this_thread::sleep_for(1ms);
    gate.close();  // after the report: proves wait() kept waiting and still completes
  });
  wg.wait();
  opener.join();
  EXPECT_GE(reports.count.load(), 1);
}

}  // namespace
