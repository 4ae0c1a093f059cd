#include "myriad/wait_group.hpp"

#include "wait_queue.hpp"

namespace myriad {

Errc WaitGroup::try_add(int64_t delta) noexcept {
  int64_t v = counter_.fetch_add(delta, std::memory_order_acq_rel) + delta;
  if (v < 0) {
    counter_.fetch_sub(delta, std::memory_order_acq_rel);
    return Errc::negative_counter;
  }
  if (v == 0 && delta != 0) {
    detail::lock(waiters_);
    detail::Waiter* all = detail::pop_all(waiters_);
    detail::unlock(waiters_);
    detail::wake_all(all);
  }
  return Errc::ok;
}

void WaitGroup::add(int64_t delta) {
  if (Errc e = try_add(delta); e != Errc::ok)
    throw Error(e, "myriad::WaitGroup: negative counter");
}

void WaitGroup::wait() {
  if (counter_.load(std::memory_order_acquire) == 0) return;
  detail::lock(waiters_);
  // Re-checked under the lock: a done() that reaches zero after this point takes the lock
  // after us and finds our waiter.
  if (counter_.load(std::memory_order_acquire) == 0) {
    detail::unlock(waiters_);
    return;
  }
  detail::Waiter w;
  detail::block_locked(waiters_, w, WaitReason::wait_group);
}

}  // namespace myriad
