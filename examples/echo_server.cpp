// A TCP echo server on myriad: one task per connection, written as plain blocking code. A read
// with nothing to read parks the task, not its thread; the netpoller wakes it when data comes,
// so 10,000 idle connections cost 10,000 small stacks rather than 10,000 threads.
//
//   myriad_echo_server HOST PORT [PROCS] [--max-conns N]
//   myriad_echo_server 127.0.0.1 0            # port 0: any free port
//
// Prints "listening on PORT (POLLER)" once connections are accepted, then echoes until SIGINT or
// SIGTERM, or until N connections have been closed (--max-conns). MYRIAD_POLLER chooses the
// poller (epoll, io_uring, auto). W9 of bench/compare drives it with myriad_load_client.
#include <myriad/io.hpp>
#include <myriad/runtime.hpp>
#include <myriad/time.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

// Same size as the Go peer's buffer: larger than W9's 64-byte messages, so one read takes
// whatever has arrived.
constexpr std::size_t kBufSize = 1024;

std::atomic<long> closed_conns{0};
long max_conns = 0;  // 0: serve until a signal

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s HOST PORT [PROCS] [--max-conns N]\n", argv0);
  std::exit(2);
}

// Each connection needs a descriptor; the default soft limit (often 1,024) is far below W9's
// 10,000. Go raises it the same way at start (since Go 1.19), so both servers get the hard limit.
void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

void serve(myriad::Fd& c) {
  char buf[kBufSize];
  for (;;) {
    myriad::IoResult r = c.read(buf, sizeof buf);
    if (!r.ok() || r.n == 0) break;  // an error, or the client closed
    if (!c.write_all(buf, r.n).ok()) break;
  }
  c.close();
  if (closed_conns.fetch_add(1) + 1 == max_conns)
    kill(getpid(), SIGTERM);  // main's sigwait takes it: one way to stop, whoever asks
}

void accept_loop(myriad::Fd& ln) {
  for (;;) {
    myriad::Fd c;
    myriad::IoResult r = ln.accept(&c);
    if (r.err == myriad::Errc::fd_closed) return;  // main closed the listener
    if (!r.ok()) {
      // EMFILE, ECONNABORTED, ...: the listener is still good. Back off and retry, as Go's
      // net/http server does, instead of spinning on a full descriptor table.
      std::fprintf(stderr, "accept: %s\n",
                   r.sys_errno ? std::strerror(r.sys_errno) : myriad::strerror(r.err));
      myriad::this_task::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    // Go's net package sets TCP_NODELAY on every TCP connection; do the same so both servers
    // send each reply at once.
    int one = 1;
    setsockopt(c.native(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    myriad::go([c = std::move(c)]() mutable { serve(c); }).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* positional[3] = {};
  int npos = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--max-conns") && i + 1 < argc) {
      max_conns = std::strtol(argv[++i], nullptr, 10);
    } else if (argv[i][0] != '-' && npos < 3) {
      positional[npos++] = argv[i];
    } else {
      usage(argv[0]);
    }
  }
  if (npos < 2) usage(argv[0]);
  const char* host = positional[0];
  auto port = static_cast<uint16_t>(std::strtoul(positional[1], nullptr, 10));
  unsigned procs = npos > 2 ? unsigned(std::strtoul(positional[2], nullptr, 10)) : 0;

  raise_fd_limit();
  // Block the stop signals before the runtime starts its threads: they inherit the mask, so a
  // SIGINT or SIGTERM stays pending, whichever thread it is sent to, until main's sigwait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  // Connections still open at the stop are abandoned, as goroutines are at Go's exit.
  myriad::Runtime rt(myriad::Config{.procs = procs, .report_abandoned = false});
  myriad::Fd ln;  // declared after rt: closed before the runtime goes
  try {
    ln = myriad::tcp_listen(host, port, 4096, &rt);
  } catch (const myriad::Error& e) {
    std::fprintf(stderr, "listen on %s:%s: %s\n", host, positional[1], e.what());
    return 1;
  }
  rt.spawn_detached([&ln] { accept_loop(ln); }, {.label = "accept"});
  // The poller is chosen with the first Fd; saying which lets a benchmark check its case.
  std::printf("listening on %u (%s)\n", unsigned(myriad::local_port(ln)),
              myriad::to_string(rt.poller()));
  std::fflush(stdout);  // bench/compare waits for this line on a pipe

  int sig = 0;
  sigwait(&stop, &sig);
  ln.close();  // the accept loop sees fd_closed and ends
  return 0;
}
