// Timers: per-proc 4-ary heaps (Go's p.timers) and the nodes in them.
//
// A TimerNode is armed in the heap of one proc at a time. Whoever finds it due — the proc's
// own thread, a thread looking for work, the idle "timer watcher" — pops it under that heap's
// lock and calls fire() after releasing the lock, so firing (readying a task, a non-blocking
// channel send, cancelling a context) never runs under a heap lock and never parks.
//
// Ownership and lifetime:
//  - `heap`, `index`, `when` and `period` are written under the lock of the heap the node is
//    in (or by the only owner while it is in none). `heap` is atomic so stop() can find the
//    heap to lock; it is re-checked under that lock.
//  - A counted node (refs != nullptr) is kept alive by a reference the heap holds while it is
//    armed; a popped one-shot node's reference passes to its fire(), a periodic node that is
//    re-armed takes one more for the fire. fire() releases it. Stack nodes (a sleeping task's)
//    are not counted: nothing but their own fire can remove them.
//  - `seq` changes whenever the owner stops or re-arms the node; fire() gets the value from
//    the moment it was popped, so an owner that serialises with its fire (ChanTimer::mu) can
//    tell a stale firing from a live one (Go 1.23's "no stale value after Stop/Reset").
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "spin_lock.hpp"

namespace myriad {
class Runtime;
}

namespace myriad::detail {

class Scheduler;
struct TimerHeap;

inline constexpr int64_t kNever = INT64_MAX;

int64_t monotonic_now_ns() noexcept;  // CLOCK_MONOTONIC, the clock of std::chrono::steady_clock
// A steady_clock time point in CLOCK_MONOTONIC ns, and now + d without overflow (a huge d means
// "never", as in Go). time.cpp.
int64_t to_ns(std::chrono::steady_clock::time_point tp) noexcept;
int64_t deadline_after(std::chrono::nanoseconds d) noexcept;
// The runtime a timer (or a context deadline) belongs to: rt if given, else the calling task's,
// else the oldest live one; throws Error(not_in_task) naming `what` if there is none.
Scheduler* timer_scheduler(Runtime* rt, const char* what);

struct TimerNode {
  int64_t when = 0;    // CLOCK_MONOTONIC ns
  int64_t period = 0;  // > 0: re-armed at when + period after each firing
  uint64_t seq = 0;
  void (*fire)(TimerNode* self, uint64_t seq, int64_t now) noexcept = nullptr;
  void (*release)(TimerNode* self) noexcept = nullptr;  // counted nodes: drop one reference
  void (*retain)(TimerNode* self) noexcept = nullptr;
  std::atomic<TimerHeap*> heap{nullptr};
  uint32_t index = 0;
};

// Invariant: nodes[0] is the earliest; `next_when` mirrors nodes[0]->when (kNever if empty)
// for lock-free "anything due?" checks by every thread.
struct TimerHeap {
  SpinLock lock;
  std::vector<TimerNode*> nodes;
  std::atomic<int64_t> next_when{kNever};

  void push_locked(TimerNode* t);      // may throw std::bad_alloc
  void remove_locked(TimerNode* t) noexcept;
  void fix_next() noexcept {
    next_when.store(nodes.empty() ? kNever : nodes[0]->when, std::memory_order_seq_cst);
  }
  void up(uint32_t i) noexcept;
  void down(uint32_t i) noexcept;
  void place(uint32_t i, TimerNode* t) noexcept {
    nodes[i] = t;
    t->index = i;
  }
};

// Arms `t` (not armed anywhere) to fire at t->when on a proc of `s`: the caller's own proc
// when it is one of s's, else one chosen round-robin among s's runtime-owned procs. Takes a
// reference for a counted node. Returns false if the heap could not grow (out of memory).
bool timer_arm(Scheduler* s, TimerNode* t) noexcept;
// Disarms `t` if it is armed. True if it was (and will not fire from that arming).
bool timer_disarm(TimerNode* t) noexcept;
// Pops and fires every timer of `h` due at `now`. Returns how many fired.
uint32_t run_due_timers(TimerHeap& h, int64_t now) noexcept;
// Empties a heap at shutdown without firing anything.
void drop_all_timers(TimerHeap& h) noexcept;

}  // namespace myriad::detail
