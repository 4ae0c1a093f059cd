// Procs changing threads (Go's startm / handoffp / stopm / startlockedm / stoplockedm):
// blocking calls, tasks locked to their thread, and the spare threads both need.
//
// Invariants:
//  - A proc is held by exactly one of: a machine (m->p), the idle list, a machine's `nextp`
//    (handed over, not yet taken), or nobody during a monitor retake between its CAS and
//    handoff_proc — which ends in one of the others.
//  - A machine is in exactly one of: running a task or g0 with a proc; in a blocking call
//    without a proc (its proc was retaken); idle (idle_machines_); waiting for its locked task
//    (locked_waiting_). Machines are never destroyed before shutdown: a spare thread started
//    for a handoff stays, idle, for the next one (Go keeps its Ms too).
//  - Threads of the runtime never exceed Config::max_threads: each task in a blocking call or
//    locked to a thread may need one beyond the procs', so enter_blocking / lock_to_thread
//    refuse (Errc::thread_limit) when procs + blocking + locked would pass the limit.
#include <algorithm>
#include <cstdio>

#include "monitor.hpp"
#include "scheduler.hpp"
#include "task_switch.hpp"

namespace myriad::detail {

Machine* Scheduler::new_machine_locked(Proc* p, bool spinning) {
  if (stopping_.load(std::memory_order_acquire)) return nullptr;
  if (nthreads_.load(std::memory_order_relaxed) >= config_.max_threads) return nullptr;
  try {
    auto m = std::make_unique<Machine>();
    m->sched = this;
    m->p = p;
    m->spinning = spinning;
    Machine* mp = m.get();
    workers_.push_back(std::move(m));
    try {
      mp->thread = std::thread([this, mp] { worker_main(mp); });
    } catch (...) {
      workers_.pop_back();
      return nullptr;
    }
    nthreads_.fetch_add(1, std::memory_order_relaxed);
    return mp;
  } catch (...) {
    return nullptr;
  }
}

bool Scheduler::start_machine(Proc* p, bool spinning) noexcept {
  Machine* w = nullptr;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (!idle_machines_.empty()) {
      w = idle_machines_.back();
      idle_machines_.pop_back();
      w->in_idle_list = false;
      w->nextp = p;
      w->spinning = spinning;
    } else if (new_machine_locked(p, spinning)) {
      return true;
    } else {
      // No thread to be had: the proc waits in the idle list; its queue stays stealable and a
      // thread that frees up takes it.
      proc_idle_put_locked(p);
      if (spinning) nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
      return false;
    }
  }
  wake_machine(w);
  return true;
}

void Scheduler::handoff_proc(Proc* p) noexcept {
  proc_handoffs_.fetch_add(1, std::memory_order_relaxed);
  // Work to do: a thread for it now.
  if (!p->runq.empty() || gq_size_.load(std::memory_order_acquire) > 0) {
    start_machine(p, false);
    return;
  }
  // Nobody is looking for work: let this proc look (Go: "no local work, check that there are
  // no spinning/idle M's, otherwise our help is not required").
  uint32_t zero = 0;
  if (nmspinning_.load(std::memory_order_relaxed) == 0 &&
      npidle_.load(std::memory_order_relaxed) == 0 &&
      nmspinning_.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) {
    start_machine(p, true);
    return;
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    proc_idle_put_locked(p);
  }
  // Work pushed meanwhile saw a non-idle proc and woke nobody: re-check (the Dekker pairing of
  // the idle protocol, scheduler.hpp).
  if (any_queue_nonempty()) wake_idle_if_needed();
  // Timers of this proc are watched by the idle timer watcher (it looks at every heap).
  if (p->timers.next_when.load(std::memory_order_seq_cst) != kNever) {
    timer_armed(p->timers.next_when.load(std::memory_order_relaxed));
  }
}

bool Scheduler::stop_machine(Machine* m) {
  {
    std::lock_guard<std::mutex> g(mu_);
    if (stopping_.load(std::memory_order_acquire)) return false;
    // A proc may be free already (the one we lost may have come back to the idle list).
    if (Proc* p = proc_idle_get_locked()) {
      m->p = p;
      return true;
    }
    idle_machines_.push_back(m);
    m->in_idle_list = true;
  }
  return sleep_idle(m);
}

// ---------------------------------------------------------------------------------------------
// Locked tasks

bool Scheduler::wait_for_locked_task(Machine* m, Task** out) {
  Task* t = m->locked_task;
  // The task is parked, or queued somewhere (a yield): either way not running. Give the proc
  // away and sleep until a machine that picks the task hands it (and its proc) to us.
  Proc* p = m->p;
  m->p = nullptr;
  {
    std::lock_guard<std::mutex> g(mu_);
    locked_waiting_.push_back(m);
  }
  if (p) handoff_proc(p);
  for (;;) {
    m->parker.wait();
    std::lock_guard<std::mutex> g(mu_);
    if (m->nextp && m->pending == t) {
      m->p = m->nextp;
      m->nextp = nullptr;
      m->pending = nullptr;
      locked_waiting_.erase(std::find(locked_waiting_.begin(), locked_waiting_.end(), m));
      *out = t;
      return true;
    }
    if (stopping_.load(std::memory_order_acquire)) {
      locked_waiting_.erase(std::find(locked_waiting_.begin(), locked_waiting_.end(), m));
      return false;
    }
  }
}

void Scheduler::hand_to_locked(Machine* m, Task* t) noexcept {
  Machine* lm = t->locked_m;
  if (m->is_host) {
    // A host proc belongs to its host's step; a runtime thread will pick the task up.
    global_put(t);
    wake_idle_if_needed();
    return;
  }
  Proc* p = m->p;
  m->p = nullptr;
  if (m->spinning) stop_spinning(m);
  proc_handoffs_.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> g(mu_);
    lm->nextp = p;
    lm->pending = t;
  }
  lm->parker.notify();
  // m has no proc now: find_runnable parks it (stop_machine) until one is handed to it.
}

Errc Scheduler::lock_to_thread(Machine* m, Task* t) noexcept {
  if (m->is_host) return Errc::not_supported;
  if (t->lock_depth > 0) {
    ++t->lock_depth;
    return Errc::ok;
  }
  uint32_t extra = nlocked_.fetch_add(1, std::memory_order_relaxed) + 1 +
                   nblocking_.load(std::memory_order_relaxed);
  if (procs() - nhost_ + extra > config_.max_threads) {
    nlocked_.fetch_sub(1, std::memory_order_relaxed);
    return Errc::thread_limit;
  }
  t->lock_depth = 1;
  t->locked_m = m;
  m->locked_task = t;
  return Errc::ok;
}

void Scheduler::unlock_from_thread(Machine* m, Task* t) noexcept {
  if (t->lock_depth == 0) return;
  if (--t->lock_depth > 0) return;
  t->locked_m = nullptr;
  m->locked_task = nullptr;
  nlocked_.fetch_sub(1, std::memory_order_relaxed);
}

// ---------------------------------------------------------------------------------------------
// Blocking calls

Errc Scheduler::enter_blocking(Machine* m) noexcept {
  Proc* p = m->p;
  ProcCounters::bump(p->counters.blocking_calls);
  if (m->is_host) return Errc::ok;  // a host's proc is its own; nothing to hand off
  uint32_t extra = nblocking_.fetch_add(1, std::memory_order_relaxed) + 1 +
                   nlocked_.load(std::memory_order_relaxed);
  if (procs() - nhost_ + extra > config_.max_threads) {
    nblocking_.fetch_sub(1, std::memory_order_relaxed);
    return Errc::thread_limit;
  }
  const uint64_t gen = ++p->blocking_gen;
  m->blocking_gen = gen;
  m->blocking_p = p;
  m->p = nullptr;
  p->current.store(nullptr, std::memory_order_relaxed);
  p->blocking_since.store(monotonic_now_ns(), std::memory_order_relaxed);
  p->blocking.store(gen, std::memory_order_seq_cst);
  monitor_->blocking_call_started();
  return Errc::ok;
}

void Scheduler::leave_blocking(Machine* m) noexcept {
  const uint64_t gen = m->blocking_gen;
  if (gen == 0) return;  // a host's call
  m->blocking_gen = 0;
  Proc* p = m->blocking_p;
  m->blocking_p = nullptr;
  nblocking_.fetch_sub(1, std::memory_order_relaxed);
  uint64_t expected = gen;
  if (p->blocking.compare_exchange_strong(expected, 0, std::memory_order_acq_rel)) {
    m->p = p;  // nobody took it: carry on (the common, cheap case)
    p->current.store(m->curg, std::memory_order_relaxed);
    return;
  }
  // The monitor retook the proc (handed to another thread). Take any idle proc (Go's
  // exitsyscallfast_pidle); with none, the task queues and this thread goes idle.
  {
    std::lock_guard<std::mutex> g(mu_);
    m->p = proc_idle_get_locked();
  }
  if (m->p) {
    m->p->current.store(m->curg, std::memory_order_relaxed);
    return;
  }
  switch_current_without_proc();  // after_switch (no proc) queues it; resumes on some proc
}

}  // namespace myriad::detail
