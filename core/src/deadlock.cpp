#include "deadlock.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "futex.hpp"
#include "myriad/task_dump.hpp"
#include "registry.hpp"
#include "scheduler.hpp"
#include "timers.hpp"

namespace myriad::detail {
namespace {

// The blocked foreign waiters. Never destroyed (threads may block during static destruction).
struct ForeignWaiters {
  std::mutex mu;  // also serialises checks
  ForeignWait* head = nullptr;
  std::atomic<uint32_t> count{0};
  uint32_t known_threads = 0;  // under mu
  uint64_t blocks = 0;         // ForeignWaits ever registered (progress), under mu
  // The candidate being confirmed (see kDeadlockGraceNs), under mu.
  int64_t candidate_since = 0;  // 0: none
  uint64_t candidate_progress = 0;
};
ForeignWaiters& waiters() {
  static ForeignWaiters* w = new ForeignWaiters;
  return *w;
}

// Lives as long as its thread once the thread is known; counts it out at thread exit.
struct KnownThread {
  bool known = false;
  ~KnownThread() {
    if (!known) return;
    ForeignWaiters& fw = waiters();
    std::lock_guard<std::mutex> g(fw.mu);
    --fw.known_threads;
  }
};
thread_local KnownThread tls_known;

}  // namespace

void note_foreign_thread() noexcept {
  if (tls_known.known || current_machine()) return;
  ForeignWaiters& fw = waiters();
  std::lock_guard<std::mutex> g(fw.mu);
  tls_known.known = true;
  ++fw.known_threads;
}

ForeignWait::ForeignWait(ThreadParker* p) noexcept : parker(p) {
  note_foreign_thread();
  ForeignWaiters& fw = waiters();
  std::lock_guard<std::mutex> g(fw.mu);
  next = fw.head;
  if (next) next->prev = this;
  fw.head = this;
  ++fw.blocks;
  fw.count.fetch_add(1, std::memory_order_seq_cst);
}

ForeignWait::~ForeignWait() {
  ForeignWaiters& fw = waiters();
  std::lock_guard<std::mutex> g(fw.mu);
  if (prev)
    prev->next = next;
  else
    fw.head = next;
  if (next) next->prev = prev;
  fw.count.fetch_sub(1, std::memory_order_seq_cst);
}

bool foreign_waiters_present() noexcept {
  return waiters().count.load(std::memory_order_seq_cst) != 0;
}

DeadlockCheck check_deadlock() noexcept {
  ForeignWaiters& fw = waiters();
  std::lock_guard<std::mutex> g(fw.mu);
  auto no = [&] {
    fw.candidate_since = 0;
    return DeadlockCheck::no;
  };
  uint32_t blocked = 0;
  for (ForeignWait* w = fw.head; w; w = w->next)
    if (!w->parker->notified()) ++blocked;
  // Every known foreign thread blocked (a known thread that runs may still wake a task).
  if (blocked == 0 || blocked < fw.known_threads) return no();

  // Every runtime asleep for good, and some task parked in one of them.
  bool asleep = true;
  std::size_t parked = 0;
  uint64_t progress = fw.blocks;
  std::vector<Scheduler*> with_parked;
  try {
    for_each_scheduler([&](Scheduler* s) {
      if (!s->asleep_for_good()) {
        asleep = false;
        return false;
      }
      std::size_t n = s->parked_tasks();
      if (n) with_parked.push_back(s);
      parked += n;
      Stats st = s->stats();
      progress += st.parks + st.tasks_exited + st.tasks_spawned + st.yields + st.timers_fired;
      return true;
    });
    if (!asleep || parked == 0) return no();
    // Re-count: a task may have notified a waiter between the first count and the moment
    // every runtime was seen asleep. From that moment on nothing can notify anyone (no task
    // runs, no timer is pending, every known foreign thread is blocked), so this count holds.
    uint32_t still_blocked = 0;
    for (ForeignWait* w = fw.head; w; w = w->next)
      if (!w->parker->notified()) ++still_blocked;
    if (still_blocked == 0 || still_blocked < fw.known_threads) return no();
    // Confirm: the same picture, with no progress, for the whole grace period.
    const int64_t now = monotonic_now_ns();
    if (fw.candidate_since == 0 || fw.candidate_progress != progress) {
      fw.candidate_since = now;
      fw.candidate_progress = progress;
      return DeadlockCheck::pending;
    }
    if (now - fw.candidate_since < kDeadlockGraceNs) return DeadlockCheck::pending;
    fw.candidate_since = 0;
    // The state cannot change under us now: nothing runs, and a foreign thread that would
    // wake a task must pass through a myriad call (a spawn, a send) — which the report
    // assumes does not happen (see deadlock.hpp).
    for (Scheduler* s : with_parked) {
      std::string report = "myriad: all tasks are asleep - deadlock!\n" + dump_tasks(*s->runtime());
      if (s->config().on_deadlock)
        s->config().on_deadlock(report);
      else
        std::fputs(report.c_str(), stderr);
    }
  } catch (...) {
    return no();  // out of memory formatting the report: flag nobody rather than half-report
  }
  for (ForeignWait* w = fw.head; w; w = w->next) w->parker->flag_deadlock();
  return DeadlockCheck::reported;
}

bool wait_checking_deadlock(ThreadParker& p) noexcept {
  while (check_deadlock() == DeadlockCheck::pending) {
    uint32_t s = p.wait_once_until(monotonic_now_ns() + kDeadlockGraceNs);
    if (s != 0) return s == 1;
  }
  return p.wait_once();
}

}  // namespace myriad::detail
