// Fd (myriad/io.hpp): lifetime, deadlines, reads and writes. The system-call loop is in
// io_call.hpp; accept, connect and the TCP helpers in io_tcp.cpp.
//
// The drained hint. A read that returned less than asked left a stream socket's receive queue
// empty at that moment, so the next read parks at once instead of paying for a system call
// that would say EAGAIN: any byte that arrives after the drain raises a new edge, which the
// desc keeps as `ready` if nobody waits yet (netpoll.hpp) — so the park then returns at once
// and the read is tried. That holds only if no other read takes the edge meanwhile: a second
// reader woken by it may read part of the bytes and leave, and the parked one would wait for
// an edge that never comes. So the hint lives in Fd::rd_, next to a count of the reads in
// flight and of the reads started, and only a read that was alone from its start to its end
// sets it; the next read to start, whoever makes it, takes it. A hint set while bytes are
// queued would strand them; a hint missing costs one system call.
#include "myriad/io.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "io_call.hpp"
#include "scheduler.hpp"

namespace myriad {
using detail::IoDir;
using detail::io_fail;
using detail::Netpoll;
using detail::PollDesc;
using detail::run_io;

namespace {

// Fd::rd_: bit 0 the hint, bits 1..31 read calls in flight, bits 32..63 read calls started
// (wraps; an ABA would need 2^32 reads to start during one read). Invariant: the hint is only
// ever set while no read is in flight (a read clears it when it starts).
constexpr uint64_t kDrained = 1;
constexpr uint64_t kReader = uint64_t{1} << 1;
constexpr uint64_t kReadersMask = ((uint64_t{1} << 31) - 1) << 1;
constexpr uint64_t kStart = uint64_t{1} << 32;

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

// A read-direction call (read, readv, recv) under the drained hint's accounting. `asked` is
// the buffer size; `may_drain` false for calls whose short result says nothing about the
// queue (MSG_PEEK leaves the data queued).
template <class Op>
IoResult run_read(PollDesc* pd, std::atomic<uint64_t>& rd, std::size_t asked, bool may_drain,
                  const Context& ctx, Op&& op) noexcept {
  // Start: one more in flight, one more started, and the hint taken if set.
  uint64_t s = rd.load(std::memory_order_relaxed);
  uint64_t mine;
  do {
    mine = (s & ~kDrained) + kReader + kStart;
  } while (!rd.compare_exchange_weak(s, mine, std::memory_order_acq_rel,
                                     std::memory_order_relaxed));
  IoResult r = run_io(pd, IoDir::read, ctx, (s & kDrained) != 0, op);
  // End: set the hint only if this read drained the queue and was alone all along — the word
  // is still what this read made it (nobody started since) and counts one read in flight.
  const bool drained = may_drain && r.ok() && r.n > 0 && r.n < asked && pd->stream;
  uint64_t expected = mine;
  if (!(drained && (mine & kReadersMask) == kReader &&
        rd.compare_exchange_strong(expected, mine - kReader + kDrained,
                                   std::memory_order_acq_rel, std::memory_order_relaxed)))
    rd.fetch_sub(kReader, std::memory_order_acq_rel);
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
    if (pd_) pd_->np->destroy(pd_);  // closes the old descriptor
    pd_ = std::exchange(o.pd_, nullptr);
    rd_.store(0, std::memory_order_relaxed);  // no hint: always safe
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
  if (pd_)
    pd_->np->set_deadline(pd_, IoDir::read, t == TimePoint::max() ? detail::kNever : detail::to_ns(t));
}

void Fd::set_write_deadline(TimePoint t) noexcept {
  if (pd_)
    pd_->np->set_deadline(pd_, IoDir::write, t == TimePoint::max() ? detail::kNever : detail::to_ns(t));
}

IoResult Fd::read(void* buf, std::size_t n, const Context& ctx) noexcept {
  if (!buf && n) return io_fail(Errc::invalid_argument);
  return run_read(pd_, rd_, n, true, ctx, [&](int fd) { return ::read(fd, buf, n); });
}

IoResult Fd::readv(const iovec* iov, int iovcnt, const Context& ctx) noexcept {
  if ((!iov && iovcnt) || iovcnt < 0) return io_fail(Errc::invalid_argument);
  std::size_t asked = 0;
  for (int i = 0; i < iovcnt; ++i) asked += iov[i].iov_len;
  return run_read(pd_, rd_, asked, true, ctx, [&](int fd) { return ::readv(fd, iov, iovcnt); });
}

IoResult Fd::recv(void* buf, std::size_t n, int flags, const Context& ctx) noexcept {
  if (!buf && n) return io_fail(Errc::invalid_argument);
  return run_read(pd_, rd_, n, !(flags & MSG_PEEK), ctx,
                  [&](int fd) { return ::recv(fd, buf, n, flags); });
}

// Writes on a stream socket go through send/sendmsg with MSG_NOSIGNAL: a peer that reset the
// connection then gives EPIPE instead of a SIGPIPE that would kill the process (Go ignores
// SIGPIPE for the same reason). Other descriptors (pipes) keep write(2)'s behaviour.
IoResult Fd::write(const void* buf, std::size_t n, const Context& ctx) noexcept {
  if (!buf && n) return io_fail(Errc::invalid_argument);
  if (pd_ && pd_->stream) return send(buf, n, 0, ctx);
  return run_io(pd_, IoDir::write, ctx, false, [&](int fd) { return ::write(fd, buf, n); });
}

IoResult Fd::writev(const iovec* iov, int iovcnt, const Context& ctx) noexcept {
  if ((!iov && iovcnt) || iovcnt < 0) return io_fail(Errc::invalid_argument);
  const bool stream = pd_ && pd_->stream;
  return run_io(pd_, IoDir::write, ctx, false, [&](int fd) {
    if (!stream) return ::writev(fd, iov, iovcnt);
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(iov);
    m.msg_iovlen = static_cast<std::size_t>(iovcnt);
    return ::sendmsg(fd, &m, MSG_NOSIGNAL);
  });
}

IoResult Fd::send(const void* buf, std::size_t n, int flags, const Context& ctx) noexcept {
  if (!buf && n) return io_fail(Errc::invalid_argument);
  return run_io(pd_, IoDir::write, ctx, false,
                [&](int fd) { return ::send(fd, buf, n, flags | MSG_NOSIGNAL); });
}

IoResult Fd::write_all(const void* buf, std::size_t n, const Context& ctx) noexcept {
  if (!buf && n) return io_fail(Errc::invalid_argument);
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
  if (!buf && n) return io_fail(Errc::invalid_argument);
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

}  // namespace myriad
