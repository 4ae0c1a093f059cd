// The scheduler's side of the netpoller: starting it, and making sure someone polls.
// Who polls (Go's rules): a thread about to sleep blocks in the poller as the watcher
// (sleep_idle/watch) while I/O waits; threads looking for work poll without blocking before
// they steal (find_runnable); the monitor polls when nobody has for 10 ms.
#include <cstdlib>

#include "scheduler.hpp"

namespace myriad::detail {

Netpoll* Scheduler::netpoll(Errc* err) noexcept {
  if (Netpoll* np = netpoll_.load(std::memory_order_acquire)) return np;
  std::lock_guard<std::mutex> g(netpoll_mu_);
  if (Netpoll* np = netpoll_.load(std::memory_order_acquire)) return np;
  if (stopping_.load(std::memory_order_acquire)) {
    *err = Errc::closed;
    return nullptr;
  }
  try {
    auto* np = new Netpoll(this, config_.poller);
    netpoll_.store(np, std::memory_order_release);
    return np;
  } catch (const Error& e) {
    *err = e.code();
  } catch (...) {
    *err = Errc::no_memory;
  }
  return nullptr;
}

PollerKind Scheduler::poller_kind() const noexcept {
  Netpoll* np = netpoll_if_started();
  return np ? np->kind() : PollerKind::automatic;
}

void Scheduler::netpoll_waiting() noexcept {
  // A thread blocked in the poller will see the events.
  if (Netpoll* np = netpoll_if_started(); np && np->last_poll() == 0) return;
  // A watcher asleep on its futex (timers only): wake it to watch in the poller instead.
  if (Machine* w = timer_watcher_.load(std::memory_order_seq_cst)) {
    wake_machine(w);
    return;
  }
  // Idle threads sleep without polling: wake one to become the watcher. With none idle,
  // every thread is running tasks and polls when it looks for work (or the monitor does).
  if (npidle_.load(std::memory_order_seq_cst) == 0) return;
  std::lock_guard<std::mutex> g(mu_);
  if (!idle_machines_.empty()) wake_machine(idle_machines_.back());
}

}  // namespace myriad::detail

namespace myriad {

const char* to_string(PollerKind k) noexcept {
  switch (k) {
    case PollerKind::automatic: return "automatic";
    case PollerKind::epoll: return "epoll";
    case PollerKind::io_uring: return "io_uring";
  }
  return "?";
}

}  // namespace myriad
