// Time: sleeping, timers, tickers and timeout channels, with Go's semantics (Go 1.23 and later:
// after stop() or reset() returns, no value from before it can be received).
//
//   myriad::this_task::sleep_for(10ms);              // parks a task; blocks a foreign thread
//   auto timeout = myriad::after(50ms);              // Chan<TimePoint>, fires once
//   myriad::select(myriad::recv_case(work, w), myriad::recv_case(timeout, t));
//   myriad::Timer tm(1s);  tm.reset(2s);  tm.stop();
//   myriad::Ticker tick(100ms);  tick.channel().recv();
//
// Timers live in per-proc heaps of a runtime (no global timer lock). A timer made by a task
// belongs to that task's runtime; one made by a foreign thread to the runtime passed
// explicitly, or else to the oldest live runtime of the process (Error(not_in_task) if there
// is none). Idle runtime threads sleep until the next timer is due; a busy proc's overdue
// timers are run by whichever thread looks for work first, so lateness stays low under load.
// Timers pending when their runtime is destroyed never fire.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "myriad/chan.hpp"

namespace myriad {

class Runtime;

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = std::chrono::nanoseconds;

namespace detail {
struct ChanTimer;  // core/src/timers.hpp
}

namespace this_task {
// Parks the calling task until d has passed (a foreign thread sleeps as an OS thread).
// d <= 0 returns at once, as Go's time.Sleep does.
void sleep_for(Duration d);
void sleep_until(TimePoint t);
}  // namespace this_task

// Go's time.Timer: its channel receives the firing time once, when d has passed.
// A Timer must not be reset after its runtime was destroyed (stop() is then a no-op).
class Timer {
 public:
  explicit Timer(Duration d);
  Timer(Runtime& rt, Duration d);
  Timer(Timer&& o) noexcept;
  Timer& operator=(Timer&& o) noexcept;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer();  // stops the timer

  const Chan<TimePoint>& channel() const noexcept { return ch_; }
  // Prevents the timer from firing. True if this call stopped it, false if it had already
  // fired or been stopped. Afterwards no value from before the call can be received.
  bool stop() noexcept;
  // Re-arms the timer to fire after d. True if it was active (not yet fired or stopped).
  // Afterwards no value from before the call can be received.
  bool reset(Duration d) noexcept;

 private:
  Timer() = default;
 public:
  // For the runtime's own layers: a Timer owning `t` (no channel: after_func).
  static Timer adopt(detail::ChanTimer* t) noexcept {
    Timer tm;
    tm.t_ = t;
    return tm;
  }

 private:
  void init(Runtime* rt, Duration d);
  detail::ChanTimer* t_ = nullptr;
  Chan<TimePoint> ch_;
};

// Go's time.Ticker: its channel receives the time every period (a slow receiver misses ticks
// instead of queueing them, as in Go). period must be > 0 (Error(invalid_argument)).
class Ticker {
 public:
  explicit Ticker(Duration period);
  Ticker(Runtime& rt, Duration period);
  Ticker(Ticker&& o) noexcept;
  Ticker& operator=(Ticker&& o) noexcept;
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;
  ~Ticker();

  const Chan<TimePoint>& channel() const noexcept { return ch_; }
  void stop() noexcept;
  // Changes the period and restarts the count from now. period must be > 0.
  void reset(Duration period);

 private:
  void init(Runtime* rt, Duration period);
  detail::ChanTimer* t_ = nullptr;
  Chan<TimePoint> ch_;
};

// Go's time.After: a channel that receives the time once, after d. The timer is freed once it
// fired (or with its runtime), whether or not anyone receives.
Chan<TimePoint> after(Duration d);
Chan<TimePoint> after(Runtime& rt, Duration d);

// Go's time.AfterFunc: after d, f runs in a new task of the timer's runtime. The returned
// Timer's stop() prevents that if it has not started; its channel is nil.
Timer after_func(Duration d, std::function<void()> f);
Timer after_func(Runtime& rt, Duration d, std::function<void()> f);

}  // namespace myriad
