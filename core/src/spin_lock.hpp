// A test-and-test-and-set lock for critical sections of a few loads and stores that never
// park or make a syscall (channel state, timer heaps). A descheduled holder is waited out with
// sched_yield after a bounded spin, so a preempted holder costs a time slice, not a livelock.
#pragma once

#include <sched.h>

#include <atomic>

namespace myriad::detail {

struct SpinLock {
  std::atomic<bool> locked{false};

  void lock() noexcept {
    for (int spins = 0;; ++spins) {
      if (!locked.load(std::memory_order_relaxed) &&
          !locked.exchange(true, std::memory_order_acquire))
        return;
      if (spins < 64)
        __builtin_ia32_pause();
      else
        sched_yield();
    }
  }
  bool try_lock() noexcept {
    return !locked.load(std::memory_order_relaxed) &&
           !locked.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked.store(false, std::memory_order_release); }
};

}  // namespace myriad::detail
