// Contexts (myriad/context.hpp): the cancellation tree (down, never up; grandchildren; born
// cancelled; detached when cancelled), values (lookup through the chain, shadowing), deadlines
// and timeouts (timed_out, cause, min with the parent's, timer ownership), tasks and threads
// parked on a context woken by its cancellation, races (overlapping cancels from tasks and
// threads, cancel against child creation), the channel operations and sleeps that give up,
// and the seed case: a worker parked in select on a child of a context that times out ends.
// Durations are inputs only; no assertion depends on how long anything took.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "myriad/chan.hpp"
#include "myriad/context.hpp"
#include "myriad/runtime.hpp"
#include "myriad/time.hpp"
#include "myriad/wait_group.hpp"
#include "scheduler.hpp"
#include "task_impl.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using myriad::CancelFunc;
using myriad::Cause;
using myriad::Chan;
using myriad::Clock;
using myriad::Context;
using myriad::ContextKey;
using myriad::Errc;
using myriad::JoinHandle;
using myriad::Runtime;
using myriad::Unit;
using myriad::test::scaled;

myriad::Config threaded(unsigned procs = 2) {
  myriad::Config c;
  c.procs = procs;
  c.on_task_failure = [](const myriad::TaskFailure& f) {
    ADD_FAILURE() << "task failed: " << f.what;
  };
  return c;
}

// done() is closed: a receive completes at once with "closed".
bool is_closed(const Context& c) {
  Unit u;
  return c.done().try_recv(u) == Errc::channel_closed;
}

long count_waiting(Runtime& rt) {
  long n = 0;
  rt.scheduler().for_each_task([&](myriad::detail::Task* t) {
    if (t->state.load(std::memory_order_acquire) == myriad::TaskState::waiting) ++n;
  });
  return n;
}

// Waits (as the foreign test thread) until at least n tasks of rt are parked.
void wait_parked(Runtime& rt, long n) {
  while (count_waiting(rt) < n) std::this_thread::sleep_for(1ms);
}

// Counts the destructions of live (not moved-from) instances.
struct Tracker {
  std::atomic<int>* destroyed = nullptr;
  explicit Tracker(std::atomic<int>* d) : destroyed(d) {}
  Tracker(Tracker&& o) noexcept : destroyed(std::exchange(o.destroyed, nullptr)) {}
  ~Tracker() {
    if (destroyed) destroyed->fetch_add(1);
  }
};

// --- the tree ---------------------------------------------------------------------------

TEST(ContextTree, BackgroundIsNeverCanceled) {
  Context bg = Context::background();
  EXPECT_EQ(bg.err(), Errc::ok);
  EXPECT_TRUE(bg.done().is_nil());
  EXPECT_FALSE(bg.deadline().has_value());
  EXPECT_EQ(bg.cause().code, Errc::ok);
  EXPECT_TRUE(bg.never_canceled());
  EXPECT_TRUE(bg == Context::todo());
  EXPECT_TRUE(bg == Context());
  static const ContextKey<int> key;
  EXPECT_EQ(bg.value(key), nullptr);
  Unit u;
  EXPECT_EQ(bg.done().try_recv(u), Errc::would_block);
  CancelFunc nothing;
  nothing();  // a default CancelFunc does nothing
  nothing(Cause{Errc::closed, "x"});
}

TEST(ContextTree, CancelPropagatesDownNotUp) {
  auto root = myriad::with_cancel(Context());
  auto a = myriad::with_cancel(root.first);
  auto a1 = myriad::with_cancel(a.first);
  auto a2 = myriad::with_cancel(a.first);
  auto a11 = myriad::with_cancel(a1.first);
  auto b = myriad::with_cancel(root.first);
  EXPECT_FALSE(a.first.never_canceled());
  // Some done channels exist before the cancellation, the others are asked for after.
  (void)a.first.done();
  (void)a11.first.done();
  (void)root.first.done();
  EXPECT_FALSE(is_closed(a.first));

  a.second();
  for (const Context* c : {&a.first, &a1.first, &a2.first, &a11.first}) {
    EXPECT_EQ(c->err(), Errc::canceled);
    EXPECT_TRUE(is_closed(*c));
    EXPECT_EQ(c->cause().code, Errc::canceled);
    EXPECT_EQ(c->cause().message, "");
  }
  EXPECT_EQ(root.first.err(), Errc::ok);  // never up
  EXPECT_EQ(b.first.err(), Errc::ok);     // nor sideways
  EXPECT_FALSE(is_closed(root.first));
  EXPECT_FALSE(is_closed(b.first));

  a.second();   // a second cancel is a no-op
  a1.second();  // so is cancelling an already-cancelled descendant
  EXPECT_EQ(a.first.err(), Errc::canceled);

  root.second();
  EXPECT_EQ(root.first.err(), Errc::canceled);
  EXPECT_EQ(b.first.err(), Errc::canceled);
  EXPECT_TRUE(is_closed(b.first));
  EXPECT_TRUE(is_closed(root.first));
}

TEST(ContextTree, GrandchildrenThroughValuesAndDeadlines) {
  Runtime rt(threaded());
  static const ContextKey<int> depth;
  auto root = myriad::with_cancel(Context());
  Context v1 = myriad::with_value(root.first, depth, 1);
  auto t = myriad::with_timeout(rt, v1, 1h);
  Context v2 = myriad::with_value(t.first, depth, 2);
  auto leaf = myriad::with_cancel(v2);
  auto leaf2 = myriad::with_cancel(leaf.first);

  EXPECT_FALSE(v1.never_canceled());
  EXPECT_TRUE(v1.done() == root.first.done());  // a value context forwards to its canceller
  root.second();
  for (const Context* c : {&v1, &t.first, &v2, &leaf.first, &leaf2.first}) {
    EXPECT_EQ(c->err(), Errc::canceled);
    EXPECT_TRUE(is_closed(*c));
  }
  ASSERT_NE(leaf2.first.value(depth), nullptr);
  EXPECT_EQ(*leaf2.first.value(depth), 2);
  EXPECT_EQ(*v1.value(depth), 1);
}

TEST(ContextTree, ChildOfCancelledParentIsBornCancelled) {
  Runtime rt(threaded());
  auto parent = myriad::with_cancel(Context());
  (void)parent.first.done();
  parent.second(Cause{Errc::closed, "shutting down"});

  auto child = myriad::with_cancel(parent.first);
  EXPECT_EQ(child.first.err(), Errc::canceled);
  EXPECT_TRUE(is_closed(child.first));
  EXPECT_EQ(child.first.cause().code, Errc::closed);
  EXPECT_EQ(child.first.cause().message, "shutting down");

  static const ContextKey<std::string> name;
  auto grandchild = myriad::with_cancel(myriad::with_value(child.first, name, "x"));
  EXPECT_EQ(grandchild.first.err(), Errc::canceled);
  EXPECT_TRUE(is_closed(grandchild.first));

  // The parent's error wins over a deadline of the child's own, passed or not.
  auto timed = myriad::with_timeout(rt, parent.first, 1h);
  EXPECT_EQ(timed.first.err(), Errc::canceled);
  auto expired = myriad::with_deadline(parent.first, Clock::now() - 1s);
  EXPECT_EQ(expired.first.err(), Errc::canceled);
  EXPECT_EQ(expired.first.cause().message, "shutting down");
  child.second();  // no-op
  EXPECT_EQ(child.first.cause().code, Errc::closed);
}

TEST(ContextTree, CauseIsFirstCancelsAndInherited) {
  auto p = myriad::with_cancel(Context());
  auto c = myriad::with_cancel(p.first);
  p.second(Cause{Errc::invalid_argument, "first"});
  p.second(Cause{Errc::bad_handle, "second"});
  EXPECT_EQ(p.first.err(), Errc::canceled);
  EXPECT_EQ(p.first.cause().code, Errc::invalid_argument);
  EXPECT_EQ(p.first.cause().message, "first");
  EXPECT_EQ(c.first.err(), Errc::canceled);
  EXPECT_EQ(c.first.cause().message, "first");

  auto q = myriad::with_cancel(Context());
  q.second(Cause{});  // a cause with code ok counts as none
  EXPECT_EQ(q.first.cause().code, Errc::canceled);

  auto r = myriad::with_cancel(Context());
  EXPECT_EQ(r.first.cause().code, Errc::ok);  // not cancelled yet
  CancelFunc copy = r.second;                 // copies cancel the same context
  copy();
  EXPECT_EQ(r.first.err(), Errc::canceled);
}

TEST(ContextTree, CancelledOrDroppedChildrenLeaveTheirParent) {
  Runtime rt(threaded());
  using myriad::detail::ctx_linked_children;
  auto parent = myriad::with_cancel(Context());
  static const ContextKey<int> k;
  Context via_value = myriad::with_value(parent.first, k, 1);
  std::vector<std::pair<Context, CancelFunc>> kids;
  for (int i = 0; i < 300; ++i) {
    if (i % 3 == 0) kids.push_back(myriad::with_cancel(parent.first));
    if (i % 3 == 1) kids.push_back(myriad::with_timeout(rt, parent.first, 1h));
    if (i % 3 == 2) kids.push_back(myriad::with_cancel(via_value));  // links to the canceller
  }
  auto grandchild = myriad::with_cancel(kids[0].first);
  EXPECT_EQ(ctx_linked_children(parent.first.node()), 300u);
  EXPECT_EQ(ctx_linked_children(kids[0].first.node()), 1u);
  for (int i = 0; i < 300; i += 2) kids[static_cast<std::size_t>(i)].second();  // cancelled
  EXPECT_EQ(ctx_linked_children(parent.first.node()), 150u);
  EXPECT_EQ(ctx_linked_children(kids[0].first.node()), 0u);  // cancelled with it
  EXPECT_EQ(grandchild.first.err(), Errc::canceled);
  kids.clear();  // the others dropped without cancelling: they leave too
  EXPECT_EQ(ctx_linked_children(parent.first.node()), 0u);
  EXPECT_EQ(parent.first.err(), Errc::ok);
  EXPECT_FALSE(rt.scheduler().any_timer_pending());

  auto kept = myriad::with_cancel(parent.first);
  parent.second();  // cancelling the parent detaches every child
  EXPECT_EQ(ctx_linked_children(parent.first.node()), 0u);
  EXPECT_EQ(kept.first.err(), Errc::canceled);
}

TEST(ContextTree, DeepChainsCancelAndFreeWithoutRecursion) {
  // Inside a task (a 64 KiB stack): cancellation and destruction must not recurse per level.
  Runtime rt(threaded());
  static constexpr long depth = scaled(100000);
  static const ContextKey<long> level;
  auto h = rt.spawn([] {
    auto root = myriad::with_cancel(Context());
    Context leaf = root.first;
    for (long i = 0; i < depth; ++i)
      leaf = i % 2 ? myriad::with_value(leaf, level, i) : myriad::with_cancel(leaf).first;
    (void)leaf.done();
    EXPECT_EQ(*leaf.value(level), (depth - 1) % 2 ? depth - 1 : depth - 2);
    root.second();
    EXPECT_EQ(leaf.err(), Errc::canceled);
    EXPECT_TRUE(is_closed(leaf));
    leaf = Context();  // frees the chain from the leaf up

    Context chain = Context();
    for (long i = 0; i < depth; ++i)
      chain = i % 2 ? myriad::with_value(chain, level, i) : myriad::with_cancel(chain).first;
    EXPECT_EQ(chain.err(), Errc::ok);
    chain = Context();  // never cancelled: dropped as it is
  });
  h.join();
}

// --- values -----------------------------------------------------------------------------

TEST(ContextValues, LookupThroughTheChainAndShadowing) {
  static const ContextKey<std::string> name{"name"};
  static const ContextKey<int> depth{"depth"};
  static const ContextKey<int> other;  // same type, different key
  EXPECT_STREQ(name.name(), "name");

  Context c1 = myriad::with_value(Context(), name, "ann");
  auto c2 = myriad::with_cancel(c1);
  Context c3 = myriad::with_value(c2.first, depth, 1);
  Context c4 = myriad::with_value(c3, name, std::string("bob"));

  ASSERT_NE(c4.value(name), nullptr);
  EXPECT_EQ(*c4.value(name), "bob");  // the nearest wins
  EXPECT_EQ(*c3.value(name), "ann");  // the ancestor still sees its own
  EXPECT_EQ(*c2.first.value(name), "ann");
  EXPECT_EQ(*c4.value(depth), 1);
  EXPECT_EQ(c4.value(other), nullptr);
  EXPECT_EQ(c1.value(depth), nullptr);
  EXPECT_TRUE(c1.never_canceled());
  EXPECT_FALSE(c3.never_canceled());
  EXPECT_TRUE(c1.done().is_nil());

  c2.second();  // values survive cancellation; value contexts follow their canceller
  EXPECT_EQ(c4.err(), Errc::canceled);
  EXPECT_TRUE(is_closed(c4));
  EXPECT_EQ(*c4.value(name), "bob");
}

TEST(ContextValues, ValuesDieWithTheirLastReference) {
  static const ContextKey<Tracker> key;
  std::atomic<int> destroyed{0};
  {
    Context v = myriad::with_value(Context(), key, Tracker(&destroyed));
    auto child = myriad::with_cancel(v);
    v = Context();
    EXPECT_EQ(destroyed.load(), 0);  // the child keeps its parent
    ASSERT_NE(child.first.value(key), nullptr);
    child.second();
    EXPECT_EQ(destroyed.load(), 0);
  }
  EXPECT_EQ(destroyed.load(), 1);
}

// --- deadlines --------------------------------------------------------------------------

TEST(ContextDeadline, TimeoutCancelsWithTimedOut) {
  Runtime rt(threaded());
  auto h = rt.spawn([] {
    auto t = myriad::with_timeout(Context(), 10ms);
    ASSERT_TRUE(t.first.deadline().has_value());
    Unit u;
    EXPECT_FALSE(t.first.done().recv_into(u));  // parks until the deadline closes it
    EXPECT_EQ(t.first.err(), Errc::timed_out);
    EXPECT_EQ(t.first.cause().code, Errc::timed_out);
    EXPECT_EQ(t.first.cause().message, "");
    t.second();  // no-op: stays timed out
    EXPECT_EQ(t.first.err(), Errc::timed_out);

    auto withcause = myriad::with_timeout(Context(), 5ms, Cause{Errc::closed, "slow upstream"});
    EXPECT_FALSE(withcause.first.done().recv_into(u));
    EXPECT_EQ(withcause.first.err(), Errc::timed_out);
    EXPECT_EQ(withcause.first.cause().code, Errc::closed);
    EXPECT_EQ(withcause.first.cause().message, "slow upstream");
  });
  h.join();

  // From a foreign thread, on a named runtime.
  auto t = myriad::with_deadline(rt, Context(), Clock::now() + 10ms);
  Unit u;
  EXPECT_FALSE(t.first.done().recv_into(u));
  EXPECT_EQ(t.first.err(), Errc::timed_out);
}

TEST(ContextDeadline, ChildDeadlineIsTheEarlierOfItsOwnAndItsParents) {
  Runtime rt(threaded());
  auto parent = myriad::with_timeout(rt, Context(), 1h);
  auto later = myriad::with_timeout(rt, parent.first, 2h);
  ASSERT_TRUE(later.first.deadline().has_value());
  EXPECT_EQ(*later.first.deadline(), *parent.first.deadline());
  auto earlier = myriad::with_timeout(rt, parent.first, 10ms);
  EXPECT_LT(*earlier.first.deadline(), *parent.first.deadline());
  static const ContextKey<int> k;
  Context v = myriad::with_value(earlier.first, k, 1);
  EXPECT_EQ(*v.deadline(), *earlier.first.deadline());

  Unit u;
  EXPECT_FALSE(v.done().recv_into(u));
  EXPECT_EQ(earlier.first.err(), Errc::timed_out);
  EXPECT_EQ(v.err(), Errc::timed_out);
  EXPECT_EQ(parent.first.err(), Errc::ok);  // never up
  EXPECT_EQ(later.first.err(), Errc::ok);

  // A parent that times out cancels its children with timed_out, timers of their own or not.
  auto p2 = myriad::with_timeout(rt, Context(), 10ms);
  auto c2 = myriad::with_timeout(rt, p2.first, 1h);
  auto c3 = myriad::with_cancel(c2.first);
  EXPECT_FALSE(c3.first.done().recv_into(u));
  EXPECT_EQ(c3.first.err(), Errc::timed_out);
  EXPECT_EQ(c2.first.err(), Errc::timed_out);
  EXPECT_EQ(p2.first.err(), Errc::timed_out);
}

TEST(ContextDeadline, PassedDeadlineIsBornTimedOut) {
  // Needs no runtime: nothing is armed.
  for (auto d : {Clock::now() - 1s, Clock::now(), myriad::TimePoint::min()}) {
    auto c = myriad::with_deadline(Context(), d, Cause{Errc::closed, "late"});
    EXPECT_EQ(c.first.err(), Errc::timed_out);
    EXPECT_TRUE(is_closed(c.first));
    EXPECT_EQ(c.first.cause().message, "late");
  }
  auto z = myriad::with_timeout(Context(), 0ns);
  EXPECT_EQ(z.first.err(), Errc::timed_out);
  auto n = myriad::with_timeout(Context(), -5s);
  EXPECT_EQ(n.first.err(), Errc::timed_out);
  auto m = myriad::with_timeout(Context(), myriad::Duration::min());
  EXPECT_EQ(m.first.err(), Errc::timed_out);
  // TimePoint::max() is "no deadline": a plain cancellable context.
  auto never = myriad::with_deadline(Context(), myriad::TimePoint::max());
  EXPECT_FALSE(never.first.deadline().has_value());
  EXPECT_EQ(never.first.err(), Errc::ok);
}

TEST(ContextDeadline, CancelAndDroppingHandlesStopTheTimer) {
  Runtime rt(threaded(1));
  const bool before = rt.scheduler().any_timer_pending();
  {
    auto t = myriad::with_timeout(rt, Context(), 1h);
    EXPECT_TRUE(rt.scheduler().any_timer_pending());
    t.second();
    EXPECT_EQ(rt.scheduler().any_timer_pending(), before);  // cancel disarms it
    EXPECT_EQ(t.first.err(), Errc::canceled);
  }
  // The timer does not keep the tree alive: dropping every handle frees the value above the
  // deadline context at once and stops its timer.
  static const ContextKey<Tracker> key;
  std::atomic<int> destroyed{0};
  {
    Context v = myriad::with_value(Context(), key, Tracker(&destroyed));
    auto t = myriad::with_timeout(rt, v, 1h);
    auto child = myriad::with_cancel(t.first);  // linked under t, dropped with it
    EXPECT_TRUE(rt.scheduler().any_timer_pending());
  }
  EXPECT_EQ(destroyed.load(), 1);
  EXPECT_EQ(rt.scheduler().any_timer_pending(), before);

  // Many deadline contexts dropped before their timers fire: nothing fires, nothing leaks
  // (ASan's leak check watches the nodes).
  for (int i = 0; i < 1000; ++i) {
    auto t = myriad::with_timeout(rt, Context(), 1h + std::chrono::milliseconds(i));
    if (i % 3 == 0) t.second();
  }
  EXPECT_EQ(rt.scheduler().any_timer_pending(), before);
}

TEST(ContextDeadline, DroppedHandlesRacingTheirFiringTimers) {
  // Deadlines fire while the last handles are being dropped: the fire either cancels a live
  // node or finds it dying and leaves it; the node's memory outlives both (weak reference).
  Runtime rt(threaded(4));
  static constexpr int n = static_cast<int>(scaled(20000));
  myriad::WaitGroup wg;
  wg.add(4);
  for (int w = 0; w < 4; ++w)
    rt.spawn_detached([&wg, w] {
      for (int i = 0; i < n / 4; ++i) {
        auto t = myriad::with_timeout(Context(), std::chrono::microseconds((i + w) % 50));
        if (i % 7 == 0) (void)t.first.done();
        if (i % 11 == 0) myriad::this_task::yield();
      }
      wg.done();
    });
  wg.wait();
}

// --- waking what waits on a context ------------------------------------------------------

TEST(ContextWake, TasksParkedInRecvSendSelectAndSleepAllWake) {
  Runtime rt(threaded(4));
  const long n = std::min<long>(scaled(1000), myriad::test::kTsanLiveTasks / 4 - 1);
  auto root = myriad::with_cancel(Context());
  auto mid = myriad::with_cancel(root.first);
  Chan<int> never(0);
  Chan<std::string> never_s(0);
  std::atomic<long> woke_recv{0}, woke_send{0}, woke_select{0}, woke_sleep{0};
  std::vector<JoinHandle> hs;
  Context midctx = mid.first;
  for (long i = 0; i < n; ++i) {
    hs.push_back(rt.spawn([&, midctx] {
      Context mine = myriad::with_cancel(midctx).first;  // a grandchild of root per task
      int v = 0;
      bool ok = true;
      if (myriad::recv(never, v, mine, &ok) == Errc::canceled && !ok) ++woke_recv;
    }));
    hs.push_back(rt.spawn([&, midctx] {
      std::string s = "payload";
      if (myriad::send(never_s, s, midctx) == Errc::canceled && s == "payload") ++woke_send;
    }));
    hs.push_back(rt.spawn([&, midctx] {
      static const ContextKey<long> k;
      Context mine = myriad::with_value(midctx, k, 1L);
      int v = 0;
      Unit u;
      auto r = myriad::select(myriad::recv_case(never, v), myriad::recv_case(mine.done(), u));
      if (r.index == 1 && !r.ok && mine.err() == Errc::canceled) ++woke_select;
    }));
    hs.push_back(rt.spawn([&, midctx] {
      if (myriad::this_task::sleep_for(1h, midctx) == Errc::canceled) ++woke_sleep;
    }));
  }
  wait_parked(rt, 4 * n);  // every one of them is parked
  root.second();           // from this foreign thread
  EXPECT_EQ(mid.first.err(), Errc::canceled);
  for (auto& h : hs) h.join();
  EXPECT_EQ(woke_recv.load(), n);
  EXPECT_EQ(woke_send.load(), n);
  EXPECT_EQ(woke_select.load(), n);
  EXPECT_EQ(woke_sleep.load(), n);
}

TEST(ContextWake, CancelFromAForeignThreadWakesTasksAndThreads) {
  Runtime rt(threaded(2));
  auto c = myriad::with_cancel(Context());
  Context ctx = c.first;
  Chan<int> never(0);
  const long n = scaled(200);
  std::atomic<long> woke{0};
  std::vector<JoinHandle> hs;
  for (long i = 0; i < n; ++i)
    hs.push_back(rt.spawn([&, ctx] {
      int v;
      if (myriad::recv(never, v, ctx) == Errc::canceled) ++woke;
    }));
  // Foreign threads block on the same context (as OS threads).
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i)
    waiters.emplace_back([&, ctx] {
      int v;
      if (myriad::recv(never, v, ctx) == Errc::canceled) ++woke;
      Unit u;
      EXPECT_FALSE(ctx.done().recv_into(u));
    });
  wait_parked(rt, n);
  std::thread canceller([cancel = c.second] { cancel(Cause{Errc::closed, "from a thread"}); });
  canceller.join();
  for (auto& h : hs) h.join();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(woke.load(), n + 3);
  EXPECT_EQ(ctx.cause().message, "from a thread");
}

TEST(ContextWake, ForeignThreadWokenByATasksCancel) {
  Runtime rt(threaded(2));
  auto c = myriad::with_cancel(Context());
  Context ctx = c.first;
  Chan<int> never(0);
  Errc got = Errc::ok;
  std::thread t([&] {
    int v;
    got = myriad::recv(never, v, ctx);
  });
  std::this_thread::sleep_for(5ms);  // most likely blocked by now; correct either way
  CancelFunc cancel = c.second;
  rt.spawn([cancel] { cancel(); }).join();
  t.join();
  EXPECT_EQ(got, Errc::canceled);
}

// --- races ------------------------------------------------------------------------------

// A tree of cancellable contexts: node i's parent is (i - 1) / fanout.
struct Tree {
  std::vector<Context> ctx;
  std::vector<CancelFunc> cancel;
  Tree(int levels, int fanout) {
    auto r = myriad::with_cancel(Context());
    ctx.push_back(r.first);
    cancel.push_back(r.second);
    static const ContextKey<int> k;
    std::size_t first = 0, count = 1;
    for (int l = 1; l < levels; ++l) {
      for (std::size_t p = first; p < first + count; ++p)
        for (int f = 0; f < fanout; ++f) {
          // Every other level goes through a value context.
          Context parent = l % 2 ? myriad::with_value(ctx[p], k, f) : ctx[p];
          auto c = myriad::with_cancel(parent);
          ctx.push_back(c.first);
          cancel.push_back(c.second);
        }
      first += count;
      count *= fanout;
    }
  }
};

TEST(ContextRace, OverlappingCancelsFromTasksAndThreads) {
  Runtime rt(threaded(4));
  const int rounds = static_cast<int>(scaled(40));
  for (int round = 0; round < rounds; ++round) {
    Tree tree(4, 6);  // 1 + 6 + 36 + 216 nodes
    const std::size_t nodes = tree.ctx.size();
    for (std::size_t i = 0; i < nodes; i += 2) (void)tree.ctx[i].done();  // half made early
    Chan<int> never(0);
    std::atomic<long> woke{0};
    const int parked = 8;
    std::vector<JoinHandle> hs;
    // Tasks parked on leaves and inner nodes.
    for (int i = 0; i < parked; ++i) {
      Context c = tree.ctx[nodes - 1 - static_cast<std::size_t>(i) * 17 % nodes];
      hs.push_back(rt.spawn([&, c] {
        int v;
        if (myriad::recv(never, v, c) != Errc::ok) ++woke;
      }));
    }
    std::atomic<bool> go{false};
    auto canceller = [&tree, &go, nodes](unsigned seed) {
      std::vector<std::size_t> order(nodes);
      for (std::size_t i = 0; i < nodes; ++i) order[i] = i;
      std::shuffle(order.begin(), order.end(), std::mt19937(seed));
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      for (std::size_t i : order) {
        tree.cancel[i](Cause{Errc::closed, std::to_string(seed)});
        // Right after cancel() returns, the whole subtree is cancelled, even when another
        // canceller got there first and is still walking it.
        for (std::size_t k = i * 6 + 1; k <= i * 6 + 6 && k < nodes; ++k)
          EXPECT_NE(tree.ctx[k].err(), Errc::ok);
        // Creating children meanwhile: born cancelled, or cancelled with the parent.
        auto c = myriad::with_cancel(tree.ctx[order[(i * 7) % nodes]]);
        (void)c;
      }
    };
    for (unsigned t = 0; t < 4; ++t)
      hs.push_back(rt.spawn([&canceller, t, round] { canceller(100 * round + t); }));
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 2; ++t)
      threads.emplace_back([&canceller, t, round] { canceller(100 * round + 50 + t); });
    go.store(true, std::memory_order_release);
    for (auto& t : threads) t.join();
    for (auto& h : hs) h.join();
    EXPECT_EQ(woke.load(), parked);
    for (std::size_t i = 0; i < nodes; ++i) {
      EXPECT_EQ(tree.ctx[i].err(), Errc::canceled);
      EXPECT_TRUE(is_closed(tree.ctx[i]));
      EXPECT_EQ(tree.ctx[i].cause().code, Errc::closed);
    }
  }
}

TEST(ContextRace, CancelRacesChildCreation) {
  Runtime rt(threaded(4));
  const int rounds = static_cast<int>(scaled(100));
  const int per_creator = 200;
  for (int round = 0; round < rounds; ++round) {
    auto parent = myriad::with_cancel(Context());
    Context pctx = parent.first;
    std::vector<std::vector<Context>> made(4);
    std::atomic<int> started{0};
    std::vector<JoinHandle> hs;
    for (int c = 0; c < 4; ++c)
      hs.push_back(rt.spawn([&, c, pctx] {
        static const ContextKey<int> k;
        ++started;
        for (int i = 0; i < per_creator; ++i) {
          switch (i % 3) {
            case 0: made[c].push_back(myriad::with_cancel(pctx).first); break;
            case 1: made[c].push_back(myriad::with_timeout(pctx, 1h).first); break;
            default:
              made[c].push_back(myriad::with_cancel(myriad::with_value(pctx, k, i)).first);
          }
          if (i % 16 == 0) myriad::this_task::yield();
        }
      }));
    CancelFunc cancel = parent.second;
    hs.push_back(rt.spawn([&started, cancel, round] {
      while (started.load() < 1 + round % 4) myriad::this_task::yield();
      cancel();
    }));
    for (auto& h : hs) h.join();
    for (auto& v : made)
      for (const Context& c : v) {
        EXPECT_EQ(c.err(), Errc::canceled);
        EXPECT_TRUE(is_closed(c));
      }
    EXPECT_EQ(myriad::detail::ctx_linked_children(pctx.node()), 0u);
  }
  EXPECT_FALSE(rt.scheduler().any_timer_pending());  // every child's timer was disarmed
}

// --- the seed case ----------------------------------------------------------------------

TEST(ContextSeed, WorkerOnTheTimedOutParentsContextEndsInsteadOfStayingParked) {
  Runtime rt(threaded(2));
  Chan<int> work(0);
  std::atomic<int> handled{0};
  std::atomic<bool> worker_ended{false};
  auto parent = rt.spawn([&] {
    auto pctx = myriad::with_timeout(Context(), 30ms);
    // The worker's own context: a child with a much later deadline of its own.
    auto wctx = myriad::with_timeout(pctx.first, 1h);
    Context mine = wctx.first;
    JoinHandle worker = myriad::go([&work, &handled, &worker_ended, mine] {
      Unit u;
      int job = 0;
      for (;;) {
        auto r = myriad::select(myriad::recv_case(work, job), myriad::recv_case(mine.done(), u));
        if (r.index == 1) break;
        ++handled;
      }
      EXPECT_EQ(mine.err(), Errc::timed_out);
      worker_ended = true;
    });
    for (int i = 0; i < 3; ++i) work.send(i);
    // Then no more work: the worker parks in its select until the parent's deadline.
    worker.join();  // returns: the worker is not left parked as a zombie
    EXPECT_EQ(pctx.first.err(), Errc::timed_out);
    EXPECT_EQ(wctx.first.err(), Errc::timed_out);
  });
  parent.join();
  EXPECT_TRUE(worker_ended.load());
  EXPECT_EQ(handled.load(), 3);
}

TEST(ContextSeed, ManyWorkersOfOneTimedOutParentAllEnd) {
  Runtime rt(threaded(4));
  const long n = std::min<long>(scaled(2000), myriad::test::kTsanLiveTasks - 10);
  Chan<int> work(16);
  std::atomic<long> ended{0};
  auto parent = myriad::with_timeout(rt, Context(), 20ms);
  std::vector<JoinHandle> hs;
  for (long i = 0; i < n; ++i) {
    Context mine = myriad::with_timeout(rt, parent.first, 1h).first;
    hs.push_back(rt.spawn([&, mine] {
      int job;
      while (myriad::recv(work, job, mine) == Errc::ok) {
      }
      if (mine.err() == Errc::timed_out) ++ended;
    }));
  }
  for (auto& h : hs) h.join();
  EXPECT_EQ(ended.load(), n);
}

// --- channel operations and sleeps ---------------------------------------------------------

TEST(ContextChan, SendAndRecvWithAContext) {
  Runtime rt(threaded(2));
  auto h = rt.spawn([] {
    auto c = myriad::with_cancel(Context());
    Chan<std::string> ch(1);
    std::string s = "a";
    EXPECT_EQ(myriad::send(ch, s, c.first), Errc::ok);
    std::string out;
    bool ok = false;
    EXPECT_EQ(myriad::recv(ch, out, c.first, &ok), Errc::ok);
    EXPECT_TRUE(ok);
    EXPECT_EQ(out, "a");

    // Blocking until a partner arrives.
    Chan<int> unbuf(0);
    JoinHandle sender = myriad::go([unbuf] {
      myriad::this_task::sleep_for(2ms);
      unbuf.send(7);
    });
    int v = 0;
    EXPECT_EQ(myriad::recv(unbuf, v, c.first, &ok), Errc::ok);
    EXPECT_EQ(v, 7);
    sender.join();

    // A cancelled context wins over a ready channel, and the channel keeps its value.
    s = "b";
    EXPECT_EQ(myriad::send(ch, s, c.first), Errc::ok);
    c.second();
    EXPECT_EQ(myriad::recv(ch, out, c.first, &ok), Errc::canceled);
    EXPECT_FALSE(ok);
    EXPECT_EQ(ch.size(), 1u);
    std::string t = "c";
    EXPECT_EQ(myriad::send(ch, t, c.first), Errc::canceled);
    EXPECT_EQ(t, "c");

    // Closed channels.
    auto live = myriad::with_cancel(Context());
    ch.close();
    EXPECT_EQ(myriad::recv(ch, out, live.first, &ok), Errc::ok);  // drains first
    EXPECT_EQ(out, "b");
    EXPECT_EQ(myriad::recv(ch, out, live.first, &ok), Errc::channel_closed);
    EXPECT_FALSE(ok);
    EXPECT_EQ(myriad::send(ch, t, live.first), Errc::channel_closed);
    EXPECT_EQ(myriad::recv(ch, out, Context(), &ok), Errc::channel_closed);  // background too
    EXPECT_EQ(myriad::send(ch, t, Context()), Errc::channel_closed);

    // A closed channel wakes a receiver blocked with a context.
    Chan<int> later(0);
    JoinHandle closer = myriad::go([later] {
      myriad::this_task::sleep_for(2ms);
      later.close();
    });
    EXPECT_EQ(myriad::recv(later, v, live.first, &ok), Errc::channel_closed);
    closer.join();

    // A nil channel waits for the context only.
    Chan<int> nil;
    auto t5 = myriad::with_timeout(Context(), 5ms);
    EXPECT_EQ(myriad::recv(nil, v, t5.first), Errc::timed_out);
    EXPECT_EQ(myriad::send(nil, v, t5.first), Errc::timed_out);

    // A context that can never be cancelled (values over background) is a plain operation.
    static const ContextKey<int> k;
    Context vctx = myriad::with_value(Context(), k, 1);
    Chan<int> b(1);
    int one = 1;
    EXPECT_EQ(myriad::send(b, one, vctx), Errc::ok);
    EXPECT_EQ(myriad::recv(b, v, vctx, &ok), Errc::ok);
    EXPECT_EQ(v, 1);
  });
  h.join();
}

TEST(ContextChan, BlockedSendAndRecvGiveUpOnCancel) {
  Runtime rt(threaded(2));
  auto c = myriad::with_cancel(Context());
  Context ctx = c.first;
  Chan<std::string> full(1);
  full.send("x");
  std::string kept = "mine";
  Errc send_err = Errc::ok, recv_err = Errc::ok;
  Chan<int> empty(4);
  auto s = rt.spawn([&, ctx] { send_err = myriad::send(full, kept, ctx); });
  auto r = rt.spawn([&, ctx] {
    int v;
    recv_err = myriad::recv(empty, v, ctx);
  });
  wait_parked(rt, 2);
  c.second();
  s.join();
  r.join();
  EXPECT_EQ(send_err, Errc::canceled);
  EXPECT_EQ(kept, "mine");
  EXPECT_EQ(recv_err, Errc::canceled);
  EXPECT_EQ(full.size(), 1u);
}

TEST(ContextChan, SendAndRecvUntilADeadline) {
  Runtime rt(threaded(2));
  auto h = rt.spawn([] {
    Chan<int> ch(1);
    int v = 0;
    bool ok = true;
    EXPECT_EQ(myriad::recv_until(ch, v, Clock::now() + 5ms, &ok), Errc::timed_out);
    EXPECT_FALSE(ok);
    int one = 1;
    EXPECT_EQ(myriad::send_until(ch, one, Clock::now() + 5ms), Errc::ok);
    int two = 2;
    EXPECT_EQ(myriad::send_until(ch, two, Clock::now() + 5ms), Errc::timed_out);  // full
    EXPECT_EQ(two, 2);
    // A deadline already passed gives timed_out without attempting the operation.
    EXPECT_EQ(myriad::recv_until(ch, v, Clock::now() - 1ms), Errc::timed_out);
    EXPECT_EQ(ch.size(), 1u);
    EXPECT_EQ(myriad::recv_until(ch, v, Clock::now() + 1h, &ok), Errc::ok);
    EXPECT_TRUE(ok);
    EXPECT_EQ(v, 1);

    // Blocking until a partner comes, well before the deadline.
    Chan<int> unbuf(0);
    JoinHandle sender = myriad::go([unbuf] {
      myriad::this_task::sleep_for(2ms);
      unbuf.send(9);
    });
    EXPECT_EQ(myriad::recv_until(unbuf, v, Clock::now() + 1h, &ok), Errc::ok);
    EXPECT_EQ(v, 9);
    sender.join();
    JoinHandle receiver = myriad::go([unbuf] { EXPECT_EQ(unbuf.recv(), 10); });
    int ten = 10;
    EXPECT_EQ(myriad::send_until(unbuf, ten, Clock::now() + 1h), Errc::ok);
    receiver.join();

    ch.close();
    EXPECT_EQ(myriad::recv_until(ch, v, Clock::now() + 1h, &ok), Errc::channel_closed);
    EXPECT_EQ(myriad::send_until(ch, v, Clock::now() + 1h), Errc::channel_closed);
    Chan<int> nil;
    EXPECT_EQ(myriad::recv_until(nil, v, Clock::now() + 2ms), Errc::timed_out);
  });
  h.join();
  // From a foreign thread (the timer goes to the oldest live runtime).
  Chan<int> ch(0);
  int v;
  EXPECT_EQ(myriad::recv_until(ch, v, Clock::now() + 2ms), Errc::timed_out);
}

TEST(ContextSleep, SleepEndsWithTheTimeOrTheContext) {
  Runtime rt(threaded(2));
  auto h = rt.spawn([] {
    auto c = myriad::with_cancel(Context());
    EXPECT_EQ(myriad::this_task::sleep_for(2ms, c.first), Errc::ok);
    EXPECT_EQ(myriad::this_task::sleep_for(2ms, Context()), Errc::ok);
    EXPECT_EQ(myriad::this_task::sleep_for(0ns, c.first), Errc::ok);
    EXPECT_EQ(myriad::this_task::sleep_until(Clock::now() + 1ms, c.first), Errc::ok);

    auto t = myriad::with_timeout(c.first, 5ms);
    EXPECT_EQ(myriad::this_task::sleep_for(1h, t.first), Errc::timed_out);

    CancelFunc cancel = c.second;
    JoinHandle canceller = myriad::go([cancel] {
      myriad::this_task::sleep_for(2ms);
      cancel();
    });
    EXPECT_EQ(myriad::this_task::sleep_for(1h, c.first), Errc::canceled);
    canceller.join();
    EXPECT_EQ(myriad::this_task::sleep_for(0ns, c.first), Errc::canceled);  // cancelled on entry
    EXPECT_EQ(myriad::this_task::sleep_for(1h, c.first), Errc::canceled);
  });
  h.join();

  // A foreign thread sleeping on a context is woken by its cancellation too.
  auto c = myriad::with_cancel(Context());
  CancelFunc cancel = c.second;
  auto canceller = rt.spawn([cancel] {
    myriad::this_task::sleep_for(2ms);
    cancel();
  });
  EXPECT_EQ(myriad::this_task::sleep_for(1h, c.first), Errc::canceled);
  canceller.join();
}

}  // namespace
