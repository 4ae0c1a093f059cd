// Fd (myriad/io.hpp): system calls on a non-blocking descriptor, parking on the netpoller when
// they would block.
//
// Every call: acquire the desc (fails once closed), check the direction's deadline and the
// context, then loop { system call; EAGAIN -> Netpoll::wait }, release. EINTR retries.
//
// A read that returned less than asked leaves a stream socket's receive queue empty at that
// moment, so the next read of the same Fd parks at once instead of paying for a system call
// that would say EAGAIN: any byte that arrives after the drain produces a new edge, which the
// desc keeps as `ready` if nobody waits yet (netpoll.hpp) — so the park then returns at once
// and the read is tried. `drained` is a hint only; being wrong costs one wake-up, never data.
#include "myriad/io.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "netpoll.hpp"
#include "scheduler.hpp"
#include "timers.hpp"

namespace myriad {
using detail::IoDir;
using detail::Netpoll;
using detail::PollDesc;

namespace {

Netpoll* poller_of(Runtime* rt, Errc* err) noexcept {
  detail::Scheduler* s = nullptr;
  try {
    s = detail::timer_scheduler(rt, "myriad::Fd");
  } catch (const Error& e) {
    *err = e.code();
    return nullptr;
  } catch (...) {
    *err = Errc::no_memory;
    return nullptr;
  }
  return s->netpoll(err);
}

IoResult fail(Errc e, int sys = 0) noexcept { return IoResult{0, e, sys}; }

// The loop shared by every call. `op` performs the system call and returns its result (-1 with
// errno set on failure).
template <class Op>
IoResult run_io(PollDesc* pd, IoDir dir, const Context& ctx, Op&& op) noexcept {
  if (!pd) return fail(Errc::fd_closed);
  Netpoll* np = pd->np;
  if (!np->acquire(pd)) return fail(Errc::fd_closed);
  struct Release {
    Netpoll* np;
    PollDesc* pd;
    ~Release() { np->release(pd); }
  } release{np, pd};
  if (Errc e = ctx.err(); e != Errc::ok) return fail(e);
  const int64_t deadline = np->deadline(pd, dir);
  if (deadline != detail::kNever && deadline <= detail::monotonic_now_ns())
    return fail(Errc::timed_out);
  for (;;) {
    ssize_t n = op(pd->fd.load(std::memory_order_relaxed));
    if (n >= 0) return IoResult{static_cast<std::size_t>(n), Errc::ok, 0};
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return fail(Errc::io_error, errno);
    if (Errc e = np->wait(pd, dir, ctx); e != Errc::ok) return fail(e);
  }
}

// Reads with the drained hint (see the header comment).
template <class Op>
IoResult run_read(PollDesc* pd, std::size_t asked, const Context& ctx, Op&& op) noexcept {
  if (pd && pd->drained.load(std::memory_order_relaxed)) {
    pd->drained.store(false, std::memory_order_relaxed);
    // Park first. Any outcome but ok (deadline, context, close) is the call's answer.
    Netpoll* np = pd->np;
    if (np->acquire(pd)) {
      Errc e = Errc::ok;
      if ((e = ctx.err()) == Errc::ok) {
        const int64_t deadline = np->deadline(pd, IoDir::read);
        if (deadline != detail::kNever && deadline <= detail::monotonic_now_ns())
          e = Errc::timed_out;
        else
          e = np->wait(pd, IoDir::read, ctx);
      }
      np->release(pd);
      if (e != Errc::ok) return fail(e);
    }
  }
  IoResult r = run_io(pd, IoDir::read, ctx, op);
  if (r.ok() && r.n > 0 && r.n < asked && pd->stream)
    pd->drained.store(true, std::memory_order_relaxed);
  return r;
}

}  // namespace

Errc Fd::adopt(int fd, Runtime* rt, Fd* out) noexcept {
  if (!out) {
    if (fd >= 0) ::close(fd);
    return Errc::invalid_argument;
  }
  *out = Fd();
  if (fd < 0) return Errc::invalid_argument;
  Errc err = Errc::ok;
  Netpoll* np = poller_of(rt, &err);
  if (!np) {
    ::close(fd);
    return err;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)) {
    ::close(fd);
    return Errc::io_error;
  }
  PollDesc* pd = nullptr;
  if (Errc e = np->open(fd, &pd, nullptr); e != Errc::ok) {
    ::close(fd);
    return e;
  }
  out->pd_ = pd;
  return Errc::ok;
}

Fd::Fd(int fd, Runtime* rt) {
  if (Errc e = adopt(fd, rt, this); e != Errc::ok) throw Error(e);
}

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    close();
    if (pd_) pd_->np->destroy(pd_);
    pd_ = std::exchange(o.pd_, nullptr);
  }
  return *this;
}

Fd::~Fd() {
  if (pd_) pd_->np->destroy(pd_);
}

int Fd::native() const noexcept { return pd_ ? pd_->fd.load(std::memory_order_relaxed) : -1; }

void Fd::close() noexcept {
  if (pd_) pd_->np->close(pd_, true);
}

int Fd::release() noexcept {
  if (!pd_) return -1;
  int fd = pd_->fd.load(std::memory_order_relaxed);
  pd_->np->close(pd_, false);
  pd_->np->destroy(pd_);
  pd_ = nullptr;
  return fd;
}

void Fd::set_read_deadline(TimePoint t) noexcept {
  if (pd_) pd_->np->set_deadline(pd_, IoDir::read, t == TimePoint::max() ? detail::kNever : detail::to_ns(t));
}

void Fd::set_write_deadline(TimePoint t) noexcept {
  if (pd_) pd_->np->set_deadline(pd_, IoDir::write, t == TimePoint::max() ? detail::kNever : detail::to_ns(t));
}

IoResult Fd::read(void* buf, std::size_t n, const Context& ctx) noexcept {
  if (!buf && n) return fail(Errc::invalid_argument);
  return run_read(pd_, n, ctx, [&](int fd) { return ::read(fd, buf, n); });
}

IoResult Fd::readv(const iovec* iov, int iovcnt, const Context& ctx) noexcept {
  if ((!iov && iovcnt) || iovcnt < 0) return fail(Errc::invalid_argument);
  std::size_t asked = 0;
  for (int i = 0; i < iovcnt; ++i) asked += iov[i].iov_len;
  return run_read(pd_, asked, ctx, [&](int fd) { return ::readv(fd, iov, iovcnt); });
}

IoResult Fd::recv(void* buf, std::size_t n, int flags, const Context& ctx) noexcept {
  if (!buf && n) return fail(Errc::invalid_argument);
  // MSG_PEEK leaves the data queued: no drained hint for it.
  if (flags & MSG_PEEK)
    return run_io(pd_, IoDir::read, ctx, [&](int fd) { return ::recv(fd, buf, n, flags); });
  return run_read(pd_, n, ctx, [&](int fd) { return ::recv(fd, buf, n, flags); });
}

IoResult Fd::write(const void* buf, std::size_t n, const Context& ctx) noexcept {
  if (!buf && n) return fail(Errc::invalid_argument);
  return run_io(pd_, IoDir::write, ctx, [&](int fd) { return ::write(fd, buf, n); });
}

IoResult Fd::writev(const iovec* iov, int iovcnt, const Context& ctx) noexcept {
  if ((!iov && iovcnt) || iovcnt < 0) return fail(Errc::invalid_argument);
  return run_io(pd_, IoDir::write, ctx, [&](int fd) { return ::writev(fd, iov, iovcnt); });
}

IoResult Fd::send(const void* buf, std::size_t n, int flags, const Context& ctx) noexcept {
  if (!buf && n) return fail(Errc::invalid_argument);
  return run_io(pd_, IoDir::write, ctx,
                [&](int fd) { return ::send(fd, buf, n, flags | MSG_NOSIGNAL); });
}

IoResult Fd::write_all(const void* buf, std::size_t n, const Context& ctx) noexcept {
  if (!buf && n) return fail(Errc::invalid_argument);
  auto* p = static_cast<const char*>(buf);
  std::size_t done = 0;
  while (done < n) {
    IoResult r = write(p + done, n - done, ctx);
    done += r.n;
    if (!r.ok()) return IoResult{done, r.err, r.sys_errno};
  }
  return IoResult{done, Errc::ok, 0};
}

IoResult Fd::read_full(void* buf, std::size_t n, const Context& ctx) noexcept {
  if (!buf && n) return fail(Errc::invalid_argument);
  auto* p = static_cast<char*>(buf);
  std::size_t done = 0;
  while (done < n) {
    IoResult r = read(p + done, n - done, ctx);
    done += r.n;
    if (!r.ok()) return IoResult{done, r.err, r.sys_errno};
    if (r.n == 0) break;  // end of file
  }
  return IoResult{done, Errc::ok, 0};
}

IoResult Fd::accept(Fd* out, sockaddr* peer, socklen_t* peer_len, const Context& ctx) noexcept {
  if (!out) return fail(Errc::invalid_argument);
  *out = Fd();
  IoResult r = run_io(pd_, IoDir::read, ctx, [&](int fd) -> ssize_t {
    return ::accept4(fd, peer, peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  });
  if (!r.ok()) return r;
  const int conn = static_cast<int>(r.n);
  Errc err = Errc::ok;
  PollDesc* pd = nullptr;
  if ((err = pd_->np->open(conn, &pd, &r.sys_errno)) != Errc::ok) {
    ::close(conn);
    return IoResult{0, err, r.sys_errno};
  }
  out->pd_ = pd;
  return IoResult{0, Errc::ok, 0};
}

IoResult Fd::connect(const sockaddr* addr, socklen_t len, const Context& ctx) noexcept {
  if (!addr) return fail(Errc::invalid_argument);
  bool started = false;
  // The first call starts the handshake; EINPROGRESS means "wait until writable", after which
  // SO_ERROR says how it went. Later passes of the loop only ask for SO_ERROR.
  return run_io(pd_, IoDir::write, ctx, [&](int fd) -> ssize_t {
    if (!started) {
      started = true;
      if (::connect(fd, addr, len) == 0) return 0;
      if (errno == EINPROGRESS) {
        errno = EAGAIN;
        return -1;
      }
      return -1;
    }
    int so_error = 0;
    socklen_t sl = sizeof so_error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &sl) != 0) return -1;
    if (so_error == 0) {
      // Writable and no error: connected — unless the wake-up was spurious; getpeername tells.
      sockaddr_storage ss;
      socklen_t pl = sizeof ss;
      if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &pl) == 0) return 0;
      if (errno != ENOTCONN) return -1;
      errno = EAGAIN;  // still connecting
      return -1;
    }
    errno = so_error;
    return -1;
  });
}

}  // namespace myriad
