// select (Go's selectgo): poll the cases in a random order under the locks of all their
// channels; if none is ready, queue one record per case on every channel and park once; the
// first channel operation that claims the select (SelectState::done) completes it, and the
// select withdraws its other records.
//
// Lock order: channels are locked in address order (each distinct channel once), so two
// selects over overlapping channels cannot deadlock, and a select holding several locks
// never waits for a lock held by a plain send/receive that waits for it.
#include <algorithm>
#include <memory>
#include <new>

#include "chan_impl.hpp"
#include "preempt.hpp"

namespace myriad::detail {
namespace {

constexpr std::size_t kMaxCases = 65536;
// Cases up to this many keep their scratch arrays on the stack.
constexpr std::size_t kInlineCases = 8;

struct Scratch {
  uint32_t* poll;        // case indices in random order
  ChanCore** locks;      // distinct non-nil channels, ascending address
  std::size_t nlocks = 0;
  ChanWaiter* records;   // one per case (only non-nil ones are queued)
};

void lock_all(const Scratch& s) noexcept {
  for (std::size_t i = 0; i < s.nlocks; ++i) s.locks[i]->lock.lock();
}
void unlock_all(const Scratch& s) noexcept {
  for (std::size_t i = s.nlocks; i-- > 0;) s.locks[i]->lock.unlock();
}
void unlock_all_cb(void* s) { unlock_all(*static_cast<Scratch*>(s)); }
void unlock_nothing(void*) {}

// Tries case i with all locks held. Returns true if it completed (the result is filled in);
// `*wake_out` is a waiter to wake once the locks are released.
bool try_case(const SelectCase& k, uint32_t i, SelectResult* r, Waiter** wake_out,
              bool* closed_send) noexcept {
  ChanCore* c = k.chan;
  if (k.is_send) {
    if (c->closed.load(std::memory_order_relaxed)) {
      *closed_send = true;
      r->index = static_cast<int>(i);
      return true;
    }
    if (ChanWaiter* rw = c->recvq.dequeue()) {
      c->send_direct(rw, k.elem);
      *wake_out = rw->w;
    } else if (c->qcount.load(std::memory_order_relaxed) < c->cap) {
      c->buffer_put(k.elem);
    } else {
      return false;
    }
    r->index = static_cast<int>(i);
    return true;
  }
  if (ChanWaiter* sw = c->sendq.dequeue()) {
    c->recv_from_sender(sw, k.elem);
    *wake_out = sw->w;
    r->ok = true;
  } else if (c->qcount.load(std::memory_order_relaxed) > 0) {
    c->buffer_take(k.elem);
    r->ok = true;
  } else if (c->closed.load(std::memory_order_relaxed)) {
    r->ok = false;
  } else {
    return false;
  }
  r->index = static_cast<int>(i);
  return true;
}

// A uniform integer in [0, n) without a division (Lemire's multiply-shift).
inline uint32_t uniform(uint32_t n) noexcept {
  return static_cast<uint32_t>((uint64_t{chan_fast_rand()} * n) >> 32);
}

// The fast path: a buffered channel's readiness can be read without its lock (`qcount` and
// `closed` are atomics; a full buffer means no receiver waits, an empty one no sender). The
// first case in poll order that looks ready (with only not-ready buffered cases before it)
// is tried alone, as a non-blocking operation on
// its own channel — one lock instead of all of them. Returns false (nothing done) if no case
// looked ready or the try lost a race; the locked algorithm then decides. Choosing the first
// ready case of a uniformly random order is a uniform choice among the ready cases.
bool try_fast(SelectCase* cases, const uint32_t* poll, std::size_t npoll, SelectResult* out,
              Errc* status) noexcept {
  for (std::size_t p = 0; p < npoll; ++p) {
    const SelectCase& k = cases[poll[p]];
    ChanCore* c = k.chan;
    // An unbuffered channel's readiness depends on its queues: stop here and let the locked
    // path decide (skipping it would bias the choice toward the buffered cases behind it).
    if (c->cap == 0) return false;
    const std::size_t q = c->qcount.load(std::memory_order_acquire);
    const bool closed = c->closed.load(std::memory_order_acquire);
    if (k.is_send) {
      if (q >= c->cap && !closed) continue;
      Errc e = chan_send(c, k.elem, false);
      if (e == Errc::would_block) continue;
      out->index = static_cast<int>(poll[p]);
      *status = e;  // ok or channel_closed
      return true;
    }
    if (q == 0 && !closed) continue;
    bool ok = false;
    if (chan_recv(c, k.elem, &ok, false) == Errc::would_block) continue;
    out->index = static_cast<int>(poll[p]);
    out->ok = ok;
    *status = Errc::ok;
    return true;
  }
  return false;
}

Errc run_select(SelectCase* cases, std::size_t n, bool block, SelectResult* out,
                Scratch& s) noexcept {
  // Poll order: a uniformly random permutation of the non-nil cases (Fisher-Yates).
  std::size_t npoll = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!cases[i].chan) continue;
    std::size_t j = npoll == 0 ? 0 : uniform(static_cast<uint32_t>(npoll + 1));
    s.poll[npoll] = s.poll[j];
    s.poll[j] = static_cast<uint32_t>(i);
    ++npoll;
  }
  if (Errc status; npoll > 0 && try_fast(cases, s.poll, npoll, out, &status)) return status;
  if (npoll == 0) {
    if (!block) return Errc::ok;  // only the default
    Waiter w;
    (void)block_with_or_deadlock(w, WaitReason::select_no_cases, unlock_nothing, nullptr);
    return Errc::deadlock;  // never woken (see block_forever in chan.cpp)
  }
  // Lock order: distinct channels by address.
  for (std::size_t i = 0; i < n; ++i)
    if (cases[i].chan) s.locks[s.nlocks++] = cases[i].chan;
  if (s.nlocks <= kInlineCases) {  // insertion sort: no call, no branches to speak of
    for (std::size_t i = 1; i < s.nlocks; ++i)
      for (std::size_t j = i; j > 0 && s.locks[j] < s.locks[j - 1]; --j)
        std::swap(s.locks[j], s.locks[j - 1]);
  } else {
    std::sort(s.locks, s.locks + s.nlocks);
  }
  s.nlocks = static_cast<std::size_t>(std::unique(s.locks, s.locks + s.nlocks) - s.locks);

  lock_all(s);
  // Pass 1: the first ready case in poll order.
  for (std::size_t p = 0; p < npoll; ++p) {
    uint32_t i = s.poll[p];
    Waiter* to_wake = nullptr;
    bool closed_send = false;
    if (try_case(cases[i], i, out, &to_wake, &closed_send)) {
      const bool handoff = cases[i].chan->cap == 0;
      unlock_all(s);
      if (to_wake) handoff ? wake_handoff(to_wake) : wake(to_wake);
      return closed_send ? Errc::channel_closed : Errc::ok;
    }
  }
  if (!block) {
    unlock_all(s);
    return Errc::ok;  // index -1: the default
  }

  // Pass 2: queue a record on every channel, in case order, and park once.
  Waiter w;
  SelectState sel;
  for (std::size_t i = 0; i < n; ++i) {
    if (!cases[i].chan) continue;
    ChanWaiter& rec = *::new (&s.records[i]) ChanWaiter();
    rec.w = &w;
    rec.sel = &sel;
    rec.elem = cases[i].elem;
    rec.case_index = static_cast<uint32_t>(i);
    rec.is_send = cases[i].is_send;
    (rec.is_send ? cases[i].chan->sendq : cases[i].chan->recvq).push_back(&rec);
  }
  if (!block_with_or_deadlock(w, WaitReason::select, unlock_all_cb, &s)) {
    // A foreign thread flagged by the deadlock check: claim our own select so no waker can;
    // if a waker claimed it first, wait for its wake and complete normally.
    lock_all(s);
    uint32_t expected = 0;
    if (sel.done.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
      for (std::size_t i = 0; i < n; ++i)
        if (cases[i].chan)
          (cases[i].is_send ? cases[i].chan->sendq : cases[i].chan->recvq).remove(&s.records[i]);
      unlock_all(s);
      return Errc::deadlock;
    }
    unlock_all(s);
    w.parker.wait_notified();
  }

  // Pass 3: woken by the operation that claimed us; withdraw the other records.
  ChanWaiter* won = sel.winner;
  lock_all(s);
  for (std::size_t i = 0; i < n; ++i) {
    if (!cases[i].chan || &s.records[i] == won) continue;
    (cases[i].is_send ? cases[i].chan->sendq : cases[i].chan->recvq).remove(&s.records[i]);
  }
  unlock_all(s);
  out->index = static_cast<int>(won->case_index);
  if (won->is_send) return won->success ? Errc::ok : Errc::channel_closed;
  out->ok = won->success;
  return Errc::ok;
}

}  // namespace
}  // namespace myriad::detail

namespace myriad {
using namespace detail;

Errc try_select_cases(SelectCase* cases, std::size_t n, bool block,
                      SelectResult* out) noexcept {
  preempt_check();  // a select is a yield point (blocking.hpp)
  if (!out || (n > 0 && !cases)) return Errc::invalid_argument;
  *out = SelectResult{};
  if (n > kMaxCases) return Errc::invalid_argument;
  if (n <= kInlineCases) {
    uint32_t poll[kInlineCases];
    ChanCore* locks[kInlineCases];
    // Raw storage: records are constructed only if the select has to wait (pass 2).
    alignas(ChanWaiter) unsigned char records[kInlineCases * sizeof(ChanWaiter)];
    Scratch s{poll, locks, 0, reinterpret_cast<ChanWaiter*>(records)};
    return run_select(cases, n, block, out, s);
  }
  std::unique_ptr<uint32_t[]> poll(new (std::nothrow) uint32_t[n]);
  std::unique_ptr<ChanCore*[]> locks(new (std::nothrow) ChanCore*[n]);
  std::unique_ptr<ChanWaiter[]> records(new (std::nothrow) ChanWaiter[n]);
  if (!poll || !locks || !records) return Errc::no_memory;
  Scratch s{poll.get(), locks.get(), 0, records.get()};
  return run_select(cases, n, block, out, s);
}

SelectResult select_cases(SelectCase* cases, std::size_t n, bool block) {
  SelectResult r;
  switch (Errc e = try_select_cases(cases, n, block, &r)) {
    case Errc::ok: return r;
    case Errc::channel_closed: throw Error(e, "myriad::select: send on a closed channel");
    case Errc::deadlock: throw Error(e, "myriad::select: all tasks are asleep - deadlock");
    default: throw Error(e);
  }
}

}  // namespace myriad
