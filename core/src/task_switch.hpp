// The task side of a context switch: starting, resuming and leaving tasks.
#pragma once

#include "proc.hpp"
#include "task_impl.hpp"

namespace myriad::detail {

// Sets up t->ctx so that the first resume runs the task's closure on its own stack, whose
// usable top is `stack_top` (16-byte aligned, below the closure).
void prepare_task_context(Task* t, char* stack_top) noexcept;
// Records the calling thread's own stack as g0 for the sanitizers.
void init_g0_fiber(Machine* m) noexcept;
// g0 -> task; returns the task that switched back to g0 (m->action says why) — after direct
// task-to-task switches, not necessarily `t`.
Task* resume_task(Machine* m, Task* t) noexcept;
// From a task: moves the current task to the back of the global queue and runs others.
void switch_current_to_global_queue() noexcept;
// From a task whose machine lost its proc (leave_blocking): the task queues globally and the
// thread goes idle; returns when some machine resumes the task.
void switch_current_without_proc() noexcept;

}  // namespace myriad::detail
