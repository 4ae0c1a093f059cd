// Mutex and RWMutex: Go's sync.Mutex and sync.RWMutex for tasks and OS threads.
//
// A task that must wait parks through the runtime's one wait mechanism (wait_queue.hpp); a
// foreign OS thread sleeps on its futex. Neither spins beyond a brief, bounded attempt.
// Both types meet the C++ Lockable requirements (lock / try_lock / unlock), so
// std::lock_guard, std::unique_lock, std::scoped_lock and std::lock work with them;
// RWMutex also offers lock_shared / try_lock_shared / unlock_shared for std::shared_lock.
//
// Like Go's, these locks are not owned by a task or thread: one may lock and another unlock.
// Unlocking one that is not locked (in the mode asked) throws Error(Errc::not_locked) and
// changes nothing — Go treats it as a fatal error.
//
// Destruction: a lock may be destroyed as soon as no task or thread holds it or waits in it,
// even while the unlock() that released it is still returning: a releasing unlock's last touch
// of the object happens before any waiter it wakes can return, and an unlock whose release
// lets a newcomer in (rather than handing the lock to a waiter) makes that release its very
// last access.
#pragma once

#include <atomic>
#include <cstdint>

#include "myriad/detail/wait_list.hpp"
#include "myriad/errors.hpp"

namespace myriad {

class Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Uncontended: one CAS. Otherwise spins briefly (only while the holder runs and nobody
  // waits), then parks the task / sleeps the thread.
  void lock() {
    uint32_t expected = 0;
    if (!state_.compare_exchange_strong(expected, kLocked, std::memory_order_acquire,
                                        std::memory_order_relaxed))
      lock_slow();
  }
  // Takes the lock if it is free and not being handed to a waiter (starvation mode): like Go's
  // TryLock, never barges past a starving waiter.
  bool try_lock() noexcept {
    uint32_t old = state_.load(std::memory_order_relaxed);
    while (!(old & (kLocked | kStarving)))
      if (state_.compare_exchange_weak(old, old | kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed))
        return true;
    return false;
  }
  // Uncontended: one CAS. Throws Error(not_locked) if the mutex is not locked.
  void unlock() {
    uint32_t expected = kLocked;
    if (!state_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                        std::memory_order_relaxed))
      unlock_slow(expected);
  }

  // Racy snapshots, for diagnostics and tests.
  bool is_locked() const noexcept { return state_.load(std::memory_order_relaxed) & kLocked; }
  // True while the mutex is in starvation mode (ownership goes straight to the head waiter).
  bool is_starving() const noexcept {
    return state_.load(std::memory_order_relaxed) & kStarving;
  }

 private:
  // state_, as Go's Mutex.state:
  //   kLocked   — held.
  //   kWoken    — a waiter is awake and competing for the lock (woken by unlock, or a
  //               newcomer spinning with waiters queued): unlock need not wake another one.
  //   kStarving — starvation mode: unlock hands ownership to the head of the queue, and
  //               newcomers neither take the lock nor spin; they queue at the tail.
  //   bits 3..  — waiters counted to sleep on the token queue below, not yet woken.
  // Invariants: kStarving implies at least one counted waiter (the last waiter to take the
  // lock clears it). Normal mode lets a woken waiter race newcomers — newcomers are already
  // on a CPU, so this is the throughput mode; a waiter that waited more than 1 ms switches the
  // mutex to starvation mode, which is FIFO, and the waiter that gets the lock switches it
  // back if it waited less than 1 ms or was the last one (starvation mode is slower: every
  // unlock is a handoff).
  static constexpr uint32_t kLocked = 1;
  static constexpr uint32_t kWoken = 2;
  static constexpr uint32_t kStarving = 4;
  static constexpr uint32_t kWaiterShift = 3;
  static constexpr uint32_t kWaiter = 1u << kWaiterShift;

  void lock_slow() noexcept;
  void unlock_slow(uint32_t old);
  void sema_acquire(bool lifo) noexcept;
  void sema_release() noexcept;

  std::atomic<uint32_t> state_{0};
  // Go's runtime semaphore, private to this mutex: `tokens_` wake-up tokens and a FIFO of
  // sleepers, both under sleepers_.locked. A release hands its token straight to the head
  // sleeper if there is one (it is popped and woken; nobody can take the token from it), else
  // banks it in tokens_ for a counted waiter that has not reached the queue yet — so a wake
  // issued between a waiter's count and its sleep is never lost.
  uint32_t tokens_ = 0;
  detail::WaitList sleepers_;
};

// RWMutex: many readers or one writer, with Go's writer preference — once a writer waits, new
// readers wait too, so a stream of readers cannot starve writers; and a writer's unlock admits
// every reader that queued meanwhile before the next writer, so writers cannot starve readers.
class RWMutex {
 public:
  RWMutex() = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  // Writer side. Uncontended: one CAS each.
  void lock() {
    uint32_t expected = 0;
    if (!state_.compare_exchange_strong(expected, kWriter, std::memory_order_acquire,
                                        std::memory_order_relaxed))
      lock_slow();
  }
  bool try_lock() noexcept;
  // Throws Error(not_locked) unless write-locked.
  void unlock() {
    uint32_t expected = kWriter;
    if (!state_.compare_exchange_strong(expected, 0, std::memory_order_release,
                                        std::memory_order_relaxed))
      unlock_slow();
  }

  // Reader side. Uncontended: one CAS each.
  void rlock() {
    uint32_t old = state_.load(std::memory_order_relaxed);
    if ((old & (kWriter | kWriterWaiting)) ||
        !state_.compare_exchange_strong(old, old + kReader, std::memory_order_acquire,
                                        std::memory_order_relaxed))
      rlock_slow();
  }
  // Fails while a writer holds the lock or waits for it (as Go's TryRLock).
  bool try_rlock() noexcept;
  // Throws Error(not_locked) unless read-locked.
  void runlock() {
    uint32_t old = state_.load(std::memory_order_relaxed);
    if (!(old & kWriterWaiting) && (old >> kReaderShift) != 0 &&
        state_.compare_exchange_strong(old, old - kReader, std::memory_order_release,
                                       std::memory_order_relaxed))
      return;
    runlock_slow();
  }

  // SharedLockable spelling, for std::shared_lock.
  void lock_shared() { rlock(); }
  bool try_lock_shared() noexcept { return try_rlock(); }
  void unlock_shared() { runlock(); }

  // Racy snapshots, for diagnostics and tests.
  bool is_write_locked() const noexcept {
    return state_.load(std::memory_order_relaxed) & kWriter;
  }
  uint32_t readers() const noexcept { return state_.load(std::memory_order_relaxed) >> kReaderShift; }
  // True while a writer waits (new readers then wait as well).
  bool writer_waiting() const noexcept {
    return state_.load(std::memory_order_relaxed) & kWriterWaiting;
  }

 private:
  // state_:
  //   kWriter         — a writer holds the lock.
  //   kWriterWaiting  — writers_ is not empty: new readers must queue (writer preference).
  //   kReadersWaiting — readers_ is not empty.
  //   bits 3..        — readers holding the lock.
  // Invariants: kWriter and a nonzero reader count never coexist. The two *Waiting bits are
  // set and cleared only with writers_.locked held, together with the queue they describe,
  // so the fast paths (plain CASes that succeed only when no waiting bit stands in the way)
  // never strand a waiter: whoever releases while a bit is set goes through the lock and
  // hands the lock over in the same CAS that releases it —
  //   - the last reader out, if a writer waits, makes the head writer the owner;
  //   - a writer's unlock makes every queued reader an owner at once (readers count = queue
  //     length), or else hands the lock to the head writer.
  // Readers are queued only while a writer holds or waits, so every queued reader is
  // released by that writer's unlock.
  static constexpr uint32_t kWriter = 1;
  static constexpr uint32_t kWriterWaiting = 2;
  static constexpr uint32_t kReadersWaiting = 4;
  static constexpr uint32_t kReaderShift = 3;
  static constexpr uint32_t kReader = 1u << kReaderShift;

  void lock_slow() noexcept;
  void unlock_slow();
  void rlock_slow() noexcept;
  void runlock_slow();

  std::atomic<uint32_t> state_{0};
  // Queued writers (FIFO). Its spinlock also guards readers_ and nreaders_waiting_.
  detail::WaitList writers_;
  // Queued readers; readers_.locked is never used (writers_.locked guards it).
  detail::WaitList readers_;
  uint32_t nreaders_waiting_ = 0;
};

}  // namespace myriad
