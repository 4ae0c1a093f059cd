// Cond: Go's sync.Cond. Go gives each waiter a ticket before it unlocks the mutex
// (notifyListAdd) so that a notify between the unlock and the sleep is not lost. Here the
// waiter enqueues itself instead, and a small handshake under the list lock settles the same
// race: a signaler that picks a waiter which has not gone to sleep yet marks it `notified`,
// and the waiter, re-taking the list lock to sleep, sees the mark and does not sleep.
#include "myriad/cond.hpp"

#include "wait_queue.hpp"

namespace myriad {
namespace {

// A registered waiter. It is in the Cond's list from registration until a signal or broadcast
// removes it (or, on misuse, it withdraws); the flags are guarded by the list lock.
//   sleeping — set just before it goes to sleep (block_with; its Waiter fields are filled in
//              under the same lock hold): whoever removes it must wake() it.
//   notified — it was removed by a signal or broadcast. If it was not sleeping yet, it sees
//              this when it takes the lock to sleep, and returns instead; nobody wakes it.
struct CondWaiter : detail::Waiter {
  bool sleeping = false;
  bool notified = false;
};

void unlock_list(void* l) { detail::unlock(*static_cast<detail::WaitList*>(l)); }

// Removes w from l if it is still there (lock held). True if it was.
bool withdraw(detail::WaitList& l, detail::Waiter* w) noexcept {
  detail::Waiter* prev = nullptr;
  for (detail::Waiter* p = l.head; p; prev = p, p = p->next) {
    if (p != w) continue;
    (prev ? prev->next : l.head) = w->next;
    if (l.tail == w) l.tail = prev;
    return true;
  }
  return false;
}

// Marks a waiter just removed from the list as chosen. Returns true if it sleeps and must be
// woken (after the list lock is released).
bool choose(detail::Waiter* w) noexcept {
  auto* cw = static_cast<CondWaiter*>(w);
  cw->notified = true;
  return cw->sleeping;
}

}  // namespace

void Cond::wait(Mutex& m) {
  // Go would find out at the unlock below, after registering; we check first so that a wait
  // that cannot happen leaves no registration behind.
  if (!m.is_locked()) throw Error(Errc::not_locked, "myriad::Cond::wait: mutex not locked");
  CondWaiter w;
  detail::lock(waiters_);
  detail::push_back(waiters_, &w);
  detail::unlock(waiters_);
  try {
    m.unlock();
  } catch (...) {
    // Only if another task unlocked m in the meantime (misuse). Withdraw; if we were chosen
    // already, pass the signal on so that it is not lost.
    detail::lock(waiters_);
    detail::Waiter* next = nullptr;
    bool wake_next = false;
    if (!withdraw(waiters_, &w) && (next = detail::pop_front(waiters_)))
      wake_next = choose(next);
    detail::unlock(waiters_);
    if (wake_next) detail::wake(next);
    throw;
  }
  detail::lock(waiters_);
  if (w.notified) {
    detail::unlock(waiters_);
  } else {
    w.sleeping = true;
    detail::block_with(w, WaitReason::cond, unlock_list, &waiters_);
  }
  m.lock();
}

void Cond::signal() noexcept {
  detail::lock(waiters_);
  detail::Waiter* w = detail::pop_front(waiters_);
  const bool sleeping = w && choose(w);
  detail::unlock(waiters_);  // our last touch of *this
  if (sleeping) detail::wake(w);
}

void Cond::broadcast() noexcept {
  detail::lock(waiters_);
  detail::Waiter* w = detail::pop_all(waiters_);
  // Keep only the sleepers, in order; the others must not be touched after the unlock (they
  // return as soon as they see `notified`).
  detail::WaitList sleepers;
  while (w) {
    detail::Waiter* next = w->next;
    if (choose(w)) detail::push_back(sleepers, w);
    w = next;
  }
  detail::unlock(waiters_);  // our last touch of *this
  detail::wake_all(sleepers.head);
}

}  // namespace myriad
