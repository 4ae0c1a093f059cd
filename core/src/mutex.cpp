// Mutex: Go's sync.Mutex (src/sync/mutex.go), with Go's runtime semaphore replaced by a token
// queue over the runtime's one wait mechanism (wait_queue.hpp).
#include "myriad/mutex.hpp"

#include <chrono>
#include <thread>

#include "scheduler.hpp"
#include "wait_queue.hpp"

namespace myriad {
namespace {

// A waiter that waited longer than this switches the mutex to starvation mode (Go's
// starvationThresholdNs).
constexpr int64_t kStarvationThresholdNs = 1'000'000;

int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void unlock_list(void* l) { detail::unlock(*static_cast<detail::WaitList*>(l)); }

// Puts w at the head of l (lock held): a waiter that was woken, lost the race to a newcomer
// and waits again goes back to the front, not behind waiters that came later (Go's
// semacquire with lifo = true).
void push_front(detail::WaitList& l, detail::Waiter* w) noexcept {
  w->next = l.head;
  l.head = w;
  if (!l.tail) l.tail = w;
}

// Go's runtime_canSpin: spinning pays only if the holder runs on another CPU right now and can
// release soon. Bounded to 4 rounds of 30 pauses (well under a microsecond or two); never on a
// single CPU, nor from a task of a one-proc runtime (the holder could only be another task of
// the same proc, which cannot run while we spin).
bool can_spin(int iter) noexcept {
  static const bool multicore = std::thread::hardware_concurrency() > 1;
  if (iter >= 4 || !multicore) return false;
  if (detail::Task* t = detail::current_task()) return t->sched->procs() > 1;
  return true;
}

void do_spin() noexcept {
  for (int i = 0; i < 30; ++i) __builtin_ia32_pause();
}

}  // namespace

void Mutex::sema_acquire(bool lifo) noexcept {
  detail::lock(sleepers_);
  if (tokens_ > 0) {  // a release came before we reached the queue
    --tokens_;
    detail::unlock(sleepers_);
    return;
  }
  detail::Waiter w;
  if (lifo)
    push_front(sleepers_, &w);
  else
    detail::push_back(sleepers_, &w);
  detail::block_with(w, WaitReason::mutex, unlock_list, &sleepers_);
  // Woken by sema_release, which popped us: the token is ours.
}

void Mutex::sema_release() noexcept {
  detail::lock(sleepers_);
  detail::Waiter* w = detail::pop_front(sleepers_);
  if (!w) ++tokens_;
  detail::unlock(sleepers_);  // our last touch of *this
  if (w) detail::wake(w);
}

void Mutex::lock_slow() noexcept {
  int64_t wait_start = 0;  // when this call first went to sleep (0: not yet)
  bool starving = false;   // this call waited longer than the threshold
  bool awoke = false;      // this call owns kWoken (set it while spinning, or was woken)
  int iter = 0;
  uint32_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    // Spin only in normal mode while the lock is held: in starvation mode ownership goes to
    // the waiters, so spinning could not win it.
    if ((old & (kLocked | kStarving)) == kLocked && can_spin(iter)) {
      // Setting kWoken tells unlock not to wake a sleeper: we are about to take the lock.
      if (!awoke && !(old & kWoken) && (old >> kWaiterShift) != 0 &&
          state_.compare_exchange_weak(old, old | kWoken, std::memory_order_relaxed))
        awoke = true;
      do_spin();
      ++iter;
      old = state_.load(std::memory_order_relaxed);
      continue;
    }
    uint32_t desired = old;
    // Do not take a starving mutex: it belongs to the waiters; queue behind them.
    if (!(old & kStarving)) desired |= kLocked;
    if (old & (kLocked | kStarving)) desired += kWaiter;
    // Switch to starvation mode, but only if the mutex is still held: unlock expects
    // starvation mode to have waiters, which a free mutex may not have.
    if (starving && (old & kLocked)) desired |= kStarving;
    // We own kWoken (from spinning or from being woken): give it up, whether we take the lock
    // or go back to sleep.
    if (awoke) desired &= ~kWoken;
    if (state_.compare_exchange_weak(old, desired, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      if (!(old & (kLocked | kStarving))) return;  // took the lock with the CAS
      // A waiter woken before goes back to the head of the queue.
      const bool lifo = wait_start != 0;
      if (wait_start == 0) wait_start = now_ns();
      sema_acquire(lifo);
      starving = starving || now_ns() - wait_start > kStarvationThresholdNs;
      old = state_.load(std::memory_order_relaxed);
      if (old & kStarving) {
        // Starvation mode: the unlocker handed the lock to us. It left kLocked clear and our
        // waiter count in place; set the one and drop the other in a single add. Leave
        // starvation mode if we did not wait long or are the last waiter: staying in it
        // would force handoffs that serialize the lock for no one's benefit.
        uint32_t delta = kLocked - kWaiter;  // wraps: an unsigned add of -kWaiter+kLocked
        if (!starving || (old >> kWaiterShift) == 1) delta -= kStarving;
        state_.fetch_add(delta, std::memory_order_acquire);
        return;
      }
      // Normal mode: we were woken to compete (unlock set kWoken for us).
      awoke = true;
      iter = 0;
    }
  }
}

void Mutex::unlock_slow(uint32_t old) {
  // Release and decide whom to wake in one CAS. Go releases first (an add) and decides after;
  // one CAS means no access to *this follows the release unless a waiter is being woken —
  // and that waiter cannot return before sema_release's last touch.
  for (;;) {
    if (!(old & kLocked))
      throw Error(Errc::not_locked, "myriad::Mutex: unlock of unlocked mutex");
    uint32_t desired = old & ~kLocked;
    bool wake = false;
    if (old & kStarving) {
      // Hand ownership to the head waiter. kLocked stays clear, but newcomers see
      // kStarving and queue; the waiter sets kLocked and removes its count.
      wake = true;
    } else if ((old >> kWaiterShift) != 0 && !(old & kWoken)) {
      // Nobody is awake to take the lock: wake one waiter to compete for it.
      desired = (desired - kWaiter) | kWoken;
      wake = true;
    }
    if (state_.compare_exchange_weak(old, desired, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      if (wake) sema_release();
      return;
    }
  }
}

}  // namespace myriad
