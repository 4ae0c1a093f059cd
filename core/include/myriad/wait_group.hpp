// WaitGroup: Go's sync.WaitGroup. Waiters park through the runtime's one wait mechanism when
// they are tasks and block as OS threads (futex, no spinning) otherwise.
#pragma once

#include <atomic>
#include <cstdint>

#include "myriad/detail/wait_list.hpp"
#include "myriad/errors.hpp"

namespace myriad {

class WaitGroup {
 public:
  WaitGroup() = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  // Adds delta (may be negative). Throws Error(negative_counter) if the counter would go below
  // zero (the counter is then left unchanged) and Error(invalid_argument) if |delta| >= 2^31.
  void add(int64_t delta = 1);
  void done() { add(-1); }
  // Returns at once if the counter is zero; otherwise waits until it reaches zero.
  void wait();
  int64_t count() const noexcept {
    return static_cast<int32_t>(state_.load(std::memory_order_acquire) >> 32);
  }

  Errc try_add(int64_t delta) noexcept;

 private:
  // High 32 bits: the counter (signed). Low 32 bits: how many waiters registered while it was
  // positive. One word, so the add() that reaches zero learns in the same atomic step whether
  // anyone must be released (Go packs its WaitGroup the same way).
  //
  // Destruction safety: a WaitGroup may be destroyed as soon as any wait() returned. The add()
  // that releases waiters touches the object until it lowers the waiter count, so wait()
  // returns only once the count is zero — a late waiter that finds the counter at zero while
  // a release is in flight waits for that release to finish.
  std::atomic<uint64_t> state_{0};
  detail::WaitList waiters_;
};

}  // namespace myriad
