// Contexts (myriad/context.hpp): the cancellation tree, deadline timers on the per-proc heaps,
// and the channel operations and sleeps that give up on a context or a deadline.
// (Not to be confused with core/src/context.hpp, the machine-context switch.)
//
// Data structures
// ---------------
// Every context but background is a CtxNode: a ValueNode (with_value) or a CancelNode
// (with_cancel / with_deadline / with_timeout). Each node holds a strong reference to its
// parent, so a chain of nodes is kept alive by its leaves; `canc` is the nearest cancellable
// node on the way to the root (itself for a CancelNode; null when only values and
// background lie above), and value nodes forward done/err/cause to it.
//
// The cancellation tree links each CancelNode into the `kids` list of its `link_parent` (the
// `canc` of its parent) — a non-owning link: a parent does not keep its children alive.
//
// Reference counts of a CancelNode:
//  - `strong`: handles (Context, CancelFunc), children's parent references, and the
//    temporary references a cancellation or a firing deadline takes. At 0 the node is dead:
//    its timer is disarmed, it leaves its parent's kids, and its parent reference is dropped.
//  - `weak`: 1 for all the strong references together, plus one held by the timer heap while
//    the deadline is armed and one passed to a fire in flight. The memory (and the members:
//    lock, done channel, cause) is freed at 0. So a pending deadline never keeps a tree alive,
//    only its own node's memory, and only until the node dies (the timer is then disarmed).
//  A firing deadline or a cancellation walking a kids list takes a strong reference only if
//  the count is not already 0 (try_retain); a node at 0 is dying and is skipped.
//
// Locks: each CancelNode's `mu` (a spin lock: nothing under it parks or sleeps) guards its
// kids list, the `linked`/sibling fields of its kids, `cause` before cancellation and the
// creation of `own_done`. Lock order: an ancestor before a descendant (cancellation holds the
// locks of the whole path it is walking), then a done channel's lock, then a timer heap's
// lock. Creation and death take only the link parent's lock; nothing takes a parent's lock
// while holding a child's.
//
// Cancellation (cancel_tree) is iterative (a task stack is small; trees may be deep): it
// locks the root, marks it cancelled, then depth-first detaches each child under its parent's
// lock, locks it, marks it, and descends; a node's lock is released only when its subtree is
// done. A node found already cancelled was cancelled by someone who held its lock through its
// whole subtree, so when any cancel() returns, every descendant is cancelled — also when two
// cancellations of overlapping subtrees race (Go holds the same locks for the same reason).
// Marking a node: store cause, close the done channel's state (close_locked: its waiters are
// collected, not woken), store err with release while the channel's lock is held, disarm the
// deadline. The collected waiters are woken, and the temporary references dropped, after
// every lock is released.
#include "myriad/context.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>

#include "chan_impl.hpp"
#include "registry.hpp"
#include "scheduler.hpp"
#include "timers.hpp"
#include "wait_queue.hpp"

namespace myriad::detail {

struct CancelNode;

struct CtxNode {
  enum class Kind : uint8_t { value, cancel };

  std::atomic<uint32_t> strong{1};
  Kind kind;
  CtxNode* parent = nullptr;    // strong reference; null: the parent is background
  CancelNode* canc = nullptr;   // nearest cancellable node (self for a CancelNode) or null
  int64_t deadline = kNever;    // effective deadline (CLOCK_MONOTONIC ns), immutable

  explicit CtxNode(Kind k) noexcept : kind(k) {}
};

struct ValueNode : CtxNode {
  const void* key = nullptr;
  void* value = nullptr;
  void (*destroy)(void*) noexcept = nullptr;

  ValueNode() noexcept : CtxNode(Kind::value) {}
};

// The deadline timer of a CancelNode: a counted TimerNode (timers.hpp) whose references are
// the node's weak references.
struct DeadlineTimer {
  TimerNode node;
  CancelNode* owner = nullptr;
};

struct CancelNode : CtxNode {
  std::atomic<uint32_t> weak{1};
  SpinLock mu;
  // Written once (ok -> canceled/timed_out) under mu, with release, after `cause` and after
  // the done channel (if made) is closed; read lock-free.
  std::atomic<Errc> err{Errc::ok};
  std::shared_ptr<const Cause> cause;            // under mu until err is set; then immutable
  std::shared_ptr<const Cause> deadline_cause;   // immutable
  // &own_done once made (under mu, published with release); null until done() is first
  // called. After cancellation with none made, done() hands out the shared closed channel.
  std::atomic<const Chan<Unit>*> done{nullptr};
  Chan<Unit> own_done;

  CancelNode* kids = nullptr;         // children in the cancellation tree; under mu
  CancelNode* link_parent = nullptr;  // whose kids list this node enters; immutable
  // Under link_parent->mu:
  CancelNode* sib_prev = nullptr;
  CancelNode* sib_next = nullptr;
  bool linked = false;
  // Owned by the one cancellation that detached (or, for stack_next, marked) this node.
  CancelNode* stack_next = nullptr;
  CancelNode* release_next = nullptr;

  bool has_timer = false;  // immutable once the node is published
  DeadlineTimer timer;

  CancelNode() noexcept : CtxNode(Kind::cancel) {}
};

namespace {

void release_weak(CancelNode* c) noexcept {
  if (c->weak.fetch_sub(1, std::memory_order_acq_rel) == 1) delete c;
}

bool try_retain(CtxNode* n) noexcept {
  uint32_t s = n->strong.load(std::memory_order_relaxed);
  while (s != 0)
    if (n->strong.compare_exchange_weak(s, s + 1, std::memory_order_acquire,
                                        std::memory_order_relaxed))
      return true;
  return false;
}

// The channel every done() of a context cancelled before anyone asked for its channel
// returns (Go's closedchan). Never freed.
const Chan<Unit>& closed_chan() {
  static const Chan<Unit>* c = [] {
    auto* ch = new Chan<Unit>(0);
    ch->close();
    return ch;
  }();
  return *c;
}

const Chan<Unit>& nil_chan() {
  static const Chan<Unit> nil;
  return nil;
}

// Unlinks k from p's kids (p->mu held).
void unlink_kid_locked(CancelNode* p, CancelNode* k) noexcept {
  if (k->sib_prev)
    k->sib_prev->sib_next = k->sib_next;
  else
    p->kids = k->sib_next;
  if (k->sib_next) k->sib_next->sib_prev = k->sib_prev;
  k->sib_prev = k->sib_next = nullptr;
  k->linked = false;
}

// Marks c cancelled (c->mu held, c->err ok). Appends the waiters of its done channel to the
// list ending at *wtail, to be woken once every lock is released.
void mark_canceled_locked(CancelNode* c, Errc err, const std::shared_ptr<const Cause>& cause,
                          Waiter**& wtail) noexcept {
  c->cause = cause;
  if (const Chan<Unit>* d = c->done.load(std::memory_order_relaxed)) {
    ChanCore* core = d->core();
    core->lock.lock();
    if (core->closed.load(std::memory_order_relaxed)) {
      // Only the one transition of err closes it, so someone else closed it: done() is
      // receive-only (Go's <-chan struct{}), which C++ cannot enforce.
      std::fputs("myriad: a context's done() channel was closed by its user (it is "
                 "receive-only); aborting\n", stderr);
      std::abort();
    }
    Waiter* w = close_locked(core);
    // Inside the channel's critical section: whoever sees done closed sees err, and whoever
    // sees err (acquire) sees done closed.
    c->err.store(err, std::memory_order_release);
    core->lock.unlock();
    *wtail = w;
    while (*wtail) wtail = &(*wtail)->next;
  } else {
    c->err.store(err, std::memory_order_release);
  }
  // Under mu: a creator that armed the timer and then checks err under mu cannot miss us.
  if (c->has_timer) timer_disarm(&c->timer.node);
}

// Cancels root and its subtree (see the file comment). unlink_root: remove root from its
// parent's kids afterwards (false only for a node nobody else can see yet).
void cancel_tree(CancelNode* root, Errc err, std::shared_ptr<const Cause> cause,
                 bool unlink_root) noexcept {
  Waiter* wakes = nullptr;
  Waiter** wtail = &wakes;
  CancelNode* retained = nullptr;

  root->mu.lock();
  if (root->err.load(std::memory_order_relaxed) != Errc::ok) {
    root->mu.unlock();  // cancelled already, subtree included (its canceller held this lock)
    return;
  }
  mark_canceled_locked(root, err, cause, wtail);
  root->stack_next = nullptr;
  CancelNode* stack = root;
  while (stack) {
    CancelNode* top = stack;
    CancelNode* k = top->kids;
    if (!k) {
      stack = top->stack_next;
      top->mu.unlock();
      continue;
    }
    unlink_kid_locked(top, k);
    if (!try_retain(k)) continue;  // dying: it will find itself unlinked
    k->release_next = retained;
    retained = k;
    k->mu.lock();
    if (k->err.load(std::memory_order_relaxed) != Errc::ok) {
      k->mu.unlock();  // its own cancellation finished its subtree under this lock
      continue;
    }
    mark_canceled_locked(k, err, cause, wtail);
    k->stack_next = stack;
    stack = k;
  }

  if (unlink_root) {
    if (CancelNode* p = root->link_parent) {
      p->mu.lock();
      if (root->linked) unlink_kid_locked(p, root);
      p->mu.unlock();
    }
  }
  wake_all(wakes);
  while (retained) {
    CancelNode* n = retained;
    retained = n->release_next;
    ctx_release(n);
  }
}

// A CancelNode's last strong reference went away (no locks held).
void cancel_node_died(CancelNode* c) noexcept {
  if (c->has_timer) timer_disarm(&c->timer.node);
  if (CancelNode* p = c->link_parent) {
    p->mu.lock();
    if (c->linked) unlink_kid_locked(p, c);
    p->mu.unlock();
  }
  release_weak(c);
}

void deadline_fire(TimerNode* n, uint64_t, int64_t) noexcept {
  CancelNode* c = reinterpret_cast<DeadlineTimer*>(n)->owner;
  if (try_retain(c)) {
    cancel_tree(c, Errc::timed_out, c->deadline_cause, true);
    ctx_release(c);
  }
  release_weak(c);  // the reference the heap handed to this fire
}

std::shared_ptr<const Cause> make_cause(Cause&& c) noexcept {
  if (c.code == Errc::ok) return nullptr;
  try {
    return std::make_shared<const Cause>(std::move(c));
  } catch (...) {
    return nullptr;  // out of memory: cause() falls back to err()
  }
}

// with_cancel / with_deadline. deadline_ns == kNever: no deadline of its own.
std::pair<Context, CancelFunc> make_cancel_ctx(Runtime* rt, const Context& parent,
                                               int64_t deadline_ns, Cause&& dcause) {
  CtxNode* p = parent.node();
  const int64_t parent_deadline = p ? p->deadline : kNever;
  const bool own_deadline = deadline_ns < parent_deadline;
  const bool expired = own_deadline && deadline_ns <= monotonic_now_ns();
  Scheduler* sched = own_deadline && !expired ? timer_scheduler(rt, "a context deadline") : nullptr;

  auto* c = new (std::nothrow) CancelNode();
  if (!c) throw Error(Errc::no_memory, "myriad: context");
  c->strong.store(2, std::memory_order_relaxed);  // the Context and the CancelFunc
  if (p) ctx_retain(p);
  c->parent = p;
  c->canc = c;
  c->deadline = own_deadline ? deadline_ns : parent_deadline;
  if (own_deadline) c->deadline_cause = make_cause(std::move(dcause));
  c->link_parent = p ? p->canc : nullptr;
  if (sched) {
    c->has_timer = true;
    c->timer.owner = c;
    c->timer.node.when = deadline_ns;
    c->timer.node.fire = &deadline_fire;
    c->timer.node.retain = [](TimerNode* n) noexcept {
      reinterpret_cast<DeadlineTimer*>(n)->owner->weak.fetch_add(1, std::memory_order_relaxed);
    };
    c->timer.node.release = [](TimerNode* n) noexcept {
      release_weak(reinterpret_cast<DeadlineTimer*>(n)->owner);
    };
  }
  std::pair<Context, CancelFunc> out(Context::adopt(c), CancelFunc::adopt(c));

  // Join the parent's cancellation tree, or be born cancelled.
  if (CancelNode* lp = c->link_parent) {
    lp->mu.lock();
    if (Errc pe = lp->err.load(std::memory_order_relaxed); pe != Errc::ok) {
      c->cause = lp->cause;
      c->err.store(pe, std::memory_order_release);
    } else {
      c->sib_next = lp->kids;
      if (lp->kids) lp->kids->sib_prev = c;
      lp->kids = c;
      c->linked = true;
    }
    lp->mu.unlock();
  }
  if (c->err.load(std::memory_order_acquire) != Errc::ok) return out;  // born cancelled

  if (expired) {
    cancel_tree(c, Errc::timed_out, c->deadline_cause, true);
  } else if (sched) {
    if (!timer_arm(sched, &c->timer.node)) throw Error(Errc::no_memory, "myriad: timer heap");
    // A cancellation that ran between linking and arming found nothing to disarm: it
    // serialises with this check through mu (see mark_canceled_locked).
    c->mu.lock();
    bool cancelled = c->err.load(std::memory_order_relaxed) != Errc::ok;
    c->mu.unlock();
    if (cancelled) timer_disarm(&c->timer.node);
  }
  return out;
}

CancelNode* as_cancel(CtxNode* n) noexcept {
  return n && n->kind == CtxNode::Kind::cancel ? static_cast<CancelNode*>(n) : nullptr;
}

}  // namespace

void ctx_retain(CtxNode* n) noexcept { n->strong.fetch_add(1, std::memory_order_relaxed); }

// Iterative, so dropping the last handle of a long chain does not recurse once per node.
void ctx_release(CtxNode* n) noexcept {
  while (n) {
    if (n->strong.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    CtxNode* parent = n->parent;
    if (CancelNode* c = as_cancel(n)) {
      cancel_node_died(c);
    } else {
      auto* v = static_cast<ValueNode*>(n);
      if (v->destroy) v->destroy(v->value);
      delete v;
    }
    n = parent;
  }
}

CtxNode* ctx_with_value(CtxNode* parent, const void* key, void* value,
                        void (*destroy)(void*) noexcept) {
  auto* v = new (std::nothrow) ValueNode();
  if (!v) {
    destroy(value);
    throw Error(Errc::no_memory, "myriad: context");
  }
  if (parent) ctx_retain(parent);
  v->parent = parent;
  v->canc = parent ? parent->canc : nullptr;
  v->deadline = parent ? parent->deadline : kNever;
  v->key = key;
  v->value = value;
  v->destroy = destroy;
  return v;
}

const void* ctx_value(const CtxNode* n, const void* key) noexcept {
  for (; n; n = n->parent)
    if (n->kind == CtxNode::Kind::value) {
      auto* v = static_cast<const ValueNode*>(n);
      if (v->key == key) return v->value;
    }
  return nullptr;
}

std::size_t ctx_linked_children(const CtxNode* n) noexcept {
  CancelNode* c = n ? n->canc : nullptr;
  if (!c) return 0;
  std::size_t k = 0;
  c->mu.lock();
  for (CancelNode* x = c->kids; x; x = x->sib_next) ++k;
  c->mu.unlock();
  return k;
}

// --- channel operations -------------------------------------------------------------------

namespace {

// Non-blocking attempt; translates to the public codes. would_block: not ready.
Errc try_op(ChanCore* c, void* elem, bool is_send, bool* ok) noexcept {
  if (is_send) return chan_send(c, elem, false);
  Errc e = chan_recv(c, elem, ok, false);
  if (e == Errc::ok && !*ok) return Errc::channel_closed;
  return e;
}

Errc blocking_op(ChanCore* c, void* elem, bool is_send, bool* ok) noexcept {
  if (is_send) return chan_send(c, elem, true);
  if (Errc e = chan_recv(c, elem, ok, true); e != Errc::ok) return e;
  return *ok ? Errc::ok : Errc::channel_closed;
}

// select { case op(c): ; case <-other: } — returns the op's code, or would_block when `other`
// won.
template <class U>
Errc race(ChanCore* c, void* elem, bool is_send, ChanCore* other, U* sink, bool* ok) noexcept {
  SelectCase cases[2] = {{c, elem, is_send}, {other, sink, false}};
  SelectResult r;
  Errc e = try_select_cases(cases, 2, true, &r);
  if (e != Errc::ok) return e;  // channel_closed: a send case hit a closed channel
  if (r.index == 1) return Errc::would_block;
  if (is_send) return Errc::ok;
  *ok = r.ok;
  return r.ok ? Errc::ok : Errc::channel_closed;
}

}  // namespace

Errc chan_op_ctx(ChanCore* c, void* elem, bool is_send, const Context& ctx,
                 bool* ok_out) noexcept {
  bool ok_local = false;
  bool* ok = ok_out ? ok_out : &ok_local;
  *ok = false;
  if (ctx.never_canceled()) return blocking_op(c, elem, is_send, ok);
  if (Errc e = ctx.err(); e != Errc::ok) return e;
  if (Errc e = try_op(c, elem, is_send, ok); e != Errc::would_block) return e;
  const Chan<Unit>* done;
  try {
    done = &ctx.done();
  } catch (...) {
    return Errc::no_memory;
  }
  Unit u;
  Errc e = race(c, elem, is_send, done->core(), &u, ok);
  return e == Errc::would_block ? ctx.err() : e;
}

Errc chan_op_until(ChanCore* c, void* elem, bool is_send, TimePoint deadline,
                   bool* ok_out) noexcept {
  bool ok_local = false;
  bool* ok = ok_out ? ok_out : &ok_local;
  *ok = false;
  if (Clock::now() >= deadline) return Errc::timed_out;
  if (Errc e = try_op(c, elem, is_send, ok); e != Errc::would_block) return e;
  try {
    Timer tm(deadline - Clock::now());
    TimePoint fired;
    Errc e = race(c, elem, is_send, tm.channel().core(), &fired, ok);
    return e == Errc::would_block ? Errc::timed_out : e;
  } catch (const Error& err) {
    return err.code();
  } catch (...) {
    return Errc::no_memory;
  }
}

}  // namespace myriad::detail

namespace myriad {
using namespace detail;

// --- Context ------------------------------------------------------------------------------

const Chan<Unit>& Context::done() const {
  CancelNode* c = node_ ? node_->canc : nullptr;
  if (!c) return nil_chan();
  if (const Chan<Unit>* d = c->done.load(std::memory_order_acquire)) return *d;
  if (c->err.load(std::memory_order_acquire) != Errc::ok) return closed_chan();
  Chan<Unit> fresh(0);  // outside the spin lock; freed below if another caller won
  c->mu.lock();
  if (const Chan<Unit>* d = c->done.load(std::memory_order_relaxed)) {
    c->mu.unlock();
    return *d;
  }
  if (c->err.load(std::memory_order_relaxed) != Errc::ok) {
    c->mu.unlock();
    return closed_chan();
  }
  c->own_done = std::move(fresh);
  c->done.store(&c->own_done, std::memory_order_release);
  c->mu.unlock();
  return c->own_done;
}

Errc Context::err() const noexcept {
  CancelNode* c = node_ ? node_->canc : nullptr;
  return c ? c->err.load(std::memory_order_acquire) : Errc::ok;
}

Cause Context::cause() const {
  CancelNode* c = node_ ? node_->canc : nullptr;
  if (!c) return {};
  Errc e = c->err.load(std::memory_order_acquire);
  if (e == Errc::ok) return {};
  if (c->cause) return *c->cause;  // immutable once err is set
  return Cause{e, std::string()};
}

std::optional<TimePoint> Context::deadline() const noexcept {
  if (!node_ || node_->deadline == kNever) return std::nullopt;
  return TimePoint(std::chrono::nanoseconds(node_->deadline));
}

bool Context::never_canceled() const noexcept { return !node_ || !node_->canc; }

void CancelFunc::operator()() const noexcept {
  if (CancelNode* c = as_cancel(node_)) cancel_tree(c, Errc::canceled, nullptr, true);
}

void CancelFunc::operator()(Cause cause) const noexcept {
  CancelNode* c = as_cancel(node_);
  if (!c) return;
  // Skip the allocation when it cannot matter — but, like cancel_tree, return only once the
  // cancellation that got there first has finished the subtree (it holds mu until then).
  if (c->err.load(std::memory_order_acquire) != Errc::ok) {
    c->mu.lock();
    c->mu.unlock();
    return;
  }
  cancel_tree(c, Errc::canceled, make_cause(std::move(cause)), true);
}

std::pair<Context, CancelFunc> with_cancel(const Context& parent) {
  return make_cancel_ctx(nullptr, parent, kNever, Cause{});
}

std::pair<Context, CancelFunc> with_deadline(const Context& parent, TimePoint deadline,
                                             Cause cause) {
  return make_cancel_ctx(nullptr, parent, to_ns(deadline), std::move(cause));
}
std::pair<Context, CancelFunc> with_deadline(Runtime& rt, const Context& parent,
                                             TimePoint deadline, Cause cause) {
  return make_cancel_ctx(&rt, parent, to_ns(deadline), std::move(cause));
}
std::pair<Context, CancelFunc> with_timeout(const Context& parent, Duration d, Cause cause) {
  return make_cancel_ctx(nullptr, parent, deadline_after(d), std::move(cause));
}
std::pair<Context, CancelFunc> with_timeout(Runtime& rt, const Context& parent, Duration d,
                                            Cause cause) {
  return make_cancel_ctx(&rt, parent, deadline_after(d), std::move(cause));
}

// --- sleeping on a context ----------------------------------------------------------------

Errc this_task::sleep_until(TimePoint t, const Context& ctx) noexcept {
  if (Errc e = ctx.err(); e != Errc::ok) return e;
  if (Clock::now() >= t) return Errc::ok;
  try {
    if (ctx.never_canceled()) {
      this_task::sleep_until(t);
      return Errc::ok;
    }
    const Chan<Unit>& done = ctx.done();
    Timer tm(t - Clock::now());
    TimePoint fired;
    Unit u;
    SelectResult r = myriad::select(recv_case(tm.channel(), fired), recv_case(done, u));
    return r.index == 0 ? Errc::ok : ctx.err();
  } catch (const Error& err) {
    return err.code();
  } catch (...) {
    return Errc::no_memory;
  }
}

Errc this_task::sleep_for(Duration d, const Context& ctx) noexcept {
  if (Errc e = ctx.err(); e != Errc::ok) return e;
  if (d.count() <= 0) return Errc::ok;
  return sleep_until(TimePoint(std::chrono::nanoseconds(deadline_after(d))), ctx);
}

}  // namespace myriad
