// Error codes shared by the C++ API and the C ABI.
//
// The numeric values are part of the stable C ABI (capi/include/myriad.h mirrors them) and must
// never change; new codes are appended.
#pragma once

#include <stdexcept>
#include <string>

namespace myriad {

enum class Errc : int {
  ok = 0,
  invalid_argument = 1,  // a null pointer, a zero/oversized size, a bad enum value
  bad_handle = 2,        // a handle that was never valid, was destroyed, or was already joined
  closed = 3,            // the runtime is shutting down and takes no new tasks from outside
  no_memory = 4,         // a stack or task could not be allocated
  not_in_task = 5,       // a call that needs a task (yield) was made from outside any task
  busy = 6,              // no host proc is free for Runtime::step, or step was re-entered
  negative_counter = 7,  // WaitGroup counter went below zero (Go panics here)
  task_failed = 8,       // the joined task ended with an exception
  abandoned = 9,         // the joined task was still parked when its runtime was destroyed
  wrong_runtime = 10,    // the call needs a task or proc of a different runtime
  would_deadlock = 11,   // a task tried to join itself
  channel_closed = 12,   // send on a closed channel, or close of a closed channel (Go panics)
  would_block = 13,      // a try_ operation found nothing ready
  timed_out = 14,        // a deadline passed before the operation could complete
  canceled = 15,         // the operation's context was canceled
  deadlock = 16,         // every task is parked and nothing can wake them (see Config::on_deadlock)
  not_locked = 17,       // unlock of a Mutex/RWMutex that is not locked (Go: fatal error)
  nil_channel = 18,      // close of a nil channel (Go panics); nil channels otherwise block forever
  io_error = 19,         // the operating system refused an I/O call (IoResult::sys_errno says why)
  fd_closed = 20,        // the Fd was closed (before or during the call; Go's ErrNetClosing)
  thread_limit = 21,     // a blocking call or thread lock would exceed Config::max_threads
  not_supported = 22,    // the call is not possible here (e.g. a forced io_uring the kernel refuses)
};

// Human-readable text for a code; never null. Also behind myriad_strerror.
const char* strerror(Errc code) noexcept;

// The exception the C++ API throws where the C ABI returns a code.
class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& what) : std::runtime_error(what), code_(code) {}
  explicit Error(Errc code) : Error(code, strerror(code)) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

}  // namespace myriad
