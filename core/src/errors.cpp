#include "myriad/errors.hpp"
#include "myriad/task.hpp"

namespace myriad {

const char* strerror(Errc code) noexcept {
  switch (code) {
    case Errc::ok: return "ok";
    case Errc::invalid_argument: return "invalid argument";
    case Errc::bad_handle: return "bad handle (never valid, destroyed, or already joined)";
    case Errc::closed: return "runtime is shutting down";
    case Errc::no_memory: return "out of memory for a task stack";
    case Errc::not_in_task: return "not called from a task";
    case Errc::busy: return "no free host proc, or step re-entered";
    case Errc::negative_counter: return "wait group counter would go negative";
    case Errc::task_failed: return "task ended with an exception";
    case Errc::abandoned: return "task was parked when its runtime was destroyed";
    case Errc::wrong_runtime: return "handle belongs to another runtime";
    case Errc::would_deadlock: return "operation would deadlock";
    case Errc::channel_closed: return "channel is closed";
    case Errc::would_block: return "operation would block";
    case Errc::timed_out: return "deadline passed";
    case Errc::canceled: return "context canceled";
    case Errc::deadlock: return "all tasks are asleep - deadlock";
    case Errc::not_locked: return "unlock of an unlocked mutex";
    case Errc::nil_channel: return "nil channel";
    case Errc::io_error: return "I/O error (see errno)";
    case Errc::fd_closed: return "use of a closed file descriptor";
    case Errc::thread_limit: return "too many threads in blocking calls (Config::max_threads)";
    case Errc::not_supported: return "not supported here";
  }
  return "unknown status";
}

const char* to_string(TaskState s) noexcept {
  switch (s) {
    case TaskState::free: return "free";
    case TaskState::runnable: return "runnable";
    case TaskState::running: return "running";
    case TaskState::waiting: return "waiting";
    case TaskState::dead: return "dead";
  }
  return "?";
}

const char* to_string(WaitReason r) noexcept {
  switch (r) {
    case WaitReason::none: return "nothing";
    case WaitReason::join: return "join";
    case WaitReason::wait_group: return "wait group";
    case WaitReason::test_park: return "park";
    case WaitReason::chan_send: return "chan send";
    case WaitReason::chan_recv: return "chan receive";
    case WaitReason::select: return "select";
    case WaitReason::select_no_cases: return "select (no cases)";
    case WaitReason::nil_chan: return "chan send (nil chan)";
    case WaitReason::sleep: return "sleep";
    case WaitReason::mutex: return "sync.Mutex.Lock";
    case WaitReason::rw_read: return "sync.RWMutex.RLock";
    case WaitReason::rw_write: return "sync.RWMutex.Lock";
    case WaitReason::cond: return "sync.Cond.Wait";
    case WaitReason::semaphore: return "semaphore acquire";
    case WaitReason::once: return "sync.Once.Do";
    case WaitReason::io_read: return "IO wait (read)";
    case WaitReason::io_write: return "IO wait (write)";
  }
  return "?";
}

}  // namespace myriad
