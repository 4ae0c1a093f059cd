// Sockets over Fd (myriad/io.hpp): accept and connect, and the TCP helpers (listen, connect,
// local_port).
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "io_call.hpp"
#include "myriad/blocking.hpp"
#include "myriad/io.hpp"

namespace myriad {
using detail::IoDir;
using detail::io_fail;
using detail::kIoFailNow;
using detail::PollDesc;
using detail::run_io;

IoResult Fd::accept(Fd* out, sockaddr* peer, socklen_t* peer_len, const Context& ctx) noexcept {
  if (!out || out == this) return io_fail(Errc::invalid_argument);
  *out = Fd();
  IoResult r = run_io(pd_, IoDir::read, ctx, false, [&](int fd) -> ssize_t {
    return ::accept4(fd, peer, peer_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  });
  if (!r.ok()) return r;
  const int conn = static_cast<int>(r.n);
  PollDesc* pd = nullptr;
  if (Errc e = pd_->np->open(conn, &pd, &r.sys_errno); e != Errc::ok) {
    ::close(conn);
    return IoResult{0, e, r.sys_errno};
  }
  out->pd_ = pd;
  return IoResult{0, Errc::ok, 0};
}

IoResult Fd::connect(const sockaddr* addr, socklen_t len, const Context& ctx) noexcept {
  if (!addr) return io_fail(Errc::invalid_argument);
  bool started = false;
  // The first pass starts the handshake: "in progress" (EINPROGRESS, or EALREADY from an
  // earlier attempt that gave up waiting) means wait until writable, after which SO_ERROR says
  // how it went. EAGAIN is not "in progress" here — a full AF_UNIX backlog: nothing would
  // ever make the socket writable — so it fails as Go's connect does.
  return run_io(pd_, IoDir::write, ctx, false, [&](int fd) -> ssize_t {
    if (!started) {
      started = true;
      if (::connect(fd, addr, len) == 0) return 0;
      if (errno == EINPROGRESS || errno == EALREADY || errno == EINTR) {
        errno = EAGAIN;
        return -1;
      }
      if (errno == EISCONN) return 0;
      return kIoFailNow;
    }
    int so_error = 0;
    socklen_t sl = sizeof so_error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &sl) != 0) return kIoFailNow;
    if (so_error != 0) {
      errno = so_error;
      return kIoFailNow;
    }
    // Writable and no error: connected — unless the wake-up was spurious; getpeername tells.
    sockaddr_storage ss;
    socklen_t pl = sizeof ss;
    if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &pl) == 0) return 0;
    if (errno != ENOTCONN) return kIoFailNow;
    errno = EAGAIN;  // still connecting
    return -1;
  });
}

namespace {

struct AddrInfoFree {
  void operator()(addrinfo* a) const noexcept { freeaddrinfo(a); }
};
using AddrList = std::unique_ptr<addrinfo, AddrInfoFree>;

std::string where(const char* host, uint16_t port) {
  return std::string(host ? host : "*") + ":" + std::to_string(port);
}

// Numeric addresses resolve at once; names go through getaddrinfo as a blocking call, so the
// proc keeps running other tasks while the resolver waits on the network.
AddrList resolve(const char* host, uint16_t port, bool passive) {
  addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  const std::string service = std::to_string(port);
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host, service.c_str(), &hints, &res);
  if (rc == EAI_NONAME && host) {
    hints.ai_flags &= ~AI_NUMERICHOST;
    rc = this_task::blocking([&] { return getaddrinfo(host, service.c_str(), &hints, &res); });
  }
  if (rc != 0) {
    throw Error(Errc::io_error,
                "myriad: cannot resolve " + where(host, port) + ": " + gai_strerror(rc));
  }
  return AddrList(res);
}

[[noreturn]] void throw_sys(const char* what, const char* host, uint16_t port, int err) {
  throw Error(Errc::io_error, std::string("myriad: ") + what + " " + where(host, port) + ": " +
                                  std::strerror(err));
}

}  // namespace

Fd tcp_listen(const char* host, uint16_t port, int backlog, Runtime* rt) {
  AddrList addrs = resolve(host, port, /*passive=*/true);
  int last_err = EADDRNOTAVAIL;
  for (addrinfo* a = addrs.get(); a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      last_err = errno;
      continue;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, backlog) != 0) {
      last_err = errno;
      ::close(fd);
      continue;
    }
    return Fd(fd, rt);
  }
  throw_sys("cannot listen on", host, port, last_err);
}

Fd tcp_connect(const char* host, uint16_t port, const Context& ctx, Runtime* rt) {
  AddrList addrs = resolve(host, port, /*passive=*/false);
  IoResult last{0, Errc::io_error, EADDRNOTAVAIL};
  for (addrinfo* a = addrs.get(); a; a = a->ai_next) {
    int raw = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (raw < 0) {
      last = IoResult{0, Errc::io_error, errno};
      continue;
    }
    int one = 1;
    setsockopt(raw, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    Fd fd(raw, rt);
    last = fd.connect(a->ai_addr, a->ai_addrlen, ctx);
    if (last.ok()) return fd;
    if (last.err != Errc::io_error) break;  // timed out, cancelled: do not try the next address
  }
  if (last.err == Errc::io_error) throw_sys("cannot connect to", host, port, last.sys_errno);
  throw Error(last.err, std::string("myriad: connect to ") + where(host, port) + ": " +
                            strerror(last.err));
}

uint16_t local_port(const Fd& fd) {
  sockaddr_storage ss;
  socklen_t len = sizeof ss;
  if (getsockname(fd.native(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    throw Error(Errc::io_error, std::string("myriad: getsockname: ") + std::strerror(errno));
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  throw Error(Errc::invalid_argument, "myriad: local_port of a socket that is not TCP/IP");
}

}  // namespace myriad
