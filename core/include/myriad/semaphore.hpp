// Semaphore: a weighted counting semaphore, as golang.org/x/sync/semaphore.Weighted.
//
// acquire(n) takes n units of a fixed capacity, waiting (a task parks, a thread sleeps) until
// they are available; release(n) gives them back. Waiters are served strictly in FIFO order:
// while a large request waits at the head, later small requests wait behind it even if they
// would fit, so the large one is not starved (x/sync's rule). try_acquire(n) never jumps the
// queue either: it fails while anyone waits.
//
// Destruction: a Semaphore may be destroyed as soon as no task or thread is inside one of its
// calls — e.g. by a waiter right after its acquire() returned: release() touches the object
// only before it wakes the waiters it served.
#pragma once

#include <atomic>
#include <cstdint>

#include "myriad/detail/wait_list.hpp"
#include "myriad/errors.hpp"

namespace myriad {

class Semaphore {
 public:
  static constexpr int64_t kMaxCapacity = (int64_t{1} << 62) - 1;

  // Throws Error(invalid_argument) unless 0 <= capacity <= kMaxCapacity.
  explicit Semaphore(int64_t capacity);
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  // Throws Error(invalid_argument) if n < 0 or n > capacity() (x/sync would block until its
  // context is done; with no context that is forever). Uncontended: one CAS.
  void acquire(int64_t n = 1);
  // Takes n units only if they are available now and nobody waits. False for n < 0 or
  // n > capacity().
  bool try_acquire(int64_t n = 1) noexcept;
  // Throws Error(invalid_argument) if n < 0 or if it would release more than is held (x/sync
  // panics); nothing changes then.
  void release(int64_t n = 1);

  int64_t capacity() const noexcept { return capacity_; }
  // Racy snapshot: units not held right now.
  int64_t available() const noexcept {
    return static_cast<int64_t>(state_.load(std::memory_order_relaxed) & kAvailableMask);
  }

 private:
  // state_: the units available (low 62 bits) and kWaiters (the queue is not empty).
  // Invariants: kWaiters is set and cleared only under waiters_.locked, together with the
  // queue. While it is set, the fast paths (acquire/try_acquire/release by a plain CAS) fail
  // and everybody goes through the lock; so under the lock a set kWaiters means the word is
  // stable, and release() can grant units to the head waiters in FIFO order in one store.
  // A waiter is granted its units by the release() that dequeues it — it never re-competes.
  static constexpr uint64_t kWaiters = uint64_t{1} << 62;
  static constexpr uint64_t kAvailableMask = kWaiters - 1;

  void acquire_slow(int64_t n) noexcept;
  void release_slow(int64_t n);

  const int64_t capacity_;
  std::atomic<uint64_t> state_;
  // FIFO of waiters (semaphore.cpp's SemWaiter: the Waiter plus the units it asks for).
  detail::WaitList waiters_;
};

}  // namespace myriad
