// The netpoller (Go's netpoll.go): parks tasks on file-descriptor readiness.
//
// One Netpoll per runtime, made when its first Fd is registered (a runtime without I/O pays
// nothing). It owns the backend (poll_backend.hpp) and the PollDescs.
//
// PollDesc (Go's pollDesc) — one per registered descriptor; type-stable: descs are carved in
// chunks, recycled through a free list and freed only with the Netpoll, so a stale backend
// event or a stale deadline timer may always dereference its desc (it then finds nothing to
// do, or causes a spurious wake-up that the woken call absorbs by retrying its system call).
//
// Per direction (read, write) a desc keeps, under its `lock` (a spin lock: nothing under it
// parks):
//  - `waiters`: the IoWaits parked for that direction (several tasks may read one fd);
//  - `ready`: the backend reported readiness while nobody waited. A caller that finds it set
//    consumes it and retries its system call instead of parking — so an event that arrives
//    between the EAGAIN and the park is never lost (the edge-triggered contract);
//  - `deadline` and its timer: armed while someone waits and the deadline is finite. Its
//    `seq` (the TimerNode's) changes with every arming, so a fire that lost a race with a
//    re-arm or with the wake-up of its waiters finds a different seq and does nothing.
//
// Who ends a wait: readiness (the poller), the direction's deadline (its timer), the call's
// context (a ChanWaiter on ctx.done(), as a select case), or close(). Each claims the IoWait
// through its SelectState (one CAS, the same rule select uses), so exactly one of them wakes
// it and records why. The woken caller then removes its own records (from the desc under the
// desc lock, from the done channel under the channel's lock) before its frame goes away:
// nobody touches an IoWait after that.
//
// Lock order: desc lock → a done channel's lock → a timer heap's lock. Wakes happen after
// every lock is released.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "chan_impl.hpp"
#include "myriad/context.hpp"
#include "poll_backend.hpp"
#include "spin_lock.hpp"
#include "task_impl.hpp"
#include "timers.hpp"
#include "wait_queue.hpp"

namespace myriad::detail {

class Scheduler;
class Netpoll;
struct PollDesc;

enum class IoDir : uint8_t { read = 0, write = 1 };

// One parked (or sleeping) I/O call. Lives in the caller's frame.
struct IoWait {
  IoWait* prev = nullptr;   // in PollDir::waiters, under the desc lock
  IoWait* next = nullptr;
  bool queued = false;
  Waiter w;
  SelectState claim;        // done 0 -> 1 by whoever ends the wait
  Errc outcome = Errc::ok;  // written by the claimer before the wake: ok = "try again"
  ChanWaiter ctx_case;      // on the context's done channel, when the call has a context
  Unit sink;
};

struct PollDir;
// A direction's deadline timer; `node` first so a fire can find its direction.
struct DirTimer {
  TimerNode node;
  PollDir* dir = nullptr;
};

struct PollDir {
  IoWait* head = nullptr;
  IoWait* tail = nullptr;
  bool ready = false;
  int64_t deadline = kNever;   // CLOCK_MONOTONIC ns
  bool timer_armed = false;    // `timer` is in a heap (or popped and about to fire)
  DirTimer timer;
  PollDesc* desc = nullptr;    // back-pointer for the timer's fire
  IoDir dir = IoDir::read;
};

struct PollDesc {
  SpinLock lock;
  std::atomic<int> fd{-1};         // -1 once closed (read by Fd::native without the lock)
  Netpoll* np = nullptr;
  // Set once by close() (under lock); read lock-free by acquire().
  std::atomic<bool> closing{false};
  // Calls in flight between acquire() and release(); the last one out after close() closes
  // the descriptor (so its number is never reused under a running system call).
  std::atomic<uint32_t> inflight{0};
  std::atomic<bool> close_fd_on_release{false};
  PollDir dirs[2];
  // A SOCK_STREAM socket (set by open): only there does a short read mean "drained".
  bool stream = false;
  // The last read was short (io.cpp): the next one may park before trying. A hint only.
  std::atomic<bool> drained{false};
  PollDesc* next_free = nullptr;    // Netpoll's free list, under its mutex
};

// Lifetime: reference-counted — one reference for the runtime, one per open desc — because an
// Fd may outlive its runtime (it can then only be closed: calls fail with Errc::closed). The
// runtime calls detach() when its threads have stopped and its timers were dropped.
class Netpoll {
 public:
  // Starts the backend Config/MYRIAD_POLLER ask for. Throws Error(not_supported / io_error,
  // invalid_argument for a bad MYRIAD_POLLER).
  Netpoll(Scheduler* s, PollerKind requested);
  void detach() noexcept;  // the runtime is gone: drops its reference


  PollerKind kind() const noexcept { return backend_->kind(); }
  Scheduler* scheduler() const noexcept { return sched_; }

  // Registers fd (already non-blocking). Errc::io_error (*sys_errno set) if the backend refuses.
  Errc open(int fd, PollDesc** out, int* sys_errno) noexcept;
  // Ends every wait with fd_closed, makes later calls fail, deregisters; the descriptor is
  // closed (if close_fd) now or by the last call in flight. Idempotent per desc. The desc
  // itself stays with its owner (the Fd) until destroy(), so a call that starts after the
  // close still finds it and fails cleanly.
  void close(PollDesc* pd, bool close_fd) noexcept;
  // close(pd, true) if not closed yet, then recycles the desc. No call may be in flight.
  void destroy(PollDesc* pd) noexcept;

  // Brackets a call on pd: false (fd_closed) once closing.
  bool acquire(PollDesc* pd) noexcept;
  void release(PollDesc* pd) noexcept;

  // Parks the caller until dir may be ready (Errc::ok: retry the system call), its deadline
  // passes (timed_out), ctx is cancelled (ctx.err()) or pd is closed (fd_closed). Consumes a
  // pending `ready` without parking.
  Errc wait(PollDesc* pd, IoDir dir, const Context& ctx) noexcept;
  // Go's SetReadDeadline: applies to current and later waits.
  void set_deadline(PollDesc* pd, IoDir dir, int64_t deadline_ns) noexcept;
  int64_t deadline(PollDesc* pd, IoDir dir) noexcept;

  // --- used by the scheduler ---
  // Polls once (timeout_ns as PollBackend::wait) and readies every task whose wait the events
  // end: tasks are appended to `out` (the caller injects them), sleeping threads are notified.
  // Only one thread polls at a time: a non-blocking poll (timeout 0) returns false at once if
  // another one is polling; a blocking one waits for its turn.
  // `wake`: the blocking caller's parker. Checked once the poll lock is held: a notify that
  // came before makes the poll non-blocking. (The interrupt that follows a notify may have
  // been consumed by a non-blocking poll of another thread while we waited for the lock; from
  // the moment we hold it, interrupts are ours.)
  bool poll(int64_t timeout_ns, TaskList& out, const ThreadParker* wake = nullptr) noexcept;
  void interrupt() noexcept { backend_->interrupt(); }
  // Calls (tasks or threads) parked in wait(): a poll can only help when this is non-zero.
  bool has_waiters() const noexcept { return waiters_.load(std::memory_order_seq_cst) != 0; }
  // Go's sched.lastpoll: CLOCK_MONOTONIC ns of the last poll's end; 0 while a thread is
  // blocked in poll (then nobody else needs to poll).
  int64_t last_poll() const noexcept { return last_poll_.load(std::memory_order_relaxed); }
  uint64_t ready_count() const noexcept { return ready_count_.load(std::memory_order_relaxed); }

 private:
  ~Netpoll();
  void unref() noexcept;
  bool detached() const noexcept { return detached_.load(std::memory_order_acquire); }
  PollDesc* alloc_desc() noexcept;
  void free_desc(PollDesc* pd) noexcept;
  static void fire_deadline(TimerNode* node, uint64_t seq, int64_t now) noexcept;

  Scheduler* const sched_;
  std::unique_ptr<PollBackend> backend_;
  std::mutex poll_mu_;  // one poller at a time (try_lock)
  std::atomic<int64_t> last_poll_{1};
  std::atomic<uint32_t> waiters_{0};
  std::atomic<uint64_t> ready_count_{0};
  std::atomic<uint32_t> refs_{1};
  std::atomic<bool> detached_{false};

  std::mutex free_mu_;
  PollDesc* free_ = nullptr;
  std::vector<std::unique_ptr<PollDesc[]>> chunks_;
};

}  // namespace myriad::detail
