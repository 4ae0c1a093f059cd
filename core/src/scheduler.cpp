// Scheduling: spawn, ready, the dispatch loop, finding work (local, global, stealing), and
// putting idle threads to sleep. The invariants are stated in scheduler.hpp and
// docs/ARCHITECTURE.md.
#include "scheduler.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <thread>

#include "deadlock.hpp"
#include "monitor.hpp"
#include "registry.hpp"
#include "stack_guard.hpp"
#include "task_switch.hpp"
#include "topology.hpp"

namespace myriad::detail {
namespace {

// Every 61st dispatch looks at the global queue first, so a proc busy with its own queue
// cannot starve tasks spawned from outside (61: prime, Go's choice, so it does not resonate
// with periodic workloads).
constexpr uint32_t kGlobalQueueInterval = 61;
// At most this many dispatches in a row come from runnext; then the head of the ring runs.
// Go bounds a runnext chain by time (the inherited slice ends after 10 ms and sysmon
// preempts); without asynchronous preemption we bound it by count, which also keeps a task
// that respawns itself forever from starving the local queue.
constexpr uint32_t kMaxRunnextStreak = 61;
constexpr uint32_t kStealPasses = 4;
constexpr uint32_t kFreeCacheMax = 64;
constexpr uint32_t kFreeCacheBatch = 32;
constexpr uint64_t kIdBatch = 1024;

// Task ids are process-wide so that ids stay unique across runtimes (the dump and the join
// self-check rely on it).
std::atomic<uint64_t> g_next_id_block{1};

}  // namespace

struct Scheduler::Budget {
  const std::chrono::steady_clock::time_point* deadline = nullptr;
  const std::function<bool()>* done = nullptr;
  bool host = false;
  bool* idle = nullptr;
};

Scheduler::Scheduler(Runtime* owner, Config config) : owner_(owner), config_(std::move(config)) {
  unsigned n = config_.procs;
  nhost_ = config_.host_procs;
  slot_budget_.store(static_cast<int64_t>(config_.max_stacks), std::memory_order_relaxed);
  cache_slots_ = config_.max_stacks == 0;
  default_pool_ =
      std::make_unique<StackPool>(config_.stack_size, config_.guard_pages, slot_budget());
  install_overflow_handler();
  procs_.reserve(n);
  for (unsigned i = 0; i < n; ++i) {
    auto p = std::make_unique<Proc>();
    p->index = i;
    p->host = i >= n - nhost_;
    p->rng = 0x9E3779B97F4A7C15ull * (i + 1);
    procs_.push_back(std::move(p));
  }
  unsigned nworkers = n - nhost_;
  workers_.reserve(nworkers);
  for (unsigned i = 0; i < nworkers; ++i) {
    auto m = std::make_unique<Machine>();
    m->sched = this;
    m->p = procs_[i].get();
    workers_.push_back(std::move(m));
  }
  idle_machines_.reserve(nworkers);
  nthreads_.store(nworkers, std::memory_order_relaxed);
  monitor_ = std::make_unique<Monitor>(this);  // before the workers: they may wake it
  for (auto& m : workers_) {
    Machine* mp = m.get();
    mp->thread = std::thread([this, mp] { worker_main(mp); });
  }
  register_scheduler(this);
}

Scheduler::~Scheduler() {
  shutdown();
  unregister_scheduler(this);
  // After shutdown: threads stopped, timers dropped. Fds still open keep the poller's memory.
  if (Netpoll* np = netpoll_.exchange(nullptr)) np->detach();
}

void Scheduler::for_each_task(const std::function<void(Task*)>& fn) {
  auto visit = [&](Task* t) {
    if (t->state.load(std::memory_order_acquire) != TaskState::free) fn(t);
  };
  default_pool_->for_each_slot(visit);
  std::lock_guard<std::mutex> g(pools_mu_);
  for (auto& pool : other_pools_) pool->for_each_slot(visit);
}

// ---------------------------------------------------------------------------------------------
// Spawning and readying

uint64_t Scheduler::next_task_id(Proc* p) noexcept {
  if (!p) return g_next_id_block.fetch_add(1, std::memory_order_relaxed);
  if (p->next_id == p->id_end) {
    p->next_id = g_next_id_block.fetch_add(kIdBatch, std::memory_order_relaxed);
    p->id_end = p->next_id + kIdBatch;
  }
  return p->next_id++;
}

StackPool* Scheduler::pool_for(std::size_t stack_size) noexcept {
  if (stack_size == default_pool_->usable_size()) return default_pool_.get();
  std::lock_guard<std::mutex> g(pools_mu_);
  for (auto& p : other_pools_)
    if (p->usable_size() == stack_size) return p.get();
  try {
    other_pools_.push_back(
        std::make_unique<StackPool>(stack_size, config_.guard_pages, slot_budget()));
  } catch (...) {
    return nullptr;
  }
  return other_pools_.back().get();
}

Task* Scheduler::alloc_task(Proc* p, std::size_t stack_size) noexcept {
  Task* t = nullptr;
  if (p && cache_slots_ && stack_size == default_pool_->usable_size()) {
    if (!p->free_tasks) {
      p->nfree = static_cast<uint32_t>(default_pool_->take(kFreeCacheBatch, &p->free_tasks));
      if (p->nfree == 0) return nullptr;
    }
    t = p->free_tasks;
    p->free_tasks = t->next;
    --p->nfree;
    return t;
  }
  StackPool* pool = pool_for(stack_size);
  if (!pool || pool->take(1, &t) == 0) return nullptr;
  return t;
}

void Scheduler::free_task(Proc* p, Task* t) noexcept {
  t->state.store(TaskState::free, std::memory_order_release);
  if (p && cache_slots_ && t->pool == default_pool_.get()) {
    t->next = p->free_tasks;
    p->free_tasks = t;
    if (++p->nfree > kFreeCacheMax) {
      // Give the older half back so other procs (and foreign spawns) can reuse the slots.
      Task* head = p->free_tasks;
      Task* cut = head;
      for (uint32_t i = 1; i < kFreeCacheBatch; ++i) cut = cut->next;
      p->free_tasks = cut->next;
      cut->next = nullptr;
      p->nfree -= kFreeCacheBatch;
      default_pool_->give(head, kFreeCacheBatch);
    }
    return;
  }
  t->next = nullptr;
  t->pool->give(t, 1);
}

Errc Scheduler::spawn(const ClosureOps* ops, void* closure, const SpawnOptions& opts,
                      const SourceSite& site, JoinState** join_out) noexcept {
  if (!ops) return Errc::invalid_argument;
  Machine* m = current_machine();
  Proc* p = (m && m->sched == this) ? m->p : nullptr;
  // Foreign threads may not add work once the drain began; our own tasks may (they are part
  // of the work being drained).
  if (!p && closing_.load(std::memory_order_acquire)) return Errc::closed;
  if (stopping_.load(std::memory_order_acquire)) return Errc::closed;

  std::size_t stack_size = config_.stack_size;
  if (opts.stack_size) {
    if (opts.stack_size > kMaxStackSize) return Errc::invalid_argument;
    stack_size = std::max(kMinStackSize, (opts.stack_size + kPageSize - 1) & ~(kPageSize - 1));
  }
  // The closure lives in the slot; refuse ones that would eat most of the stack.
  if (ops->size > stack_size / 4 || ops->align > kPageSize) return Errc::invalid_argument;

  JoinState* js = nullptr;
  if (join_out) {
    js = new (std::nothrow) JoinState();
    if (!js) return Errc::no_memory;
  }
  Task* t = alloc_task(p, stack_size);
  if (!t) {
    delete js;
    return Errc::no_memory;
  }

  auto top = reinterpret_cast<uintptr_t>(t);
  uintptr_t area = (top - ops->size) & ~(uintptr_t{ops->align} - 1);
  try {
    ops->relocate(reinterpret_cast<void*>(area), closure);
  } catch (...) {
    free_task(p, t);
    delete js;
    return Errc::invalid_argument;  // the callable's copy/move constructor threw
  }

  t->sched = this;
  t->next = nullptr;
  // Through set_identity only: the task dump may be copying this slot right now.
  set_identity(t, next_task_id(p), (m && m->curg) ? m->curg->id : 0, site, opts.label);
  t->ops = ops;
  t->closure = reinterpret_cast<void*>(area);
  t->wait_reason = WaitReason::none;
  t->join = js;
  if (js) js->task_id = t->id;
  prepare_task_context(t, reinterpret_cast<char*>(area & ~uintptr_t{15}));
  t->state.store(TaskState::runnable, std::memory_order_release);

  if (join_out) *join_out = js;
  if (p) {
    ProcCounters::bump(p->counters.spawned);
    runq_put(p, t, /*next=*/true);
    wake_idle_if_needed(/*pushed_with_seq_cst_rmw=*/true);
    // Backpressure, our substitute for Go's preemption of a goroutine that spawns in a loop:
    // once the spawner's proc has a full queue, the spawner steps aside (to the global queue,
    // as Go's Gosched does) and the queued tasks run. Without it a loop of a million spawns
    // keeps a million tasks alive at once — a million stacks in memory instead of a few
    // hundred recycled ones. Documented in runtime.hpp: spawn from a task may yield.
    if (m->curg && p->runq.size() > LocalRunQueue::kCapacity) switch_current_to_global_queue();
  } else {
    note_foreign_thread();
    foreign_spawned_.fetch_add(1, std::memory_order_relaxed);
    global_put(t);
    wake_idle_if_needed();
  }
  return Errc::ok;
}

void Scheduler::ready(Task* t, bool handoff) noexcept {
  t->state.store(TaskState::runnable, std::memory_order_release);
  Machine* m = current_machine();
  if (m && m->sched == this && m->p) {
    Task* displaced = m->p->runq.exchange_runnext(t);
    // A rendezvous handoff into an empty runnext wakes nobody (tokio's LIFO-slot rule, for
    // the case it is right): the waker blocks right after (the other half of a ping-pong, a
    // leaf that sent its result and exits), and this proc then runs the readied task at once,
    // warm in cache. Waking an idle thread would put a futex wake on the critical path and a
    // thread on another core that steals the partner — ping-pong across procs was 813 ns per
    // round trip that way, 151 ns without. Nothing is lost: a proc with a non-empty runnext
    // never sleeps. Everything else wakes as Go does: a producer that goes on producing (a
    // buffered channel, an unlock) wants the readied task running in parallel.
    if (handoff && !displaced) return;
    if (displaced) {
      while (!m->p->runq.push_back(displaced))
        if (spill_half(m->p, displaced)) break;
    }
    wake_idle_if_needed(/*pushed_with_seq_cst_rmw=*/true);
  } else {
    global_put(t);
    wake_idle_if_needed();
  }
}

void Scheduler::ready_batch(TaskList& tasks) noexcept {
  for (Task* t = tasks.head; t; t = t->next)
    t->state.store(TaskState::runnable, std::memory_order_release);
  Machine* m = current_machine();
  if (m && m->sched == this && m->p) {
    while (Task* t = tasks.pop_front()) runq_put(m->p, t, /*next=*/true);
    wake_idle_if_needed(/*pushed_with_seq_cst_rmw=*/true);
    return;
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    global_put_batch_locked(tasks);
  }
  // One spinner is woken; each one that finds work wakes the next (stop_spinning), so the
  // batch fans out over the idle procs.
  wake_idle_if_needed();
}

// ---------------------------------------------------------------------------------------------
// Queues

void Scheduler::runq_put(Proc* p, Task* t, bool next) noexcept {
  if (next) {
    t = p->runq.exchange_runnext(t);
    if (!t) return;  // the displaced runnext (if any) goes to the tail of the ring
  }
  while (!p->runq.push_back(t))
    if (spill_half(p, t)) return;
}

// The ring is full: move its older half plus `t` to the global queue in one batch (one lock
// for 129 tasks). Returns false if thieves emptied part of the ring first (retry the ring).
bool Scheduler::spill_half(Proc* p, Task* t) noexcept {
  Task* batch[LocalRunQueue::kCapacity / 2];
  uint32_t n = p->runq.grab_half_for_spill(batch);
  if (n == 0) return false;
  TaskList spilled;
  for (uint32_t i = 0; i < n; ++i) spilled.push_back(batch[i]);
  spilled.push_back(t);
  {
    std::lock_guard<std::mutex> g(mu_);
    global_put_batch_locked(spilled);
  }
  ProcCounters::bump(p->counters.spills);
  return true;
}

void Scheduler::global_put(Task* t) noexcept {
  std::lock_guard<std::mutex> g(mu_);
  gq_.push_back(t);
  gq_size_.store(gq_.size, std::memory_order_release);
}

void Scheduler::global_put_batch_locked(TaskList& tasks) noexcept {
  gq_.splice_back(tasks);
  gq_size_.store(gq_.size, std::memory_order_release);
}

Task* Scheduler::global_get_locked(Proc* p, uint32_t max) noexcept {
  const uint32_t size = gq_.size;
  if (size == 0) return nullptr;
  uint32_t n = size / procs() + 1;
  n = std::min(n, size);
  if (max > 0) n = std::min(n, max);
  n = std::min(n, LocalRunQueue::kCapacity / 2);
  Task* first = gq_.pop_front();
  uint32_t taken = 1;
  // pop_front unlinks before push_back publishes: once in the ring a thief may run the task.
  while (taken < n && p->runq.has_room()) {
    p->runq.push_back(gq_.pop_front());
    ++taken;
  }
  gq_size_.store(gq_.size, std::memory_order_release);
  ProcCounters::bump(p->counters.global_takes, taken);
  return first;
}

Task* Scheduler::steal_work(Proc* p) noexcept {
  const uint32_t n = procs();
  for (uint32_t pass = 0; pass < kStealPasses; ++pass) {
    const bool steal_runnext = pass == kStealPasses - 1;
    const uint32_t start = p->random() % n;
    for (uint32_t i = 0; i < n; ++i) {
      Proc* victim = procs_[(start + i) % n].get();
      if (victim == p) continue;
      uint32_t stolen = 0;
      if (Task* t = victim->runq.steal_into(p->runq, steal_runnext, &stolen)) {
        ProcCounters::bump(p->counters.steal_ops);
        ProcCounters::bump(p->counters.stolen, stolen);
        return t;
      }
    }
  }
  return nullptr;
}

bool Scheduler::any_queue_nonempty() const noexcept {
  if (gq_size_.load(std::memory_order_acquire) > 0) return true;
  for (const auto& p : procs_)
    if (!p->runq.empty()) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Idle procs and machines

void Scheduler::proc_idle_put_locked(Proc* p) noexcept {
  p->idle_link = idle_procs_;
  idle_procs_ = p;
  npidle_.fetch_add(1, std::memory_order_seq_cst);
}

Proc* Scheduler::proc_idle_get_locked() noexcept {
  Proc* p = idle_procs_;
  if (p) {
    idle_procs_ = p->idle_link;
    p->idle_link = nullptr;
    npidle_.fetch_sub(1, std::memory_order_seq_cst);
    if (monitor_) monitor_->wake_if_sleeping();  // a proc runs again: the monitor watches
  }
  return p;
}

void Scheduler::wake_idle_if_needed(bool pushed_with_seq_cst_rmw) noexcept {
  // Orders the caller's queue push before the read of npidle_ (see the protocol in the
  // header). A push through runnext already was a seq_cst exchange (a locked instruction):
  // then a seq_cst load is enough and the fence (~6 ns here) is skipped. TSan does not model
  // fences, so its builds use an equivalent RMW, which pairs with proc_idle_put_locked's.
#if MYRIAD_TSAN
  (void)pushed_with_seq_cst_rmw;
  if (npidle_.fetch_add(0, std::memory_order_seq_cst) == 0) return;
#else
  if (!pushed_with_seq_cst_rmw) std::atomic_thread_fence(std::memory_order_seq_cst);
  if (npidle_.load(std::memory_order_seq_cst) == 0) return;
#endif
  if (nmspinning_.load(std::memory_order_relaxed) != 0) return;
  uint32_t zero = 0;
  if (!nmspinning_.compare_exchange_strong(zero, 1, std::memory_order_seq_cst)) return;
  wake_one();
}

// Precondition: the caller raised nmspinning_ on behalf of the machine it will wake.
void Scheduler::wake_one() noexcept {
  Machine* w = nullptr;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (idle_procs_ && !idle_machines_.empty()) {
      w = idle_machines_.back();
      idle_machines_.pop_back();
      w->in_idle_list = false;
      w->nextp = proc_idle_get_locked();
      w->spinning = true;
    } else if (idle_procs_) {
      // An idle proc but no idle thread: the threads are away in blocking calls or waiting for
      // their locked tasks. Start one (Go's startm), or the proc's work would wait for one of
      // them to come back. Bounded by Config::max_threads; past it the proc stays idle.
      Proc* p = proc_idle_get_locked();
      if (new_machine_locked(p, true)) return;
      proc_idle_put_locked(p);
    }
  }
  if (w)
    wake_machine(w);
  else
    nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
}

void Scheduler::stop_spinning(Machine* m) noexcept {
  m->spinning = false;
  if (nmspinning_.fetch_sub(1, std::memory_order_seq_cst) == 1) wake_idle_if_needed();
}

// ---------------------------------------------------------------------------------------------
// The dispatch loop

void Scheduler::worker_main(Machine* m) {
  set_current_machine(m);
  AltSignalStack alt_stack;
  init_g0_fiber(m);
  dispatch_loop(m, nullptr, nullptr, nullptr);
  set_current_machine(nullptr);
}

void Scheduler::dispatch_loop(Machine* m, const std::chrono::steady_clock::time_point* deadline,
                              const std::function<bool()>* done, StepResult* result) {
  bool idle = false;
  Budget budget{deadline, done, m->is_host, &idle};
  Task* t = nullptr;
  for (;;) {
    if (m->locked_task) {
      // Our locked task switched away: this thread runs nothing else until it comes back.
      if (!wait_for_locked_task(m, &t)) break;
    } else if (!find_runnable(m, budget, &t)) {
      break;
    }
    if (t->locked_m && t->locked_m != m) {
      hand_to_locked(m, t);
      continue;
    }
    if (result) ++result->dispatched;
    execute(m, t);
  }
  if (result) result->idle = idle;
}

bool Scheduler::find_runnable(Machine* m, const Budget& budget, Task** out) {
top:
  if (stopping_.load(std::memory_order_acquire)) return false;
  if (!m->p && !stop_machine(m)) return false;  // lost its proc in a blocking call
  if (m->pending) {
    *out = m->pending;
    m->pending = nullptr;
    return true;
  }
  if (budget.host) {
    if (budget.deadline && std::chrono::steady_clock::now() >= *budget.deadline) return false;
    if (budget.done && (*budget.done)()) return false;
  }
  Proc* p = m->p;
  Task* t = nullptr;
  // Due timers of this proc first: what they ready lands in our own queue.
  if (p->timers.next_when.load(std::memory_order_relaxed) != kNever) run_timers(p, false);
  if (p->schedtick.load(std::memory_order_relaxed) % kGlobalQueueInterval == 0 &&
      gq_size_.load(std::memory_order_relaxed) > 0) {
    std::lock_guard<std::mutex> g(mu_);
    t = global_get_locked(p, 1);
  }
  if (!t) t = pop_local(p);
  if (!t && gq_size_.load(std::memory_order_relaxed) > 0) {
    std::lock_guard<std::mutex> g(mu_);
    t = global_get_locked(p, 0);
  }
  // I/O that became ready (Go polls here too, before stealing): cheap when nobody waits.
  if (!t) t = poll_network_nonblocking(m);
  // Overdue timers of other procs (their threads are busy or asleep) before stealing tasks.
  if (!t && procs() > 1 && run_timers(p, true)) t = pop_local(p);
  if (!t && procs() > 1) {
    // Limit spinners to half the busy procs, so a mostly idle runtime does not burn CPUs.
    uint32_t busy = procs() - npidle_.load(std::memory_order_relaxed);
    if (m->spinning || 2 * nmspinning_.load(std::memory_order_relaxed) < busy) {
      if (!m->spinning) {
        m->spinning = true;
        nmspinning_.fetch_add(1, std::memory_order_seq_cst);
      }
      t = steal_work(p);
    }
  }
  if (t) {
    if (m->spinning) stop_spinning(m);
    *out = t;
    return true;
  }
  if (budget.host) {
    if (m->spinning) {
      m->spinning = false;
      nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
    }
    *budget.idle = true;
    return false;
  }

  // Nothing to do: give the proc back and register as idle, together, under the lock. From
  // the registration on, m->spinning and m->nextp belong to wakers (under mu_).
  const bool was_spinning = m->spinning;
  {
    std::lock_guard<std::mutex> g(mu_);
    if (gq_size_.load(std::memory_order_relaxed) > 0) {
      t = global_get_locked(p, 0);
    } else if (stopping_.load(std::memory_order_acquire)) {
      return false;
    } else {
      m->spinning = false;
      proc_idle_put_locked(p);
      m->p = nullptr;
      idle_machines_.push_back(m);
      m->in_idle_list = true;
    }
  }
  if (t) {
    if (was_spinning) stop_spinning(m);
    *out = t;
    return true;
  }
  if (was_spinning) nmspinning_.fetch_sub(1, std::memory_order_seq_cst);
  // Re-check after publishing ourselves idle (the seq_cst RMW on npidle_ in
  // proc_idle_put_locked orders it before these loads): work pushed before the publication is
  // seen here; work pushed after it finds an idle proc and wakes someone.
  if (any_queue_nonempty()) {
    std::lock_guard<std::mutex> g(mu_);
    if (m->in_idle_list) {
      if (Proc* np = proc_idle_get_locked()) {
        idle_machines_.erase(std::find(idle_machines_.begin(), idle_machines_.end(), m));
        m->in_idle_list = false;
        m->p = np;
        if (was_spinning) {
          m->spinning = true;
          nmspinning_.fetch_add(1, std::memory_order_seq_cst);
        }
        goto top;
      }
    }
  }
  if (!sleep_idle(m)) return false;
  goto top;  // `spinning` was set by whoever handed us the proc, which also counted it
}

bool Scheduler::sleep_idle(Machine* m) {
  for (;;) {
    // Become the watcher if timers are pending or I/O waits, and nobody watches: sleep until
    // the earliest timer (in the netpoller when I/O waits) instead of indefinitely.
    int64_t deadline = kNever;
    bool watcher = false;
    Netpoll* np = netpoll_if_started();
    const bool io = np && np->has_waiters();
    Machine* none = nullptr;
    if ((io || any_timer_pending()) &&
        timer_watcher_.compare_exchange_strong(none, m, std::memory_order_seq_cst)) {
      watcher = true;
      deadline = earliest_timer();  // read after publishing ourselves (see timer_armed)
      timer_watch_until_.store(deadline, std::memory_order_seq_cst);
      if (deadline == kNever && !io) {
        watcher = false;
        timer_watch_until_.store(kNever, std::memory_order_seq_cst);
        timer_watcher_.store(nullptr, std::memory_order_seq_cst);
      }
    }
    // Going to sleep for good: if a foreign thread waits on us, maybe nothing ever will wake
    // it (the deadlock check; a foreign thread that blocks later runs it itself). While a
    // candidate is being confirmed, sleep only until the check is due again.
    if (watcher) {
      watch(m, deadline);
      timer_watch_until_.store(kNever, std::memory_order_seq_cst);
      timer_watcher_.store(nullptr, std::memory_order_seq_cst);
    } else if (config_.detect_deadlock && foreign_waiters_present() &&
               check_deadlock() == DeadlockCheck::pending) {
      m->parker.wait_until(monotonic_now_ns() + kDeadlockGraceNs);
    } else {
      m->parker.wait();
    }
    std::lock_guard<std::mutex> g(mu_);
    if (m->nextp) {
      m->p = m->nextp;
      m->nextp = nullptr;
      ProcCounters::bump(m->p->counters.thread_parks);
      return true;
    }
    if (stopping_.load(std::memory_order_acquire)) return false;
    // Timers due or tasks readied by our poll (we watched, or were woken to): take an idle
    // proc and run them. With no idle proc every proc has a thread, which runs its own timers
    // and takes the global queue.
    if ((earliest_timer() <= monotonic_now_ns() || gq_size_.load(std::memory_order_relaxed)) &&
        m->in_idle_list) {
      if (Proc* np2 = proc_idle_get_locked()) {
        idle_machines_.erase(std::find(idle_machines_.begin(), idle_machines_.end(), m));
        m->in_idle_list = false;
        m->p = np2;
        return true;
      }
    }
  }
}

void Scheduler::watch(Machine* m, int64_t deadline) {
  Netpoll* np = netpoll_if_started();
  if (!np || !np->has_waiters()) {
    m->parker.wait_until(deadline);
    return;
  }
  // In the netpoller. Wakers notify the parker and then, seeing `polling`, interrupt the poll;
  // we publish `polling` and then look at the parker: one of us sees the other (Dekker).
  m->polling.store(true, std::memory_order_seq_cst);
  TaskList ready;
  if (!m->parker.try_consume()) {
    int64_t timeout = -1;
    if (deadline != kNever) timeout = std::max<int64_t>(0, deadline - monotonic_now_ns());
    if (!np->poll(timeout, ready, &m->parker)) m->parker.wait_until(deadline);
  }
  m->polling.store(false, std::memory_order_seq_cst);
  m->parker.try_consume();
  if (ready.head) inject_polled(m, ready);
}

Task* Scheduler::inject_polled(Machine* m, TaskList& tasks) noexcept {
  for (Task* t = tasks.head; t; t = t->next)
    t->state.store(TaskState::runnable, std::memory_order_release);
  if (m && m->p) {
    Task* first = tasks.pop_front();
    while (Task* t = tasks.pop_front()) runq_put(m->p, t, /*next=*/false);
    wake_idle_if_needed();
    return first;
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    global_put_batch_locked(tasks);
  }
  wake_idle_if_needed();
  return nullptr;
}

Task* Scheduler::poll_network_nonblocking(Machine* m) noexcept {
  Netpoll* np = netpoll_if_started();
  // last_poll == 0: a thread is blocked in the poller and will see the events first.
  if (!np || !np->has_waiters() || np->last_poll() == 0) return nullptr;
  TaskList ready;
  if (!np->poll(0, ready) || !ready.head) return nullptr;
  return inject_polled(m, ready);
}

void Scheduler::wake_machine(Machine* w) noexcept {
  w->parker.notify();
  if (w->polling.load(std::memory_order_seq_cst)) {
    if (Netpoll* np = netpoll_if_started()) np->interrupt();
  }
}

// ---------------------------------------------------------------------------------------------
// Timers

TimerHeap& Scheduler::heap_for_new_timer() noexcept {
  Machine* m = current_machine();
  if (m && m->sched == this && m->p) return m->p->timers;
  unsigned owned = procs() - nhost_;
  unsigned i = timer_rr_.fetch_add(1, std::memory_order_relaxed);
  return procs_[owned ? i % owned : i % procs()]->timers;
}

void Scheduler::timer_armed(int64_t when) noexcept {
  // The heap's next_when was stored seq_cst; these seq_cst loads are ordered after it.
  if (Machine* w = timer_watcher_.load(std::memory_order_seq_cst)) {
    if (when < timer_watch_until_.load(std::memory_order_seq_cst)) wake_machine(w);
    return;
  }
  // No watcher. A thread that is running a proc looks at timers whenever it schedules; idle
  // threads sleep without a timeout, so wake one: it re-checks and becomes the watcher.
  if (npidle_.load(std::memory_order_seq_cst) == 0) return;
  std::lock_guard<std::mutex> g(mu_);
  if (!idle_machines_.empty()) wake_machine(idle_machines_.back());
}

bool Scheduler::asleep_for_good() const noexcept {
  if (!config_.detect_deadlock || nhost_ > 0 || closing_.load(std::memory_order_acquire))
    return false;
  if (npidle_.load(std::memory_order_seq_cst) != procs() || any_timer_pending()) return false;
  std::lock_guard<std::mutex> g(mu_);
  if (idle_machines_.size() + locked_waiting_.size() != workers_.size() ||
      npidle_.load() != procs())
    return false;
  if (Netpoll* np = netpoll_if_started(); np && np->has_waiters()) return false;  // I/O may come
  return !any_queue_nonempty();
}

std::size_t Scheduler::parked_tasks() {
  std::size_t n = 0;
  for_each_task([&](Task* t) {
    if (t->state.load(std::memory_order_acquire) == TaskState::waiting) ++n;
  });
  return n;
}

bool Scheduler::any_timer_pending() const noexcept {
  for (const auto& p : procs_)
    if (p->timers.next_when.load(std::memory_order_seq_cst) != kNever) return true;
  return false;
}

int64_t Scheduler::earliest_timer() const noexcept {
  int64_t e = kNever;
  for (const auto& p : procs_) e = std::min(e, p->timers.next_when.load(std::memory_order_seq_cst));
  return e;
}

bool Scheduler::run_timers(Proc* p, bool all_procs) noexcept {
  int64_t now = 0;
  uint32_t fired = 0;
  auto visit = [&](Proc* q) {
    int64_t next = q->timers.next_when.load(std::memory_order_relaxed);
    if (next == kNever) return;
    if (now == 0) now = monotonic_now_ns();
    if (next <= now) fired += run_due_timers(q->timers, now);
  };
  if (!all_procs) {
    visit(p);
  } else {
    for (auto& q : procs_)
      if (q.get() != p) visit(q.get());
  }
  if (fired) ProcCounters::bump(p->counters.timers_fired, fired);
  return fired != 0;
}

Task* Scheduler::pop_local(Proc* p) noexcept {
  bool from_runnext = false;
  Task* t = p->runq.pop(p->runnext_streak < kMaxRunnextStreak, &from_runnext);
  if (t) p->runnext_streak = from_runnext ? p->runnext_streak + 1 : 0;
  return t;
}

Task* Scheduler::pick_next_local(Machine* m) noexcept {
  Proc* p = m->p;
  // A locked task leaving, or a task without a proc (left a blocking call): g0 decides.
  if (m->locked_task || !p) return nullptr;
  m->want_g0 = true;  // until proven otherwise: declined for a reason only g0 can handle
  const uint32_t tick = p->schedtick.load(std::memory_order_relaxed);
  if (tick % kGlobalQueueInterval == 0 && gq_size_.load(std::memory_order_relaxed) > 0)
    return nullptr;
  // Due timers send us through g0 (find_runnable runs them). They must not run here: the
  // task being left may still hold the lock of a channel a timer sends on.
  if ((tick & 15) == 0) {
    int64_t next = p->timers.next_when.load(std::memory_order_relaxed);
    if (next != kNever && next <= monotonic_now_ns()) return nullptr;
  }
  Task* t = pop_local(p);
  if (t && t->locked_m && t->locked_m != m) {  // only its own thread may run it: via g0
    m->pending = t;
    return nullptr;
  }
  if (!t) {
    // Nothing local: a due timer of ours is the only thing g0 could run here, and it must
    // (a task yielding alone on its proc would otherwise never let it fire).
    int64_t next = p->timers.next_when.load(std::memory_order_relaxed);
    m->want_g0 = next != kNever && next <= monotonic_now_ns();
    return nullptr;
  }
  m->want_g0 = false;
  p->schedtick.store(tick + 1, std::memory_order_relaxed);
  p->current.store(t, std::memory_order_relaxed);
  return t;
}

void Scheduler::execute(Machine* m, Task* t) {
  Proc* p = m->p;
  p->schedtick.store(p->schedtick.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  p->current.store(t, std::memory_order_relaxed);
  m->curg = t;
  t->state.store(TaskState::running, std::memory_order_relaxed);
  Task* back = resume_task(m, t);  // returns when a task (maybe another) switches to g0
  m->curg = nullptr;
  if (m->p) m->p->current.store(nullptr, std::memory_order_relaxed);
  after_switch(m, back);
}

void Scheduler::after_switch(Machine* m, Task* t) {
  if (!canary_intact(t)) report_stack_overflow_and_abort(t, "its stack canary was overwritten");
  Proc* p = m->p;
  if (!p) {
    // The task left a blocking call and found no proc (leave_blocking): it queues globally,
    // and this thread goes idle in g0.
    m->action = SwitchAction::none;
    t->state.store(TaskState::runnable, std::memory_order_relaxed);
    global_put(t);
    wake_idle_if_needed();
    return;
  }
  switch (m->action) {
    case SwitchAction::yield:
      ProcCounters::bump(p->counters.yields);
      t->state.store(TaskState::runnable, std::memory_order_relaxed);
      runq_put(p, t, /*next=*/false);
      break;
    case SwitchAction::yield_global:
      ProcCounters::bump(p->counters.yields);
      t->state.store(TaskState::runnable, std::memory_order_relaxed);
      global_put(t);
      break;
    case SwitchAction::park:
      ProcCounters::bump(p->counters.parks);
      // Waiting must be visible before the unlock lets a waker at the task.
      t->state.store(TaskState::waiting, std::memory_order_release);
      m->unlock(m->unlock_arg);
      break;
    case SwitchAction::exit:
      ProcCounters::bump(p->counters.exited);
      free_task(p, t);
      break;
    case SwitchAction::none:
      break;
  }
  m->action = SwitchAction::none;
}

// ---------------------------------------------------------------------------------------------
// Host-driven procs

StepResult Scheduler::step(std::chrono::nanoseconds budget, const std::function<bool()>* done) {
  if (current_machine()) throw Error(Errc::busy, "myriad: step() called from a task or a step");
  Proc* hp = nullptr;
  for (auto& p : procs_) {
    bool expected = false;
    if (p->host && p->host_held.compare_exchange_strong(expected, true)) {
      hp = p.get();
      break;
    }
  }
  if (!hp) throw Error(Errc::busy, "myriad: no free host proc (Config::host_procs)");
  monitor_->wake_if_sleeping();
  Machine m;
  m.sched = this;
  m.p = hp;
  m.is_host = true;
  set_current_machine(&m);
  StepResult result;
  {
    AltSignalStack alt_stack;
    init_g0_fiber(&m);
    auto deadline = std::chrono::steady_clock::now() + budget;
    bool bounded = budget.count() > 0;
    try {
      dispatch_loop(&m, bounded ? &deadline : nullptr, done, &result);
    } catch (...) {
      set_current_machine(nullptr);
      hp->host_held.store(false);
      throw;
    }
  }
  set_current_machine(nullptr);
  hp->host_held.store(false, std::memory_order_seq_cst);
  // Work left on the host proc is stealable; make sure a runtime thread looks at it.
  if (!hp->runq.empty()) wake_idle_if_needed();
  return result;
}

// ---------------------------------------------------------------------------------------------
// Shutdown

bool Scheduler::quiescent_locked() const noexcept {
  // Every thread asleep: idle, or holding a locked task that is parked. (A thread in a
  // blocking call is running a task.)
  if (idle_machines_.size() + locked_waiting_.size() != workers_.size()) return false;
  if (gq_size_.load(std::memory_order_relaxed) != 0) return false;
  for (const auto& p : procs_) {
    if (p->host_held.load(std::memory_order_acquire)) return false;
    if (!p->runq.empty()) return false;
  }
  return true;
}

void Scheduler::shutdown() {
  std::lock_guard<std::mutex> sg(shutdown_mu_);
  if (shut_down_) return;
  closing_.store(true, std::memory_order_seq_cst);
  // Drain: runnable tasks run to completion or until they park. Polling is fine here: this
  // runs once per runtime, and a sleep keeps it off the CPUs the drain needs.
  for (;;) {
    if (nhost_ > 0) {
      try {
        step(std::chrono::nanoseconds(0), nullptr);
      } catch (const Error&) {
        // every host proc is held by a host right now; wait for it
      }
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      if (quiescent_locked()) break;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  // The monitor first: it may hand procs to machines, which must not start once we stop.
  if (monitor_) monitor_->stop();
  std::vector<Machine*> all;
  {
    std::lock_guard<std::mutex> g(mu_);
    stopping_.store(true, std::memory_order_seq_cst);
    for (Machine* w : idle_machines_) {
      w->in_idle_list = false;
      w->nextp = nullptr;
      wake_machine(w);
    }
    idle_machines_.clear();
    for (Machine* w : locked_waiting_) wake_machine(w);  // their tasks are parked for good
    for (auto& w : workers_) all.push_back(w.get());    // no machine is added once stopping
  }
  for (Machine* w : all)
    if (w->thread.joinable()) w->thread.join();
  // Timers pending now never fire (their tasks are abandoned below, like goroutines at exit).
  for (auto& p : procs_) drop_all_timers(p->timers);

  // Whatever is still parked can never run again.
  std::vector<Task*> parked;
  for_each_task([&](Task* t) {
    if (t->state.load(std::memory_order_acquire) == TaskState::waiting) parked.push_back(t);
  });
  if (!parked.empty() && config_.report_abandoned) {
    std::fprintf(stderr, "myriad: runtime destroyed with %zu parked task(s); abandoned:\n",
                 parked.size());
    std::size_t shown = 0;
    for (Task* t : parked) {
      if (++shown > 20) {
        std::fprintf(stderr, "  ... and %zu more\n", parked.size() - 20);
        break;
      }
      std::fprintf(stderr, "  task %llu \"%s\" spawned at %s:%u, waiting on %s\n",
                   static_cast<unsigned long long>(t->id), t->label, t->site.file, t->site.line,
                   to_string(t->wait_reason));
    }
  }
  for (Task* t : parked) {
    JoinState* js = t->join;
    t->join = nullptr;
    t->state.store(TaskState::dead, std::memory_order_release);
    if (js) complete_join(js, JoinState::abandoned, nullptr);
  }
  shut_down_ = true;
}

Stats Scheduler::stats() const noexcept {
  Stats s;
  for (const auto& p : procs_) {
    const ProcCounters& c = p->counters;
    auto r = [](const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); };
    s.tasks_spawned += r(c.spawned);
    s.tasks_exited += r(c.exited);
    s.tasks_failed += r(c.failed);
    s.tasks_stolen += r(c.stolen);
    s.steal_operations += r(c.steal_ops);
    s.global_queue_takes += r(c.global_takes);
    s.global_queue_spills += r(c.spills);
    s.yields += r(c.yields);
    s.parks += r(c.parks);
    s.thread_parks += r(c.thread_parks);
    s.timers_fired += r(c.timers_fired);
    s.blocking_calls += r(c.blocking_calls);
    s.preemptions += r(c.preemptions);
  }
  s.preempt_requests = preempt_requests_.load(std::memory_order_relaxed);
  s.proc_handoffs = proc_handoffs_.load(std::memory_order_relaxed);
  s.threads = nthreads_.load(std::memory_order_relaxed);
  if (Netpoll* np = netpoll_if_started()) s.netpoll_ready = np->ready_count();
  s.tasks_spawned += foreign_spawned_.load(std::memory_order_relaxed);
  s.stacks_reserved = default_pool_->slots_carved();
  s.guarded_stacks = default_pool_->slots_guarded();
  std::lock_guard<std::mutex> g(pools_mu_);
  for (const auto& pool : other_pools_) {
    s.stacks_reserved += pool->slots_carved();
    s.guarded_stacks += pool->slots_guarded();
  }
  return s;
}

}  // namespace myriad::detail
