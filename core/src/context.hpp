// The context switch: Boost.Context's fcontext jump, annotated for ASan and TSan.
//
// Why fcontext and not boost::context::fiber: the raw jump is what the fiber API itself calls;
// the fiber wrapper adds ownership bookkeeping (a move-only handle per switch) we do not need
// because the scheduler owns every task's context. docs/ARCHITECTURE.md has the measurement.
//
// Protocol (the only one the scheduler uses; task_switch.cpp): every jump carries the machine
// (M) as its data, so a resumed task never reads a thread-local to learn where it runs.
//   g0 -> task:    jump(task->ctx, m)
//   task -> g0:    jump(m->sched_ctx, m)       — when the proc's queue has nothing ready
//   task -> task:  jump(next->ctx, m) with m->prev = the task being left; the resumed task
//                  settles m->prev (queue/park/free) first thing, on its own stack.
#pragma once

#include <boost/context/detail/fcontext.hpp>
#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define MYRIAD_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MYRIAD_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define MYRIAD_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MYRIAD_TSAN 1
#endif
#endif

#if MYRIAD_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if MYRIAD_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace myriad::detail {

using fcontext_t = boost::context::detail::fcontext_t;
using transfer_t = boost::context::detail::transfer_t;

inline fcontext_t make_context(void* stack_top, std::size_t size, void (*fn)(transfer_t)) noexcept {
  return boost::context::detail::make_fcontext(stack_top, size, fn);
}

inline transfer_t jump_context(fcontext_t to, void* data) noexcept {
  return boost::context::detail::jump_fcontext(to, data);
}

// Per-side sanitizer state of one switch. Empty (and free) in normal builds.
struct SanitizerFiber {
#if MYRIAD_ASAN
  void* fake_stack = nullptr;
  const void* bottom = nullptr;
  std::size_t size = 0;
#endif
#if MYRIAD_TSAN
  void* tsan_fiber = nullptr;
#endif
};

// Call right before jumping from `from` to `to`. `dying` = the current stack is never resumed.
inline void sanitizer_before_switch([[maybe_unused]] SanitizerFiber& from,
                                    [[maybe_unused]] const SanitizerFiber& to,
                                    [[maybe_unused]] bool dying) noexcept {
#if MYRIAD_ASAN
  __sanitizer_start_switch_fiber(dying ? nullptr : &from.fake_stack, to.bottom, to.size);
#endif
#if MYRIAD_TSAN
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
}

// Call first thing after a jump lands in `self`; records the bounds of the stack we came from
// into `came_from` (ASan reports them).
inline void sanitizer_after_switch([[maybe_unused]] SanitizerFiber& self,
                                   [[maybe_unused]] SanitizerFiber* came_from) noexcept {
#if MYRIAD_ASAN
  const void* bottom = nullptr;
  std::size_t size = 0;
  __sanitizer_finish_switch_fiber(self.fake_stack, &bottom, &size);
  if (came_from) {
    came_from->bottom = bottom;
    came_from->size = size;
  }
#endif
}

}  // namespace myriad::detail
