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
  // zero; the counter is then left unchanged.
  void add(int64_t delta = 1);
  void done() { add(-1); }
  // Returns at once if the counter is zero; otherwise waits until it reaches zero.
  void wait();
  int64_t count() const noexcept { return counter_.load(std::memory_order_acquire); }

  Errc try_add(int64_t delta) noexcept;

 private:
  std::atomic<int64_t> counter_{0};
  detail::WaitList waiters_;
};

}  // namespace myriad
