// A test-and-test-and-set lock for critical sections of a few loads and stores that never
// park or make a syscall (channel state, timer heaps). A descheduled holder is waited out with
// sched_yield after a bounded spin, so a preempted holder costs a time slice, not a livelock.
#pragma once

#include <sched.h>

#include <atomic>
#include <cstdint>

namespace myriad::detail {

struct SpinLock {
  std::atomic<bool> locked{false};

  void lock() noexcept {
    if (!locked.exchange(true, std::memory_order_acquire)) return;
    lock_contended();
  }
  // Exponential backoff: under steady contention (a producer and a consumer on two cores
  // hammering one channel) the loser waits longer each time, so the winner runs a burst of
  // operations on a cache line that stays in its core instead of paying a line transfer per
  // operation. Past the spin budget the holder was likely preempted: give way to it.
  [[gnu::noinline]] void lock_contended() noexcept {
    uint32_t backoff = 1;
    for (int rounds = 0;; ++rounds) {
      if (!locked.load(std::memory_order_relaxed) &&
          !locked.exchange(true, std::memory_order_acquire))
        return;
      if (rounds < 16) {
        for (uint32_t i = 0; i < backoff; ++i) __builtin_ia32_pause();
        if (backoff < 256) backoff <<= 1;
      } else {
        sched_yield();
      }
    }
  }
  bool try_lock() noexcept {
    return !locked.load(std::memory_order_relaxed) &&
           !locked.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked.store(false, std::memory_order_release); }
};

}  // namespace myriad::detail
