// Tasks (Go's G): identity, spawn options, join handles and the calls a running task makes on
// itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "myriad/errors.hpp"

namespace myriad {

namespace detail {
struct JoinState;
struct Task;
}  // namespace detail

// Where a task was spawned. The strings are static (__FILE__, __func__ or the compiler's
// builtins). As a defaulted argument, SourceSite::current() captures the caller's site — the
// builtins behind it work in GCC and Clang alike (Clang 14 with libstdc++ 12 has no usable
// std::source_location).
struct SourceSite {
  const char* file = "";
  const char* function = "";
  uint32_t line = 0;

  static constexpr SourceSite current(const char* file = __builtin_FILE(),
                                      const char* function = __builtin_FUNCTION(),
                                      uint32_t line = __builtin_LINE()) noexcept {
    return SourceSite{file, function, line};
  }
};

// A task's life: Runnable -> Running -> (Waiting -> Runnable -> Running)* -> Dead.
enum class TaskState : uint8_t {
  free = 0,  // the slot holds no task (never used, or recycled)
  runnable = 1,
  running = 2,
  waiting = 3,  // parked; WaitReason says on what
  dead = 4,     // returned; the slot is about to be recycled
};

// Why a parked task waits. Later layers (channels, timers, I/O) add their reasons here.
enum class WaitReason : uint8_t {
  none = 0,
  join = 1,
  wait_group = 2,
  test_park = 3,  // internal::park used directly (tests, future primitives)
  chan_send = 4,
  chan_recv = 5,
  select = 6,
  select_no_cases = 7,  // select with no cases (and no default): blocks forever
  nil_chan = 8,         // send or receive on a nil channel: blocks forever
  sleep = 9,
  mutex = 10,
  rw_read = 11,
  rw_write = 12,
  cond = 13,
  semaphore = 14,
  once = 15,            // waiting for another caller's Once::call to finish
  io_read = 16,         // an Fd read/accept/recv waits for the descriptor to become readable
  io_write = 17,        // an Fd write/connect/send waits for it to become writable
};

const char* to_string(TaskState) noexcept;
const char* to_string(WaitReason) noexcept;

struct SpawnOptions {
  // Copied into the task (at most 63 bytes are kept); may be null.
  const char* label = nullptr;
  // 0 = the runtime's Config::stack_size. Rounded up to whole pages; at least 16 KiB.
  std::size_t stack_size = 0;
};

// What the exception handler is told when a task's function throws.
struct TaskFailure {
  uint64_t task_id;
  uint64_t parent_id;
  std::string label;
  SourceSite site;
  std::string what;  // exception::what(), or "unknown exception"
  std::exception_ptr exception;
};

// Owns the right to wait for one task. Move-only; destroying a joinable handle detaches it
// (the task keeps running, as a Go goroutine does).
class JoinHandle {
 public:
  JoinHandle() = default;
  JoinHandle(JoinHandle&& other) noexcept : state_(other.state_) { other.state_ = nullptr; }
  JoinHandle& operator=(JoinHandle&& other) noexcept;
  JoinHandle(const JoinHandle&) = delete;
  JoinHandle& operator=(const JoinHandle&) = delete;
  ~JoinHandle() { detach(); }

  bool joinable() const noexcept { return state_ != nullptr; }
  uint64_t id() const noexcept;

  // Waits for the task. From a task it parks; from any other thread it blocks that thread.
  // Rethrows the task's exception if it threw; throws Error(abandoned) if the runtime was
  // destroyed while the task was parked; throws Error(bad_handle) if not joinable.
  void join();
  // Like join() but reports instead of throwing; the exception (if any) goes to *exception.
  Errc try_join(std::exception_ptr* exception = nullptr) noexcept;
  void detach() noexcept;

  explicit JoinHandle(detail::JoinState* s) noexcept : state_(s) {}
  detail::JoinState* release() noexcept {
    auto* s = state_;
    state_ = nullptr;
    return s;
  }

 private:
  detail::JoinState* state_ = nullptr;
};

namespace this_task {
// True when the caller runs inside a myriad task.
bool in_task() noexcept;
// The current task's id, 0 outside a task.
uint64_t id() noexcept;
// Puts the current task at the back of its proc's run queue and runs others.
// Throws Error(not_in_task) outside a task.
void yield();
}  // namespace this_task

}  // namespace myriad
