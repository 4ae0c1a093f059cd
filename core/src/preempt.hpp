// The cooperative preemption point (see blocking.hpp): the monitor sets Proc::preempt and
// raises g_preempt_pending; yield points look at the global counter first (one relaxed load,
// no thread-local access), and only when it is non-zero at their own proc's flag.
#pragma once

#include <atomic>
#include <cstdint>

namespace myriad::detail {

// Preemption requests not yet honoured or withdrawn, over every runtime of the process.
extern std::atomic<uint32_t> g_preempt_pending;

// Yields if the current task's proc has a pending request (blocking.cpp).
void preempt_slow() noexcept;

inline void preempt_check() noexcept {
  if (g_preempt_pending.load(std::memory_order_relaxed) != 0) [[unlikely]]
    preempt_slow();
}

}  // namespace myriad::detail
