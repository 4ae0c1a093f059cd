// The one way to wait (principle 2). Every blocking primitive keeps a WaitList of Waiters and
// uses exactly these operations; a Waiter is either a parked task or a sleeping OS thread, so
// every primitive works from tasks and from foreign threads alike.
//
// Protocol, for a primitive guarding its state with the list's lock:
//   waiter: lock(list); if (condition holds) { unlock; return; }
//           Waiter w; block_locked(list, w, reason);   // enqueues, unlocks, sleeps
//   waker:  lock(list); change state; Waiter* w = pop_front(list); unlock(list); wake(w);
// A waker can only find `w` after the waiter enqueued it under the lock, and a task waiter
// releases the lock only once it is fully switched out (park_current), so no wake-up is lost
// and no running task is ever made runnable twice.
#pragma once

#include "futex.hpp"
#include "myriad/detail/wait_list.hpp"
#include "myriad/task.hpp"

namespace myriad::detail {

struct Task;

struct Waiter {
  Waiter* next = nullptr;
  Task* task = nullptr;            // the parked task, or
  ThreadParker* thread = nullptr;  // the sleeping foreign thread
  ThreadParker parker;             // block_with's, for a foreign thread (see there)
};

void lock(WaitList& l) noexcept;
void unlock(WaitList& l) noexcept;
void push_back(WaitList& l, Waiter* w) noexcept;  // lock held
Waiter* pop_front(WaitList& l) noexcept;          // lock held; null if empty
Waiter* pop_all(WaitList& l) noexcept;            // lock held; a list linked through next

// Lock held on entry, released before sleeping; returns once wake(&w) was called.
void block_locked(WaitList& l, Waiter& w, WaitReason reason) noexcept;
// The general form, for primitives that keep their own queues (channels, select, timers):
// `w` is already enqueued where wakers find it only under a lock that unlock(arg) releases.
// Fills in who is waiting, releases the lock (after the task is switched out, for a task) and
// sleeps until wake(&w). A foreign thread flagged by the deadlock check keeps waiting.
void block_with(Waiter& w, WaitReason reason, void (*unlock)(void*), void* arg) noexcept;
// The same, for primitives that can withdraw a waiter (channels, select): returns true once
// woken, and false only to a foreign thread that the deadlock check flagged (deadlock.hpp).
// The caller then re-takes its lock and, if `w` is still queued, withdraws it and fails with
// Errc::deadlock — otherwise a waker already took it, and the caller waits for that wake with
// w.parker.wait_notified().
[[nodiscard]] bool block_with_or_deadlock(Waiter& w, WaitReason reason, void (*unlock)(void*),
                                          void* arg) noexcept;
// Wakes one waiter already removed from its list. Does not touch *w after it returns...
// nor, for a task waiter, after the task is made runnable.
void wake(Waiter* w) noexcept;
// The same for a rendezvous whose waker blocks right after (Scheduler::ready's `handoff`).
void wake_handoff(Waiter* w) noexcept;
// Wakes a list returned by pop_all.
void wake_all(Waiter* list) noexcept;

}  // namespace myriad::detail
