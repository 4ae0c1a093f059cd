// this_task's blocking calls, thread locks and preemption point (myriad/blocking.hpp). The
// mechanisms live in handoff.cpp (procs changing threads) and monitor.cpp (retakes, requests).
#include "myriad/blocking.hpp"

#include "preempt.hpp"
#include "scheduler.hpp"
#include "task_switch.hpp"

namespace myriad::detail {

std::atomic<uint32_t> g_preempt_pending{0};

void preempt_slow() noexcept {
  Machine* m = current_machine();
  if (!m || !m->curg || !m->p || m->blocking_gen) return;
  if (!m->sched->take_preempt_request(m)) return;
  switch_current_to_global_queue();  // Go puts a preempted goroutine on the global queue
}

bool Scheduler::take_preempt_request(Machine* m) noexcept {
  Proc* p = m->p;
  if (!p->preempt.load(std::memory_order_relaxed) ||
      !p->preempt.exchange(false, std::memory_order_acq_rel))
    return false;
  g_preempt_pending.fetch_sub(1, std::memory_order_relaxed);
  ProcCounters::bump(p->counters.preemptions);
  return true;
}

}  // namespace myriad::detail

namespace myriad::this_task {
using detail::current_machine;
using detail::Machine;

Errc try_enter_blocking() noexcept {
  Machine* m = current_machine();
  if (!m || !m->curg || m->blocking_gen) return Errc::ok;  // foreign thread, or nested
  return m->sched->enter_blocking(m);
}

void enter_blocking() {
  if (Errc e = try_enter_blocking(); e != Errc::ok) throw Error(e);
}

void leave_blocking() noexcept {
  Machine* m = current_machine();
  if (!m || !m->curg || !m->blocking_gen) return;
  m->sched->leave_blocking(m);
}

void lock_to_thread() {
  Machine* m = current_machine();
  if (!m || !m->curg) throw Error(Errc::not_in_task, "myriad::this_task::lock_to_thread outside a task");
  if (Errc e = m->sched->lock_to_thread(m, m->curg); e != Errc::ok) throw Error(e);
}

void unlock_from_thread() noexcept {
  Machine* m = current_machine();
  if (!m || !m->curg) return;
  m->sched->unlock_from_thread(m, m->curg);
}

bool locked_to_thread() noexcept {
  Machine* m = current_machine();
  return m && m->curg && m->curg->lock_depth > 0;
}

void preempt_point() noexcept { detail::preempt_check(); }

}  // namespace myriad::this_task
