// The runtime: procs (P), runtime-owned threads (M) and the tasks (G) they run.
//
//   myriad::Runtime rt;                       // procs = hardware threads (or MYRIAD_PROCS)
//   myriad::WaitGroup wg;
//   wg.add(2);
//   rt.spawn_detached([&] { work(); wg.done(); });
//   auto h = rt.spawn([&] { more(); wg.done(); }, {.label = "more"});
//   wg.wait();                                // a foreign thread blocks; a task would park
//   h.join();
//
// Lifetime: ~Runtime() (and shutdown()) first lets every runnable task run until nothing is
// runnable — tasks may still spawn children during that drain, foreign threads may not — and
// then stops the threads. Tasks still parked at that point can never be woken: they are
// abandoned without unwinding their stacks (like goroutines at Go's program exit), listed on
// stderr when Config::report_abandoned is set, and their join handles report Errc::abandoned.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "myriad/errors.hpp"
#include "myriad/task.hpp"

namespace myriad {

enum class GuardPages : uint8_t {
  // Guard pages below each stack while the process-wide budget allows (a quarter of
  // vm.max_map_count: each guard page costs two kernel mappings), the zero canary always.
  automatic = 0,
  // Only the canary at the bottom of each stack, checked at every switch.
  off = 1,
};

// The readiness notifier behind every Fd of a runtime (io.hpp).
enum class PollerKind : uint8_t {
  automatic = 0,  // MYRIAD_POLLER if set ("epoll", "io_uring", "auto"), else io_uring when the
                  // kernel allows it, else epoll
  epoll = 1,
  io_uring = 2,   // fails with Errc::not_supported when the kernel (or the build) has none
};
const char* to_string(PollerKind k) noexcept;

// What Config::on_long_running is told about a task the monitor asked to yield.
struct LongRunningTask {
  uint64_t task_id;
  std::string label;
  SourceSite site;
  std::chrono::nanoseconds running_for;  // since its last yield point, when noticed
};

enum class OnTaskException : uint8_t {
  log_and_continue = 0,  // print the failure (task id, label, site, what) to stderr
  abort_process = 1,     // print it, then std::abort()
  silent = 2,            // only the handler (if any) and the join handle see it
};

struct Config {
  // Number of procs (P). 0 = the MYRIAD_PROCS environment variable if set, else the number of
  // hardware threads hwloc reports.
  unsigned procs = 0;
  // How many of the procs are reserved for host threads that drive them through step() /
  // run_until(); the runtime starts procs - host_procs threads of its own. A runtime with
  // procs == host_procs runs tasks only while a host drives it (the browser's model).
  unsigned host_procs = 0;
  // Default stack size per task (the reserved size; only touched pages cost memory).
  std::size_t stack_size = 64 * 1024;
  // At most this many stack slots (live tasks, since slots are recycled) for the runtime;
  // spawn past it fails with Errc::no_memory. 0 = limited only by memory.
  std::size_t max_stacks = 0;
  GuardPages guard_pages = GuardPages::automatic;
  OnTaskException on_task_exception = OnTaskException::log_and_continue;
  // Called (on the failing task's thread, after the policy's log line) for every task that
  // ends with an exception. Must not throw.
  std::function<void(const TaskFailure&)> on_task_failure = nullptr;
  // Print the tasks abandoned at destruction to stderr.
  bool report_abandoned = true;
  // Go's "all goroutines are asleep - deadlock!": when a foreign thread is blocked in a myriad
  // wait, every task of every runtime is parked and no timer is pending, the parked tasks are
  // reported (on_deadlock, or stderr when it is null) and the blocked foreign thread's channel
  // operation or select fails with Errc::deadlock. Turn it off in programs where plain threads
  // that are not blocked in myriad feed the runtime later (the check cannot see them).
  // Runtimes with host procs are never considered asleep (a host may step them any time).
  bool detect_deadlock = true;
  // Receives the report (the task dump of the deadlocked runtime). Must not throw.
  std::function<void(const std::string& report)> on_deadlock = nullptr;

  // --- blocking calls, the monitor and I/O (blocking.hpp, io.hpp) ---
  // At most this many threads of the runtime's own (workers, threads in blocking calls,
  // threads of locked tasks). A blocking call or lock_to_thread that would need more fails
  // with Errc::thread_limit. Go's default (debug.SetMaxThreads) is 10,000.
  unsigned max_threads = 10000;
  // A blocking call that lasts longer than this has its proc handed to another thread.
  std::chrono::nanoseconds blocking_handoff = std::chrono::microseconds(20);
  // A task that runs this long without a yield point is asked to yield (0 = never).
  std::chrono::nanoseconds preempt_after = std::chrono::milliseconds(10);
  // Called on the monitor thread for every such request. Must not throw, must not block.
  std::function<void(const LongRunningTask&)> on_long_running = nullptr;
  PollerKind poller = PollerKind::automatic;
};

// Monotonic counters, summed over procs. Reads are racy snapshots (exact once quiescent).
struct Stats {
  uint64_t tasks_spawned = 0;
  uint64_t tasks_exited = 0;
  uint64_t tasks_failed = 0;       // exited with an exception
  uint64_t tasks_stolen = 0;       // tasks moved from one proc's queue to another's by stealing
  uint64_t steal_operations = 0;   // successful steal attempts
  uint64_t global_queue_takes = 0; // tasks taken from the global queue
  uint64_t global_queue_spills = 0;// times half a local queue moved to the global queue
  uint64_t yields = 0;
  uint64_t parks = 0;
  uint64_t thread_parks = 0;       // runtime threads that went to sleep on their futex
  uint64_t timers_fired = 0;
  uint64_t stacks_reserved = 0;    // stack slots carved (each is reused many times)
  uint64_t guarded_stacks = 0;     // of those, with a guard page
  uint64_t preempt_requests = 0;   // tasks the monitor asked to yield (Config::preempt_after)
  uint64_t preemptions = 0;        // of those requests, honoured at a yield point
  uint64_t blocking_calls = 0;     // enter_blocking calls by tasks
  uint64_t proc_handoffs = 0;      // procs handed from a blocked or locked thread to another
  uint64_t threads = 0;            // threads the runtime has now (workers and spares)
  uint64_t netpoll_ready = 0;      // I/O waits ended by the poller reporting readiness
};

struct StepResult {
  uint64_t dispatched = 0;  // task runs started during the step
  bool idle = false;        // returned because nothing was runnable (not because of the budget)
};

namespace detail {
class Scheduler;

// How to move, run and destroy a type-erased callable placed inside a task's stack slot.
struct ClosureOps {
  std::size_t size;
  std::size_t align;
  void (*relocate)(void* dst, void* src);  // constructs into dst from *src (move or copy)
  void (*invoke)(void* self);
  void (*destroy)(void* self) noexcept;
};

template <class F>
const ClosureOps* closure_ops() noexcept {
  using Fn = std::decay_t<F>;
  static const ClosureOps ops{
      sizeof(Fn), alignof(Fn),
      [](void* dst, void* src) {
        ::new (dst) Fn(std::forward<F>(*static_cast<std::remove_reference_t<F>*>(src)));
      },
      [](void* self) { (*static_cast<Fn*>(self))(); },
      [](void* self) noexcept { static_cast<Fn*>(self)->~Fn(); }};
  return &ops;
}
}  // namespace detail

class Runtime {
 public:
  explicit Runtime(Config config = {});
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Spawns f() as a new task. From a task of this runtime the new task goes to the spawner's
  // proc (runnext); from anywhere else to the global queue. Throws Error(closed) once shutdown
  // began (except from this runtime's own tasks) and Error(no_memory) when out of stacks
  // (memory, or Config::max_stacks).
  // Spawning from a task may yield: when the spawner's proc already has a full run queue
  // (256), the spawner moves to the back of the global queue so the queued tasks can run
  // (the substitute for the preemption Go would apply to a goroutine spawning in a loop).
  template <class F>
  JoinHandle spawn(F&& f, SpawnOptions opts = {},
                   SourceSite site = SourceSite::current()) {
    detail::JoinState* js = nullptr;
    void* src = const_cast<void*>(static_cast<const void*>(std::addressof(f)));
    throw_if(spawn_erased(detail::closure_ops<F>(), src, opts, site, &js));
    return JoinHandle(js);
  }
  // Same, without a join handle (no allocation beyond the pooled stack slot).
  template <class F>
  void spawn_detached(F&& f, SpawnOptions opts = {},
                      SourceSite site = SourceSite::current()) {
    void* src = const_cast<void*>(static_cast<const void*>(std::addressof(f)));
    throw_if(spawn_erased(detail::closure_ops<F>(), src, opts, site, nullptr));
  }

  // Lends the calling thread to the runtime: it drives one of the host procs until `budget` is
  // spent (0 = no budget) or nothing is runnable. Throws Error(busy) when no host proc is free (or when called
  // from inside a task).
  StepResult step(std::chrono::nanoseconds budget);
  // Like step() with no budget, checking `done` before every dispatch; returns when `done()` is
  // true or nothing is runnable.
  StepResult run_until(const std::function<bool()>& done);

  // Drains and stops (see the header comment). Idempotent; the destructor calls it.
  void shutdown();

  unsigned procs() const noexcept;
  unsigned host_procs() const noexcept;
  // The poller the runtime's Fds use: automatic until the first Fd (or after a failed start).
  PollerKind poller() const noexcept;
  Stats stats() const noexcept;
  const Config& config() const noexcept;

  // The runtime of the calling task, or null outside a task.
  static Runtime* current() noexcept;

  // The type-erased spawn behind the templates and the C ABI. On success, if join_out is not
  // null, *join_out receives a new join state owned by the caller.
  Errc spawn_erased(const detail::ClosureOps* ops, void* closure, const SpawnOptions& opts,
                    const SourceSite& site, detail::JoinState** join_out) noexcept;

  detail::Scheduler& scheduler() noexcept { return *sched_; }

 private:
  static void throw_if(Errc e) {
    if (e != Errc::ok) throw Error(e);
  }
  std::unique_ptr<detail::Scheduler> sched_;
};

// Spawns onto the current task's runtime (Go's `go f()`); throws Error(not_in_task) outside one.
template <class F>
JoinHandle go(F&& f, SpawnOptions opts = {},
              SourceSite site = SourceSite::current()) {
  Runtime* rt = Runtime::current();
  if (!rt) throw Error(Errc::not_in_task);
  return rt->spawn(std::forward<F>(f), opts, site);
}

}  // namespace myriad
