// The netpoller's wait protocol (netpoll.hpp) below the Fd layer: readiness, deadlines,
// contexts and close each end a wait exactly once; readiness that arrives before the park is
// not lost. Runs with the poller MYRIAD_POLLER selects (ctest runs the suite for each).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "myriad/context.hpp"
#include "myriad/runtime.hpp"
#include "myriad/task_dump.hpp"
#include "myriad/wait_group.hpp"
#include "netpoll.hpp"
#include "scheduler.hpp"
#include "test_util.hpp"

using namespace std::chrono_literals;
using myriad::Errc;
using myriad::detail::IoDir;
using myriad::detail::Netpoll;
using myriad::detail::PollDesc;

namespace {

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    a = sv[0];
    b = sv[1];
  }
  ~Pair() {
    if (b >= 0) close(b);
  }
};

Netpoll* poller(myriad::Runtime& rt) {
  Errc err = Errc::ok;
  Netpoll* np = rt.scheduler().netpoll(&err);
  EXPECT_NE(np, nullptr) << myriad::strerror(err);
  return np;
}

// Reads until EAGAIN, parking on readiness; returns bytes read until `want` or EOF.
std::size_t read_all(Netpoll* np, PollDesc* pd, std::size_t want) {
  std::size_t got = 0;
  char buf[4096];
  while (got < want) {
    ssize_t n = ::read(pd->fd, buf, sizeof buf);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
    } else if (n == 0) {
      break;
    } else if (errno == EAGAIN) {
      Errc e = np->wait(pd, IoDir::read, {});
      EXPECT_EQ(e, Errc::ok);
      if (e != Errc::ok) break;
    } else {
      ADD_FAILURE() << "read: " << errno;
      break;
    }
  }
  return got;
}

TEST(Netpoll, TaskParksUntilDataArrives) {
  myriad::Runtime rt;
  Netpoll* np = poller(rt);
  Pair p;
  PollDesc* pd = nullptr;
  ASSERT_EQ(np->open(p.a, &pd, nullptr), Errc::ok);
  std::size_t got = 0;
  auto h = rt.spawn([&] { got = read_all(np, pd, 1 << 20); });
  // The reader parks first (visible in the task list), so the poller must wake it.
  for (bool parked = false; !parked;) {
    for (const myriad::TaskInfo& t : myriad::list_tasks(rt))
      parked |= t.wait_reason == myriad::WaitReason::io_read;
    if (!parked) std::this_thread::sleep_for(100us);
  }
  // Written in pieces by a foreign thread while the reader parks again and again.
  std::vector<char> chunk(1 << 14, 'x');
  std::size_t sent = 0;
  while (sent < (1u << 20)) {
    ssize_t n = ::write(p.b, chunk.data(), chunk.size());
    if (n > 0) sent += static_cast<std::size_t>(n);
    else std::this_thread::sleep_for(100us);
  }
  h.join();
  EXPECT_EQ(got, std::size_t{1} << 20);
  EXPECT_GT(rt.stats().netpoll_ready, 0u);
  np->destroy(pd);
}

TEST(Netpoll, ForeignThreadWaitsToo) {
  myriad::Runtime rt;
  Netpoll* np = poller(rt);
  Pair p;
  PollDesc* pd = nullptr;
  ASSERT_EQ(np->open(p.a, &pd, nullptr), Errc::ok);
  std::thread writer([&] {
    std::this_thread::sleep_for(5ms);
    ASSERT_EQ(::write(p.b, "hello", 5), 5);
  });
  EXPECT_EQ(read_all(np, pd, 5), 5u);
  writer.join();
  np->destroy(pd);
}

TEST(Netpoll, DeadlineEndsTheWait) {
  myriad::Runtime rt;
  Netpoll* np = poller(rt);
  Pair p;
  PollDesc* pd = nullptr;
  ASSERT_EQ(np->open(p.a, &pd, nullptr), Errc::ok);
  Errc e = Errc::ok;
  auto t0 = std::chrono::steady_clock::now();
  auto h = rt.spawn([&] {
    np->set_deadline(pd, IoDir::read, myriad::detail::deadline_after(20ms));
    char c;
    while (::read(p.a, &c, 1) < 0 && (e = np->wait(pd, IoDir::read, {})) == Errc::ok) {
    }
  });
  h.join();
  EXPECT_EQ(e, Errc::timed_out);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  // Passed deadline: fails at once; cleared: waits for data again.
  EXPECT_EQ(np->wait(pd, IoDir::read, {}), Errc::timed_out);
  np->set_deadline(pd, IoDir::read, myriad::detail::kNever);
  ASSERT_EQ(::write(p.b, "x", 1), 1);
  EXPECT_EQ(read_all(np, pd, 1), 1u);
  np->destroy(pd);
}

TEST(Netpoll, DeadlineMovedWhileWaiting) {
  myriad::Runtime rt;
  Netpoll* np = poller(rt);
  Pair p;
  PollDesc* pd = nullptr;
  ASSERT_EQ(np->open(p.a, &pd, nullptr), Errc::ok);
  std::atomic<bool> parked{false};
  Errc e = Errc::ok;
  auto h = rt.spawn([&] {
    np->set_deadline(pd, IoDir::read, myriad::detail::deadline_after(1h));
    parked = true;
    e = np->wait(pd, IoDir::read, {});
  });
  while (!parked.load()) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(5ms);
  np->set_deadline(pd, IoDir::read, myriad::detail::deadline_after(0ns));  // now: wakes it
  h.join();
  EXPECT_EQ(e, Errc::timed_out);
  np->destroy(pd);
}

TEST(Netpoll, ContextCancelEndsTheWait) {
  myriad::Runtime rt;
  Netpoll* np = poller(rt);
  Pair p;
  PollDesc* pd = nullptr;
  ASSERT_EQ(np->open(p.a, &pd, nullptr), Errc::ok);
  auto [ctx, cancel] = myriad::with_cancel(myriad::Context::background());
  Errc e = Errc::ok;
  auto h = rt.spawn([&, ctx = ctx] {
    char c;
    while (::read(p.a, &c, 1) < 0 && (e = np->wait(pd, IoDir::read, ctx)) == Errc::ok) {
    }
  });
  std::this_thread::sleep_for(5ms);
  cancel();
  h.join();
  EXPECT_EQ(e, Errc::canceled);
  EXPECT_EQ(np->wait(pd, IoDir::read, ctx), Errc::canceled);  // cancelled on entry
  np->destroy(pd);
}

TEST(Netpoll, CloseEndsEveryWaitAndLaterCalls) {
  myriad::Runtime rt;
  Netpoll* np = poller(rt);
  Pair p;
  PollDesc* pd = nullptr;
  ASSERT_EQ(np->open(p.a, &pd, nullptr), Errc::ok);
  const int fd = p.a;
  std::atomic<int> closed{0};
  std::atomic<int> in{0};
  myriad::WaitGroup wg;
  wg.add(4);
  for (int i = 0; i < 4; ++i) {
    rt.spawn_detached([&] {
      ASSERT_TRUE(np->acquire(pd));
      ++in;
      char c;
      Errc e = Errc::ok;
      while (::read(fd, &c, 1) < 0 && (e = np->wait(pd, IoDir::read, {})) == Errc::ok) {
      }
      if (e == Errc::fd_closed) ++closed;
      np->release(pd);
      wg.done();
    });
  }
  while (in.load() < 4) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(5ms);
  np->close(pd, true);
  wg.wait();
  EXPECT_EQ(closed.load(), 4);
  EXPECT_FALSE(np->acquire(pd));
  EXPECT_EQ(np->wait(pd, IoDir::read, {}), Errc::fd_closed);
  EXPECT_EQ(fcntl(fd, F_GETFD), -1);  // closed once the last call left
  np->destroy(pd);
}

// Many tasks, many sockets, every readiness delivered: a ring of socketpairs passing a token.
TEST(Netpoll, RingOfSocketsPassesTokens) {
  myriad::Config c;
  c.procs = 2;
  myriad::Runtime rt(c);
  Netpoll* np = poller(rt);
  const int n = myriad::test::kSanitized ? 50 : 500;
  const int rounds = 20;
  std::vector<Pair> pairs(n);
  std::vector<PollDesc*> in(n), out(n);
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(np->open(pairs[i].a, &in[i], nullptr), Errc::ok);
    ASSERT_EQ(np->open(pairs[i].b, &out[i], nullptr), Errc::ok);
    pairs[i].b = -1;  // owned by the desc now
  }
  std::atomic<long> passed{0};
  myriad::WaitGroup wg;
  wg.add(n);
  for (int i = 0; i < n; ++i) {
    rt.spawn_detached([&, i] {
      for (int r = 0; r < rounds; ++r) {
        if (!(i == 0 && r == 0)) {
          char c;
          while (::read(in[i]->fd, &c, 1) != 1) ASSERT_EQ(np->wait(in[i], IoDir::read, {}), Errc::ok);
        }
        PollDesc* next = out[(i + 1) % n];
        while (::write(next->fd, "t", 1) != 1) ASSERT_EQ(np->wait(next, IoDir::write, {}), Errc::ok);
        ++passed;
      }
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(passed.load(), static_cast<long>(n) * rounds);
  for (int i = 0; i < n; ++i) {
    np->destroy(in[i]);
    np->destroy(out[i]);
  }
}

// Stress for the claim race (readiness, deadline, context and a task parking all at once):
// every wait ends exactly once with a valid outcome and every byte is read. A context's done
// channel once made a waiter reachable before it said who it was (found by TSan).
TEST(Netpoll, ReadinessDeadlinesAndCancelsRace) {
  myriad::Config c;
  c.procs = 2;
  myriad::Runtime rt(c);
  Netpoll* np = poller(rt);
  const int readers = 8;
  const long per_reader = myriad::test::scaled(3000);
  std::vector<Pair> pairs(readers);
  std::vector<PollDesc*> pds(readers);
  for (int i = 0; i < readers; ++i) ASSERT_EQ(np->open(pairs[i].a, &pds[i], nullptr), Errc::ok);
  std::atomic<long> bytes{0}, outcomes{0}, bad{0};
  myriad::WaitGroup wg;
  wg.add(readers);
  for (int i = 0; i < readers; ++i) {
    rt.spawn_detached([&, i] {
      long got = 0;
      uint32_t round = 0;
      while (got < per_reader) {
        char buf[64];
        ssize_t n = ::read(pds[i]->fd, buf, sizeof buf);
        if (n > 0) {
          got += n;
          continue;
        }
        // Park with a context that another task may cancel at any moment, and sometimes a
        // deadline that is about to pass.
        auto [ctx, cancel] = myriad::with_cancel(myriad::Context::background());
        if (++round % 3 == 0)
          np->set_deadline(pds[i], IoDir::read, myriad::detail::deadline_after(50us));
        else
          np->set_deadline(pds[i], IoDir::read, myriad::detail::kNever);
        if (round % 2 == 0) myriad::go([cancel = cancel] { cancel(); });
        Errc e = np->wait(pds[i], IoDir::read, ctx);
        ++outcomes;
        if (e != Errc::ok && e != Errc::canceled && e != Errc::timed_out) ++bad;
      }
      bytes += got;
      wg.done();
    });
  }
  std::thread writer([&] {
    for (long k = 0; k < per_reader; ++k)
      for (int i = 0; i < readers; ++i)
        while (::write(pairs[i].b, "w", 1) != 1) std::this_thread::yield();
  });
  writer.join();
  wg.wait();
  EXPECT_EQ(bytes.load(), per_reader * readers);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(outcomes.load(), 0);
  for (PollDesc* pd : pds) np->destroy(pd);
}

}  // namespace
