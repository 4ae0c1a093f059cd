// Cond: Go's sync.Cond — a rendezvous point for tasks and threads waiting for, or announcing,
// a change to state guarded by a Mutex.
//
//   m.lock();
//   while (!ready) c.wait(m);   // unlocks m while waiting, holds it again on return
//   ... use the state ...
//   m.unlock();
//
// As in Go, a waiter is registered while it still holds the mutex: a signal or broadcast made
// after wait() began (by anyone holding the mutex then, or later) reaches it. A signal with no
// waiter registered is not remembered. Waiters should still re-check their condition in a loop,
// since another task may change the state between the wake-up and the re-lock.
//
// Destruction: a Cond may be destroyed as soon as no task or thread is inside wait() (e.g. by a
// waiter right after its wait() returned): signal and broadcast touch the Cond only before
// they release the waiters they chose.
#pragma once

#include "myriad/detail/wait_list.hpp"
#include "myriad/mutex.hpp"

namespace myriad {

class Cond {
 public:
  Cond() = default;
  Cond(const Cond&) = delete;
  Cond& operator=(const Cond&) = delete;

  // Atomically unlocks m and waits until signal() or broadcast() chooses this waiter, then
  // locks m again before returning. m must be locked by the caller; if it is not locked at all,
  // throws Error(not_locked) without waiting (Go: fatal error).
  void wait(Mutex& m);
  // Waits until pred() holds (checked with m held).
  template <class Pred>
  void wait(Mutex& m, Pred pred) {
    while (!pred()) wait(m);
  }
  // Wakes the longest-waiting waiter, if any. The caller may but need not hold the mutex.
  void signal() noexcept;
  // Wakes every waiter.
  void broadcast() noexcept;

 private:
  // The registered waiters, oldest first (cond.cpp's CondWaiter). A waiter is in the list from
  // its registration (mutex still held) until a signal or broadcast removes it — removal, under
  // the list lock, is the moment it is chosen.
  detail::WaitList waiters_;
};

}  // namespace myriad
