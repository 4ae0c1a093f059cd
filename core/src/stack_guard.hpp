// Stack overflow reporting: a SIGSEGV handler that recognises faults in guard pages, and the
// per-thread alternate signal stack it needs (the faulting stack has no room left).
#pragma once

#include <cstddef>

namespace myriad::detail {

struct Task;

// Installs the process-wide handler once; faults outside guard pages go to the previous one.
void install_overflow_handler() noexcept;

// Gives the calling thread an alternate signal stack for its lifetime unless it has one.
class AltSignalStack {
 public:
  AltSignalStack() noexcept;
  ~AltSignalStack();
  AltSignalStack(const AltSignalStack&) = delete;
  AltSignalStack& operator=(const AltSignalStack&) = delete;

 private:
  void* mem_ = nullptr;
  std::size_t size_ = 0;
};

// Prints the task's identity and why its stack is considered overflowed, then aborts.
[[noreturn]] void report_stack_overflow_and_abort(const Task* t, const char* why) noexcept;

}  // namespace myriad::detail
