// Sleep, Timer, Ticker, after and after_func on the per-proc timer heaps (timers.hpp).
#include "myriad/time.hpp"

#include <string>
#include <thread>

#include "chan_impl.hpp"
#include "registry.hpp"
#include "scheduler.hpp"
#include "timers.hpp"

namespace myriad::detail {

bool timer_arm(Scheduler* s, TimerNode* t) noexcept {
  TimerHeap& h = s->heap_for_new_timer();
  // Read before the push: once the heap lock is released the node may fire, and a sleeping
  // task's node (on its stack) may be gone by the time timer_armed runs.
  const int64_t when = t->when;
  if (t->retain) t->retain(t);  // the heap's reference
  h.lock.lock();
  try {
    h.push_locked(t);
  } catch (...) {
    h.lock.unlock();
    if (t->release) t->release(t);
    return false;
  }
  h.lock.unlock();
  s->timer_armed(when);
  return true;
}

int64_t to_ns(TimePoint tp) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
}

int64_t deadline_after(Duration d) noexcept {
  int64_t now = monotonic_now_ns();
  int64_t n = d.count();
  if (n > kNever - 1 - now) return kNever - 1;
  return now + n;
}

Scheduler* timer_scheduler(Runtime* rt, const char* what) {
  if (rt) return &rt->scheduler();
  if (Task* t = current_task()) return t->sched;
  Scheduler* oldest = nullptr;
  for_each_scheduler([&](Scheduler* s) {
    oldest = s;
    return false;
  });
  if (!oldest)
    throw Error(Errc::not_in_task,
                std::string("myriad: ") + what + " needs a runtime; none is alive");
  return oldest;
}

namespace {

TimePoint from_ns(int64_t ns) noexcept { return TimePoint(std::chrono::nanoseconds(ns)); }

// --- sleeping tasks: an uncounted node on the task's own stack -------------------------------

struct SleepNode {
  TimerNode node;
  Task* task = nullptr;
};

void fire_sleep(TimerNode* n, uint64_t, int64_t) noexcept {
  Task* t = reinterpret_cast<SleepNode*>(n)->task;  // the node may vanish once t runs
  t->sched->ready(t);
}

// Runs after the sleeping task is switched out (park_current's unlock hook), so the timer
// cannot fire — and ready the task — while it is still running.
void arm_sleep(void* arg) {
  auto* sn = static_cast<SleepNode*>(arg);
  if (!timer_arm(sn->task->sched, &sn->node)) sn->task->sched->ready(sn->task);  // no memory
}

}  // namespace

// --- channel and function timers: counted, shared by the handle and the heap -----------------

struct ChanTimer {
  TimerNode node;
  std::atomic<uint32_t> refs{1};  // the handle's; the heap and a fire in flight add theirs
  SpinLock mu;                    // serialises stop/reset with a fire's send (see timers.hpp)
  Scheduler* sched = nullptr;
  ChanCore* ch = nullptr;         // capacity 1; null for after_func
  std::function<void()> func;

  static ChanTimer* of(TimerNode* n) noexcept { return reinterpret_cast<ChanTimer*>(n); }

  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      if (ch) chan_release(ch);
      delete this;
    }
  }

  // Removes a value that fired but was not received. Lock `mu` held.
  bool drain_locked() noexcept {
    if (!ch) return false;
    TimePoint stale;
    bool ok = false;
    return chan_recv(ch, &stale, &ok, false) == Errc::ok && ok;
  }

  static void fire(TimerNode* n, uint64_t seq, int64_t now) noexcept {
    ChanTimer* t = of(n);
    t->mu.lock();
    if (seq == t->node.seq) {
      if (t->ch) {
        // Non-blocking: a value still unreceived means this tick is dropped (tickers; a
        // one-shot timer cannot have one).
        TimePoint v = from_ns(now);
        chan_send(t->ch, &v, false);
      } else if (t->func) {
        try {
          t->sched->runtime()->spawn_detached(t->func, SpawnOptions{.label = "after_func"});
        } catch (...) {
          // The runtime is shutting down (or out of stacks): the function cannot run.
        }
      }
    }
    t->mu.unlock();
    t->release();  // the reference the heap handed to this fire
  }
};

namespace {

ChanTimer* new_chan_timer(Scheduler* s, bool with_channel) {
  auto* t = new ChanTimer();
  t->sched = s;
  t->node.fire = &ChanTimer::fire;
  t->node.retain = [](TimerNode* n) noexcept {
    ChanTimer::of(n)->refs.fetch_add(1, std::memory_order_relaxed);
  };
  t->node.release = [](TimerNode* n) noexcept { ChanTimer::of(n)->release(); };
  if (with_channel) {
    Errc e = Errc::ok;
    t->ch = chan_create(elem_ops<TimePoint>(), 1, &e);
    if (!t->ch) {
      delete t;
      throw Error(e);
    }
  }
  return t;
}

void arm_or_throw(ChanTimer* t) {
  if (!timer_arm(t->sched, &t->node)) throw Error(Errc::no_memory, "myriad: timer heap");
}

// Stops and/or re-arms under t->mu. Returns "was active": armed, or fired with the value not
// yet received (Go 1.23: such a value is discarded and counts as stopping the timer).
bool restart(ChanTimer* t, bool rearm, int64_t when, int64_t period, bool* arm_failed) {
  t->mu.lock();
  bool active = timer_disarm(&t->node);
  ++t->node.seq;  // a fire popped before this point is now stale
  if (t->drain_locked()) active = true;
  if (rearm) {
    t->node.when = when;
    t->node.period = period;
    *arm_failed = !timer_arm(t->sched, &t->node);
  }
  t->mu.unlock();
  return active;
}

}  // namespace
}  // namespace myriad::detail

namespace myriad {
using namespace detail;

void this_task::sleep_until(TimePoint tp) {
  const int64_t when = to_ns(tp);
  Task* t = current_task();
  if (!t) {
    std::this_thread::sleep_until(tp);
    return;
  }
  while (monotonic_now_ns() < when) {
    SleepNode sn;
    sn.node.when = when;
    sn.node.fire = fire_sleep;
    sn.task = t;
    park_current(WaitReason::sleep, arm_sleep, &sn);
  }
}

void this_task::sleep_for(Duration d) {
  if (d.count() <= 0) return;
  sleep_until(from_ns(deadline_after(d)));
}

// --- Timer ---

Timer::Timer(Duration d) { init(nullptr, d); }
Timer::Timer(Runtime& rt, Duration d) { init(&rt, d); }

void Timer::init(Runtime* rt, Duration d) {
  ChanTimer* t = new_chan_timer(timer_scheduler(rt, "a timer"), true);
  t->node.when = deadline_after(d);
  ch_ = Chan<TimePoint>::from_core(t->ch);
  t_ = t;
  arm_or_throw(t);
}

Timer::Timer(Timer&& o) noexcept : t_(std::exchange(o.t_, nullptr)), ch_(std::move(o.ch_)) {}
Timer& Timer::operator=(Timer&& o) noexcept {
  if (this != &o) {
    this->~Timer();
    t_ = std::exchange(o.t_, nullptr);
    ch_ = std::move(o.ch_);
  }
  return *this;
}
Timer::~Timer() {
  if (!t_) return;
  stop();
  t_->release();
  t_ = nullptr;
}

bool Timer::stop() noexcept {
  if (!t_) return false;
  bool unused = false;
  return restart(t_, false, 0, 0, &unused);
}

bool Timer::reset(Duration d) noexcept {
  if (!t_) return false;
  bool failed = false;
  return restart(t_, true, deadline_after(d), 0, &failed);
}

// --- Ticker ---

Ticker::Ticker(Duration period) { init(nullptr, period); }
Ticker::Ticker(Runtime& rt, Duration period) { init(&rt, period); }

void Ticker::init(Runtime* rt, Duration period) {
  if (period.count() <= 0) throw Error(Errc::invalid_argument, "myriad::Ticker: period <= 0");
  ChanTimer* t = new_chan_timer(timer_scheduler(rt, "a timer"), true);
  t->node.when = deadline_after(period);
  t->node.period = period.count();
  ch_ = Chan<TimePoint>::from_core(t->ch);
  t_ = t;
  arm_or_throw(t);
}

Ticker::Ticker(Ticker&& o) noexcept : t_(std::exchange(o.t_, nullptr)), ch_(std::move(o.ch_)) {}
Ticker& Ticker::operator=(Ticker&& o) noexcept {
  if (this != &o) {
    this->~Ticker();
    t_ = std::exchange(o.t_, nullptr);
    ch_ = std::move(o.ch_);
  }
  return *this;
}
Ticker::~Ticker() {
  if (!t_) return;
  stop();
  t_->release();
  t_ = nullptr;
}

void Ticker::stop() noexcept {
  if (!t_) return;
  bool unused = false;
  restart(t_, false, 0, 0, &unused);
}

void Ticker::reset(Duration period) {
  if (period.count() <= 0) throw Error(Errc::invalid_argument, "myriad::Ticker: period <= 0");
  if (!t_) throw Error(Errc::invalid_argument, "myriad::Ticker: moved-from");
  bool failed = false;
  restart(t_, true, deadline_after(period), period.count(), &failed);
  if (failed) throw Error(Errc::no_memory, "myriad: timer heap");
}

// --- after, after_func ---

namespace {
Chan<TimePoint> after_on(Runtime* rt, Duration d) {
  ChanTimer* t = new_chan_timer(timer_scheduler(rt, "a timer"), true);
  t->node.when = deadline_after(d);
  Chan<TimePoint> ch = Chan<TimePoint>::from_core(t->ch);
  try {
    arm_or_throw(t);
  } catch (...) {
    t->release();
    throw;
  }
  t->release();  // the heap keeps it alive until it fires (or its runtime goes)
  return ch;
}

Timer after_func_on(Runtime* rt, Duration d, std::function<void()> f) {
  if (!f) throw Error(Errc::invalid_argument, "myriad::after_func: empty function");
  ChanTimer* t = new_chan_timer(timer_scheduler(rt, "a timer"), false);
  t->func = std::move(f);
  t->node.when = deadline_after(d);
  Timer tm = Timer::adopt(t);
  arm_or_throw(t);
  return tm;
}
}  // namespace

Chan<TimePoint> after(Duration d) { return after_on(nullptr, d); }
Chan<TimePoint> after(Runtime& rt, Duration d) { return after_on(&rt, d); }
Timer after_func(Duration d, std::function<void()> f) {
  return after_func_on(nullptr, d, std::move(f));
}
Timer after_func(Runtime& rt, Duration d, std::function<void()> f) {
  return after_func_on(&rt, d, std::move(f));
}

}  // namespace myriad
