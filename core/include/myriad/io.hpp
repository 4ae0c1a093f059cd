// Task-aware file descriptors: I/O that parks the calling task instead of its thread (Go's
// netFD over the runtime's netpoller).
//
//   myriad::Fd ln = myriad::tcp_listen("127.0.0.1", 0);          // non-blocking, registered
//   myriad::Fd c = ln.accept().value();                          // parks until a client comes
//   char buf[64];
//   c.set_read_deadline(myriad::Clock::now() + 1s);              // Go's SetReadDeadline
//   myriad::IoResult r = c.read(buf, sizeof buf, ctx);           // or gives up with ctx
//   if (r.err == myriad::Errc::ok && r.n > 0) c.write_all(buf, r.n);
//
// An Fd puts its descriptor in non-blocking mode and registers it, edge-triggered, with the
// netpoller of one runtime (the calling task's, or the one passed in). A call tries the system
// call (a read right after a short one may first wait for readiness); when it would block, the
// task parks on the descriptor's readiness, and wakes when the poller reports it, when the
// direction's deadline passes (Errc::timed_out), when the call's context is cancelled
// (ctx.err()), or when another task closes the Fd (Errc::fd_closed). A foreign thread may
// call the same functions: it sleeps instead of parking, on the same mechanism.
//
// Deadlines follow Go's net.Conn: set_read_deadline / set_write_deadline apply to every later
// call in that direction (and to one already waiting) until changed; TimePoint::max() clears.
// A deadline already passed makes calls fail with timed_out at once, before any system call.
//
// Results never throw: IoResult carries the count, a code and, for Errc::io_error, the errno.
// Reads return n == 0 with Errc::ok at end of file, as read(2) does. Calls from several tasks
// on one Fd are allowed (one reader and one writer at a time is the usual pattern; concurrent
// readers each get whole system-call results, but a reader that stops with bytes still queued
// may leave another one parked until more bytes come: readiness is edge-triggered and the
// first one took it). close() may race with calls in other tasks:
// they fail with fd_closed, and the descriptor number is released only once the last call in
// flight has left it (so it is never reused under a running call). The Fd object itself must
// outlive every call on it. An Fd may outlive its runtime: a call that would then have to wait
// fails with Errc::closed, and close() and the destructor still work.
//
// The poller behind every Fd of a runtime is chosen when the runtime first needs one:
// Config::poller, else the MYRIAD_POLLER environment variable ("epoll", "io_uring" or
// "auto"), else io_uring when the kernel allows it and epoll otherwise.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <utility>

#include "myriad/context.hpp"
#include "myriad/errors.hpp"
#include "myriad/time.hpp"

namespace myriad {

class Runtime;

namespace detail {
struct PollDesc;  // core/src/netpoll.hpp
}

struct IoResult {
  std::size_t n = 0;    // bytes transferred
  Errc err = Errc::ok;  // ok, timed_out, canceled, fd_closed, io_error, invalid_argument, ...
  int sys_errno = 0;    // the errno when err == io_error, else 0

  bool ok() const noexcept { return err == Errc::ok; }
};

class Fd {
 public:
  Fd() noexcept = default;
  // Takes ownership of `fd`: sets O_NONBLOCK and registers it with rt's poller (null: the
  // calling task's runtime, else the oldest live one). On failure the descriptor is closed and
  // Error is thrown (invalid_argument for a negative fd, io_error for a descriptor the poller
  // cannot watch — a regular file —, not_in_task when no runtime is alive, no_memory).
  explicit Fd(int fd, Runtime* rt = nullptr);
  // The non-throwing form: on failure *out stays empty and the descriptor is closed.
  static Errc adopt(int fd, Runtime* rt, Fd* out) noexcept;

  // Moves need no call in flight on either Fd.
  Fd(Fd&& o) noexcept : pd_(std::exchange(o.pd_, nullptr)) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();  // close()

  bool valid() const noexcept { return pd_ != nullptr; }
  explicit operator bool() const noexcept { return valid(); }
  // The descriptor number, -1 when empty or closed. Do not close it, and do not read from it,
  // behind the Fd's back (a read the Fd does not see can leave a later one parked on bytes
  // that are already there); writes, setsockopt and shutdown are fine.
  int native() const noexcept;

  // Closes: waiting calls on this Fd fail with fd_closed, later calls too; the descriptor is
  // deregistered and closed once no call is inside a system call on it. Idempotent.
  void close() noexcept;
  // Gives the descriptor up (deregistered, still non-blocking, not closed); -1 if empty.
  // Precondition: no call in flight.
  int release() noexcept;

  void set_read_deadline(TimePoint t) noexcept;
  void set_write_deadline(TimePoint t) noexcept;
  void set_deadline(TimePoint t) noexcept {
    set_read_deadline(t);
    set_write_deadline(t);
  }

  // read(2), readv(2), recv(2): at most one successful system call's worth of data.
  IoResult read(void* buf, std::size_t n, const Context& ctx = {}) noexcept;
  IoResult readv(const iovec* iov, int iovcnt, const Context& ctx = {}) noexcept;
  IoResult recv(void* buf, std::size_t n, int flags, const Context& ctx = {}) noexcept;
  // write(2), writev(2), send(2): one successful system call (may be short). On a stream
  // socket these never raise SIGPIPE (send/sendmsg with MSG_NOSIGNAL): writing to a peer
  // that is gone gives io_error (EPIPE or ECONNRESET).
  IoResult write(const void* buf, std::size_t n, const Context& ctx = {}) noexcept;
  IoResult writev(const iovec* iov, int iovcnt, const Context& ctx = {}) noexcept;
  IoResult send(const void* buf, std::size_t n, int flags, const Context& ctx = {}) noexcept;
  // Loops until all n bytes are written or an error; r.n says how many were.
  IoResult write_all(const void* buf, std::size_t n, const Context& ctx = {}) noexcept;
  // Loops until n bytes are read, end of file (r.n < n, r.err ok) or an error.
  IoResult read_full(void* buf, std::size_t n, const Context& ctx = {}) noexcept;

  // accept4(2) for a listening socket: the connection, non-blocking and registered with the
  // same runtime. `peer`/`peer_len` as accept(2) (may be null).
  IoResult accept(Fd* out, sockaddr* peer = nullptr, socklen_t* peer_len = nullptr,
                  const Context& ctx = {}) noexcept;
  // connect(2) for a socket made by socket(2): waits for the handshake; the socket's own
  // error (SO_ERROR) comes back as io_error. Uses the write deadline.
  IoResult connect(const sockaddr* addr, socklen_t len, const Context& ctx = {}) noexcept;

  detail::PollDesc* poll_desc() const noexcept { return pd_; }

 private:
  detail::PollDesc* pd_ = nullptr;
  // The reads' "drained" hint and the count of reads that keeps it safe (io.cpp).
  std::atomic<uint64_t> rd_{0};
};

// Helpers for TCP (IPv4 and IPv6 literals or host names; a host name is resolved through
// this_task::blocking so the proc keeps running other tasks). Throw Error on failure
// (io_error: what() carries the errno text and the address).
// A listening socket with SO_REUSEADDR; port 0 picks a free port (see local_port).
Fd tcp_listen(const char* host, uint16_t port, int backlog = 4096, Runtime* rt = nullptr);
// A connected socket with TCP_NODELAY.
Fd tcp_connect(const char* host, uint16_t port, const Context& ctx = {}, Runtime* rt = nullptr);
// The local port of a bound socket.
uint16_t local_port(const Fd& fd);

}  // namespace myriad
