#include "wait_queue.hpp"

#include <sched.h>

#include "deadlock.hpp"
#include "scheduler.hpp"

namespace myriad::detail {

void lock(WaitList& l) noexcept {
  for (int spins = 0;; ++spins) {
    if (!l.locked.load(std::memory_order_relaxed) &&
        !l.locked.exchange(true, std::memory_order_acquire))
      return;
    // Critical sections are a few pointer moves; if the holder was descheduled, give way.
    if (spins < 64)
      __builtin_ia32_pause();
    else
      sched_yield();
  }
}

void unlock(WaitList& l) noexcept { l.locked.store(false, std::memory_order_release); }

void push_back(WaitList& l, Waiter* w) noexcept {
  w->next = nullptr;
  if (l.tail)
    l.tail->next = w;
  else
    l.head = w;
  l.tail = w;
}

Waiter* pop_front(WaitList& l) noexcept {
  Waiter* w = l.head;
  if (w) {
    l.head = w->next;
    if (!l.head) l.tail = nullptr;
  }
  return w;
}

Waiter* pop_all(WaitList& l) noexcept {
  Waiter* w = l.head;
  l.head = l.tail = nullptr;
  return w;
}

namespace {
void unlock_list(void* l) { unlock(*static_cast<WaitList*>(l)); }
}  // namespace

void block_locked(WaitList& l, Waiter& w, WaitReason reason) noexcept {
  if (Task* t = current_task()) {
    w.task = t;
    push_back(l, &w);
    park_current(reason, unlock_list, &l);
  } else {
    // No way to withdraw from a WaitList here: after a deadlock report, keep waiting.
    w.thread = &w.parker;
    push_back(l, &w);
    ForeignWait registered(&w.parker);
    unlock(l);
    if (!wait_checking_deadlock(w.parker)) w.parker.wait_notified();
  }
}

void block_with(Waiter& w, WaitReason reason, void (*unlock)(void*), void* arg) noexcept {
  if (!block_with_or_deadlock(w, reason, unlock, arg)) w.parker.wait_notified();
}

bool block_with_or_deadlock(Waiter& w, WaitReason reason, void (*unlock)(void*),
                            void* arg) noexcept {
  if (Task* t = current_task()) {
    w.task = t;
    park_current(reason, unlock, arg);
    return true;
  }
  w.thread = &w.parker;
  ForeignWait registered(&w.parker);
  unlock(arg);
  return wait_checking_deadlock(w.parker);
}

namespace {
void wake_impl(Waiter* w, bool handoff) noexcept {
  note_foreign_thread();  // a foreign waker may wake tasks again later (deadlock.hpp)
  Task* t = w->task;
  ThreadParker* p = w->thread;
  if (t)
    t->sched->ready(t, handoff);
  else
    p->notify();
}
}  // namespace

void wake(Waiter* w) noexcept { wake_impl(w, false); }
void wake_handoff(Waiter* w) noexcept { wake_impl(w, true); }

void wake_all(Waiter* list) noexcept {
  if (list) note_foreign_thread();
  // Parked tasks of one scheduler are readied as a batch (one global-queue lock for all of
  // them when the waker is not one of that scheduler's procs); threads are notified one by one.
  TaskList batch;
  auto flush = [&] {
    if (batch.head) batch.head->sched->ready_batch(batch);
  };
  while (list) {
    Waiter* next = list->next;  // read before waking: the waiter's frame may vanish after
    if (Task* t = list->task) {
      if (batch.head && batch.head->sched != t->sched) flush();
      batch.push_back(t);
    } else {
      list->thread->notify();
    }
    list = next;
  }
  flush();
}

}  // namespace myriad::detail
