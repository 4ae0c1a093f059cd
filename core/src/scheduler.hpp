// The scheduler: Go's G-M-P design (see docs/ARCHITECTURE.md for the whole picture).
//
// Lock discipline: `mu_` (Go's sched.lock) guards the global run queue, the idle proc list and
// the idle machine list. It is never held across a context switch or a futex sleep. The hot
// paths — spawn and ready onto the local queue, yield, dispatch — take no lock.
//
// Wake-up protocol (why no wake-up is lost and no herd is woken):
//  - Whoever makes work runnable (push to a local or the global queue) then executes a
//    full barrier (a seq_cst fence, or the seq_cst exchange of runnext that pushed it) and
//    calls wake_idle_if_needed(): if a proc is idle and nobody is spinning,
//    one sleeping machine is handed an idle proc and woken, marked spinning. At most one
//    machine spins per wake, so there is no herd.
//  - A machine that finds nothing registers itself idle *together with* its proc (under mu_),
//    fences, and only then re-checks every queue. Either the producer saw the idle proc
//    (and wakes someone) or the re-check sees the work: the two fences order the producer's
//    push-then-read against the sleeper's publish-then-read (Dekker).
//  - A spinning machine that finds work stops spinning and, if it was the last spinner, wakes
//    another one, so a burst of work fans out one thread at a time (Go's resetspinning).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "netpoll.hpp"
#include "proc.hpp"
#include "stack_pool.hpp"
#include "task_impl.hpp"

namespace myriad::detail {

class Scheduler {
 public:
  Scheduler(Runtime* owner, Config config);
  ~Scheduler();

  Runtime* runtime() const noexcept { return owner_; }
  const Config& config() const noexcept { return config_; }
  unsigned procs() const noexcept { return static_cast<unsigned>(procs_.size()); }
  unsigned host_procs() const noexcept { return nhost_; }

  Errc spawn(const ClosureOps* ops, void* closure, const SpawnOptions& opts,
             const SourceSite& site, JoinState** join_out) noexcept;

  // Makes a parked task runnable. From a task or host step of this runtime it goes to the
  // caller's runnext; from anywhere else to the global queue. `handoff`: the caller is a
  // rendezvous (an unbuffered channel) whose waker almost always blocks right after — then a
  // task put into an empty runnext wakes no idle thread (see the definition).
  void ready(Task* t, bool handoff = false) noexcept;
  // Makes a list of parked tasks (linked through Task::next) runnable at once: into the
  // caller's proc as ready() would, or — from outside — into the global queue under one lock,
  // waking idle procs for them.
  void ready_batch(TaskList& tasks) noexcept;  // leaves `tasks` empty

  StepResult step(std::chrono::nanoseconds budget, const std::function<bool()>* done);
  void shutdown();
  Stats stats() const noexcept;
  // Calls fn for every slot that holds a task (state != free), parked or not. A racy walk:
  // tasks may start or exit meanwhile, so fn reads what it needs through Task::state first.
  void for_each_task(const std::function<void(Task*)>& fn);

  bool global_queue_nonempty() const noexcept {
    return gq_size_.load(std::memory_order_relaxed) != 0;
  }

  // --- timers (timers.hpp) ---
  // The heap a new timer goes to: the calling thread's proc if it is one of ours, else one of
  // the runtime-owned procs in turn.
  TimerHeap& heap_for_new_timer() noexcept;
  // Called after a timer due at `when` was armed: makes sure some thread will run it in time
  // (the idle timer watcher is woken if it sleeps past `when`; with no watcher, an idle
  // thread is woken to become one).
  void timer_armed(int64_t when) noexcept;
  // True if any proc's heap holds a timer.
  bool any_timer_pending() const noexcept;

  // --- I/O (netpoll.hpp) ---
  // The runtime's netpoller, started on first use (null and *err set if it cannot start).
  Netpoll* netpoll(Errc* err) noexcept;
  Netpoll* netpoll_if_started() const noexcept { return netpoll_.load(std::memory_order_acquire); }
  PollerKind poller_kind() const noexcept;
  // The netpoller's waiter count went from 0 to 1: make sure some thread will poll.
  void netpoll_waiting() noexcept;

  // --- blocking calls, thread locks, preemption (blocking.hpp, monitor.cpp) ---
  Errc enter_blocking(Machine* m) noexcept;
  void leave_blocking(Machine* m) noexcept;
  Errc lock_to_thread(Machine* m, Task* t) noexcept;
  void unlock_from_thread(Machine* m, Task* t) noexcept;
  // Honours a pending preemption request of m's proc (yields); false if there was none.
  bool take_preempt_request(Machine* m) noexcept;
  uint64_t preempt_requests() const noexcept {
    return preempt_requests_.load(std::memory_order_relaxed);
  }

  // --- the deadlock check (deadlock.hpp) ---
  // Detection on, no host procs, every thread asleep without a proc, nothing queued, no timer.
  bool asleep_for_good() const noexcept;
  std::size_t parked_tasks();

  // --- used by the task side (task_switch.cpp) ---
  // The next task of m's own proc (runnext, then the ring), if one can run now without g0's
  // wider search; counts as a dispatch. Null when the global queue is due a look (fairness).
  Task* pick_next_local(Machine* m) noexcept;
  // Settles a task that just switched away (yield: requeue; park: mark waiting, unlock;
  // exit: recycle). Runs on g0 or, after a direct switch, on the next task's stack.
  void after_switch(Machine* m, Task* t);
  void dispatch_loop(Machine* m, const std::chrono::steady_clock::time_point* deadline,
                     const std::function<bool()>* done, StepResult* result);

 private:
  friend class Monitor;
  struct Budget;
  void worker_main(Machine* m);
  bool find_runnable(Machine* m, const Budget& budget, Task** out);
  void execute(Machine* m, Task* t);
  void free_task(Proc* p, Task* t) noexcept;

  Task* alloc_task(Proc* p, std::size_t stack_size) noexcept;
  StackPool* pool_for(std::size_t stack_size) noexcept;
  uint64_t next_task_id(Proc* p) noexcept;

  // Queues.
  void runq_put(Proc* p, Task* t, bool next) noexcept;
  bool spill_half(Proc* p, Task* t) noexcept;
  void global_put(Task* t) noexcept;
  void global_put_batch_locked(TaskList& tasks) noexcept;  // leaves `tasks` empty
  Task* global_get_locked(Proc* p, uint32_t max) noexcept;
  Task* steal_work(Proc* p) noexcept;
  Task* pop_local(Proc* p) noexcept;

  // Idle procs and machines (mu_ held).
  void proc_idle_put_locked(Proc* p) noexcept;
  Proc* proc_idle_get_locked() noexcept;
  void wake_idle_if_needed(bool pushed_with_seq_cst_rmw = false) noexcept;
  void wake_one() noexcept;
  void stop_spinning(Machine* m) noexcept;
  bool any_queue_nonempty() const noexcept;
  // Runs the due timers of every proc's heap (p's own first). True if any fired.
  bool run_timers(Proc* p, bool all_procs) noexcept;
  int64_t earliest_timer() const noexcept;
  // The idle loop of a runtime thread without a proc (see find_runnable). Returns false when
  // the runtime stops; true once m holds a proc again.
  bool sleep_idle(Machine* m);
  bool quiescent_locked() const noexcept;
  // Sleeps as the timer watcher and, when I/O waits, in the netpoller; until `deadline`.
  void watch(Machine* m, int64_t deadline);
  // Readies tasks the netpoller returned. With a proc (m->p): the first comes back to run,
  // the rest go to its queue. Without: all go to the global queue (returns null).
  Task* inject_polled(Machine* m, TaskList& tasks) noexcept;
  Task* poll_network_nonblocking(Machine* m) noexcept;
  // Wakes a sleeping machine, wherever it sleeps (its parker or the netpoller).
  void wake_machine(Machine* w) noexcept;

  // --- procs changing hands (Go's startm/handoffp/stopm) ---
  // Gives p to a machine: an idle one, else a new thread (up to Config::max_threads). With no
  // thread to be had, p goes to the idle list (its work stays stealable) and false returns.
  bool start_machine(Proc* p, bool spinning) noexcept;
  // A proc whose thread stopped running tasks (blocking call retaken, locked task parked):
  // to a machine if it has work or someone must look for work, else to the idle list.
  void handoff_proc(Proc* p) noexcept;
  // m has no proc (its task left a blocking call and found none): registers m idle and
  // sleeps until it is handed one. False when the runtime stops.
  bool stop_machine(Machine* m);
  // m's locked task switched away: hands m's proc off and sleeps until the task is handed
  // back with a proc. False when the runtime stops.
  bool wait_for_locked_task(Machine* m, Task** out);
  // m popped t, which is locked to another thread: hands m's proc and t to that thread.
  void hand_to_locked(Machine* m, Task* t) noexcept;
  Machine* new_machine_locked(Proc* p, bool spinning);  // mu_ held; null: no thread
  void wake_monitor_if_sleeping() noexcept;

  Runtime* const owner_;
  const Config config_;
  unsigned nhost_ = 0;
  std::vector<std::unique_ptr<Proc>> procs_;
  std::vector<std::unique_ptr<Machine>> workers_;

  // Stacks: the default size has per-proc caches; other sizes share a pool per size.
  std::atomic<int64_t> slot_budget_{0};  // Config::max_stacks left to carve (if limited)
  // Per-proc slot caches, off under Config::max_stacks: at the limit, a slot parked in one
  // proc's cache would be unavailable to every other spawner.
  bool cache_slots_ = true;
  std::atomic<int64_t>* slot_budget() noexcept {
    return config_.max_stacks ? &slot_budget_ : nullptr;
  }
  std::unique_ptr<StackPool> default_pool_;
  mutable std::mutex pools_mu_;
  std::vector<std::unique_ptr<StackPool>> other_pools_;

  mutable std::mutex mu_;
  TaskList gq_;                        // the global run queue, under mu_
  std::atomic<uint32_t> gq_size_{0};   // gq_.size, mirrored for lock-free "is it empty?" hints
  Proc* idle_procs_ = nullptr;
  std::atomic<uint32_t> npidle_{0};
  std::vector<Machine*> idle_machines_;
  std::atomic<uint32_t> nmspinning_{0};
  std::atomic<bool> closing_{false};   // shutdown began: no spawns from outside
  std::atomic<bool> stopping_{false};  // drain finished: threads exit
  bool shut_down_ = false;             // under shutdown_mu_
  std::mutex shutdown_mu_;

  // The timer watcher: at most one idle thread sleeps with a timeout, until the earliest
  // timer (`timer_watch_until_`); every other idle thread sleeps until woken. Dekker pairing:
  // the watcher publishes itself, then reads the heaps; an arming thread writes its heap,
  // then reads the watcher — one of the two sees the other.
  std::atomic<Machine*> timer_watcher_{nullptr};
  std::atomic<int64_t> timer_watch_until_{kNever};
  std::atomic<uint32_t> timer_rr_{0};

  std::atomic<uint64_t> next_id_block_{1};
  std::atomic<uint64_t> foreign_spawned_{0};

  // Machines whose locked task is not running: they sleep holding no proc, outside the idle
  // list (they run nothing else). Under mu_.
  std::vector<Machine*> locked_waiting_;
  // Tasks in blocking calls and tasks locked to threads: each may hold a thread of its own,
  // so together with the procs they are bounded by Config::max_threads.
  std::atomic<uint32_t> nblocking_{0}, nlocked_{0};
  std::atomic<uint64_t> proc_handoffs_{0};
  std::atomic<uint64_t> preempt_requests_{0};
  std::atomic<uint32_t> nthreads_{0};

  std::mutex netpoll_mu_;
  std::atomic<Netpoll*> netpoll_{nullptr};

  std::unique_ptr<class Monitor> monitor_;
};

// Parks the current task: `unlock(arg)` runs on the scheduler stack after the task is fully
// switched out and marked waiting — so a waker that needs the lock it releases can never see
// a task that is still running (Go's gopark). Must be called from a task.
void park_current(WaitReason reason, void (*unlock)(void*), void* arg) noexcept;
// The current task, or null.
Task* current_task() noexcept;

}  // namespace myriad::detail
