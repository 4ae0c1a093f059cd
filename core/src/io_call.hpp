// The system-call loop behind every Fd call (io.cpp, io_tcp.cpp).
//
// A call: acquire the desc (fails with fd_closed once closed), check the context and the
// direction's deadline (Go: both fail a call before any system call), then loop { system
// call; EAGAIN -> Netpoll::wait }, and release. EINTR retries. While the desc is acquired its
// descriptor number stays open even if another task closes the Fd (netpoll.hpp).
#pragma once

#include <sys/types.h>

#include <cerrno>

#include "myriad/io.hpp"
#include "netpoll.hpp"
#include "timers.hpp"

namespace myriad::detail {

// An op's result meaning "failed, errno says why — even if it says EAGAIN" (connect).
constexpr ssize_t kIoFailNow = -2;

inline IoResult io_fail(Errc e, int sys_errno = 0) noexcept { return IoResult{0, e, sys_errno}; }

// Netpoll::acquire/release as a scope.
class InFlight {
 public:
  explicit InFlight(PollDesc* pd) noexcept : pd_(pd), held_(pd && pd->np->acquire(pd)) {}
  ~InFlight() {
    if (held_) pd_->np->release(pd_);
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  bool held() const noexcept { return held_; }

 private:
  PollDesc* pd_;
  bool held_;
};

// `op(fd)` performs the system call and returns its result: >= 0 on success, -1 with errno
// set on failure (EAGAIN: wait for `dir` and retry), kIoFailNow to fail with errno as it is.
// `park_first`: wait for readiness before the first system call (the drained hint, io.cpp).
template <class Op>
IoResult run_io(PollDesc* pd, IoDir dir, const Context& ctx, bool park_first, Op&& op) noexcept {
  InFlight in(pd);
  if (!in.held()) return io_fail(Errc::fd_closed);
  Netpoll* np = pd->np;
  if (Errc e = ctx.err(); e != Errc::ok) return io_fail(e);
  const int64_t deadline = np->deadline(pd, dir);
  if (deadline != kNever && deadline <= monotonic_now_ns()) return io_fail(Errc::timed_out);
  if (park_first) {
    if (Errc e = np->wait(pd, dir, ctx); e != Errc::ok) return io_fail(e);
  }
  for (;;) {
    const ssize_t n = op(pd->fd.load(std::memory_order_relaxed));
    if (n >= 0) return IoResult{static_cast<std::size_t>(n), Errc::ok, 0};
    if (n == -1 && errno == EINTR) continue;
    if (n == kIoFailNow || (errno != EAGAIN && errno != EWOULDBLOCK))
      return io_fail(Errc::io_error, errno);
    if (Errc e = np->wait(pd, dir, ctx); e != Errc::ok) return io_fail(e);
  }
}

}  // namespace myriad::detail
