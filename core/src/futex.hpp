// Futex-based sleeping for OS threads: the only way a runtime thread or a foreign thread blocks.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <ctime>

namespace myriad::detail {

// Sleeps while *word == expected (spurious returns are possible; callers loop).
inline void futex_wait(std::atomic<uint32_t>* word, uint32_t expected,
                       const timespec* timeout = nullptr) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, timeout,
          nullptr, 0);
}

inline void futex_wake(std::atomic<uint32_t>* word, int count = 1) noexcept {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr,
          nullptr, 0);
}

// A one-shot-per-round binary semaphore for one sleeping thread (Go's note).
// Invariant: `state` is 1 after notify() and before the sleeper's wait() consumed it.
class ThreadParker {
 public:
  void wait() noexcept {
    for (;;) {
      if (state_.exchange(0, std::memory_order_acquire) == 1) return;
      futex_wait(&state_, 0);
    }
  }
  // Like wait(), but gives up at `deadline_ns` (CLOCK_MONOTONIC). True if notified.
  bool wait_until(int64_t deadline_ns) noexcept {
    for (;;) {
      if (state_.exchange(0, std::memory_order_acquire) == 1) return true;
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      int64_t left = deadline_ns - (static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec);
      if (left <= 0) return state_.exchange(0, std::memory_order_acquire) == 1;
      timespec rel{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
      futex_wait(&state_, 0, &rel);
    }
  }
  void notify() noexcept {
    // seq_cst: a waker then reads where else the sleeper may be (Machine::polling).
    if (state_.exchange(1, std::memory_order_seq_cst) != 1) futex_wake(&state_);
  }
  // Consumes a pending notify() without sleeping. True if there was one. seq_cst: a sleeper
  // that publishes where else it sleeps (Machine::polling) reads this after that store.
  bool try_consume() noexcept { return state_.exchange(0, std::memory_order_seq_cst) == 1; }

  // --- one-shot use by a foreign thread blocked in a primitive (wait_queue.cpp) ---
  // States: 0 waiting, 1 notified, 2 flagged by the deadlock check (deadlock.cpp), which
  // never overrides a notification. A flagged waiter withdraws from its primitive's queue —
  // or, if a waker dequeued it first, waits for that waker's notify with wait_notified().
  // True when notified, false when flagged.
  bool wait_once() noexcept {
    for (;;) {
      uint32_t s = state_.load(std::memory_order_acquire);
      if (s == 1) return true;
      if (s == 2) return false;
      futex_wait(&state_, 0);
    }
  }
  // wait_once with a deadline (CLOCK_MONOTONIC ns): 1 notified, 2 flagged, 0 timed out.
  uint32_t wait_once_until(int64_t deadline_ns) noexcept {
    for (;;) {
      uint32_t s = state_.load(std::memory_order_acquire);
      if (s != 0) return s;
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      int64_t left = deadline_ns - (static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec);
      if (left <= 0) return 0;
      timespec rel{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
      futex_wait(&state_, 0, &rel);
    }
  }
  void wait_notified() noexcept {
    for (;;) {
      uint32_t s = state_.load(std::memory_order_acquire);
      if (s == 1) return;
      futex_wait(&state_, s);
    }
  }
  // True if the waiter was still waiting (and is now flagged).
  bool flag_deadlock() noexcept {
    uint32_t expected = 0;
    if (!state_.compare_exchange_strong(expected, 2, std::memory_order_acq_rel)) return false;
    futex_wake(&state_);
    return true;
  }
  bool notified() const noexcept { return state_.load(std::memory_order_acquire) == 1; }

 private:
  std::atomic<uint32_t> state_{0};
};

}  // namespace myriad::detail
