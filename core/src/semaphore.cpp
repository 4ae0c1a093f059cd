// Semaphore: golang.org/x/sync/semaphore.Weighted over the runtime's one wait mechanism.
#include "myriad/semaphore.hpp"

#include "wait_queue.hpp"

namespace myriad {
namespace {

// A queued acquire(n); `n` is read only under the list lock.
struct SemWaiter : detail::Waiter {
  uint64_t n = 0;
};

}  // namespace

Semaphore::Semaphore(int64_t capacity) : capacity_(capacity), state_(0) {
  if (capacity < 0 || capacity > kMaxCapacity)
    throw Error(Errc::invalid_argument, "myriad::Semaphore: capacity out of range");
  state_.store(static_cast<uint64_t>(capacity), std::memory_order_relaxed);
}

bool Semaphore::try_acquire(int64_t n) noexcept {
  if (n < 0 || n > capacity_) return false;
  const uint64_t want = static_cast<uint64_t>(n);
  uint64_t old = state_.load(std::memory_order_relaxed);
  while (!(old & kWaiters) && old >= want)
    if (state_.compare_exchange_weak(old, old - want, std::memory_order_acquire,
                                     std::memory_order_relaxed))
      return true;
  return false;
}

void Semaphore::acquire(int64_t n) {
  if (n < 0 || n > capacity_)
    throw Error(Errc::invalid_argument, "myriad::Semaphore::acquire: n < 0 or n > capacity");
  if (!try_acquire(n)) acquire_slow(n);
}

void Semaphore::acquire_slow(int64_t n) noexcept {
  const uint64_t want = static_cast<uint64_t>(n);
  detail::lock(waiters_);
  uint64_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (!(old & kWaiters) && old >= want) {
      if (state_.compare_exchange_weak(old, old - want, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        detail::unlock(waiters_);
        return;
      }
      continue;
    }
    if ((old & kWaiters) ||
        state_.compare_exchange_weak(old, old | kWaiters, std::memory_order_relaxed))
      break;
  }
  SemWaiter w;
  w.n = want;
  detail::block_locked(waiters_, w, WaitReason::semaphore);
  // Woken by the release that granted our n units.
}

void Semaphore::release(int64_t n) {
  if (n < 0) throw Error(Errc::invalid_argument, "myriad::Semaphore::release: n < 0");
  const uint64_t give = static_cast<uint64_t>(n);
  const uint64_t cap = static_cast<uint64_t>(capacity_);
  uint64_t old = state_.load(std::memory_order_relaxed);
  while (!(old & kWaiters)) {
    if (old + give > cap)
      throw Error(Errc::invalid_argument, "myriad::Semaphore::release: released more than held");
    if (state_.compare_exchange_weak(old, old + give, std::memory_order_release,
                                     std::memory_order_relaxed))
      return;  // the release was our last touch
  }
  release_slow(n);
}

void Semaphore::release_slow(int64_t n) {
  const uint64_t give = static_cast<uint64_t>(n);
  const uint64_t cap = static_cast<uint64_t>(capacity_);
  detail::lock(waiters_);
  uint64_t old = state_.load(std::memory_order_relaxed);
  if (!(old & kWaiters)) {
    // The queue emptied meanwhile: a plain release, after the lock so it is our last touch.
    detail::unlock(waiters_);
    release(n);
    return;
  }
  // kWaiters is set and we hold the lock: nobody else can change the word (see the header).
  uint64_t avail = (old & kAvailableMask) + give;
  if (avail > cap) {
    detail::unlock(waiters_);
    throw Error(Errc::invalid_argument, "myriad::Semaphore::release: released more than held");
  }
  // Grant units to the head waiters in order; stop at the first that does not fit, even if a
  // later one would (x/sync: otherwise large requests starve under load).
  detail::WaitList granted;
  while (auto* w = static_cast<SemWaiter*>(waiters_.head)) {
    if (w->n > avail) break;
    avail -= w->n;
    detail::pop_front(waiters_);
    detail::push_back(granted, w);
  }
  const uint64_t desired = avail | (waiters_.head ? kWaiters : 0);
  state_.store(desired, std::memory_order_release);
  detail::unlock(waiters_);  // our last touch of *this
  detail::wake_all(granted.head);
}

}  // namespace myriad
