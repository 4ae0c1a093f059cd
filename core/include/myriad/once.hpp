// Once: Go's sync.Once — call(f) runs f exactly once, however many tasks and threads call it.
//
// Callers that arrive while f runs wait (a task parks, a thread sleeps) until it finished; once
// f has returned, call() returns at once (one acquire load).
//
// Exceptions (this is C++'s std::call_once behaviour, not Go's): if f throws, the exception
// propagates to the caller that ran it and the Once is NOT marked done — a waiting caller (or
// the next one) runs its own f. Go's Once, by contrast, counts a panicking f as done.
// f must not call call() on the same Once (it would wait for itself forever, as in Go).
//
// Destruction: a Once may be destroyed as soon as no call() is in progress — e.g. by a caller
// right after its call() returned: the runner publishes "done" in the same store that is its
// last access to the Once.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "myriad/detail/wait_list.hpp"

namespace myriad {

class Once {
 public:
  Once() = default;
  Once(const Once&) = delete;
  Once& operator=(const Once&) = delete;

  template <class F>
  void call(F&& f) {
    if (state_.load(std::memory_order_acquire) == kDone) return;
    auto* fp = std::addressof(f);  // an object or a function pointer; &fp is an object's
    call_slow([](void* a) { (**static_cast<decltype(fp)*>(a))(); }, &fp);
  }

  // True once some call's f returned normally.
  bool done() const noexcept { return state_.load(std::memory_order_acquire) == kDone; }

 private:
  // state_:
  //   kDone    — f returned normally. Final: no other bit is ever set again.
  //   kRunning — a caller is running f.
  //   kLocked  — a spinlock guarding waiters_ (held for a few pointer moves, never across f
  //              or a sleep).
  // Invariants: waiters_ is empty unless kRunning is set (the runner takes the whole list
  // when it finishes). The runner sets kDone with the same store that drops kLocked: the
  // lock lives in this word rather than in waiters_ precisely so that "done" and "no longer
  // touching the Once" become visible together — a fast-path caller that sees kDone may
  // destroy the Once at once.
  static constexpr uint32_t kDone = 1;
  static constexpr uint32_t kRunning = 2;
  static constexpr uint32_t kLocked = 4;

  void call_slow(void (*fn)(void*), void* arg);
  uint32_t lock_state() noexcept;  // returns the state with kLocked set (by us)
  static void unlock_state(void* self) noexcept;

  std::atomic<uint32_t> state_{0};
  // Callers waiting for the runner; waiters_.locked is unused (kLocked guards the list).
  detail::WaitList waiters_;
};

}  // namespace myriad
