// Fd (myriad/io.hpp) end to end: loopback TCP through the netpoller, deadlines, contexts,
// close, errors. ctest runs this suite with MYRIAD_POLLER=epoll and again with io_uring.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "myriad/context.hpp"
#include "myriad/io.hpp"
#include "myriad/runtime.hpp"
#include "myriad/semaphore.hpp"
#include "myriad/task_dump.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using myriad::Errc;
using myriad::Fd;
using myriad::IoResult;

namespace {

// The pattern byte i of connection c sends: checkable on both sides without storing it.
unsigned char pattern(uint32_t c, uint64_t i) {
  uint64_t x = (static_cast<uint64_t>(c) << 32) ^ (i * 0x9E3779B97F4A7C15ull);
  x ^= x >> 29;
  return static_cast<unsigned char>(x * 0xBF58476D1CE4E5B9ull >> 56);
}

// Echoes until end of file; returns the bytes echoed (or -1 on an error).
long echo(Fd& c) {
  char buf[4096];
  long total = 0;
  for (;;) {
    IoResult r = c.read(buf, sizeof buf);
    if (!r.ok()) return -1;
    if (r.n == 0) return total;
    if (!c.write_all(buf, r.n).ok()) return -1;
    total += static_cast<long>(r.n);
  }
}

void wait_until_parked_on(myriad::Runtime& rt, myriad::WaitReason why) {
  for (;;) {
    for (const myriad::TaskInfo& t : myriad::list_tasks(rt))
      if (t.wait_reason == why) return;
    std::this_thread::sleep_for(200us);
  }
}

// The client side of the many-connections test, in a child process (both ends of 10,000
// connections do not fit the 20,000 open-files limit of one process). Each connection sends
// three messages of 1-4 KiB and checks every echoed byte; half-closes; expects EOF.
// Writes the bytes it sent to `report` and exits 0 only if every byte came back right.
[[noreturn]] void run_clients(uint16_t port, int conns, int report) {
  // A hang here (a lost wake-up) ends as a killed child, which the parent reports, rather
  // than as a test that never ends.
  alarm(300);
  long sent_total = 0;
  bool ok = true;
  {
    myriad::Config c;
    c.procs = 2;
    myriad::Runtime rt(c);
    myriad::Semaphore connecting(512);  // keeps the listen backlog from overflowing
    std::atomic<long> sent{0};
    std::atomic<int> bad{0};
    myriad::WaitGroup wg;
    wg.add(conns);
    for (int k = 0; k < conns; ++k) {
      rt.spawn_detached([&, k] {
        const uint32_t id = static_cast<uint32_t>(k);
        connecting.acquire();
        Fd s;
        try {
          s = myriad::tcp_connect("127.0.0.1", port);
        } catch (const myriad::Error&) {
          connecting.release();
          ++bad;
          wg.done();
          return;
        }
        connecting.release();
        uint64_t off = 0;
        std::vector<unsigned char> out, in;
        for (int m = 0; m < 3; ++m) {
          const std::size_t len = 1024 + (id * 7 + static_cast<uint32_t>(m) * 331) % 3073;
          out.resize(len);
          in.assign(len, 0);
          for (std::size_t i = 0; i < len; ++i) out[i] = pattern(id, off + i);
          if (!s.write_all(out.data(), len).ok() || s.read_full(in.data(), len).n != len ||
              in != out) {
            ++bad;
            break;
          }
          off += len;
          sent += static_cast<long>(len);
        }
        ::shutdown(s.native(), SHUT_WR);
        char extra;
        if (s.read(&extra, 1).n != 0) ++bad;  // the server closes after our EOF: no more data
        wg.done();
      });
    }
    wg.wait();
    sent_total = sent.load();
    ok = bad.load() == 0;
  }
  (void)!::write(report, &sent_total, sizeof sent_total);
  _exit(ok ? 0 : 1);
}

// The check: 10,000 concurrent loopback connections through the poller, every byte
// accounted for (a tenth under the sanitizers, whose per-task cost is ~10-50x).
TEST(IoTcp, TenThousandConnectionsEveryByteAccounted) {
  const int conns = static_cast<int>(myriad::test::scaled(10000));
  // The listening socket is made before the fork so the child knows the port; no runtime
  // exists in this process yet, so the child starts from one thread.
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(lfd, 4096), 0);
  socklen_t alen = sizeof a;
  ASSERT_EQ(getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &alen), 0);
  const uint16_t port = ntohs(a.sin_port);
  int pipefd[2];
  ASSERT_EQ(::pipe(pipefd), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(lfd);
    ::close(pipefd[0]);
    run_clients(port, conns, pipefd[1]);
  }
  ::close(pipefd[1]);

  // The child's end: if it dies before every connection came, the accept loop must not wait
  // for the rest — the reaper cancels it.
  auto [accept_ctx, cancel_accepts] = myriad::with_cancel(myriad::Context::background());
  int status = 0;
  std::thread reaper([&, cancel = cancel_accepts] {
    EXPECT_EQ(waitpid(child, &status, 0), child);
    cancel();
  });

  long echoed = 0;
  int errors = 0;
  {
    myriad::Config c;
    c.procs = 2;
    myriad::Runtime rt(c);
    Fd ln(lfd, &rt);
    std::atomic<long> bytes{0};
    std::atomic<int> errs{0};
    myriad::WaitGroup wg;
    wg.add(conns);
    auto acceptor = rt.spawn([&, ctx = accept_ctx] {
      for (int k = 0; k < conns; ++k) {
        Fd conn;
        IoResult r = ln.accept(&conn, nullptr, nullptr, ctx);
        if (!r.ok()) {
          ADD_FAILURE() << "accept: " << myriad::strerror(r.err) << " errno " << r.sys_errno;
          for (; k < conns; ++k) wg.done();
          return;
        }
        myriad::go([&, conn = std::move(conn)]() mutable {
          long n = echo(conn);
          if (n < 0) ++errs;
          else bytes += n;
          wg.done();
        });
      }
    });
    acceptor.join();
    wg.wait();
    echoed = bytes.load();
    errors = errs.load();
  }
  long client_sent = -1;
  EXPECT_EQ(::read(pipefd[0], &client_sent, sizeof client_sent),
            static_cast<ssize_t>(sizeof client_sent));
  ::close(pipefd[0]);
  reaper.join();
  // Exit 66 is a sanitizer report in the client (TSan's exit code; the count is inherited
  // across fork, so under --gtest_repeat a report in an earlier parent run shows here too).
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "client process: "
      << (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                            : "signal " + std::to_string(WTERMSIG(status)));
  EXPECT_EQ(errors, 0);
  EXPECT_GT(client_sent, 0);
  EXPECT_EQ(echoed, client_sent);
}

struct Loop {
  Fd a, b;  // a connected pair of stream sockets, registered
  explicit Loop(myriad::Runtime& rt) {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a = Fd(sv[0], &rt);
    b = Fd(sv[1], &rt);
  }
};

TEST(Io, ReadDeadline) {
  myriad::Runtime rt;
  Loop l(rt);
  auto h = rt.spawn([&] {
    char c;
    l.a.set_read_deadline(myriad::Clock::now() + 20ms);
    auto t0 = std::chrono::steady_clock::now();
    IoResult r = l.a.read(&c, 1);
    EXPECT_EQ(r.err, Errc::timed_out);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
    // A deadline in the past fails at once, before any system call (data is even waiting).
    EXPECT_TRUE(l.b.write("x", 1).ok());
    l.a.set_read_deadline(myriad::Clock::now() - 1ms);
    EXPECT_EQ(l.a.read(&c, 1).err, Errc::timed_out);
    // Cleared: the read proceeds.
    l.a.set_read_deadline(myriad::TimePoint::max());
    r = l.a.read(&c, 1);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.n, 1u);
    // Writes have their own deadline.
    l.a.set_write_deadline(myriad::Clock::now() - 1ms);
    EXPECT_EQ(l.a.write("y", 1).err, Errc::timed_out);
  });
  h.join();
}

TEST(Io, DeadlineSetByAnotherTaskWakesAReader) {
  myriad::Runtime rt;
  Loop l(rt);
  IoResult r;
  auto h = rt.spawn([&] {
    char c;
    r = l.a.read(&c, 1);
  });
  wait_until_parked_on(rt, myriad::WaitReason::io_read);
  l.a.set_read_deadline(myriad::Clock::now());  // Go: a deadline in the past wakes readers
  h.join();
  EXPECT_EQ(r.err, Errc::timed_out);
}

TEST(Io, ContextCancellationOnRead) {
  myriad::Runtime rt;
  Loop l(rt);
  auto [ctx, cancel] = myriad::with_cancel(myriad::Context::background());
  IoResult r;
  auto h = rt.spawn([&, ctx = ctx] {
    char c;
    r = l.a.read(&c, 1, ctx);
  });
  wait_until_parked_on(rt, myriad::WaitReason::io_read);
  cancel();
  h.join();
  EXPECT_EQ(r.err, Errc::canceled);
  // Already cancelled: fails before the system call.
  char c;
  EXPECT_EQ(l.a.read(&c, 1, ctx).err, Errc::canceled);
  // A timeout context gives timed_out.
  auto [tctx, tcancel] = myriad::with_timeout(rt, myriad::Context::background(), 10ms);
  auto h2 = rt.spawn([&, tctx = tctx] {
    char d;
    r = l.a.read(&d, 1, tctx);
  });
  h2.join();
  EXPECT_EQ(r.err, Errc::timed_out);
  tcancel();
}

TEST(Io, CloseFromAnotherTaskEndsARead) {
  myriad::Runtime rt;
  Loop l(rt);
  const int fd = l.a.native();
  IoResult r;
  auto h = rt.spawn([&] {
    char c;
    r = l.a.read(&c, 1);
  });
  wait_until_parked_on(rt, myriad::WaitReason::io_read);
  l.a.close();
  h.join();
  EXPECT_EQ(r.err, Errc::fd_closed);
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);  // the descriptor is closed now that the read left
  char c;
  EXPECT_EQ(l.a.read(&c, 1).err, Errc::fd_closed);
  EXPECT_EQ(l.a.native(), -1);
  l.a.close();  // idempotent
}

TEST(Io, EndOfFileAndVectoredIo) {
  myriad::Runtime rt;
  Loop l(rt);
  auto h = rt.spawn([&] {
    char x[3] = {'a', 'b', 'c'}, y[2] = {'d', 'e'};
    iovec out[2] = {{x, 3}, {y, 2}};
    IoResult w = l.b.writev(out, 2);
    EXPECT_TRUE(w.ok());
    EXPECT_EQ(w.n, 5u);
    char p[2], q[3];
    iovec in[2] = {{p, 2}, {q, 3}};
    IoResult r = l.a.readv(in, 2);
    EXPECT_EQ(r.n, 5u);
    EXPECT_EQ(std::string(p, 2) + std::string(q, 3), "abcde");
    EXPECT_TRUE(l.b.send("fg", 2, 0).ok());
    char s[2];
    EXPECT_EQ(l.a.recv(s, 2, MSG_WAITALL).n, 2u);
    EXPECT_EQ(std::string(s, 2), "fg");
    l.b.close();
    char c;
    r = l.a.read(&c, 1);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.n, 0u);  // end of file
    EXPECT_EQ(l.a.read_full(s, 2).n, 0u);
  });
  h.join();
}

// The drained hint (io.cpp): a short read parks the next read first; data that arrives at any
// point must still be seen. A writer that trickles single bytes exercises every interleaving.
TEST(Io, TrickledBytesAllArrive) {
  myriad::Config c;
  c.procs = 2;
  myriad::Runtime rt(c);
  Loop l(rt);
  const int n = static_cast<int>(myriad::test::scaled(20000));
  long got = 0;
  auto reader = rt.spawn([&] {
    char buf[64];
    while (got < n) {
      IoResult r = l.a.read(buf, sizeof buf);
      ASSERT_TRUE(r.ok());
      ASSERT_GT(r.n, 0u);
      got += static_cast<long>(r.n);
    }
  });
  std::thread writer([&] {
    for (int i = 0; i < n; ++i) {
      while (::write(l.b.native(), "z", 1) != 1) std::this_thread::yield();
      if (i % 64 == 0) std::this_thread::yield();
    }
  });
  writer.join();
  reader.join();
  EXPECT_EQ(got, n);
}

TEST(Io, Errors) {
  myriad::Runtime rt;
  // A closed port: ECONNREFUSED as io_error.
  int probe = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t alen = sizeof a;
  getsockname(probe, reinterpret_cast<sockaddr*>(&a), &alen);
  ::close(probe);  // the port is free now and nobody listens
  auto h = rt.spawn([&] {
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    IoResult r = s.connect(reinterpret_cast<sockaddr*>(&a), sizeof a);
    EXPECT_EQ(r.err, Errc::io_error);
    EXPECT_EQ(r.sys_errno, ECONNREFUSED);
    try {
      myriad::tcp_connect("127.0.0.1", ntohs(a.sin_port));
      ADD_FAILURE() << "connected to a closed port";
    } catch (const myriad::Error& e) {
      EXPECT_EQ(e.code(), Errc::io_error);
      EXPECT_NE(std::string(e.what()).find("refused"), std::string::npos) << e.what();
    }
  });
  h.join();
  // A regular file cannot be polled.
  char path[] = "/tmp/myriad_io_test_XXXXXX";
  int f = mkstemp(path);
  ASSERT_GE(f, 0);
  unlink(path);
  Fd out;
  EXPECT_EQ(Fd::adopt(f, &rt, &out), Errc::io_error);
  EXPECT_FALSE(out.valid());
  EXPECT_EQ(fcntl(f, F_GETFD), -1);  // adopt closed it
  EXPECT_EQ(Fd::adopt(-1, &rt, &out), Errc::invalid_argument);
  EXPECT_THROW(Fd(-1, &rt), myriad::Error);
  // Calls on an empty Fd.
  Fd empty;
  char c;
  EXPECT_EQ(empty.read(&c, 1).err, Errc::fd_closed);
  EXPECT_EQ(empty.native(), -1);
  EXPECT_EQ(empty.accept(nullptr).err, Errc::invalid_argument);
}

TEST(Io, ForeignThreadUsesAnFd) {
  myriad::Runtime rt;
  Loop l(rt);
  std::thread t([&] {
    char buf[5];
    IoResult r = l.a.read_full(buf, 5);  // a plain thread: sleeps on the same mechanism
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(std::string(buf, 5), "hello");
  });
  auto h = rt.spawn([&] {
    myriad::this_task::sleep_for(5ms);
    EXPECT_TRUE(l.b.write_all("hello", 5).ok());
  });
  t.join();
  h.join();
}

TEST(Io, ManyReadersOnOneFd) {
  myriad::Config c;
  c.procs = 2;
  myriad::Runtime rt(c);
  Loop l(rt);
  constexpr int kReaders = 8, kPerReader = 100;
  std::atomic<int> got{0};
  myriad::WaitGroup wg;
  wg.add(kReaders);
  for (int i = 0; i < kReaders; ++i) {
    rt.spawn_detached([&] {
      char b;
      for (int k = 0; k < kPerReader; ++k) {
        IoResult r = l.a.read(&b, 1);
        if (r.ok() && r.n == 1) ++got;
      }
      wg.done();
    });
  }
  auto w = rt.spawn([&] {
    for (int i = 0; i < kReaders * kPerReader; ++i) {
      EXPECT_TRUE(l.b.write("r", 1).ok());
      if (i % 10 == 0) myriad::this_task::yield();
    }
  });
  w.join();
  wg.wait();
  EXPECT_EQ(got.load(), kReaders * kPerReader);
}

TEST(Io, ReleaseGivesTheDescriptorBack) {
  myriad::Runtime rt;
  Loop l(rt);
  int fd = l.a.release();
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(l.a.valid());
  EXPECT_EQ(fcntl(fd, F_GETFD) >= 0, true);  // still open, ours now
  EXPECT_NE(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);  // and still non-blocking
  EXPECT_EQ(::write(l.b.native(), "q", 1), 1);
  char c = 0;
  for (int i = 0; i < 1000 && ::read(fd, &c, 1) != 1; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(c, 'q');
  ::close(fd);
}

// The drained hint (io.cpp) with a second reader: a short read sets it; another reader, parked
// earlier, is woken by the next bytes, takes one and leaves one. The first reader's next read
// must still see the byte left (it would wait for an edge that never comes if it trusted the
// hint). procs = 1 makes the interleaving deterministic.
TEST(Io, DrainedHintWithASecondReader) {
  myriad::Config c;
  c.procs = 1;
  myriad::Runtime rt(c);
  Loop l(rt);
  IoResult rb, ra;
  auto b = rt.spawn([&] {
    char x;
    rb = l.a.read(&x, 1);
  });
  auto a = rt.spawn([&] {
    myriad::this_task::sleep_for(5ms);  // b parks on the empty socket
    EXPECT_TRUE(l.b.write("0123456789", 10).ok());
    char buf[64];
    EXPECT_EQ(l.a.read(buf, sizeof buf).n, 10u);  // short: the queue is empty now
    myriad::this_task::sleep_for(5ms);            // b wakes for that edge, finds nothing, parks
    EXPECT_TRUE(l.b.write("xy", 2).ok());
    myriad::this_task::sleep_for(5ms);  // b wakes, takes 'x', leaves 'y'
    l.a.set_read_deadline(myriad::Clock::now() + 10s);  // a regression fails, not hangs
    ra = l.a.read(buf, sizeof buf);
    EXPECT_EQ(std::string(buf, ra.n), "y");
  });
  a.join();
  b.join();
  EXPECT_EQ(rb.n, 1u);
  EXPECT_TRUE(ra.ok()) << myriad::strerror(ra.err);
  EXPECT_EQ(ra.n, 1u);
}

TEST(Io, WriteDeadline) {
  myriad::Runtime rt;
  Loop l(rt);
  auto h = rt.spawn([&] {
    // Fill the socket's buffers; nobody reads the other end.
    std::vector<char> chunk(64 * 1024, 'w');
    while (::write(l.a.native(), chunk.data(), chunk.size()) > 0) {
    }
    l.a.set_write_deadline(myriad::Clock::now() + 20ms);
    auto t0 = std::chrono::steady_clock::now();
    IoResult r = l.a.write(chunk.data(), chunk.size());
    EXPECT_EQ(r.err, Errc::timed_out);
    EXPECT_EQ(r.n, 0u);
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
    // The read direction is unaffected: nothing to read, and no deadline, so it would park;
    // a context bounds it.
    auto [ctx, cancel] = myriad::with_timeout(myriad::Context::background(), 5ms);
    char c;
    EXPECT_EQ(l.a.read(&c, 1, ctx).err, Errc::timed_out);
    cancel();
  });
  h.join();
}

// close() from another task: the parked read ends with fd_closed, and the descriptor number
// stays open until that read has left its call (procs = 1: the reader, readied by the close,
// cannot run before the closing task parks).
TEST(Io, CloseKeepsTheNumberUntilTheReadLeaves) {
  myriad::Config c;
  c.procs = 1;
  myriad::Runtime rt(c);
  Loop l(rt);
  const int fd = l.a.native();
  IoResult r;
  auto reader = rt.spawn([&] {
    char x;
    r = l.a.read(&x, 1);
  });
  auto closer = rt.spawn([&] {
    myriad::this_task::sleep_for(5ms);  // the reader parks
    l.a.close();
    EXPECT_EQ(l.a.native(), fd);             // not closed yet: a call is in flight
    EXPECT_NE(fcntl(fd, F_GETFD), -1);
    char x;
    EXPECT_EQ(l.a.read(&x, 1).err, Errc::fd_closed);  // later calls fail at once
    reader.join();
    EXPECT_EQ(r.err, Errc::fd_closed);
    EXPECT_EQ(l.a.native(), -1);
    EXPECT_EQ(fcntl(fd, F_GETFD), -1);  // the read left: now it is
  });
  closer.join();
}

TEST(Io, AcceptDeadlineCancelCloseAndErrors) {
  myriad::Runtime rt;
  Fd ln = myriad::tcp_listen("127.0.0.1", 0, 16, &rt);
  auto h = rt.spawn([&] {
    Fd conn;
    ln.set_read_deadline(myriad::Clock::now() + 10ms);
    EXPECT_EQ(ln.accept(&conn).err, Errc::timed_out);
    EXPECT_FALSE(conn.valid());
    ln.set_read_deadline(myriad::TimePoint::max());
    // Cancelled from another task while parked.
    auto [ctx, cancel] = myriad::with_cancel(myriad::Context::background());
    auto canceller = myriad::go([&, cancel = cancel] {
      myriad::this_task::sleep_for(5ms);
      cancel();
    });
    EXPECT_EQ(ln.accept(&conn, nullptr, nullptr, ctx).err, Errc::canceled);
    canceller.join();
    // A cancelled context fails connect before the system call, too.
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(myriad::local_port(ln));
    EXPECT_EQ(s.connect(reinterpret_cast<sockaddr*>(&a), sizeof a, ctx).err, Errc::canceled);
    // Not a listening socket: EINVAL.
    Fd plain(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    IoResult r = plain.accept(&conn);
    EXPECT_EQ(r.err, Errc::io_error);
    EXPECT_EQ(r.sys_errno, EINVAL);
    EXPECT_EQ(ln.accept(nullptr).err, Errc::invalid_argument);
    EXPECT_EQ(ln.accept(&ln).err, Errc::invalid_argument);
    // Closed by another task while parked.
    auto closer = myriad::go([&] {
      myriad::this_task::sleep_for(5ms);
      ln.close();
    });
    EXPECT_EQ(ln.accept(&conn).err, Errc::fd_closed);
    closer.join();
  });
  h.join();
}

// tcp_listen / tcp_connect / local_port; "localhost" is not a literal, so it is resolved
// through this_task::blocking (and may yield ::1 before 127.0.0.1: the refused address is
// skipped).
TEST(Io, TcpHelpers) {
  myriad::Runtime rt;
  Fd ln = myriad::tcp_listen("127.0.0.1", 0, 16, &rt);
  const uint16_t port = myriad::local_port(ln);
  EXPECT_NE(port, 0);
  EXPECT_NE(fcntl(ln.native(), F_GETFL) & O_NONBLOCK, 0);
  auto server = rt.spawn([&] {
    Fd c;
    sockaddr_in peer{};
    socklen_t plen = sizeof peer;
    ASSERT_TRUE(ln.accept(&c, reinterpret_cast<sockaddr*>(&peer), &plen).ok());
    EXPECT_EQ(peer.sin_family, AF_INET);
    EXPECT_EQ(ntohl(peer.sin_addr.s_addr), INADDR_LOOPBACK);
    EXPECT_NE(fcntl(c.native(), F_GETFL) & O_NONBLOCK, 0);
    EXPECT_NE(fcntl(c.native(), F_GETFD) & FD_CLOEXEC, 0);
    EXPECT_EQ(echo(c), 4);
  });
  auto client = rt.spawn([&] {
    Fd s = myriad::tcp_connect("localhost", port);
    int nodelay = 0;
    socklen_t len = sizeof nodelay;
    ASSERT_EQ(getsockopt(s.native(), IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
    EXPECT_NE(nodelay, 0);
    EXPECT_TRUE(s.write_all("ping", 4).ok());
    char buf[4];
    EXPECT_EQ(s.read_full(buf, 4).n, 4u);
    EXPECT_EQ(std::string(buf, 4), "ping");
    ::shutdown(s.native(), SHUT_WR);
    EXPECT_EQ(s.read(buf, 4).n, 0u);
  });
  client.join();
  server.join();
  EXPECT_THROW(myriad::tcp_listen("not an address", 0, 16, &rt), myriad::Error);
  EXPECT_THROW(myriad::local_port(Fd()), myriad::Error);
}

// A write to a peer that is gone: EPIPE as io_error, and no SIGPIPE (which would kill the test
// process) — stream sockets are written with MSG_NOSIGNAL, writev included.
TEST(Io, WriteToAClosedPeerGivesEpipe) {
  myriad::Runtime rt;
  Loop l(rt);
  l.b.close();
  auto h = rt.spawn([&] {
    IoResult r = l.a.write("x", 1);
    EXPECT_EQ(r.err, Errc::io_error);
    EXPECT_EQ(r.sys_errno, EPIPE);
    char y = 'y';
    iovec v{&y, 1};
    r = l.a.writev(&v, 1);
    EXPECT_EQ(r.err, Errc::io_error);
    EXPECT_EQ(r.sys_errno, EPIPE);
    EXPECT_EQ(l.a.write_all("zz", 2).sys_errno, EPIPE);
  });
  h.join();
}

// A non-blocking connect to a Unix socket whose backlog is full says EAGAIN: that is a
// failure, not a handshake in progress (nothing would ever make the socket writable).
TEST(Io, ConnectToAFullUnixBacklogFails) {
  myriad::Runtime rt;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = "myriad_io_test_" + std::to_string(getpid());
  std::memcpy(addr.sun_path + 1, name.data(), name.size());  // abstract: nothing to unlink
  const auto alen = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  int lfd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&addr), alen), 0);
  ASSERT_EQ(::listen(lfd, 0), 0);  // room for one pending connection
  auto h = rt.spawn([&] {
    auto [ctx, cancel] = myriad::with_timeout(myriad::Context::background(), 10s);
    Fd first(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    EXPECT_TRUE(first.connect(reinterpret_cast<sockaddr*>(&addr), alen, ctx).ok());
    IoResult r;
    for (int i = 0; i < 4 && r.ok(); ++i) {  // the backlog may take one more than it says
      Fd more(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      r = more.connect(reinterpret_cast<sockaddr*>(&addr), alen, ctx);
    }
    EXPECT_EQ(r.err, Errc::io_error);  // not timed_out: it did not wait
    EXPECT_EQ(r.sys_errno, EAGAIN);
    cancel();
  });
  h.join();
  ::close(lfd);
}

// Poller selection: the environment and the fallback.
TEST(IoPoller, FallbackAndForcedKinds) {
  const char* env0 = std::getenv("MYRIAD_POLLER");
  const std::string saved = env0 ? env0 : "";
  {
    myriad::Runtime rt;
    Loop l(rt);
    const char* env = std::getenv("MYRIAD_POLLER");
    const std::string want = env ? env : "";
    if (want == "epoll") {
      EXPECT_EQ(rt.poller(), myriad::PollerKind::epoll);
    } else if (want == "io_uring") {
      EXPECT_EQ(rt.poller(), myriad::PollerKind::io_uring);
    } else {
      EXPECT_NE(rt.poller(), myriad::PollerKind::automatic);  // started: one of the two
    }
  }
  ::setenv("MYRIAD_URING_DISABLE", "1", 1);
  {
    myriad::Config c;
    c.poller = myriad::PollerKind::automatic;
    ::unsetenv("MYRIAD_POLLER");
    {
      myriad::Runtime rt(c);
      Loop l(rt);  // io_uring refused: epoll, cleanly
      EXPECT_EQ(rt.poller(), myriad::PollerKind::epoll);
      auto h = rt.spawn([&] {
        EXPECT_TRUE(l.b.write("k", 1).ok());
        char k;
        EXPECT_EQ(l.a.read(&k, 1).n, 1u);
      });
      h.join();
    }
    c.poller = myriad::PollerKind::io_uring;
    {
      myriad::Runtime rt(c);
      int sv[2];
      ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
      Fd out;
      EXPECT_EQ(Fd::adopt(sv[0], &rt, &out), Errc::not_supported);
      ::close(sv[1]);
    }
  }
  ::unsetenv("MYRIAD_URING_DISABLE");
  ::setenv("MYRIAD_POLLER", "bogus", 1);
  {
    myriad::Runtime rt;
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    Fd out;
    EXPECT_EQ(Fd::adopt(sv[0], &rt, &out), Errc::invalid_argument);
    ::close(sv[1]);
  }
  if (saved.empty())
    ::unsetenv("MYRIAD_POLLER");
  else
    ::setenv("MYRIAD_POLLER", saved.c_str(), 1);
}

}  // namespace
