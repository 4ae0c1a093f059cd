// The list of waiters behind every blocking primitive (WaitGroup, join, and the channels and
// sync types of later layers). Public only so that primitives can hold it by value; its
// operations live in core/src/wait_queue.hpp.
#pragma once

#include <atomic>

namespace myriad::detail {

struct Waiter;

// Invariant: `head`/`tail` are only read or written while `locked` is held (test-and-set
// spinlock; critical sections are a few pointer moves, never a park or a syscall).
struct WaitList {
  std::atomic<bool> locked{false};
  Waiter* head = nullptr;
  Waiter* tail = nullptr;
};

}  // namespace myriad::detail
