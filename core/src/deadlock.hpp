// The deadlock check (Go's checkdead): "all tasks are asleep" while a foreign thread — the
// waiting host — is blocked in a myriad wait that only a task could end.
//
// A foreign thread becomes "known" the first time it blocks in, wakes a task through, or
// spawns into myriad, and stays known until it exits. Declared when, at one instant: every
// known foreign thread is blocked in a myriad wait and not yet notified (at least one is);
// every live runtime has deadlock detection on, no host procs, no runnable
// or running task, no thread awake, no pending timer; and at least one task is parked. Then
// every parked task is reported (Config::on_deadlock, or stderr) and every blocked foreign
// waiter is flagged: channel operations and select return Errc::deadlock (C++: throw);
// waits without a way to withdraw (WaitGroup, join, sync) keep waiting after the report.
// Run by a foreign thread as it blocks and by a runtime thread as it goes to sleep with no
// timer pending — whichever comes last sees the whole picture (both publish, then check).
// A thread that has never touched myriad is invisible to the check: a program where such a
// thread feeds the runtime for the first time after a while must turn Config::detect_deadlock
// off (or touch myriad early from that thread).
#pragma once

#include <cstdint>

namespace myriad::detail {

class ThreadParker;

// Registers a foreign thread's blocking wait for its lifetime, and runs the check once the
// waiter is in its queue and the queue's lock is released.
class ForeignWait {
 public:
  explicit ForeignWait(ThreadParker* parker) noexcept;
  ~ForeignWait();
  ForeignWait(const ForeignWait&) = delete;
  ForeignWait& operator=(const ForeignWait&) = delete;

  ThreadParker* parker;
  ForeignWait* prev = nullptr;
  ForeignWait* next = nullptr;
};

// Marks the calling thread known if it is a foreign one (not a runtime thread or a host in
// step). Cheap after the first call on a thread.
void note_foreign_thread() noexcept;

// True if some foreign thread is blocked in a myriad wait (a relaxed hint).
bool foreign_waiters_present() noexcept;

// The condition must hold, with no progress anywhere (no task parked, woke, spawned or exited,
// no timer fired, no foreign thread blocked anew), for this long before it is reported: a
// thread that touched myriad only through fast paths (an uncontended mutex, a buffered send)
// is not "known", and this grace covers it as long as it makes progress within the period.
inline constexpr int64_t kDeadlockGraceNs = 100'000'000;

enum class DeadlockCheck { no, pending, reported };
// Runs the check. `pending`: the condition holds but not yet for kDeadlockGraceNs — the
// caller, which is about to sleep anyway, sleeps at most that long and checks again.
DeadlockCheck check_deadlock() noexcept;
// A foreign waiter's sleep: wait_once, re-running the check while it is pending. True when
// notified, false when flagged.
bool wait_checking_deadlock(ThreadParker& p) noexcept;

}  // namespace myriad::detail
