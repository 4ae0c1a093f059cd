// The monitor (Go's sysmon): one thread per runtime that runs no tasks. It
//  - retakes procs from threads stuck in blocking calls (Config::blocking_handoff),
//  - polls the network when nobody has for 10 ms (all threads busy running tasks),
//  - notices tasks that ran Config::preempt_after without reaching a yield point, asks them
//    to yield (honoured at the next yield point, preempt.hpp) and reports them.
// It sleeps 20 µs between rounds while it finds work, doubling up to 10 ms after 50 rounds
// without any, and sleeps without a timeout while every proc is idle and no blocking call is
// in progress — woken by whatever ends that state (a proc leaving the idle list, a blocking
// call starting, a host step starting).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "futex.hpp"
#include "myriad/task.hpp"

namespace myriad::detail {

class Scheduler;
struct Task;

class Monitor {
 public:
  explicit Monitor(Scheduler* s);
  ~Monitor();
  void stop() noexcept;
  // Cheap when the monitor is awake (one load); wakes it from its deep sleep otherwise.
  void wake_if_sleeping() noexcept {
    if (sleeping_.load(std::memory_order_seq_cst) &&
        sleeping_.exchange(false, std::memory_order_seq_cst))
      parker_.notify();
  }
  void blocking_call_started() noexcept { wake_if_sleeping(); }

 private:
  struct ProcWatch {
    uint64_t tick = 0;       // schedtick + yields when last seen changing
    int64_t since = 0;       // when it last changed (or the last request was made)
    bool valid = false;
  };
  void run();
  bool all_idle() const noexcept;
  bool retake_blocked_procs(int64_t now) noexcept;
  void poll_network(int64_t now) noexcept;
  void check_long_running(int64_t now);

  Scheduler* const s_;
  ThreadParker parker_;
  std::atomic<bool> sleeping_{false};
  std::atomic<bool> stop_{false};
  std::vector<ProcWatch> watch_;
  std::thread thread_;
};

// The task's identity, read consistently while it may be running (task_dump.cpp).
bool read_task_identity(Task* t, uint64_t* id, std::string* label, SourceSite* site);

}  // namespace myriad::detail
