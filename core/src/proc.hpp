// Procs (Go's P) and machines (Go's M).
//
// A Proc is the right to run tasks: a local run queue, a cache of free task slots and an id
// cache. A Machine is a thread that holds at most one Proc at a time and runs the scheduling
// loop on its own stack ("g0"). Runtime threads are Machines for their whole life; a host
// thread becomes a Machine for the duration of Runtime::step (principle 1).
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "context.hpp"
#include "futex.hpp"
#include "run_queue.hpp"
#include "timers.hpp"

namespace myriad::detail {

// Counters written only by the thread holding the proc (load+store, no locked RMW on the hot
// path), read by anyone as a racy snapshot.
struct ProcCounters {
  std::atomic<uint64_t> spawned{0}, exited{0}, failed{0}, stolen{0}, steal_ops{0};
  std::atomic<uint64_t> global_takes{0}, spills{0}, yields{0}, parks{0}, thread_parks{0};
  std::atomic<uint64_t> timers_fired{0}, blocking_calls{0}, preemptions{0};
  static void bump(std::atomic<uint64_t>& c, uint64_t by = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
};

struct alignas(64) Proc {
  uint32_t index = 0;
  bool host = false;             // reserved for host threads (step); never in the idle list
  std::atomic<bool> host_held{false};

  LocalRunQueue runq;
  // Dispatches; every 61st looks at the global queue first. Written by the owner only (load +
  // store), read by the monitor to see whether the proc reached a yield point lately.
  std::atomic<uint32_t> schedtick{0};
  uint32_t runnext_streak = 0;   // consecutive dispatches from runnext (bounded, see pop)

  // Free task slots of the default stack size (Go's p.gFree). Owner only.
  Task* free_tasks = nullptr;
  uint32_t nfree = 0;

  // Task ids handed out in batches (Go's goidcache). Owner only.
  uint64_t next_id = 0, id_end = 0;

  uint64_t rng = 0;              // xorshift state for victim order. Owner only.
  Proc* idle_link = nullptr;     // Scheduler::idle_procs_, under the scheduler lock

  // Timers armed by tasks running here (any thread may run the due ones; see timers.hpp).
  TimerHeap timers;

  // --- blocking calls and the monitor (Go's _Psyscall, sysmon's per-P record) ---
  // Non-zero while the owner's task is in a blocking call: a generation number unique to that
  // call. The owner takes the proc back on leaving with CAS(gen -> 0); the monitor retakes it
  // with CAS(gen -> 0) too — whoever wins owns the proc, and the loser sees a value that is not
  // its gen (later calls by a new owner use new generations, so there is no ABA).
  std::atomic<uint64_t> blocking{0};
  std::atomic<int64_t> blocking_since{0};  // CLOCK_MONOTONIC ns, written before `blocking`
  uint64_t blocking_gen = 0;               // owner only
  // Set by the monitor when the running task overstayed Config::preempt_after; cleared by
  // whoever honours it (preempt_point) or by the monitor once the proc moved on.
  std::atomic<bool> preempt{false};
  // The task running on this proc (null between tasks), for the monitor's report.
  std::atomic<Task*> current{nullptr};

  ProcCounters counters;

  uint32_t random() noexcept {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return static_cast<uint32_t>(rng);
  }
};

// What a task asked the scheduler to do when it switched to g0.
enum class SwitchAction : uint8_t { none, yield, yield_global, park, exit };

struct Machine {
  Scheduler* sched = nullptr;
  Proc* p = nullptr;
  Task* curg = nullptr;          // the task running on this thread, null on g0
  Task* prev = nullptr;          // during a direct task-to-task switch: the task being left
  fcontext_t sched_ctx = nullptr;// g0's saved context while a task runs
  SanitizerFiber g0_san;
  bool spinning = false;         // looking for work with a proc and nothing to run
  bool is_host = false;
  // A task g0 must run next, whatever the queues say: one pick_next_local popped but could
  // not switch to (it is locked to another thread), or one handed over with a proc.
  Task* pending = nullptr;
  // Set by pick_next_local when it found nothing it may switch to directly but g0 has
  // something to do (a due timer, the global queue's turn, a pending task): a yield must not
  // take "no next task" for "nothing else to run" then.
  bool want_g0 = false;
  // The task locked to this thread (lock_to_thread), if any. While it is not running, the
  // machine holds no proc and sleeps until someone hands it the task (and a proc).
  Task* locked_task = nullptr;
  // A task of this machine is inside a blocking call (enter_blocking), with this generation,
  // on `blocking_p`. Meanwhile m->p is null: the monitor may hand that proc to another thread
  // at any moment, and whatever the task does inside the call (a try_send readying a task, a
  // spawn) must then go where a foreign thread's would.
  uint64_t blocking_gen = 0;
  Proc* blocking_p = nullptr;
  // Inside an AMX section (kernels/amx_section.hpp): tile registers are live and belong to
  // this thread; any switch away from the task is a fatal error (switch_away checks).
  bool amx_section = false;
  // Blocked in the netpoller instead of on `parker`: wake with an interrupt (wake_machine).
  std::atomic<bool> polling{false};

  // Handed from the task to g0 across the switch.
  SwitchAction action = SwitchAction::none;
  void (*unlock)(void*) = nullptr;
  void* unlock_arg = nullptr;

  // Sleeping (runtime threads only): the waker sets nextp, then notifies.
  ThreadParker parker;
  Proc* nextp = nullptr;         // under the scheduler lock
  bool in_idle_list = false;     // under the scheduler lock
  std::thread thread;
};

// The Machine of the calling thread, or null. Deliberately out of line: a task may resume on
// another thread, and an inlined thread-local access could be cached across the switch.
Machine* current_machine() noexcept;
void set_current_machine(Machine* m) noexcept;

}  // namespace myriad::detail
