// Channel send, receive and close (Go's chan.go). The lock protocol and invariants are at
// ChanCore in chan_impl.hpp; waiting goes through the runtime's one mechanism (block_with /
// wake), so tasks park and foreign threads sleep on the same queues.
#include <new>

#include "chan_impl.hpp"
#include "preempt.hpp"

namespace myriad::detail {
namespace {

void unlock_chan(void* c) { static_cast<ChanCore*>(c)->lock.unlock(); }
void unlock_nothing(void*) {}

// A nil channel: a blocking operation waits forever (Go), with no queue to be found in.
void block_forever() noexcept {
  Waiter w;
  // Never woken: nothing holds a reference to `w`. A task stays parked until its runtime is
  // destroyed (then it is abandoned, never resumed); a foreign thread returns only when the
  // deadlock check flags it.
  (void)block_with_or_deadlock(w, WaitReason::nil_chan, unlock_nothing, nullptr);
}

// A foreign thread flagged by the deadlock check: leaves the queue if no waker took it yet
// (true: fail with Errc::deadlock), else waits for that waker (false: completed normally).
bool withdraw(ChanCore* c, ChanWaitQueue& q, ChanWaiter& me, Waiter& w) noexcept {
  c->lock.lock();
  const bool still_queued = me.queued;
  if (still_queued) q.remove(&me);
  c->lock.unlock();
  if (!still_queued) w.parker.wait_notified();
  return still_queued;
}

}  // namespace

uint32_t chan_fast_rand() noexcept {
  thread_local uint64_t state = 0;
  uint64_t x = state;
  if (x == 0) x = reinterpret_cast<uintptr_t>(&state) | 1;  // distinct per thread
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  state = x;
  return static_cast<uint32_t>(x >> 32);
}

ChanCore* chan_create(const ElemOps* ops, std::size_t capacity, Errc* err) noexcept {
  if (!ops || (ops->align & (ops->align - 1)) != 0 || ops->align > 4096) {
    if (err) *err = Errc::invalid_argument;
    return nullptr;
  }
  const std::size_t align = ops->align ? ops->align : 1;
  const std::size_t slot = (ops->size + align - 1) & ~(align - 1);
  const std::size_t header = (sizeof(ChanCore) + align - 1) & ~(align - 1);
  if (slot && capacity > (SIZE_MAX - header) / slot) {
    if (err) *err = Errc::no_memory;
    return nullptr;
  }
  const std::size_t total = header + slot * capacity;
  void* mem = ::operator new(total, std::align_val_t{alignof(ChanCore) > align ? alignof(ChanCore)
                                                                                 : align},
                             std::nothrow);
  if (!mem) {
    if (err) *err = Errc::no_memory;
    return nullptr;
  }
  auto* c = ::new (mem) ChanCore();
  c->cap = capacity;
  c->ops = ops;
  c->slot_size = slot;
  c->buf = static_cast<unsigned char*>(mem) + header;
  if (err) *err = Errc::ok;
  return c;
}

void chan_retain(ChanCore* c) noexcept { c->refs.fetch_add(1, std::memory_order_relaxed); }

void chan_release(ChanCore* c) noexcept {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // The last reference: nobody can be blocked on it (a blocked caller holds a reference).
  // Values still buffered die with the channel.
  std::size_t n = c->qcount.load(std::memory_order_relaxed);
  for (std::size_t i = 0, x = c->recvx; i < n; ++i) {
    c->destroy(c->slot(x));
    if (++x == c->cap) x = 0;
  }
  const std::size_t align = c->ops->align ? c->ops->align : 1;
  c->~ChanCore();
  ::operator delete(c, std::align_val_t{alignof(ChanCore) > align ? alignof(ChanCore) : align});
}

Errc chan_send(ChanCore* c, void* elem, bool block) noexcept {
  preempt_check();  // a channel operation is a yield point (blocking.hpp)
  if (!c) {
    if (!block) return Errc::would_block;
    block_forever();
    return Errc::deadlock;
  }
  // Lock-free fast path of a failing non-blocking send on a buffered channel (Go's
  // chansend): full, then still open. A full buffer means no receiver waits (invariant at
  // ChanCore). `closed` never goes back to false, so "open at the second load" implies "open
  // at the first": at that first instant the send could not proceed, which is all a
  // non-blocking send (a select's default branch) promises. Unbuffered channels take the lock.
  if (!block && c->cap != 0 && c->qcount.load(std::memory_order_acquire) == c->cap &&
      !c->closed.load(std::memory_order_acquire))
    return Errc::would_block;

  c->lock.lock();
  if (c->closed.load(std::memory_order_relaxed)) {
    c->lock.unlock();
    return Errc::channel_closed;
  }
  if (ChanWaiter* r = c->recvq.dequeue()) {
    c->send_direct(r, elem);
    const bool handoff = c->cap == 0;
    c->lock.unlock();
    handoff ? wake_handoff(r->w) : wake(r->w);
    return Errc::ok;
  }
  if (c->qcount.load(std::memory_order_relaxed) < c->cap) {
    c->buffer_put(elem);
    c->lock.unlock();
    return Errc::ok;
  }
  if (!block) {
    c->lock.unlock();
    return Errc::would_block;
  }
  Waiter w;
  ChanWaiter me;
  me.w = &w;
  me.elem = elem;
  me.is_send = true;
  c->sendq.push_back(&me);
  if (!block_with_or_deadlock(w, WaitReason::chan_send, unlock_chan, c) && withdraw(c, c->sendq, me, w))
    return Errc::deadlock;
  return me.success ? Errc::ok : Errc::channel_closed;
}

Errc chan_recv(ChanCore* c, void* elem, bool* ok_out, bool block) noexcept {
  preempt_check();
  bool ok_local;
  bool& ok = ok_out ? *ok_out : ok_local;
  ok = false;
  if (!c) {
    if (!block) return Errc::would_block;
    block_forever();
    return Errc::deadlock;
  }
  // Fast path of a failing non-blocking receive on a buffered channel: empty, then still
  // open (the same argument as in chan_send; an empty buffer means no sender waits).
  if (!block && c->cap != 0 && c->qcount.load(std::memory_order_acquire) == 0 &&
      !c->closed.load(std::memory_order_acquire))
    return Errc::would_block;

  c->lock.lock();
  if (ChanWaiter* s = c->sendq.dequeue()) {
    c->recv_from_sender(s, elem);
    const bool handoff = c->cap == 0;
    c->lock.unlock();
    handoff ? wake_handoff(s->w) : wake(s->w);
    ok = true;
    return Errc::ok;
  }
  if (c->qcount.load(std::memory_order_relaxed) > 0) {
    c->buffer_take(elem);
    c->lock.unlock();
    ok = true;
    return Errc::ok;
  }
  if (c->closed.load(std::memory_order_relaxed)) {
    c->lock.unlock();
    return Errc::ok;  // closed and drained: ok = false
  }
  if (!block) {
    c->lock.unlock();
    return Errc::would_block;
  }
  Waiter w;
  ChanWaiter me;
  me.w = &w;
  me.elem = elem;
  c->recvq.push_back(&me);
  if (!block_with_or_deadlock(w, WaitReason::chan_recv, unlock_chan, c) && withdraw(c, c->recvq, me, w))
    return Errc::deadlock;
  ok = me.success;
  return Errc::ok;
}

Waiter* close_locked(ChanCore* c) noexcept {
  c->closed.store(true, std::memory_order_release);
  Waiter* head = nullptr;
  Waiter** tail = &head;
  // Receivers first (they get ok = false), then senders (they get channel_closed), each in
  // queue order.
  for (ChanWaitQueue* q : {&c->recvq, &c->sendq}) {
    while (ChanWaiter* x = q->dequeue()) {
      x->success = false;
      x->w->next = nullptr;
      *tail = x->w;
      tail = &x->w->next;
    }
  }
  return head;
}

Errc chan_close(ChanCore* c) noexcept {
  if (!c) return Errc::nil_channel;
  c->lock.lock();
  if (c->closed.load(std::memory_order_relaxed)) {
    c->lock.unlock();
    return Errc::channel_closed;
  }
  Waiter* list = close_locked(c);
  c->lock.unlock();
  wake_all(list);
  return Errc::ok;
}

std::size_t chan_len(const ChanCore* c) noexcept {
  return c ? c->qcount.load(std::memory_order_relaxed) : 0;
}
std::size_t chan_cap(const ChanCore* c) noexcept { return c ? c->cap : 0; }

}  // namespace myriad::detail
