// A proc's local run queue: Go's runq — a fixed ring of 256 plus the runnext slot.
//
// Invariants:
//  - Only the owning proc's thread pushes (writes `tail_` and the slots at tail_..).
//  - Any thread may pop from the head by CAS on `head_` (the owner when running, thieves when
//    stealing). A slot is read before the CAS that claims it and is never rewritten until the
//    owner's tail wraps past it, which needs that CAS to have succeeded first.
//  - tail_ - head_ <= 256 at all times (uint32 arithmetic wraps consistently).
//  - `runnext_` holds a task readied by the running task; it runs next and is stolen only on
//    the last stealing pass (a runnext that nobody may steal starves: tokio#4941).
#pragma once

#include <atomic>
#include <cstdint>

#include "task_impl.hpp"

namespace myriad::detail {

class LocalRunQueue {
 public:
  static constexpr uint32_t kCapacity = 256;

  // Owner only. Returns false when the ring is full (the caller spills half to the global
  // queue with grab_half_for_spill).
  bool push_back(Task* t) noexcept {
    uint32_t h = head_.load(std::memory_order_acquire);
    uint32_t tl = tail_.load(std::memory_order_relaxed);
    if (tl - h >= kCapacity) return false;
    slots_[tl % kCapacity].store(t, std::memory_order_relaxed);
    tail_.store(tl + 1, std::memory_order_release);
    return true;
  }

  // Owner only: whether push_back would succeed now (thieves only ever make more room).
  bool has_room() const noexcept {
    return tail_.load(std::memory_order_relaxed) - head_.load(std::memory_order_acquire) <
           kCapacity;
  }

  // Owner only: puts t in runnext and returns what it displaced (or null). seq_cst: the
  // scheduler's wake-up protocol uses this exchange as its full barrier.
  Task* exchange_runnext(Task* t) noexcept {
    return runnext_.exchange(t, std::memory_order_seq_cst);
  }

  // Owner only. `allow_runnext`: false to skip runnext (the fairness bound on runnext chains);
  // *from_runnext tells where the task came from.
  Task* pop(bool allow_runnext, bool* from_runnext) noexcept {
    if (allow_runnext) {
      Task* n = runnext_.load(std::memory_order_relaxed);
      if (n && runnext_.compare_exchange_strong(n, nullptr, std::memory_order_acq_rel)) {
        *from_runnext = true;
        return n;
      }
    }
    *from_runnext = false;
    for (;;) {
      uint32_t h = head_.load(std::memory_order_acquire);
      uint32_t tl = tail_.load(std::memory_order_relaxed);
      if (h == tl) break;
      Task* t = slots_[h % kCapacity].load(std::memory_order_relaxed);
      if (head_.compare_exchange_weak(h, h + 1, std::memory_order_acq_rel)) return t;
    }
    if (!allow_runnext) {  // the ring was empty: runnext is all there is
      Task* n = runnext_.load(std::memory_order_relaxed);
      if (n && runnext_.compare_exchange_strong(n, nullptr, std::memory_order_acq_rel)) {
        *from_runnext = true;
        return n;
      }
    }
    return nullptr;
  }

  // Owner only, ring full: claims the older half of the ring into out[] (linked by the caller)
  // so it can move to the global queue in one batch. Returns the count, 0 if thieves got there
  // first (then the ring has room again).
  uint32_t grab_half_for_spill(Task** out) noexcept {
    uint32_t h = head_.load(std::memory_order_acquire);
    uint32_t tl = tail_.load(std::memory_order_relaxed);
    uint32_t n = (tl - h) / 2;
    if (n != kCapacity / 2) return 0;
    for (uint32_t i = 0; i < n; ++i) out[i] = slots_[(h + i) % kCapacity].load(std::memory_order_relaxed);
    if (!head_.compare_exchange_strong(h, h + n, std::memory_order_acq_rel)) return 0;
    return n;
  }

  // Thief: moves half of this queue (at least one task) into `dst`, which must be the
  // thief's own, empty-enough queue. Returns one of the stolen tasks to run now, or null.
  Task* steal_into(LocalRunQueue& dst, bool steal_runnext, uint32_t* stolen) noexcept {
    uint32_t dst_tail = dst.tail_.load(std::memory_order_relaxed);
    uint32_t n = grab(dst, dst_tail, steal_runnext);
    if (n == 0) return nullptr;
    --n;
    Task* t = dst.slots_[(dst_tail + n) % kCapacity].load(std::memory_order_relaxed);
    if (n > 0) dst.tail_.store(dst_tail + n, std::memory_order_release);
    *stolen = n + 1;
    return t;
  }

  bool empty() const noexcept {
    return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_acquire) &&
           runnext_.load(std::memory_order_acquire) == nullptr;
  }
  uint32_t size() const noexcept {
    uint32_t n = tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire);
    return n + (runnext_.load(std::memory_order_acquire) ? 1 : 0);
  }

 private:
  // Copies half of this queue into dst's ring starting at dst_tail, then claims it by CAS.
  uint32_t grab(LocalRunQueue& dst, uint32_t dst_tail, bool steal_runnext) noexcept {
    for (;;) {
      uint32_t h = head_.load(std::memory_order_acquire);
      uint32_t tl = tail_.load(std::memory_order_acquire);
      uint32_t n = tl - h;
      n = n - n / 2;
      if (n == 0) {
        if (steal_runnext) {
          Task* next = runnext_.load(std::memory_order_acquire);
          if (next && runnext_.compare_exchange_strong(next, nullptr, std::memory_order_acq_rel)) {
            dst.slots_[dst_tail % kCapacity].store(next, std::memory_order_relaxed);
            return 1;
          }
        }
        return 0;
      }
      if (n > kCapacity / 2) continue;  // read head and tail inconsistently; retry
      for (uint32_t i = 0; i < n; ++i) {
        Task* t = slots_[(h + i) % kCapacity].load(std::memory_order_relaxed);
        dst.slots_[(dst_tail + i) % kCapacity].store(t, std::memory_order_relaxed);
      }
      if (head_.compare_exchange_strong(h, h + n, std::memory_order_acq_rel)) return n;
    }
  }

  alignas(64) std::atomic<uint32_t> head_{0};
  alignas(64) std::atomic<uint32_t> tail_{0};
  std::atomic<Task*> runnext_{nullptr};
  std::atomic<Task*> slots_[kCapacity];
};

}  // namespace myriad::detail
