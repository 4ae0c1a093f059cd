// The monitor thread (monitor.hpp).
#include "monitor.hpp"

#include <pthread.h>

#include <algorithm>
#include <chrono>

#include "preempt.hpp"
#include "scheduler.hpp"

namespace myriad::detail {
namespace {

constexpr int64_t kMinDelayNs = 20'000;         // Go's sysmon: 20 µs ...
constexpr int64_t kMaxDelayNs = 10'000'000;     // ... doubling up to 10 ms
constexpr unsigned kIdleRoundsBeforeBackoff = 50;
constexpr int64_t kForcePollAfterNs = 10'000'000;  // poll if nobody has for 10 ms
// A proc whose blocking call has no work waiting behind it is left alone this long (Go: the
// call may end soon, and idle procs can take new work meanwhile).
constexpr int64_t kIdleRetakeAfterNs = 10'000'000;

}  // namespace

Monitor::Monitor(Scheduler* s) : s_(s), watch_(s->procs()) {
  thread_ = std::thread([this] { run(); });
}

Monitor::~Monitor() { stop(); }

void Monitor::stop() noexcept {
  if (stop_.exchange(true, std::memory_order_seq_cst)) return;
  parker_.notify();
  if (thread_.joinable()) thread_.join();
}

bool Monitor::all_idle() const noexcept {
  if (s_->nblocking_.load(std::memory_order_seq_cst) != 0) return false;
  if (s_->npidle_.load(std::memory_order_seq_cst) != s_->procs() - s_->nhost_) return false;
  for (const auto& p : s_->procs_)
    if (p->host && p->host_held.load(std::memory_order_seq_cst)) return false;
  return true;
}

void Monitor::run() {
  pthread_setname_np(pthread_self(), "myriad-monitor");
  int64_t delay = kMinDelayNs;
  unsigned idle_rounds = 0;
  while (!stop_.load(std::memory_order_acquire)) {
    if (all_idle()) {
      // Deep sleep. Publish, then re-check (wakers change the state, then read `sleeping_`).
      sleeping_.store(true, std::memory_order_seq_cst);
      if (all_idle() && !stop_.load(std::memory_order_acquire)) parker_.wait();
      sleeping_.store(false, std::memory_order_seq_cst);
      parker_.try_consume();
      delay = kMinDelayNs;
      idle_rounds = 0;
      for (ProcWatch& w : watch_) w.valid = false;
      continue;
    }
    parker_.wait_until(monotonic_now_ns() + delay);
    if (stop_.load(std::memory_order_acquire)) break;
    const int64_t now = monotonic_now_ns();
    bool acted = retake_blocked_procs(now);
    poll_network(now);
    check_long_running(now);
    if (acted) {
      idle_rounds = 0;
      delay = kMinDelayNs;
    } else if (++idle_rounds > kIdleRoundsBeforeBackoff) {
      delay = std::min(delay * 2, kMaxDelayNs);
    }
  }
}

// Go's retake for _Psyscall procs.
bool Monitor::retake_blocked_procs(int64_t now) noexcept {
  if (s_->nblocking_.load(std::memory_order_relaxed) == 0) return false;
  const int64_t after = s_->config_.blocking_handoff.count();
  bool acted = false;
  for (auto& up : s_->procs_) {
    Proc* p = up.get();
    const uint64_t gen = p->blocking.load(std::memory_order_acquire);
    if (gen == 0) continue;
    const int64_t since = p->blocking_since.load(std::memory_order_relaxed);
    if (now - since < after) continue;
    // Nothing queued behind the call and other procs can take new work: wait longer.
    const bool work = !p->runq.empty() || s_->global_queue_nonempty();
    const bool helpers = s_->npidle_.load(std::memory_order_relaxed) +
                             s_->nmspinning_.load(std::memory_order_relaxed) > 0;
    if (!work && helpers && now - since < kIdleRetakeAfterNs) continue;
    uint64_t expected = gen;
    if (!p->blocking.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) continue;
    s_->handoff_proc(p);
    acted = true;
  }
  return acted;
}

void Monitor::poll_network(int64_t now) noexcept {
  Netpoll* np = s_->netpoll_if_started();
  if (!np || !np->has_waiters()) return;
  const int64_t last = np->last_poll();
  if (last == 0 || now - last < kForcePollAfterNs) return;
  TaskList ready;
  if (np->poll(0, ready) && ready.head) s_->inject_polled(nullptr, ready);
}

void Monitor::check_long_running(int64_t now) {
  const int64_t limit = s_->config_.preempt_after.count();
  if (limit <= 0) return;
  for (std::size_t i = 0; i < watch_.size(); ++i) {
    Proc* p = s_->procs_[i].get();
    ProcWatch& w = watch_[i];
    Task* cur = p->current.load(std::memory_order_relaxed);
    if (!cur || p->blocking.load(std::memory_order_relaxed) != 0) {
      w.valid = false;
      continue;
    }
    const uint64_t tick = p->schedtick.load(std::memory_order_relaxed) +
                          p->counters.yields.load(std::memory_order_relaxed);
    if (!w.valid || tick != w.tick) {
      w.valid = true;
      w.tick = tick;
      w.since = now;
      // The proc moved on: a request it did not honour is moot.
      if (p->preempt.load(std::memory_order_relaxed) &&
          p->preempt.exchange(false, std::memory_order_acq_rel))
        g_preempt_pending.fetch_sub(1, std::memory_order_relaxed);
      continue;
    }
    if (now - w.since < limit) continue;
    const int64_t ran = now - w.since;
    w.since = now;  // ask again after another period if it still has not yielded
    if (!p->preempt.exchange(true, std::memory_order_acq_rel))
      g_preempt_pending.fetch_add(1, std::memory_order_relaxed);
    s_->preempt_requests_.fetch_add(1, std::memory_order_relaxed);
    if (s_->config_.on_long_running) {
      LongRunningTask info{0, {}, {}, std::chrono::nanoseconds(ran)};
      try {
        if (read_task_identity(cur, &info.task_id, &info.label, &info.site))
          s_->config_.on_long_running(info);
      } catch (...) {
        // The handler must not throw (runtime.hpp); a failed report is dropped.
      }
    }
  }
}

}  // namespace myriad::detail
