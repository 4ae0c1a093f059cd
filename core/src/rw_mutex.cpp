// RWMutex: Go's sync.RWMutex semantics (writer preference, reader batches between writers).
//
// Go builds its RWMutex from a Mutex for writers plus reader counters, and a writer's Unlock
// touches that Mutex after it has already let readers in. Here one state word holds everything
// the fast paths need, and every handover happens in the CAS that releases, under the queue
// lock — so no unlock touches the object after a woken waiter could return (see mutex.hpp,
// "Destruction").
#include "myriad/mutex.hpp"

#include "wait_queue.hpp"

namespace myriad {
namespace {
void unlock_list(void* l) { detail::unlock(*static_cast<detail::WaitList*>(l)); }
}  // namespace

bool RWMutex::try_lock() noexcept {
  uint32_t old = state_.load(std::memory_order_relaxed);
  while (!(old & kWriter) && (old >> kReaderShift) == 0)
    if (state_.compare_exchange_weak(old, old | kWriter, std::memory_order_acquire,
                                     std::memory_order_relaxed))
      return true;
  return false;
}

bool RWMutex::try_rlock() noexcept {
  uint32_t old = state_.load(std::memory_order_relaxed);
  while (!(old & (kWriter | kWriterWaiting)))
    if (state_.compare_exchange_weak(old, old + kReader, std::memory_order_acquire,
                                     std::memory_order_relaxed))
      return true;
  return false;
}

void RWMutex::lock_slow() noexcept {
  detail::lock(writers_);
  uint32_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (!(old & kWriter) && (old >> kReaderShift) == 0) {
      // Free (a reader or writer left between our fast path and the lock): take it.
      if (state_.compare_exchange_weak(old, old | kWriter, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        detail::unlock(writers_);
        return;
      }
      continue;
    }
    // Announce ourselves: from now on new readers queue, and the last reader out (or the
    // writer holding it) hands the lock to the head of writers_.
    if ((old & kWriterWaiting) ||
        state_.compare_exchange_weak(old, old | kWriterWaiting, std::memory_order_relaxed))
      break;
  }
  detail::Waiter w;
  detail::block_locked(writers_, w, WaitReason::rw_write);
  // Handed the lock: synchronise with every release in state_'s history (the readers that
  // left through the fast path, not only the one that woke us) before touching guarded data.
  (void)state_.load(std::memory_order_acquire);
  // Woken as the owner: the waker set kWriter for us.
}

void RWMutex::unlock_slow() {
  uint32_t old = state_.load(std::memory_order_relaxed);
  if (!(old & kWriter))
    throw Error(Errc::not_locked, "myriad::RWMutex: unlock of a RWMutex not write-locked");
  detail::lock(writers_);
  old = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (!(old & kWriter)) {
      detail::unlock(writers_);
      throw Error(Errc::not_locked, "myriad::RWMutex: unlock of a RWMutex not write-locked");
    }
    if (nreaders_waiting_ != 0) {
      // Readers first: every reader that queued behind this writer becomes an owner now.
      // kWriterWaiting stays if writers wait, so readers arriving from now on queue for the
      // next round and the writer gets the lock as soon as this batch leaves.
      uint32_t desired = (old & ~(kWriter | kReadersWaiting)) + nreaders_waiting_ * kReader;
      if (!state_.compare_exchange_weak(old, desired, std::memory_order_release,
                                        std::memory_order_relaxed))
        continue;
      detail::Waiter* all = detail::pop_all(readers_);
      nreaders_waiting_ = 0;
      detail::unlock(writers_);  // our last touch of *this
      detail::wake_all(all);
      return;
    }
    if (detail::Waiter* w = writers_.head) {
      // Hand the lock to the next writer: kWriter stays set.
      uint32_t desired = w->next ? old : old & ~kWriterWaiting;
      if (!state_.compare_exchange_weak(old, desired, std::memory_order_release,
                                        std::memory_order_relaxed))
        continue;
      detail::pop_front(writers_);
      detail::unlock(writers_);  // our last touch of *this
      detail::wake(w);
      return;
    }
    // Nobody waits (the waiting bits are clear): a plain release, after letting go of the
    // queue lock so that the release is our last touch.
    detail::unlock(writers_);
    while (!state_.compare_exchange_weak(old, old & ~kWriter, std::memory_order_release,
                                         std::memory_order_relaxed))
      if (!(old & kWriter))
        throw Error(Errc::not_locked, "myriad::RWMutex: unlock of a RWMutex not write-locked");
    return;
  }
}

void RWMutex::rlock_slow() noexcept {
  // Without a writer in the way, the fast path only lost a race with other readers.
  uint32_t old = state_.load(std::memory_order_relaxed);
  while (!(old & (kWriter | kWriterWaiting)))
    if (state_.compare_exchange_weak(old, old + kReader, std::memory_order_acquire,
                                     std::memory_order_relaxed))
      return;
  detail::lock(writers_);
  old = state_.load(std::memory_order_relaxed);
  for (;;) {
    if (!(old & (kWriter | kWriterWaiting))) {
      if (state_.compare_exchange_weak(old, old + kReader, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
        detail::unlock(writers_);
        return;
      }
      continue;
    }
    if ((old & kReadersWaiting) ||
        state_.compare_exchange_weak(old, old | kReadersWaiting, std::memory_order_relaxed))
      break;
  }
  detail::Waiter w;
  detail::push_back(readers_, &w);
  ++nreaders_waiting_;
  detail::block_with(w, WaitReason::rw_read, unlock_list, &writers_);
  (void)state_.load(std::memory_order_acquire);  // as in lock_slow: handed the lock
  // Woken as an owner: the writer's unlock counted us among the readers.
}

void RWMutex::runlock_slow() {
  uint32_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    const uint32_t readers = old >> kReaderShift;
    if (readers == 0)
      throw Error(Errc::not_locked, "myriad::RWMutex: runlock of a RWMutex not read-locked");
    if (readers > 1 || !(old & kWriterWaiting)) {
      if (state_.compare_exchange_weak(old, old - kReader, std::memory_order_release,
                                       std::memory_order_relaxed))
        return;
      continue;
    }
    // The last reader out while a writer waits: make the head writer the owner. While we hold
    // a read lock nobody can clear kWriterWaiting nor add readers, so under the queue lock
    // this state is stable (the CAS loop only guards against misuse).
    detail::lock(writers_);
    old = state_.load(std::memory_order_relaxed);
    detail::Waiter* w = writers_.head;
    if ((old >> kReaderShift) == 1 && (old & kWriterWaiting) && w) {
      uint32_t desired = (old - kReader) | kWriter;
      if (!w->next) desired &= ~kWriterWaiting;
      if (state_.compare_exchange_strong(old, desired, std::memory_order_release,
                                         std::memory_order_relaxed)) {
        detail::pop_front(writers_);
        detail::unlock(writers_);  // our last touch of *this
        detail::wake(w);
        return;
      }
    }
    detail::unlock(writers_);
    old = state_.load(std::memory_order_relaxed);
  }
}

}  // namespace myriad
