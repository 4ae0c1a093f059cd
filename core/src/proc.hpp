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
  std::atomic<uint64_t> timers_fired{0};
  static void bump(std::atomic<uint64_t>& c, uint64_t by = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
};

struct alignas(64) Proc {
  uint32_t index = 0;
  bool host = false;             // reserved for host threads (step); never in the idle list
  std::atomic<bool> host_held{false};

  LocalRunQueue runq;
  uint32_t schedtick = 0;        // dispatches; every 61st looks at the global queue first
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
