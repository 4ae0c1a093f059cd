// The netpoller: registration, the wait protocol and readiness (see netpoll.hpp for the
// data structures and the invariants).
#include "netpoll.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "scheduler.hpp"
#include "task_switch.hpp"

namespace myriad::detail {
namespace {

constexpr std::size_t kChunk = 256;  // descs carved at a time
constexpr int kEventBatch = 128;     // events taken from the backend per poll

PollerKind requested_kind(PollerKind configured) {
  if (configured != PollerKind::automatic) return configured;
  const char* env = std::getenv("MYRIAD_POLLER");
  if (!env || !*env) return PollerKind::automatic;
  std::string_view v(env);
  if (v == "epoll") return PollerKind::epoll;
  if (v == "io_uring" || v == "uring") return PollerKind::io_uring;
  if (v == "auto") return PollerKind::automatic;
  throw Error(Errc::invalid_argument,
              "myriad: MYRIAD_POLLER must be epoll, io_uring or auto, not '" + std::string(v) + "'");
}

std::unique_ptr<PollBackend> start_backend(PollerKind k) {
  Errc err = Errc::ok;
  std::unique_ptr<PollBackend> b;
  switch (k) {
    case PollerKind::io_uring:
      b = make_uring_backend(&err);
      if (!b) throw Error(err, "myriad: the io_uring poller is not available here");
      return b;
    case PollerKind::epoll:
      b = make_epoll_backend(&err);
      if (!b) throw Error(err, "myriad: cannot create an epoll instance");
      return b;
    case PollerKind::automatic:
      if ((b = make_uring_backend(&err))) return b;
      b = make_epoll_backend(&err);
      if (!b) throw Error(err, "myriad: cannot create an epoll instance");
      return b;
  }
  throw Error(Errc::invalid_argument, "myriad: bad PollerKind");
}

// The kernel orders a desc's registration before its events, but TSan sees that edge only
// through the system calls it intercepts (epoll's, not io_uring's): make it explicit.
void tsan_publish(PollDesc* pd) noexcept {
#if MYRIAD_TSAN
  __tsan_release(pd);
#else
  (void)pd;
#endif
}
void tsan_observe(PollDesc* pd) noexcept {
#if MYRIAD_TSAN
  __tsan_acquire(pd);
#else
  (void)pd;
#endif
}

// --- the waiter list of a direction (desc lock held) ---
void dir_push(PollDir& d, IoWait* w) noexcept {
  w->next = nullptr;
  w->prev = d.tail;
  if (d.tail)
    d.tail->next = w;
  else
    d.head = w;
  d.tail = w;
  w->queued = true;
}

void dir_remove(PollDir& d, IoWait* w) noexcept {
  if (!w->queued) return;
  if (w->prev)
    w->prev->next = w->next;
  else
    d.head = w->next;
  if (w->next)
    w->next->prev = w->prev;
  else
    d.tail = w->prev;
  w->prev = w->next = nullptr;
  w->queued = false;
}

bool claim(IoWait* w, Errc outcome) noexcept {
  uint32_t expected = 0;
  if (!w->claim.done.compare_exchange_strong(expected, 1, std::memory_order_acq_rel))
    return false;
  w->outcome = outcome;
  return true;
}

// Unlinks every waiter of d and claims those it can; the claimed ones are linked through
// their Waiter::next for waking after the lock is released.
Waiter* take_all(PollDir& d, Errc outcome) noexcept {
  Waiter* head = nullptr;
  Waiter** tail = &head;
  while (IoWait* w = d.head) {
    dir_remove(d, w);
    if (claim(w, outcome)) {
      w->w.next = nullptr;
      *tail = &w->w;
      tail = &w->w.next;
    }
  }
  return head;
}

// The locks a parking I/O wait holds until it is switched out: its desc's and, with a
// context, the done channel's (taken in that order; released in reverse).
struct ParkLocks {
  PollDesc* pd;
  ChanCore* chan;
};
void unlock_park_locks(void* arg) {
  auto* l = static_cast<ParkLocks*>(arg);
  if (l->chan) l->chan->lock.unlock();
  l->pd->lock.unlock();
}

}  // namespace

Netpoll::Netpoll(Scheduler* s, PollerKind requested)
    : sched_(s), backend_(start_backend(requested_kind(requested))) {
  last_poll_.store(monotonic_now_ns(), std::memory_order_relaxed);
}

Netpoll::~Netpoll() = default;

void Netpoll::detach() noexcept {
  detached_.store(true, std::memory_order_release);
  unref();
}

void Netpoll::unref() noexcept {
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

// ---------------------------------------------------------------------------------------------
// Descs

PollDesc* Netpoll::alloc_desc() noexcept {
  std::lock_guard<std::mutex> g(free_mu_);
  if (!free_) {
    std::unique_ptr<PollDesc[]> chunk(new (std::nothrow) PollDesc[kChunk]);
    if (!chunk) return nullptr;
    try {
      chunks_.push_back(std::move(chunk));
    } catch (...) {
      return nullptr;
    }
    PollDesc* c = chunks_.back().get();
    for (std::size_t i = 0; i < kChunk; ++i) {
      PollDesc& pd = c[i];
      pd.np = this;
      for (int d = 0; d < 2; ++d) {
        pd.dirs[d].desc = &pd;
        pd.dirs[d].dir = static_cast<IoDir>(d);
        pd.dirs[d].timer.node.fire = &Netpoll::fire_deadline;
        pd.dirs[d].timer.dir = &pd.dirs[d];
      }
      pd.next_free = free_;
      free_ = &pd;
    }
  }
  PollDesc* pd = free_;
  free_ = pd->next_free;
  pd->next_free = nullptr;
  return pd;
}

void Netpoll::free_desc(PollDesc* pd) noexcept {
  {
    std::lock_guard<std::mutex> g(free_mu_);
    pd->next_free = free_;
    free_ = pd;
  }
  unref();  // the open desc's reference (may delete this)
}

Errc Netpoll::open(int fd, PollDesc** out, int* sys_errno) noexcept {
  *out = nullptr;
  if (sys_errno) *sys_errno = 0;
  if (detached()) return Errc::closed;
  PollDesc* pd = alloc_desc();
  if (!pd) return Errc::no_memory;
  refs_.fetch_add(1, std::memory_order_relaxed);  // dropped by free_desc
  int type = 0;
  socklen_t tl = sizeof type;
  const bool stream = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM;
  pd->lock.lock();
  pd->fd = fd;
  pd->stream = stream;
  pd->drained.store(false, std::memory_order_relaxed);
  pd->closing.store(false, std::memory_order_relaxed);
  pd->close_fd_on_release.store(false, std::memory_order_relaxed);
  for (PollDir& d : pd->dirs) {
    d.ready = false;
    d.deadline = kNever;
    d.head = d.tail = nullptr;
  }
  pd->lock.unlock();
  tsan_publish(pd);
  if (int e = backend_->arm(fd, reinterpret_cast<uint64_t>(pd))) {
    pd->lock.lock();
    pd->fd = -1;
    pd->lock.unlock();
    free_desc(pd);
    if (sys_errno) *sys_errno = e;
    return e == ENOMEM ? Errc::no_memory : Errc::io_error;
  }
  *out = pd;
  return Errc::ok;
}

bool Netpoll::acquire(PollDesc* pd) noexcept {
  // seq_cst pairs with close(): either close sees this call in flight (and leaves the close
  // of the descriptor to its release) or this call sees `closing`.
  pd->inflight.fetch_add(1, std::memory_order_seq_cst);
  if (!pd->closing.load(std::memory_order_seq_cst)) return true;
  release(pd);
  return false;
}

void Netpoll::release(PollDesc* pd) noexcept {
  if (pd->inflight.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // Last call out. If close() ran meanwhile and left the descriptor to us, close it now: no
  // system call on it is running any more, so its number can be reused safely.
  if (pd->close_fd_on_release.exchange(false, std::memory_order_acq_rel)) {
    pd->lock.lock();
    int fd = pd->fd;
    pd->fd = -1;
    pd->lock.unlock();
    if (fd >= 0) ::close(fd);
  }
}

void Netpoll::close(PollDesc* pd, bool close_fd) noexcept {
  pd->lock.lock();
  if (pd->closing.load(std::memory_order_relaxed)) {
    pd->lock.unlock();
    return;
  }
  pd->closing.store(true, std::memory_order_seq_cst);
  Waiter* woken[2];
  for (int d = 0; d < 2; ++d) {
    PollDir& dir = pd->dirs[d];
    woken[d] = take_all(dir, Errc::fd_closed);
    if (dir.timer_armed) timer_disarm(&dir.timer.node);
    dir.timer_armed = false;
    ++dir.timer.node.seq;  // a fire in flight (the disarm came too late) is now stale
  }
  int fd = pd->fd;
  pd->lock.unlock();
  backend_->disarm(fd, reinterpret_cast<uint64_t>(pd));
  for (Waiter* w : woken) wake_all(w);
  if (!close_fd) {  // Fd::release: the caller keeps the descriptor
    pd->lock.lock();
    pd->fd = -1;
    pd->lock.unlock();
    return;
  }
  // Calls in flight hold `inflight`; they have been woken and will leave. Take a reference of
  // our own for the handover: whoever drops the count to zero closes the descriptor.
  pd->inflight.fetch_add(1, std::memory_order_seq_cst);
  pd->close_fd_on_release.store(true, std::memory_order_seq_cst);
  release(pd);
}

void Netpoll::destroy(PollDesc* pd) noexcept {
  close(pd, true);
  free_desc(pd);  // may delete this
}

// ---------------------------------------------------------------------------------------------
// Waiting

void Netpoll::set_deadline(PollDesc* pd, IoDir which, int64_t deadline_ns) noexcept {
  Waiter* woken = nullptr;
  pd->lock.lock();
  PollDir& d = pd->dirs[static_cast<int>(which)];
  d.deadline = deadline_ns;
  if (d.timer_armed) timer_disarm(&d.timer.node);
  d.timer_armed = false;
  ++d.timer.node.seq;  // a fire in flight (the disarm came too late) is now stale
  if (d.head && deadline_ns != kNever && !detached()) {
    if (deadline_ns <= monotonic_now_ns()) {
      woken = take_all(d, Errc::timed_out);
    } else {
      d.timer.node.when = deadline_ns;
      d.timer_armed = timer_arm(sched_, &d.timer.node);
      // Out of memory for the heap: the waiters keep waiting for readiness; the deadline is
      // checked again by every later call.
    }
  }
  pd->lock.unlock();
  wake_all(woken);
}

int64_t Netpoll::deadline(PollDesc* pd, IoDir which) noexcept {
  pd->lock.lock();
  int64_t d = pd->dirs[static_cast<int>(which)].deadline;
  pd->lock.unlock();
  return d;
}

void Netpoll::fire_deadline(TimerNode* node, uint64_t seq, int64_t now) noexcept {
  PollDir* d = reinterpret_cast<DirTimer*>(node)->dir;
  PollDesc* pd = d->desc;
  pd->lock.lock();
  if (seq != d->timer.node.seq) {  // stopped or re-armed since it was popped
    pd->lock.unlock();
    return;
  }
  d->timer_armed = false;
  Waiter* woken = nullptr;
  if (d->deadline <= now) woken = take_all(*d, Errc::timed_out);
  pd->lock.unlock();
  wake_all(woken);
}

Errc Netpoll::wait(PollDesc* pd, IoDir which, const Context& ctx) noexcept {
  PollDir& d = pd->dirs[static_cast<int>(which)];
  const bool with_ctx = !ctx.never_canceled();
  const Chan<Unit>* done = nullptr;
  if (with_ctx) {
    if (Errc e = ctx.err(); e != Errc::ok) return e;
    try {
      done = &ctx.done();
    } catch (...) {
      return Errc::no_memory;
    }
  }

  IoWait rec;
  pd->lock.lock();
  if (detached()) {  // the runtime is gone: nobody would ever poll
    pd->lock.unlock();
    return Errc::closed;
  }
  if (pd->closing.load(std::memory_order_relaxed)) {
    pd->lock.unlock();
    return Errc::fd_closed;
  }
  if (d.ready) {  // readiness arrived after the caller's EAGAIN: retry instead of parking
    d.ready = false;
    pd->lock.unlock();
    return Errc::ok;
  }
  if (d.deadline != kNever) {
    if (d.deadline <= monotonic_now_ns()) {
      pd->lock.unlock();
      return Errc::timed_out;
    }
    if (!d.timer_armed) {
      ++d.timer.node.seq;
      d.timer.node.when = d.deadline;
      if (!timer_arm(sched_, &d.timer.node)) {
        pd->lock.unlock();
        return Errc::no_memory;
      }
      d.timer_armed = true;
    }
  }
  // Who to wake is filled in before the record becomes reachable; the locks that make it
  // reachable (the desc's, and the done channel's) are released only once a task is fully
  // parked (park_current's unlock), as select does.
  Task* self = current_task();
  if (self)
    rec.w.task = self;
  else
    rec.w.thread = &rec.w.parker;
  ParkLocks locks{pd, nullptr};
  if (with_ctx) {
    // As a select case on the done channel: its close claims `rec` through the same word.
    ChanCore* c = done->core();
    rec.ctx_case.w = &rec.w;
    rec.ctx_case.sel = &rec.claim;
    rec.ctx_case.elem = &rec.sink;
    rec.ctx_case.is_send = false;
    c->lock.lock();
    if (c->closed.load(std::memory_order_relaxed)) {
      c->lock.unlock();
      pd->lock.unlock();
      return ctx.err();
    }
    c->recvq.push_back(&rec.ctx_case);
    locks.chan = c;
  }
  dir_push(d, &rec);
  if (waiters_.fetch_add(1, std::memory_order_seq_cst) == 0) sched_->netpoll_waiting();

  const WaitReason reason = which == IoDir::read ? WaitReason::io_read : WaitReason::io_write;
  if (self) {
    park_current(reason, unlock_park_locks, &locks);
  } else {
    unlock_park_locks(&locks);
    rec.w.parker.wait_notified();
  }

  // Woken by exactly one claimer. Remove whatever records remain before `rec` goes away.
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  pd->lock.lock();
  dir_remove(d, &rec);
  pd->lock.unlock();
  if (with_ctx) {
    ChanCore* c = done->core();
    c->lock.lock();
    c->recvq.remove(&rec.ctx_case);
    c->lock.unlock();
    if (rec.claim.winner == &rec.ctx_case) return ctx.err();
  }
  return rec.outcome;
}

// ---------------------------------------------------------------------------------------------
// Polling

bool Netpoll::poll(int64_t timeout_ns, TaskList& out, const ThreadParker* wake) noexcept {
  // A blocking poll (the watcher's) waits for a non-blocking one to finish; a non-blocking
  // one gives way to anybody.
  if (timeout_ns != 0)
    poll_mu_.lock();
  else if (!poll_mu_.try_lock())
    return false;
  if (timeout_ns != 0 && wake && wake->notified()) timeout_ns = 0;
  PollEvent events[kEventBatch];
  if (timeout_ns != 0) last_poll_.store(0, std::memory_order_relaxed);
  int n = backend_->wait(timeout_ns, events, kEventBatch);
  last_poll_.store(monotonic_now_ns(), std::memory_order_relaxed);
  poll_mu_.unlock();

  uint64_t readied = 0;
  for (int i = 0; i < n; ++i) {
    auto* pd = reinterpret_cast<PollDesc*>(events[i].token);
    tsan_observe(pd);
    Waiter* woken = nullptr;
    pd->lock.lock();
    for (int dir = 0; dir < 2; ++dir) {
      if (!(events[i].ready & (dir == 0 ? kPollReadable : kPollWritable))) continue;
      PollDir& d = pd->dirs[dir];
      if (!d.head) {
        d.ready = true;
        continue;
      }
      Waiter* list = take_all(d, Errc::ok);
      // Append to `woken`.
      Waiter** tail = &woken;
      while (*tail) tail = &(*tail)->next;
      *tail = list;
    }
    pd->lock.unlock();
    while (woken) {
      Waiter* next = woken->next;  // before the wake: the waiter's frame may vanish after
      ++readied;
      if (Task* t = woken->task)
        out.push_back(t);
      else
        woken->thread->notify();
      woken = next;
    }
  }
  if (readied) ready_count_.fetch_add(readied, std::memory_order_relaxed);
  return true;
}

}  // namespace myriad::detail
