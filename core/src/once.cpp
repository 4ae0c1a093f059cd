// Once: see once.hpp for the semantics and the state word.
#include "myriad/once.hpp"

#include <sched.h>

#include "wait_queue.hpp"

namespace myriad {

uint32_t Once::lock_state() noexcept {
  uint32_t old = state_.load(std::memory_order_relaxed);
  for (int spins = 0;; ++spins) {
    if (!(old & kLocked) && state_.compare_exchange_weak(old, old | kLocked,
                                                         std::memory_order_acquire,
                                                         std::memory_order_relaxed))
      return old | kLocked;
    // Held for a few pointer moves; if the holder was descheduled, give way (as WaitList).
    if (spins < 64)
      __builtin_ia32_pause();
    else
      sched_yield();
    old = state_.load(std::memory_order_relaxed);
  }
}

void Once::unlock_state(void* self) noexcept {
  static_cast<Once*>(self)->state_.fetch_and(~kLocked, std::memory_order_release);
}

void Once::call_slow(void (*fn)(void*), void* arg) {
  for (;;) {
    const uint32_t s = lock_state();
    if (s & kDone) {
      unlock_state(this);
      return;
    }
    if (s & kRunning) {
      // Wait for the runner; it wakes us whether f returned or threw.
      detail::Waiter w;
      detail::push_back(waiters_, &w);
      detail::block_with(w, WaitReason::once, unlock_state, this);
      // kDone is final and was stored before we were woken: return without touching the
      // lock (the Once may be destroyed by another caller as soon as it saw kDone).
      if (state_.load(std::memory_order_acquire) == kDone) return;
      continue;  // f threw: compete to run it ourselves
    }
    state_.store(kRunning, std::memory_order_release);  // claims f and drops kLocked
    try {
      fn(arg);
    } catch (...) {
      // Not done: let the waiters compete to run their f (at most one runs at a time).
      lock_state();
      detail::Waiter* all = detail::pop_all(waiters_);
      state_.store(0, std::memory_order_release);  // our last touch of *this
      detail::wake_all(all);
      throw;
    }
    lock_state();
    detail::Waiter* all = detail::pop_all(waiters_);
    state_.store(kDone, std::memory_order_release);  // publishes f's effects; last touch
    detail::wake_all(all);
    return;
  }
}

}  // namespace myriad
