// Join handles: waiting for one task through the shared wait mechanism.
#include "scheduler.hpp"
#include "wait_queue.hpp"

namespace myriad {
namespace detail {

void complete_join(JoinState* js, uint32_t status, std::exception_ptr ex) noexcept {
  js->exception = std::move(ex);
  lock(js->waiters);
  js->status.store(status, std::memory_order_release);
  Waiter* all = pop_all(js->waiters);
  unlock(js->waiters);
  wake_all(all);
  js->release();
}

}  // namespace detail

JoinHandle& JoinHandle::operator=(JoinHandle&& other) noexcept {
  if (this != &other) {
    detach();
    state_ = other.state_;
    other.state_ = nullptr;
  }
  return *this;
}

uint64_t JoinHandle::id() const noexcept { return state_ ? state_->task_id : 0; }

void JoinHandle::detach() noexcept {
  if (state_) {
    state_->release();
    state_ = nullptr;
  }
}

Errc JoinHandle::try_join(std::exception_ptr* exception) noexcept {
  detail::JoinState* js = state_;
  if (!js) return Errc::bad_handle;
  if (js->status.load(std::memory_order_acquire) == detail::JoinState::running) {
    if (this_task::id() == js->task_id) return Errc::would_deadlock;
    detail::lock(js->waiters);
    if (js->status.load(std::memory_order_acquire) == detail::JoinState::running) {
      detail::Waiter w;
      detail::block_locked(js->waiters, w, WaitReason::join);
    } else {
      detail::unlock(js->waiters);
    }
  }
  Errc result = Errc::ok;
  switch (js->status.load(std::memory_order_acquire)) {
    case detail::JoinState::failed:
      result = Errc::task_failed;
      // Moved, not copied: the handle is the only joiner, and the last reference to the
      // exception then always dies on the joiner's side (libstdc++'s refcount is invisible
      // to TSan, which otherwise reports the task thread's final free as a race).
      if (exception) *exception = std::move(js->exception);
      break;
    case detail::JoinState::abandoned:
      result = Errc::abandoned;
      break;
    default:
      break;
  }
  state_ = nullptr;
  js->release();
  return result;
}

void JoinHandle::join() {
  std::exception_ptr ex;
  Errc e = try_join(&ex);
  if (ex) std::rethrow_exception(ex);
  if (e != Errc::ok) throw Error(e);
}

}  // namespace myriad
