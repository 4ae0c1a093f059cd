// The channel (Go's hchan) and the record a blocked sender or receiver leaves in its queue
// (Go's sudog). Shared by chan.cpp (send, receive, close) and select.cpp.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "myriad/chan.hpp"
#include "spin_lock.hpp"
#include "wait_queue.hpp"

namespace myriad::detail {

// A select in progress: the one word every channel it waits on races to claim.
// Invariant: `done` goes 0 -> 1 exactly once, under the lock of the channel whose operation
// completes the select; that waker then writes `winner` and is the only one to wake the
// select's waiter. Wakers on other channels that lose the race only unlink their record.
struct SelectState {
  std::atomic<uint32_t> done{0};
  struct ChanWaiter* winner = nullptr;
};

// One blocked send or receive, queued on one channel. Lives in the blocked caller's frame.
// Ownership: while `queued`, it belongs to the channel (its lock guards prev/next/queued);
// once a waker dequeued it, the waker fills `success` (and the value) and calls wake(w) as
// its last touch; the blocked caller reads the outcome after it resumes.
struct ChanWaiter {
  ChanWaiter* prev = nullptr;
  ChanWaiter* next = nullptr;
  Waiter* w = nullptr;           // who to wake (a select shares one Waiter among its cases)
  SelectState* sel = nullptr;    // non-null for a select case
  void* elem = nullptr;          // send: the value to take; receive: where to put the value
  uint32_t case_index = 0;
  bool is_send = false;
  bool queued = false;
  bool success = false;          // true: the value moved; false: woken by close
};

// FIFO of ChanWaiters (doubly linked so a select can withdraw a losing case in O(1)).
struct ChanWaitQueue {
  ChanWaiter* head = nullptr;
  ChanWaiter* tail = nullptr;

  void push_back(ChanWaiter* w) noexcept {
    w->next = nullptr;
    w->prev = tail;
    if (tail)
      tail->next = w;
    else
      head = w;
    tail = w;
    w->queued = true;
  }
  void remove(ChanWaiter* w) noexcept {
    if (!w->queued) return;
    if (w->prev)
      w->prev->next = w->next;
    else
      head = w->next;
    if (w->next)
      w->next->prev = w->prev;
    else
      tail = w->prev;
    w->prev = w->next = nullptr;
    w->queued = false;
  }
  // The first waiter that can still complete: a plain waiter always; a select case only if
  // this caller wins its select's `done` CAS. Select cases that lost (their select completed
  // on another channel) are unlinked on the way; their select, withdrawing its cases later,
  // finds them already unqueued. Null if none.
  ChanWaiter* dequeue() noexcept {
    while (ChanWaiter* w = head) {
      remove(w);
      if (!w->sel) return w;
      uint32_t expected = 0;
      if (w->sel->done.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
        w->sel->winner = w;
        return w;
      }
    }
    return nullptr;
  }
  bool empty() const noexcept { return head == nullptr; }
};

// Invariants (all under `lock`):
//  - qcount <= cap; the buffered values occupy slots recvx, recvx+1, ... (mod cap).
//  - sendq is non-empty only if the buffer is full (for cap 0: always "full") and no receiver
//    waits; recvq is non-empty only if the buffer is empty and no sender waits. So at most one
//    of the two queues holds waiters, except for select records not yet withdrawn.
//  - once closed, never reopened; both queues are emptied by close.
// `closed` and `qcount` are atomics only so that len() and the lock-free fast paths may read
// them without the lock; they are written under it.
struct alignas(64) ChanCore {
  SpinLock lock;
  std::atomic<uint32_t> refs{1};
  std::atomic<bool> closed{false};
  std::atomic<std::size_t> qcount{0};
  std::size_t cap = 0;
  std::size_t sendx = 0, recvx = 0;
  ChanWaitQueue sendq, recvq;
  const ElemOps* ops = nullptr;
  std::size_t slot_size = 0;     // ops->size rounded up to ops->align
  unsigned char* buf = nullptr;  // cap slots, allocated just after this struct

  unsigned char* slot(std::size_t i) noexcept { return buf + i * slot_size; }

  // Element moves, with "null op = memcpy" (ElemOps). Word-sized elements (the common case:
  // ints, pointers) are copied inline instead of through a call to memcpy.
  static void copy_bytes(void* dst, const void* src, std::size_t n) noexcept {
    switch (n) {
      case 0: return;
      case 4: std::memcpy(dst, src, 4); return;
      case 8: std::memcpy(dst, src, 8); return;
      case 16: std::memcpy(dst, src, 16); return;
      default: std::memcpy(dst, src, n);
    }
  }
  void construct(void* dst, void* src) noexcept {
    if (ops->construct)
      ops->construct(dst, src);
    else
      copy_bytes(dst, src, ops->size);
  }
  void assign(void* dst, void* src) noexcept {
    if (ops->assign)
      ops->assign(dst, src);
    else
      copy_bytes(dst, src, ops->size);
  }
  void destroy(void* p) noexcept {
    if (ops->destroy) ops->destroy(p);
  }

  // Buffer operations, lock held.
  void buffer_put(void* src) noexcept {
    construct(slot(sendx), src);
    if (++sendx == cap) sendx = 0;
    qcount.store(qcount.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void buffer_take(void* dst) noexcept {
    unsigned char* s = slot(recvx);
    assign(dst, s);
    destroy(s);
    if (++recvx == cap) recvx = 0;
    qcount.store(qcount.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }

  // The three ways an operation completes against the other side, lock held. Each returns
  // the waiter to wake (after unlocking), with its outcome filled in.
  // A sender meets a waiting receiver: the value goes straight into the receiver's variable.
  void send_direct(ChanWaiter* receiver, void* src) noexcept {
    assign(receiver->elem, src);
    receiver->success = true;
  }
  // A receiver meets a waiting sender. Unbuffered: take the sender's value directly. Buffered
  // (then full): take the head of the buffer and put the sender's value at its tail, so FIFO
  // order holds across the buffer and the blocked senders.
  void recv_from_sender(ChanWaiter* sender, void* dst) noexcept {
    if (cap == 0) {
      assign(dst, sender->elem);
    } else {
      unsigned char* s = slot(recvx);
      assign(dst, s);
      destroy(s);
      construct(s, sender->elem);
      if (++recvx == cap) recvx = 0;
      sendx = recvx;
    }
    sender->success = true;
  }
};

// Marks c closed (lock held) and unlinks every waiter, outcome "closed" (success = false),
// linking their Waiters through Waiter::next for wake_all after the lock is released.
Waiter* close_locked(ChanCore* c) noexcept;

// Random numbers for select's poll order: per-thread xorshift, never held across a park.
uint32_t chan_fast_rand() noexcept;

}  // namespace myriad::detail
