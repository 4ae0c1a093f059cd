#include "myriad/wait_group.hpp"

#include <sched.h>

#include <cstdint>

#include "wait_queue.hpp"

namespace myriad {
namespace {
int32_t counter_of(uint64_t s) { return static_cast<int32_t>(s >> 32); }
uint32_t waiters_of(uint64_t s) { return static_cast<uint32_t>(s); }
}  // namespace

Errc WaitGroup::try_add(int64_t delta) noexcept {
  if (delta >= (int64_t{1} << 31) || delta <= -(int64_t{1} << 31)) return Errc::invalid_argument;
  const uint64_t step = static_cast<uint64_t>(delta) << 32;
  uint64_t s;
  if (delta >= 0) {
    s = state_.fetch_add(step, std::memory_order_acq_rel) + step;
  } else {
    // A refused add must change nothing, not even for an instant (others would see a negative
    // counter), so a decrement checks and writes in one CAS.
    s = state_.load(std::memory_order_relaxed);
    do {
      if (counter_of(s) + delta < 0) return Errc::negative_counter;
    } while (!state_.compare_exchange_weak(s, s + step, std::memory_order_acq_rel,
                                           std::memory_order_relaxed));
    s += step;
  }
  const int32_t counter = counter_of(s);
  const uint32_t waiters = waiters_of(s);
  if (counter > 0 || waiters == 0 || delta >= 0) return Errc::ok;

  // This add() reached zero with `waiters` registered: release exactly those. Each of them
  // enqueued itself under the list lock right after registering, so all are in the list.
  detail::lock(waiters_);
  detail::Waiter* all = detail::pop_all(waiters_);
  detail::unlock(waiters_);
  state_.fetch_sub(waiters, std::memory_order_acq_rel);  // the last touch of *this
  detail::wake_all(all);
  return Errc::ok;
}

void WaitGroup::add(int64_t delta) {
  switch (try_add(delta)) {
    case Errc::ok: return;
    case Errc::negative_counter: throw Error(Errc::negative_counter, "myriad::WaitGroup: negative counter");
    default: throw Error(Errc::invalid_argument, "myriad::WaitGroup: delta out of range");
  }
}

void WaitGroup::wait() {
  for (;;) {
    uint64_t s = state_.load(std::memory_order_acquire);
    if (counter_of(s) == 0) {
      if (waiters_of(s) == 0) return;
      sched_yield();  // a release is finishing (a few instructions): see the header
      continue;
    }
    detail::lock(waiters_);
    // Register while holding the lock, so a releaser that counted us finds us in the list.
    if (!state_.compare_exchange_strong(s, s + 1, std::memory_order_acq_rel)) {
      detail::unlock(waiters_);
      continue;
    }
    detail::Waiter w;
    detail::block_locked(waiters_, w, WaitReason::wait_group);
    return;  // woken only after the releaser's last touch of *this
  }
}

}  // namespace myriad
