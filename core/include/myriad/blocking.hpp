// Calls that hold an OS thread: blocking system calls and foreign libraries (Go's
// entersyscall/exitsyscall and cgo), tasks locked to their thread (Go's LockOSThread), and
// the cooperative preemption point.
//
//   auto n = myriad::this_task::blocking([&] { return ::read(file_fd, buf, len); });
//
//   myriad::this_task::ThreadLock pin;   // the task runs only on this thread from here on
//   gl_context.make_current();           // thread-affine library state survives parks
//
// Blocking calls. A task inside enter_blocking()/leave_blocking() keeps its thread; its proc
// stays with it, so a short call costs two atomic stores. If the call lasts longer than
// Config::blocking_handoff (20 µs by default), the monitor thread hands the proc to another
// thread (an idle one, or a new one) so the proc's other tasks run meanwhile. On return the
// task takes its proc back if nobody took it, else any idle proc, else it queues on the
// global run queue and its thread goes idle. A runtime keeps at most Config::max_threads
// threads of its own; a call that would need more fails with Errc::thread_limit before the
// call is made. Outside a task (a foreign thread, a host step) these are no-ops.
//
// Preemption. The monitor notices a task that ran for more than Config::preempt_after (10 ms)
// without reaching a yield point and asks it to yield; the request is honoured at its next
// yield point: a channel operation, this_task::yield(), or preempt_point() — which a long
// loop can call (a load and a branch when nothing is pending). Each request is counted
// (Stats::preempt_requests) and reported through Config::on_long_running with the task's id,
// label and creation site. There is no asynchronous (signal) preemption: C and C++ code can be
// interrupted anywhere — inside malloc, holding a lock, in a library that is not
// async-signal-safe — and switching stacks from a signal handler there would corrupt it. Go
// can because its compiler emits safe points and stack maps; C++ compilers do not.
#pragma once

#include <type_traits>
#include <utility>

#include "myriad/errors.hpp"

namespace myriad::this_task {

// Marks the start of a call that may block the thread. Throws Error(thread_limit) when the
// runtime already runs Config::max_threads threads and every one of them is needed.
void enter_blocking();
// Marks its end; may move the task to another proc or queue it (it resumes on this thread).
void leave_blocking() noexcept;
// Non-throwing enter: ok or thread_limit.
Errc try_enter_blocking() noexcept;

// fn() between enter_blocking and leave_blocking (also when fn throws); returns fn's result.
template <class F>
decltype(auto) blocking(F&& fn) {
  enter_blocking();
  struct Leave {
    ~Leave() { leave_blocking(); }
  } leave;
  return std::forward<F>(fn)();
}

// Locks the calling task to its current OS thread: until the matching unlock it runs only
// there, and the thread runs no other task (its proc is handed to another thread while the
// task is parked). Calls nest (Go's LockOSThread counts). Errors: not_in_task outside a task;
// not_supported on a host-driven proc (the host owns that thread only for a step);
// thread_limit when the runtime cannot spare a thread. A task that ends while locked unlocks.
void lock_to_thread();
void unlock_from_thread() noexcept;  // one level; no-op when not locked
bool locked_to_thread() noexcept;

// RAII lock_to_thread.
class ThreadLock {
 public:
  ThreadLock() { lock_to_thread(); }
  ~ThreadLock() { unlock_from_thread(); }
  ThreadLock(const ThreadLock&) = delete;
  ThreadLock& operator=(const ThreadLock&) = delete;
};

// Yields if the monitor asked the current task to (see above); otherwise returns at once.
// No-op outside a task.
void preempt_point() noexcept;

}  // namespace myriad::this_task
