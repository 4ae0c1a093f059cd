// The task dump (principle 7, "a dump of all tasks must be one call away"): Go's goroutine dump
// and its pprof goroutine profile with debug=1 grouping.
//
//   for (const myriad::TaskInfo& t : myriad::list_tasks(rt)) ...   // structured
//   std::fputs(myriad::dump_tasks(rt).c_str(), stderr);             // one runtime, as text
//   myriad::enable_task_dump_on_signal();   // `kill -QUIT <pid>` prints every runtime's tasks
//
// A dump is a snapshot taken while the tasks keep running: nothing is stopped. Every task listed
// was alive with exactly the fields shown at some moment during the walk (a slot recycled while
// it was read is re-read or dropped, never shown half old, half new), but two tasks may have
// been read at different moments: a task spawned or ended during the walk may or may not be
// listed. The walk holds each stack pool's lock while it reads that pool's slots, so spawns
// that need a fresh batch of slots wait for it (a few milliseconds per million tasks).
//
// The text format is meant for people, not parsers (use list_tasks):
//
//   myriad runtime 0x5581d0c0: 4 procs (0 host), 5 tasks: 1 running, 0 runnable, 4 waiting
//
//   3 tasks waiting on wait group, created at server.cpp:57 in accept_loop
//       task 12 "conn-1", parent 2, waiting 1.4s
//       ...                                       (at most 10 per group, then "... and N more")
//
// Groups are (creation site, state, wait reason), largest first.
#pragma once

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "myriad/task.hpp"

namespace myriad {

class Runtime;

// A label is truncated to this many bytes when the task is spawned (SpawnOptions::label).
inline constexpr std::size_t kMaxTaskLabel = 63;

// One live task as the dump saw it. Plain data, so a C wrapper can copy it into a C struct
// (the label into a char[kMaxTaskLabel + 1]).
struct TaskInfo {
  uint64_t id = 0;
  uint64_t parent_id = 0;   // 0: spawned from outside any task (a foreign thread, a host)
  std::string label;        // empty when the task was spawned without one
  SourceSite site;          // where it was spawned; the strings are the spawner's (static) ones
  TaskState state = TaskState::runnable;      // runnable, running or waiting
  WaitReason wait_reason = WaitReason::none;  // none unless waiting
  // How long it has been parked: 0 unless waiting. Measured with CLOCK_MONOTONIC_COARSE (the
  // clock a park reads, for its cost), so its resolution is the kernel tick: 1-4 ms.
  std::chrono::nanoseconds waited{0};
};

// Every live task (runnable, running or waiting) of `rt`, sorted by id. Callable from any
// thread, including one of rt's own tasks.
std::vector<TaskInfo> list_tasks(Runtime& rt);

// list_tasks(rt) as text: a summary line (procs, how many tasks in each state), then one group
// per (creation site, state, wait reason), largest first; in each group the first 10 tasks by
// id with their label, parent and, when waiting, for how long.
std::string dump_tasks(Runtime& rt);

// dump_tasks() of every live runtime, oldest first, between a header and an end line. Must not
// be called while the calling thread creates or destroys a runtime (it holds the registry of
// runtimes while it walks them).
std::string dump_all_tasks();

// Writes dump_all_tasks() to fd as one whole text (partial writes and EINTR are retried).
// Errors of the write are ignored: this is a diagnostic. Used by the signal path below.
void write_task_dump(int fd) noexcept;

// From now on, receiving `signo` writes dump_all_tasks() to stderr (Go prints its goroutines on
// SIGQUIT; unlike Go, the process then goes on running). Formatting allocates and takes locks,
// which a signal handler must not do, so the handler only posts a semaphore (async-signal-safe)
// and a background thread started here — with every signal blocked — does the dump. Signals
// that arrive while a dump is being written are coalesced into one more dump.
// The previous disposition of `signo` is saved and replaced (not chained). Calling it again
// while enabled moves the dump to the new signal (restoring the old signal's disposition).
// Throws Error(invalid_argument) for a signal that cannot be caught (SIGKILL, SIGSTOP, out of
// range) or one the runtime itself needs (SIGSEGV, used by the stack guard).
void enable_task_dump_on_signal(int signo = SIGQUIT);

// Restores the disposition saved by enable_task_dump_on_signal() and stops the background
// thread, after it has written any dump already requested. Does nothing when not enabled.
// Must not be called from a signal handler.
void disable_task_dump_on_signal();

}  // namespace myriad
