// The task control block (Go's g) and the join state shared with a join handle.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>

#include "context.hpp"
#include "myriad/detail/wait_list.hpp"
#include "myriad/runtime.hpp"
#include "myriad/task.hpp"

namespace myriad::detail {

class Scheduler;
class StackPool;

inline constexpr std::size_t kLabelCapacity = 64;

// One task. It lives at the very top of its own stack slot (StackPool), so a parked task costs
// the pages its stack touched and nothing else: no separate allocation, no kernel object.
//
// Ownership: whoever removed the task from a queue (or is running it) owns `next` and the
// non-atomic fields. `state` is atomic because observers (task dump, shutdown scan) read it
// without owning the task. A slot whose state is `free` holds no task.
struct alignas(64) Task {
  // --- scheduling ------------------------------------------------------------------------
  fcontext_t ctx = nullptr;     // saved context while not running
  Task* next = nullptr;         // intrusive link: global run queue, free lists
  Scheduler* sched = nullptr;
  std::atomic<TaskState> state{TaskState::free};
  WaitReason wait_reason = WaitReason::none;
  int64_t wait_since_ns = 0;    // CLOCK_MONOTONIC_COARSE, set when parking

  // --- identity (principle 7: observable by default) ---------------------------------------
  uint64_t id = 0;
  uint64_t parent_id = 0;
  SourceSite site;
  char label[kLabelCapacity] = {};

  // --- body ----------------------------------------------------------------------------------
  const ClosureOps* ops = nullptr;
  void* closure = nullptr;      // inside this slot, just below the Task
  struct JoinState* join = nullptr;

  // --- stack -----------------------------------------------------------------------------------
  StackPool* pool = nullptr;
  char* stack_limit = nullptr;  // lowest usable byte; the zero canary starts here
  SanitizerFiber san;
};

// A FIFO of tasks linked through Task::next: the global run queue, a spilled half of a local
// queue, a batch of parked tasks being woken. Owned by whoever holds it (no locking inside).
struct TaskList {
  Task* head = nullptr;
  Task* tail = nullptr;
  uint32_t size = 0;

  void push_back(Task* t) noexcept {
    t->next = nullptr;
    if (tail)
      tail->next = t;
    else
      head = t;
    tail = t;
    ++size;
  }
  // Moves all of `other` to the back of this list.
  void splice_back(TaskList& other) noexcept {
    if (!other.head) return;
    if (tail)
      tail->next = other.head;
    else
      head = other.head;
    tail = other.tail;
    size += other.size;
    other = TaskList{};
  }
  Task* pop_front() noexcept {
    Task* t = head;
    if (t) {
      head = t->next;
      if (!head) tail = nullptr;
      t->next = nullptr;
      --size;
    }
    return t;
  }
};

// The zero canary: the lowest kCanaryBytes of every usable stack are never written by a
// healthy task (it would have to run out of stack to reach them), so they stay zero — and cost
// no memory, because an untouched page reads as the shared zero page. Checked at every switch.
inline constexpr std::size_t kCanaryBytes = 64;
// An overflow comes from above, so the top two words of the canary are the first it hits;
// checking only those keeps the check to one cache line read per switch.
inline bool canary_intact(const Task* t) noexcept {
  const auto* words = reinterpret_cast<const volatile uint64_t*>(t->stack_limit + kCanaryBytes);
  return (words[-1] | words[-2]) == 0;
}

// What a join handle waits on. Reference-counted between the handle and the task, and kept
// apart from the Task so the task's slot can be recycled the moment it exits.
struct JoinState {
  enum : uint32_t { running = 0, ok = 1, failed = 2, abandoned = 3 };
  std::atomic<uint32_t> status{running};
  std::atomic<uint32_t> refs{2};  // the handle and the task
  uint64_t task_id = 0;
  std::exception_ptr exception;   // written before status leaves `running`
  WaitList waiters;

  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

// Records the outcome, wakes every joiner and drops the task's reference.
void complete_join(JoinState* js, uint32_t status, std::exception_ptr ex) noexcept;

}  // namespace myriad::detail
