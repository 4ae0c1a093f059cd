#include "task_switch.hpp"

#include <ctime>
#include <cstdio>
#include <cstdlib>

#include "preempt.hpp"
#include "scheduler.hpp"

namespace myriad::detail {
namespace {

thread_local Machine* tls_machine = nullptr;

int64_t coarse_now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Called first thing whenever a task resumes, with what the jump that resumed it carried:
// data = the resuming machine; fctx = the context that jumped. If the machine has a `prev`,
// that was another task switching straight to this one: save its context and settle it
// (queue, park-unlock or recycle) now that it is off its stack — the same guarantee g0 gives
// (Go's mcall). Otherwise g0 resumed us and fctx is g0's context, kept for the next switch back.
Machine* on_resume(Task* t, transfer_t tr) noexcept {
  auto* m = static_cast<Machine*>(tr.data);
  if (Task* prev = m->prev) {
    sanitizer_after_switch(t->san, nullptr);
    m->prev = nullptr;
    prev->ctx = tr.fctx;
    m->sched->after_switch(m, prev);
  } else {
    m->sched_ctx = tr.fctx;
    sanitizer_after_switch(t->san, &m->g0_san);
  }
  return m;
}

// Leaves the current task `t` (running on `m`) for `action`. When the proc's own queue has a
// task ready, switches straight to it (one jump); otherwise goes through g0, which can look
// further (global queue, stealing) or put the thread to sleep. Returns, in the task, once some
// machine resumes it; that machine is returned — never use a Machine* from before the switch.
[[noreturn]] void fatal_switch_in_amx_section(Task* t) noexcept {
  std::fprintf(stderr,
               "myriad: fatal: task %llu \"%s\" (spawned at %s:%u) tried to park, yield or end "
               "inside an AMX kernel section; tile registers belong to the thread and would be "
               "lost or handed to another task\n",
               static_cast<unsigned long long>(t->id), t->label, t->site.file, t->site.line);
  std::abort();
}

Machine* switch_away(Task* t, Machine* m, SwitchAction action, Task* next) noexcept {
  if (m->amx_section) [[unlikely]] fatal_switch_in_amx_section(t);
  m->action = action;
  const bool dying = action == SwitchAction::exit;
  transfer_t tr;
  if (next) {
    m->prev = t;
    m->curg = next;
    next->state.store(TaskState::running, std::memory_order_relaxed);
    sanitizer_before_switch(t->san, next->san, dying);
    tr = jump_context(next->ctx, m);
  } else {
    sanitizer_before_switch(t->san, m->g0_san, dying);
    tr = jump_context(m->sched_ctx, m);
  }
  return on_resume(t, tr);
}

Machine* switch_away(Task* t, Machine* m, SwitchAction action) noexcept {
  return switch_away(t, m, action, m->is_host ? nullptr : m->sched->pick_next_local(m));
}

[[noreturn]] void fatal_park_in_blocking_call(Task* t) noexcept {
  std::fprintf(stderr,
               "myriad: fatal: task %llu \"%s\" (spawned at %s:%u) tried to park inside a "
               "blocking call (this_task::blocking / enter_blocking); a blocking section must "
               "not wait on channels, locks, timers or joins\n",
               static_cast<unsigned long long>(t->id), t->label, t->site.file, t->site.line);
  std::abort();
}

void report_failure(Task* t, std::exception_ptr ex) noexcept {
  Scheduler* s = t->sched;
  const Config& cfg = s->config();
  TaskFailure f{t->id, t->parent_id, t->label, t->site, "unknown exception", ex};
  try {
    std::rethrow_exception(ex);
  } catch (const std::exception& e) {
    f.what = e.what();
  } catch (...) {
  }
  if (cfg.on_task_exception != OnTaskException::silent) {
    std::fprintf(stderr,
                 "myriad: task %llu \"%s\" (spawned at %s:%u in %s, parent %llu) ended with an "
                 "exception: %s\n",
                 static_cast<unsigned long long>(f.task_id), f.label.c_str(), f.site.file,
                 f.site.line, f.site.function, static_cast<unsigned long long>(f.parent_id),
                 f.what.c_str());
  }
  if (cfg.on_task_failure) cfg.on_task_failure(f);
  if (cfg.on_task_exception == OnTaskException::abort_process) std::abort();
}

// Runs the closure and settles the outcome. Kept out of task_entry so that every frame that
// may hold a thread-local address is gone before the final switch.
[[gnu::noinline]] void run_task_body(Task* t) noexcept {
  uint32_t status = JoinState::ok;
  std::exception_ptr ex;
  try {
    t->ops->invoke(t->closure);
  } catch (...) {
    ex = std::current_exception();
    status = JoinState::failed;
    if (Machine* m = current_machine(); m && m->p) ProcCounters::bump(m->p->counters.failed);
    report_failure(t, ex);
  }
  t->ops->destroy(t->closure);
  if (JoinState* js = t->join) {
    t->join = nullptr;
    complete_join(js, status, std::move(ex));
  }
}

void task_entry(transfer_t tr) noexcept {
  auto* m = static_cast<Machine*>(tr.data);
  Task* t = m->curg;
  on_resume(t, tr);
  run_task_body(t);
  m = current_machine();
  if (m->blocking_gen) m->sched->leave_blocking(m);  // an enter_blocking without its leave
  while (t->lock_depth) m->sched->unlock_from_thread(m, t);  // ends locked: unlock
  switch_away(t, m, SwitchAction::exit);
  __builtin_unreachable();
}

}  // namespace

[[gnu::noinline]] Machine* current_machine() noexcept { return tls_machine; }
[[gnu::noinline]] void set_current_machine(Machine* m) noexcept { tls_machine = m; }

Task* current_task() noexcept {
  Machine* m = current_machine();
  return m ? m->curg : nullptr;
}

void prepare_task_context(Task* t, char* stack_top) noexcept {
  char* usable_bottom = t->stack_limit + kCanaryBytes;
  t->ctx = make_context(stack_top, static_cast<std::size_t>(stack_top - usable_bottom), task_entry);
#if MYRIAD_ASAN
  // A recycled slot still carries the poisoned redzones of its previous task's last frames
  // (that task left through a context switch, not a return): clear them.
  __asan_unpoison_memory_region(t->stack_limit, static_cast<std::size_t>(stack_top - t->stack_limit));
  t->san.fake_stack = nullptr;
  t->san.bottom = t->stack_limit;
  t->san.size = static_cast<std::size_t>(stack_top - t->stack_limit);
#endif
#if MYRIAD_TSAN
  // One TSan fiber per slot, kept while the slot is recycled (StackPool destroys it):
  // creating and destroying a fiber per task costs TSan milliseconds.
  if (!t->san.tsan_fiber) t->san.tsan_fiber = __tsan_create_fiber(0);
#endif
}

void init_g0_fiber([[maybe_unused]] Machine* m) noexcept {
#if MYRIAD_TSAN
  m->g0_san.tsan_fiber = __tsan_get_current_fiber();
#endif
}

Task* resume_task(Machine* m, Task* t) noexcept {
  sanitizer_before_switch(m->g0_san, t->san, false);
  transfer_t tr = jump_context(t->ctx, m);
  sanitizer_after_switch(m->g0_san, nullptr);
  // The task that came back is the machine's current one: after direct switches it need not
  // be the one resumed above.
  Task* back = m->curg;
  back->ctx = tr.fctx;
  return back;
}

void park_current(WaitReason reason, void (*unlock)(void*), void* arg) noexcept {
  Machine* m = current_machine();
  Task* t = m->curg;
  if (m->blocking_gen) fatal_park_in_blocking_call(t);
  t->wait_reason = reason;
  t->wait_since_ns = coarse_now_ns();
  m->unlock = unlock;
  m->unlock_arg = arg;
  switch_away(t, m, SwitchAction::park);
  t->wait_reason = WaitReason::none;
}

void switch_current_to_global_queue() noexcept {
  Machine* m = current_machine();
  switch_away(m->curg, m, SwitchAction::yield_global);
}

void switch_current_without_proc() noexcept {
  Machine* m = current_machine();
  // m->p is null: pick_next_local declines, g0's after_switch queues the task globally.
  switch_away(m->curg, m, SwitchAction::yield_global);
}

}  // namespace myriad::detail

namespace myriad::this_task {

bool in_task() noexcept { return detail::current_task() != nullptr; }

uint64_t id() noexcept {
  detail::Task* t = detail::current_task();
  return t ? t->id : 0;
}

void yield() {
  detail::Machine* m = detail::current_machine();
  if (!m || !m->curg) throw Error(Errc::not_in_task, "myriad::this_task::yield outside a task");
  if (m->blocking_gen) return;  // inside a blocking call the task keeps its thread
  // A yield honours a pending preemption request: it is one.
  if (detail::g_preempt_pending.load(std::memory_order_relaxed)) m->sched->take_preempt_request(m);
  // A host-driven proc always goes through g0, which checks the host's budget.
  detail::Task* next = m->is_host ? nullptr : m->sched->pick_next_local(m);
  if (!next && !m->is_host && !m->want_g0 && !m->sched->global_queue_nonempty() &&
      !(m->locked_task && !m->p->runq.empty())) {
    // Nothing else can run on this proc: no switch (other procs have their own threads).
    detail::ProcCounters::bump(m->p->counters.yields);
    return;
  }
  detail::switch_away(m->curg, m, detail::SwitchAction::yield, next);
}

}  // namespace myriad::this_task
