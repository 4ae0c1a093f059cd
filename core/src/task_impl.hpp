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
struct Machine;

inline constexpr std::size_t kLabelCapacity = 64;

// A field its owner writes with plain syntax while observers (the task dump) may read it at
// any time: every access is a relaxed atomic one, which compiles to the same plain load or
// store on x86 and ARM but makes the concurrent read defined (and TSan-clean).
template <class T>
class RelaxedField {
 public:
  constexpr RelaxedField(T v = T{}) noexcept : v_(v) {}
  RelaxedField& operator=(T v) noexcept {
    v_.store(v, std::memory_order_relaxed);
    return *this;
  }
  operator T() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<T> v_;
};

// One task. It lives at the very top of its own stack slot (StackPool), so a parked task costs
// the pages its stack touched and nothing else: no separate allocation, no kernel object.
//
// Ownership: whoever removed the task from a queue (or is running it) owns `next` and the
// non-atomic fields. `state` is atomic because observers (task dump, shutdown scan) read it
// without owning the task. A slot whose state is `free` holds no task.
//
// The task dump (task_dump.cpp) copies identity and wait fields of tasks it does not own while
// they run, exit and are recycled, so those fields are only ever written atomically: the wait
// fields are RelaxedFields, and the identity (id, parent_id, site, label) is written by
// set_identity() alone, as a seqlock keyed by the id (see there). Owners read them plainly.
struct alignas(64) Task {
  // --- scheduling ------------------------------------------------------------------------
  fcontext_t ctx = nullptr;     // saved context while not running
  Task* next = nullptr;         // intrusive link: global run queue, free lists
  Scheduler* sched = nullptr;
  std::atomic<TaskState> state{TaskState::free};
  RelaxedField<WaitReason> wait_reason = WaitReason::none;
  RelaxedField<int64_t> wait_since_ns = 0;  // CLOCK_MONOTONIC_COARSE, set when parking

  // --- identity (principle 7: observable by default); written by set_identity() only --------
  uint64_t id = 0;
  uint64_t parent_id = 0;
  SourceSite site;
  char label[kLabelCapacity] = {};

  // --- body ----------------------------------------------------------------------------------
  const ClosureOps* ops = nullptr;
  void* closure = nullptr;      // inside this slot, just below the Task
  struct JoinState* join = nullptr;

  // --- thread lock (lock_to_thread); owned by the task itself while it runs -----------------
  Machine* locked_m = nullptr;
  uint32_t lock_depth = 0;

  // --- stack -----------------------------------------------------------------------------------
  StackPool* pool = nullptr;
  char* stack_limit = nullptr;  // lowest usable byte; the zero canary starts here
  SanitizerFiber san;
};

// Writes a new task's identity into a slot that task_dump.cpp may be copying concurrently (the
// slot's previous task may have been listed just before it exited). A seqlock whose sequence is
// the id itself, unique per task: the id is zeroed first ("being written"), the release fence
// orders that before the other stores, and the final release store of the id publishes them.
// A reader that loaded id X (acquire), copied the fields and, after an acquire fence, loads X
// again has a consistent copy: had it seen any store of a later task, it would load 0 or that
// task's id. All stores are relaxed atomics (std::atomic_ref): on x86 plain moves.
inline void set_identity(Task* t, uint64_t id, uint64_t parent_id, const SourceSite& site,
                         const char* label) noexcept {
  constexpr auto relaxed = std::memory_order_relaxed;
  std::atomic_ref<uint64_t>(t->id).store(0, relaxed);
#if !MYRIAD_TSAN  // TSan does not model fences (GCC warns); every access here is atomic anyway
  std::atomic_thread_fence(std::memory_order_release);
#endif
  std::atomic_ref<uint64_t>(t->parent_id).store(parent_id, relaxed);
  std::atomic_ref<const char*>(t->site.file).store(site.file, relaxed);
  std::atomic_ref<const char*>(t->site.function).store(site.function, relaxed);
  std::atomic_ref<uint32_t>(t->site.line).store(site.line, relaxed);
  std::size_t n = 0;
  for (; label && n < kLabelCapacity - 1 && label[n] != '\0'; ++n)
    std::atomic_ref<char>(t->label[n]).store(label[n], relaxed);
  std::atomic_ref<char>(t->label[n]).store('\0', relaxed);
  std::atomic_ref<uint64_t>(t->id).store(id, std::memory_order_release);
}

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
