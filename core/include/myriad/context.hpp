// Contexts: Go's package context — cancellation, deadlines and request-scoped values that
// flow down a tree of calls and tasks — plus channel operations and sleeps that give up when
// a context is cancelled or a deadline passes.
//
//   auto [ctx, cancel] = myriad::with_timeout(parent, 2s);      // parent: any Context
//   rt.spawn([ctx] {
//     myriad::Unit u; Job j;
//     for (;;) switch (myriad::select(myriad::recv_case(work, j),
//                                     myriad::recv_case(ctx.done(), u)).index) {
//       case 0: handle(j); break;
//       case 1: return;                                   // ctx.err(): canceled / timed_out
//     }
//   });
//   cancel();                                                   // or let the 2 s pass
//
//   static const myriad::ContextKey<std::string> kUser{"user"};
//   auto req = myriad::with_value(ctx, kUser, std::string("ann"));
//   const std::string* u = req.value(kUser);                    // nullptr if absent
//
//   Errc e = myriad::recv(ch, v, ctx);          // ok / channel_closed / ctx.err()
//   Errc e = myriad::this_task::sleep_for(1s, ctx);            // ok / ctx.err()
//
// Semantics are Go's (principle 3):
//  - Context is a cheap reference-counted handle (a copy is one atomic increment); the
//    default-constructed Context is Context::background(): never cancelled, no deadline, no
//    values, done() is the nil channel.
//  - Cancelling a context (its CancelFunc, or its deadline passing) cancels every descendant
//    before cancel() returns — each one's done() is closed and err() set — and never its
//    ancestors. A second cancel is a no-op (the first err and cause stay). A child made from
//    an already-cancelled parent is born cancelled (with the parent's err and cause). A
//    cancelled child is detached from its parent at once.
//  - A child's deadline is the earlier of its own and its parent's; when the parent's is
//    earlier, the child has no timer of its own (the parent's cancellation reaches it).
//  - err(): Errc::ok until cancelled, then Errc::canceled (Go's Canceled) or Errc::timed_out
//    (Go's DeadlineExceeded). Once err() != ok, done() is closed, and once done() is seen
//    closed, err() != ok.
//  - cause() (Go 1.20's WithCancelCause / Cause): the Cause passed to cancel(cause) or to
//    with_deadline/with_timeout, inherited by the descendants it cancels; without one, a
//    Cause whose code is err() and whose message is empty. A cause is a small value
//    {Errc code; std::string message} rather than an exception_ptr so that it crosses the C
//    ABI unchanged. A Cause with code ok counts as "no cause".
//
// Who may call: everything here is thread-safe and works from tasks of any runtime and from
// foreign threads. (One handle object must not be assigned while another thread reads it, as
// with std::shared_ptr; copies are independent.)
//
// Lifetime: a context lives while a handle (Context or CancelFunc) or a descendant refers to
// it. Dropping every handle without cancelling leaks nothing — unlike Go, where an uncalled
// CancelFunc keeps the child in its parent's children until the parent is cancelled: the
// child leaves its parent's children list and its deadline timer is stopped. A deadline timer
// holds only a weak reference to its own node, never the tree. Deadlines run on a runtime's
// timer heaps (the calling task's runtime, else the one given, else the oldest live one, as
// for Timer); if that runtime is destroyed first, the deadline never fires.
//
// Values: keys are ContextKey<T> objects compared by address, so lookups are type-safe and
// keys from different modules never collide; value(key) searches up the chain (the nearest
// with_value wins: shadowing) and returns a pointer to the stored T (valid while the context
// lives). Values are immutable once stored. A value's destructor runs on whichever thread
// drops the last reference to its context — occasionally a runtime thread finishing a
// deadline's cancellation — so it must not block or park.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "myriad/chan.hpp"
#include "myriad/errors.hpp"
#include "myriad/time.hpp"

namespace myriad {

class Runtime;

// The element type of done() channels (Go's struct{}): a zero-size channel element.
struct Unit {
  friend constexpr bool operator==(Unit, Unit) noexcept { return true; }
};

// Why a context was cancelled (see the header comment).
struct Cause {
  Errc code = Errc::ok;
  std::string message;
};

// A key for with_value/value: its address is its identity, its T the type of the value.
// Declare keys as objects with static storage (`static const ContextKey<int> kDepth;`).
template <class T>
class ContextKey {
 public:
  constexpr ContextKey() noexcept = default;
  explicit constexpr ContextKey(const char* name) noexcept : name_(name) {}
  ContextKey(const ContextKey&) = delete;
  ContextKey& operator=(const ContextKey&) = delete;
  const char* name() const noexcept { return name_ ? name_ : ""; }

 private:
  const char* name_ = nullptr;
};

namespace detail {
struct CtxNode;  // core/src/context.cpp
void ctx_retain(CtxNode* n) noexcept;
void ctx_release(CtxNode* n) noexcept;
// Takes ownership of `value` (destroyed with `destroy`, also when this throws).
CtxNode* ctx_with_value(CtxNode* parent, const void* key, void* value,
                        void (*destroy)(void*) noexcept);
const void* ctx_value(const CtxNode* n, const void* key) noexcept;
// How many children are linked in the cancellation tree under n's canceller (tests, dumps).
std::size_t ctx_linked_children(const CtxNode* n) noexcept;
}  // namespace detail

class Context {
 public:
  // Go's context.Background(): never cancelled, no deadline, no values.
  Context() noexcept = default;
  static Context background() noexcept { return Context(); }
  static Context todo() noexcept { return Context(); }  // Go's context.TODO()

  Context(const Context& o) noexcept : node_(o.node_) {
    if (node_) detail::ctx_retain(node_);
  }
  Context(Context&& o) noexcept : node_(std::exchange(o.node_, nullptr)) {}
  Context& operator=(Context o) noexcept {
    std::swap(node_, o.node_);
    return *this;
  }
  ~Context() {
    if (node_) detail::ctx_release(node_);
  }

  // A channel that is closed when the context is cancelled: use it as a receive case of a
  // select (recv_case(ctx.done(), unit)). The nil channel for contexts that can never be
  // cancelled (background and values over it). The reference stays valid while this context
  // lives. Receive-only, as Go's <-chan struct{}: sending on it or closing it is a programming
  // error (a close makes the process abort when the context is cancelled). Throws
  // Error(no_memory) if the channel cannot be allocated (it is made on first use).
  const Chan<Unit>& done() const;
  // Errc::ok, Errc::canceled or Errc::timed_out.
  Errc err() const noexcept;
  // See the header comment; {ok, ""} while not cancelled.
  Cause cause() const;
  // The effective deadline (min of the context's own and its ancestors'), if any.
  std::optional<TimePoint> deadline() const noexcept;
  // The value stored under `key` here or in the nearest ancestor that has one; nullptr if none.
  template <class T>
  const T* value(const ContextKey<T>& key) const noexcept {
    return static_cast<const T*>(detail::ctx_value(node_, &key));
  }

  // True for background() and the contexts derived from it only by with_value.
  bool never_canceled() const noexcept;

  friend bool operator==(const Context& a, const Context& b) noexcept {
    return a.node_ == b.node_;
  }

  // For the runtime's own layers (the C ABI): the node, and a handle adopting a reference.
  detail::CtxNode* node() const noexcept { return node_; }
  static Context adopt(detail::CtxNode* n) noexcept {
    Context c;
    c.node_ = n;
    return c;
  }

 private:
  detail::CtxNode* node_ = nullptr;
};

// Go's CancelFunc / CancelCauseFunc: cancels its context (and every descendant) with
// Errc::canceled. Copyable; every copy cancels the same context; calling it again is a no-op;
// a default-constructed one does nothing. Never blocks the caller for long (spin locks only,
// never parks), so it may be called anywhere, including from timers and foreign threads.
class CancelFunc {
 public:
  CancelFunc() noexcept = default;
  CancelFunc(const CancelFunc& o) noexcept : node_(o.node_) {
    if (node_) detail::ctx_retain(node_);
  }
  CancelFunc(CancelFunc&& o) noexcept : node_(std::exchange(o.node_, nullptr)) {}
  CancelFunc& operator=(CancelFunc o) noexcept {
    std::swap(node_, o.node_);
    return *this;
  }
  ~CancelFunc() {
    if (node_) detail::ctx_release(node_);
  }

  void operator()() const noexcept;
  // cause() of the context and its descendants becomes `cause` (if this call cancels them).
  void operator()(Cause cause) const noexcept;

  static CancelFunc adopt(detail::CtxNode* n) noexcept {
    CancelFunc f;
    f.node_ = n;
    return f;
  }

 private:
  detail::CtxNode* node_ = nullptr;
};

// Go's WithCancel / WithCancelCause: a child cancelled by the returned function or with its
// parent. Throws Error(no_memory).
std::pair<Context, CancelFunc> with_cancel(const Context& parent);
// Go's WithDeadline / WithDeadlineCause: also cancelled with Errc::timed_out (cause: `cause`
// if its code is not ok) when `deadline` passes; a deadline already passed gives a context
// born timed out. TimePoint::max() means "no deadline". The timer goes to the calling task's
// runtime (or `rt`, or the oldest live runtime from a foreign thread); Error(not_in_task) if
// a timer is needed and no runtime is alive.
std::pair<Context, CancelFunc> with_deadline(const Context& parent, TimePoint deadline,
                                             Cause cause = {});
std::pair<Context, CancelFunc> with_deadline(Runtime& rt, const Context& parent,
                                             TimePoint deadline, Cause cause = {});
// Go's WithTimeout / WithTimeoutCause: with_deadline(parent, now + d).
std::pair<Context, CancelFunc> with_timeout(const Context& parent, Duration d, Cause cause = {});
std::pair<Context, CancelFunc> with_timeout(Runtime& rt, const Context& parent, Duration d,
                                            Cause cause = {});

// Go's WithValue: a child carrying `value` (stored as a T) under `key`; cancellation and
// deadline are the parent's.
template <class T, class U>
Context with_value(const Context& parent, const ContextKey<T>& key, U&& value) {
  static_assert(std::is_constructible_v<T, U&&>, "myriad::with_value: value is not a T");
  T* p = new T(std::forward<U>(value));
  return Context::adopt(detail::ctx_with_value(
      parent.node(), &key, p, [](void* v) noexcept { delete static_cast<T*>(v); }));
}

// --- Channel operations and sleeps that give up -------------------------------------------
//
// With a context: Go's `select { case c <- v: ...; case <-ctx.Done(): return ctx.Err() }`,
// except that a context already cancelled on entry wins over a ready channel (the operation
// is then not attempted), so a loop over a cancelled context stops at once. With a deadline:
// a deadline already passed on entry gives timed_out without attempting the operation (Go's
// net deadlines); otherwise the operation races a timer on the calling task's runtime (or the
// oldest live one from a foreign thread: not_in_task if there is none). A nil channel never
// becomes ready, so only the context or deadline ends the wait. These never throw: a timer
// or done channel that cannot be allocated gives no_memory.
namespace detail {
Errc chan_op_ctx(ChanCore* c, void* elem, bool is_send, const Context& ctx, bool* ok) noexcept;
Errc chan_op_until(ChanCore* c, void* elem, bool is_send, TimePoint deadline, bool* ok) noexcept;
}  // namespace detail

// ok (v was moved into the channel), channel_closed, or ctx.err() (v untouched).
template <class T>
Errc send(const Chan<T>& c, T& v, const Context& ctx) noexcept {
  return detail::chan_op_ctx(c.core(), std::addressof(v), true, ctx, nullptr);
}
// ok (out holds a value; *ok = true), channel_closed (closed and drained), or ctx.err().
// `ok` may be null; it is false unless a value arrived.
template <class T>
Errc recv(const Chan<T>& c, T& out, const Context& ctx, bool* ok = nullptr) noexcept {
  return detail::chan_op_ctx(c.core(), std::addressof(out), false, ctx, ok);
}
// ok, channel_closed or timed_out.
template <class T>
Errc send_until(const Chan<T>& c, T& v, TimePoint deadline) noexcept {
  return detail::chan_op_until(c.core(), std::addressof(v), true, deadline, nullptr);
}
template <class T>
Errc recv_until(const Chan<T>& c, T& out, TimePoint deadline, bool* ok = nullptr) noexcept {
  return detail::chan_op_until(c.core(), std::addressof(out), false, deadline, ok);
}

namespace this_task {
// Sleeps for d (until t) or until ctx is cancelled, whichever comes first: ok if the time
// passed, else ctx.err() (a context cancelled on entry returns at once). A parked task wakes
// as soon as the context is cancelled. Errc::not_in_task / no_memory if no timer can be made
// (a foreign thread with no runtime alive).
Errc sleep_for(Duration d, const Context& ctx) noexcept;
Errc sleep_until(TimePoint t, const Context& ctx) noexcept;
}  // namespace this_task

}  // namespace myriad
