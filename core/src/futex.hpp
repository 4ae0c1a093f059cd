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
    if (state_.exchange(1, std::memory_order_release) == 0) futex_wake(&state_);
  }

 private:
  std::atomic<uint32_t> state_{0};
};

}  // namespace myriad::detail
