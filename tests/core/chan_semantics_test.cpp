// Channel semantics, rule by rule, from the Go specification (channel types, send statements,
// the receive operator, close) and the contract in myriad/chan.hpp.
//
// "Blocked" is made observable without any clock: a runtime with one host-driven proc runs
// tasks only inside step(), and step(0) returns once nothing is runnable, so after it every
// task has either finished or is parked. A task that must block forever is left parked and
// abandoned by ~Runtime (its join handle then reports Errc::abandoned).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "myriad/chan.hpp"
#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "scheduler.hpp"
#include "test_util.hpp"

using namespace myriad;
using namespace std::chrono_literals;

namespace {

// One host-driven proc and no runtime thread: tasks run only inside step().
Config hosted() {
  Config c;
  c.procs = 1;
  c.host_procs = 1;
  c.stack_size = 32 * 1024;
  c.report_abandoned = false;
  c.on_task_failure = [](const TaskFailure& f) { ADD_FAILURE() << "task failed: " << f.what; };
  return c;
}

Config threaded(unsigned procs = 2) {
  Config c;
  c.procs = procs;
  c.on_task_failure = [](const TaskFailure& f) { ADD_FAILURE() << "task failed: " << f.what; };
  return c;
}

// Runs a hosted runtime until every task has finished or parked.
void settle(Runtime& rt) {
  StepResult r = rt.step(0ns);
  EXPECT_TRUE(r.idle);
}

// The code of the myriad::Error f throws, Errc::ok if it throws nothing.
template <class F>
Errc error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Errc::ok;
}

struct Empty {};

// Counts constructions and destructions, and notices use of a destroyed or never-constructed
// object (double destroy, assignment to dead storage). Move-only.
struct Tracked {
  static inline std::atomic<long> constructed{0};
  static inline std::atomic<long> destroyed{0};
  static inline std::atomic<long> misuse{0};
  static constexpr uint32_t kAlive = 0x600DF00D;
  static constexpr uint32_t kDead = 0xDEADBEEF;
  static void reset() {
    constructed = 0;
    destroyed = 0;
    misuse = 0;
  }
  static long live() { return constructed.load() - destroyed.load(); }

  uint32_t magic = kAlive;
  int value = -1;

  Tracked() noexcept { ++constructed; }
  explicit Tracked(int v) noexcept : value(v) { ++constructed; }
  Tracked(Tracked&& o) noexcept : value(o.value) {
    check(o);
    o.value = -2;  // moved-from
    ++constructed;
  }
  Tracked& operator=(Tracked&& o) noexcept {
    check(*this);
    check(o);
    value = o.value;
    o.value = -2;
    return *this;
  }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
  ~Tracked() {
    check(*this);
    magic = kDead;
    ++destroyed;
  }
  static void check(const Tracked& t) {
    if (t.magic != kAlive) ++misuse;
  }
};

// A large trivially copyable element whose contents check themselves.
struct Block {
  std::array<uint64_t, 32> words{};
  static Block make(uint64_t seed) {
    Block b;
    for (std::size_t i = 0; i < b.words.size(); ++i) b.words[i] = seed * 0x9E3779B97F4A7C15ull + i;
    return b;
  }
  bool intact(uint64_t seed) const { return *this == make(seed); }
  bool operator==(const Block&) const = default;
};

struct alignas(64) Aligned {
  uint64_t v = 0;
  char pad[40] = {};
};

uint64_t tag(uint64_t producer, uint64_t seq) { return (producer << 40) | seq; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Values, nil, len and cap

TEST(ChanBasics, DefaultConstructedChannelIsNil) {
  Chan<int> nil;
  EXPECT_TRUE(nil.is_nil());
  EXPECT_FALSE(static_cast<bool>(nil));
  EXPECT_EQ(nil.core(), nullptr);
  EXPECT_TRUE(nil == Chan<int>());
  EXPECT_EQ(nil.size(), 0u);      // len(nil) == 0
  EXPECT_EQ(nil.capacity(), 0u);  // cap(nil) == 0
  Chan<int> unbuffered(0);
  EXPECT_FALSE(unbuffered.is_nil());
  EXPECT_TRUE(static_cast<bool>(unbuffered));
  EXPECT_FALSE(unbuffered == nil);
}

TEST(ChanBasics, LenAndCap) {
  Chan<int> u(0);
  EXPECT_EQ(u.capacity(), 0u);
  EXPECT_EQ(u.size(), 0u);
  Chan<int> c(5);
  EXPECT_EQ(c.capacity(), 5u);
  EXPECT_EQ(c.size(), 0u);
  for (int i = 1; i <= 5; ++i) {
    c.send(i);
    EXPECT_EQ(c.size(), static_cast<std::size_t>(i));
  }
  int v = 99;
  EXPECT_EQ(c.try_send(v), Errc::would_block);
  EXPECT_EQ(v, 99);  // untouched
  EXPECT_EQ(c.size(), 5u);
  EXPECT_EQ(c.recv(), 1);
  EXPECT_EQ(c.size(), 4u);
  c.close();
  EXPECT_EQ(c.size(), 4u);  // closing keeps the buffered elements
  EXPECT_EQ(c.capacity(), 5u);
  for (int i = 2; i <= 5; ++i) EXPECT_EQ(c.recv(), i);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.capacity(), 5u);
}

TEST(ChanBasics, DistinctChannelsAreDistinct) {
  Chan<int> a(1), b(1);
  EXPECT_FALSE(a == b);
  a.send(1);
  EXPECT_EQ(b.size(), 0u);
  int v = 0;
  EXPECT_EQ(b.try_recv(v), Errc::would_block);
}

TEST(ChanBasics, CopiesShareOneChannel) {
  Chan<int> a(4);
  Chan<int> b = a;  // copy
  EXPECT_TRUE(a == b);
  b.send(1);
  EXPECT_EQ(a.size(), 1u);
  a.send(2);
  EXPECT_EQ(b.recv(), 1);
  EXPECT_EQ(a.recv(), 2);

  Chan<int> c;
  c = a;  // copy assignment
  EXPECT_TRUE(c == a);
  c.send(3);
  EXPECT_EQ(b.recv(), 3);

  Chan<int> moved = std::move(c);  // move leaves the source nil
  EXPECT_TRUE(c.is_nil());         // NOLINT(bugprone-use-after-move)
  EXPECT_TRUE(moved == a);

  Chan<int>& self = a;
  a = self;  // self-assignment keeps the channel
  EXPECT_FALSE(a.is_nil());
  a.send(4);
  EXPECT_EQ(moved.recv(), 4);

  b.close();  // close through one copy is seen by all
  EXPECT_EQ(a.recv(), std::nullopt);
  EXPECT_EQ(moved.try_close(), Errc::channel_closed);

  // The channel outlives the copy that made it.
  Chan<int> survivor;
  {
    Chan<int> maker(2);
    maker.send(7);
    survivor = maker;
  }
  EXPECT_EQ(survivor.size(), 1u);
  EXPECT_EQ(survivor.recv(), 7);

  // Assigning nil over a copy drops only that reference.
  Chan<int> d(1), e = d;
  d = Chan<int>();
  EXPECT_TRUE(d.is_nil());
  e.send(5);
  EXPECT_EQ(e.recv(), 5);
}

// ---------------------------------------------------------------------------------------------
// Buffered FIFO

TEST(ChanBuffered, FifoOrderAndFullBuffer) {
  Chan<int> c(100);
  for (int i = 0; i < 100; ++i) c.send(i);
  int extra = 100;
  EXPECT_EQ(c.try_send(extra), Errc::would_block);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(c.recv(), i);
  int out = -7;
  EXPECT_EQ(c.try_recv(out), Errc::would_block);
  EXPECT_EQ(out, -7);
}

TEST(ChanBuffered, FifoAcrossManyWrapArounds) {
  // A capacity prime to the batch sizes, so that head and tail wrap at every offset.
  Chan<int> c(7);
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 2000; ++round) {
    int n_in = 1 + round % 7;
    for (int i = 0; i < n_in && c.size() < 7; ++i) {
      int v = next_in;
      ASSERT_EQ(c.try_send(v), Errc::ok);
      ++next_in;
    }
    ASSERT_LE(c.size(), 7u);
    int n_out = 1 + (round * 3) % 6;
    for (int i = 0; i < n_out; ++i) {
      int v = -1;
      Errc e = c.try_recv(v);
      if (next_out == next_in) {
        ASSERT_EQ(e, Errc::would_block);
        break;
      }
      ASSERT_EQ(e, Errc::ok);
      ASSERT_EQ(v, next_out++);
    }
    ASSERT_EQ(c.size(), static_cast<std::size_t>(next_in - next_out));
  }
}

TEST(ChanBuffered, LargeAndOverAlignedElementsKeepTheirContents) {
  Chan<Block> blocks(5);
  for (uint64_t i = 0; i < 5; ++i) blocks.send(Block::make(i));
  for (uint64_t i = 0; i < 5; ++i) {
    auto b = blocks.recv();
    ASSERT_TRUE(b.has_value());
    EXPECT_TRUE(b->intact(i)) << i;
  }
  Chan<Aligned> al(3);
  for (uint64_t i = 0; i < 3; ++i) al.send(Aligned{.v = i * 11});
  for (uint64_t i = 0; i < 3; ++i) {
    Aligned a;
    ASSERT_TRUE(al.recv_into(a));
    EXPECT_EQ(a.v, i * 11);
  }
  // And through unbuffered channels, from tasks to a foreign thread.
  Runtime rt(threaded());
  Chan<Block> ub(0);
  Chan<Aligned> ua(0);
  const uint64_t n = 2000;
  auto h = rt.spawn([&] {
    for (uint64_t i = 0; i < n; ++i) {
      ub.send(Block::make(i + 1000));
      ua.send(Aligned{.v = i});
    }
  });
  for (uint64_t i = 0; i < n; ++i) {
    auto b = ub.recv();
    ASSERT_TRUE(b && b->intact(i + 1000)) << i;
    auto a = ua.recv();
    ASSERT_TRUE(a.has_value());
    ASSERT_EQ(a->v, i);
  }
  h.join();
}

// ---------------------------------------------------------------------------------------------
// Unbuffered rendezvous

TEST(ChanUnbuffered, TryOpsNeedAPartner) {
  Chan<int> c(0);
  int v = 5;
  EXPECT_EQ(c.try_send(v), Errc::would_block);  // nobody receiving
  EXPECT_EQ(v, 5);
  EXPECT_EQ(c.try_recv(v), Errc::would_block);  // nobody sending
  EXPECT_EQ(v, 5);
  EXPECT_EQ(c.size(), 0u);
}

TEST(ChanUnbuffered, SendCompletesOnlyWhenAReceiverTookTheValue) {
  Runtime rt(hosted());
  Chan<int> c(0);
  bool sent = false;
  rt.spawn_detached([&] {
    c.send(42);
    sent = true;
  });
  settle(rt);
  EXPECT_FALSE(sent);       // parked: nobody has received
  EXPECT_EQ(c.size(), 0u);  // an unbuffered channel never holds a value
  settle(rt);
  EXPECT_FALSE(sent);
  int v = 0;
  EXPECT_EQ(c.try_recv(v), Errc::ok);  // takes the value from the parked sender
  EXPECT_EQ(v, 42);
  EXPECT_EQ(c.try_recv(v), Errc::would_block);  // exactly one value
  settle(rt);
  EXPECT_TRUE(sent);
}

TEST(ChanUnbuffered, ReceiveCompletesOnlyWhenASenderCame) {
  Runtime rt(hosted());
  Chan<std::string> c(0);
  std::optional<std::string> got;
  bool done = false;
  rt.spawn_detached([&] {
    got = c.recv();
    done = true;
  });
  settle(rt);
  EXPECT_FALSE(done);
  std::string s = "handed over without a buffer";
  EXPECT_EQ(c.try_send(s), Errc::ok);  // a receiver is waiting: try_send succeeds
  EXPECT_EQ(c.size(), 0u);
  settle(rt);
  EXPECT_TRUE(done);
  EXPECT_EQ(got, "handed over without a buffer");
}

TEST(ChanUnbuffered, RendezvousOrdersTheTwoSides) {
  // Go memory model: a receive from an unbuffered channel is synchronized before the
  // completion of the corresponding send. What the receiver did before its receive is
  // therefore visible to the sender once send returns — and could not be if send returned
  // before a receiver took the value.
  Runtime rt(threaded());
  const long n = test::scaled(50'000);
  Chan<long> c(0);
  std::atomic<long> receiver_at{-1};
  std::atomic<long> violations{0};
  auto recv_side = rt.spawn([&] {
    for (long i = 0; i < n; ++i) {
      receiver_at.store(i, std::memory_order_relaxed);
      auto v = c.recv();
      if (!v || *v != i) violations.fetch_add(1);
    }
  });
  std::thread send_side([&] {
    for (long i = 0; i < n; ++i) {
      c.send(i);
      if (receiver_at.load(std::memory_order_relaxed) < i) violations.fetch_add(1);
    }
  });
  send_side.join();
  recv_side.join();
  EXPECT_EQ(violations.load(), 0);
}

TEST(ChanUnbuffered, PingPongBetweenATaskAndAForeignThread) {
  Runtime rt(threaded());
  const long n = test::scaled(50'000);
  Chan<long> to_task(0), to_thread(0);
  auto h = rt.spawn([&] {
    while (auto v = to_task.recv()) to_thread.send(*v * 2 + 1);
  });
  for (long i = 0; i < n; ++i) {
    to_task.send(i);
    auto r = to_thread.recv();
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(*r, i * 2 + 1);
  }
  to_task.close();
  h.join();
}

// ---------------------------------------------------------------------------------------------
// close

TEST(ChanClose, SendOnClosedChannelIsAnError) {
  for (std::size_t cap : {0u, 3u}) {
    Chan<int> c(cap);
    if (cap) c.send(1);
    c.close();
    EXPECT_EQ(error_of([&] { c.send(2); }), Errc::channel_closed) << cap;
    int v = 3;
    EXPECT_EQ(c.try_send(v), Errc::channel_closed) << cap;
    EXPECT_EQ(c.size(), cap ? 1u : 0u);  // nothing was added
    if (cap) {
      EXPECT_EQ(c.recv(), 1);
    }
    EXPECT_EQ(c.recv(), std::nullopt);
  }
}

TEST(ChanClose, SendOnClosedFullChannelIsAnErrorNotABlock) {
  Chan<int> c(1);
  c.send(1);
  c.close();
  // Go: a send on a closed channel panics even when the buffer is full (it does not block).
  EXPECT_EQ(error_of([&] { c.send(2); }), Errc::channel_closed);
  int v = 2;
  EXPECT_EQ(c.try_send(v), Errc::channel_closed);
}

TEST(ChanClose, CloseOfClosedAndOfNil) {
  Chan<int> c(2);
  EXPECT_EQ(c.try_close(), Errc::ok);
  EXPECT_EQ(c.try_close(), Errc::channel_closed);
  EXPECT_EQ(error_of([&] { c.close(); }), Errc::channel_closed);
  Chan<int> u(0);
  u.close();
  EXPECT_EQ(error_of([&] { u.close(); }), Errc::channel_closed);
  Chan<int> nil;
  EXPECT_EQ(error_of([&] { nil.close(); }), Errc::nil_channel);
  EXPECT_EQ(nil.try_close(), Errc::nil_channel);
}

TEST(ChanClose, ReceiveDrainsTheBufferThenReportsClosedRepeatedly) {
  Chan<int> c(4);
  for (int i = 1; i <= 4; ++i) c.send(i * 10);
  c.close();
  EXPECT_EQ(c.recv(), 10);
  int v = 0;
  EXPECT_TRUE(c.recv_into(v));
  EXPECT_EQ(v, 20);
  EXPECT_EQ(c.try_recv(v), Errc::ok);
  EXPECT_EQ(v, 30);
  EXPECT_EQ(c.recv(), 40);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(c.recv(), std::nullopt);
    int out = 777;
    EXPECT_FALSE(c.recv_into(out));
    EXPECT_EQ(out, 777);  // left as it was
    EXPECT_EQ(c.try_recv(out), Errc::channel_closed);
    EXPECT_EQ(out, 777);
  }
  Chan<int> u(0);
  u.close();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(u.recv(), std::nullopt);
  int out = 5;
  EXPECT_EQ(u.try_recv(out), Errc::channel_closed);
  EXPECT_EQ(out, 5);
}

TEST(ChanClose, WakesEveryBlockedReceiver) {
  const int n = test::kTsan ? 2000 : 10'000;
  Runtime rt(hosted());
  for (std::size_t cap : {0u, 4u}) {
    Chan<int> c(cap);
    int woke_closed = 0, woke_other = 0;
    for (int i = 0; i < n; ++i)
      rt.spawn_detached([&, i] {
        bool ok;
        if (i % 2) {
          ok = c.recv().has_value();
        } else {
          int v = -1;
          ok = c.recv_into(v);
          if (!ok && v != -1) ok = true;  // counts as "other": the variable was touched
        }
        (ok ? woke_other : woke_closed)++;
      });
    settle(rt);
    EXPECT_EQ(woke_closed + woke_other, 0);  // all parked
    c.close();
    settle(rt);
    EXPECT_EQ(woke_closed, n) << cap;
    EXPECT_EQ(woke_other, 0) << cap;
  }
}

TEST(ChanClose, WakesEveryBlockedSenderWithAnError) {
  Runtime rt(hosted());
  {
    Chan<int> c(0);
    const int n = 100;
    int got_closed = 0, other = 0;
    for (int i = 0; i < n; ++i)
      rt.spawn_detached([&, i] { (error_of([&] { c.send(i); }) == Errc::channel_closed ? got_closed : other)++; });
    settle(rt);
    EXPECT_EQ(got_closed + other, 0);
    c.close();
    settle(rt);
    EXPECT_EQ(got_closed, n);
    EXPECT_EQ(other, 0);
    EXPECT_EQ(c.recv(), std::nullopt);  // the failed sends left nothing behind
  }
  {
    // A full buffered channel: the buffered values survive the close, the blocked ones fail.
    Chan<int> c(2);
    c.send(1);
    c.send(2);
    int got_closed = 0, other = 0;
    for (int i = 3; i <= 5; ++i)
      rt.spawn_detached([&, i] { (error_of([&] { c.send(i); }) == Errc::channel_closed ? got_closed : other)++; });
    settle(rt);
    EXPECT_EQ(got_closed + other, 0);
    EXPECT_EQ(c.size(), 2u);
    c.close();
    settle(rt);
    EXPECT_EQ(got_closed, 3);
    EXPECT_EQ(other, 0);
    EXPECT_EQ(c.recv(), 1);
    EXPECT_EQ(c.recv(), 2);
    EXPECT_EQ(c.recv(), std::nullopt);
  }
}

TEST(ChanClose, WakesBlockedForeignThreads) {
  Runtime rt(threaded());
  Chan<int> rc(0), sc(0);
  std::atomic<int> recv_closed{0}, send_closed{0}, wrong{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([&] { (rc.recv() ? wrong : recv_closed).fetch_add(1); });
    ts.emplace_back([&] { (error_of([&] { sc.send(1); }) == Errc::channel_closed ? send_closed : wrong).fetch_add(1); });
  }
  // Tasks blocked on the same channels are woken by the same close.
  WaitGroup tasks;
  tasks.add(4);
  for (int i = 0; i < 2; ++i) {
    rt.spawn_detached([&] {
      (rc.recv() ? wrong : recv_closed).fetch_add(1);
      tasks.done();
    });
    rt.spawn_detached([&] {
      (error_of([&] { sc.send(2); }) == Errc::channel_closed ? send_closed : wrong).fetch_add(1);
      tasks.done();
    });
  }
  // Whether each had blocked yet or not, the outcome after the close is the same.
  rc.close();
  sc.close();
  for (auto& t : ts) t.join();
  tasks.wait();
  EXPECT_EQ(recv_closed.load(), 5);
  EXPECT_EQ(send_closed.load(), 5);
  EXPECT_EQ(wrong.load(), 0);
}

// ---------------------------------------------------------------------------------------------
// nil channels

TEST(ChanNil, TryOpsWouldBlock) {
  Chan<int> nil;
  int v = 3;
  EXPECT_EQ(nil.try_send(v), Errc::would_block);
  EXPECT_EQ(v, 3);
  EXPECT_EQ(nil.try_recv(v), Errc::would_block);
  EXPECT_EQ(v, 3);
  Chan<std::unique_ptr<int>> nilp;
  auto p = std::make_unique<int>(4);
  EXPECT_EQ(nilp.try_send(p), Errc::would_block);
  ASSERT_NE(p, nullptr);  // not moved from
  EXPECT_EQ(*p, 4);
}

TEST(ChanNil, SendAndReceiveBlockForever) {
  JoinHandle sender, receiver, receiver_into, other;
  bool sent = false, received = false, received_into = false, other_done = false;
  Chan<int> nil;
  detail::Task* parked[3] = {};
  {
    Runtime rt(hosted());
    sender = rt.spawn([&] {
      parked[0] = detail::current_task();
      nil.send(1);
      sent = true;
    });
    receiver = rt.spawn([&] {
      parked[1] = detail::current_task();
      (void)nil.recv();
      received = true;
    });
    receiver_into = rt.spawn([&] {
      parked[2] = detail::current_task();
      int v = 0;
      (void)nil.recv_into(v);
      received_into = true;
    });
    // Other work completes meanwhile: the runtime is not stuck, those three are.
    Chan<int> work(0);
    other = rt.spawn([&] {
      for (int i = 0; i < 100; ++i) work.send(i);
      other_done = true;
    });
    rt.spawn_detached([&] {
      for (int i = 0; i < 100; ++i) EXPECT_EQ(work.recv(), i);
    });
    for (int round = 0; round < 5; ++round) settle(rt);  // idle steps change nothing
    EXPECT_TRUE(other_done);
    EXPECT_FALSE(sent);
    EXPECT_FALSE(received);
    EXPECT_FALSE(received_into);
    for (detail::Task* t : parked) {
      ASSERT_NE(t, nullptr);
      EXPECT_EQ(t->state.load(), TaskState::waiting);
      EXPECT_EQ(static_cast<WaitReason>(t->wait_reason), WaitReason::nil_chan);
    }
  }  // ~Runtime abandons the three parked tasks
  EXPECT_EQ(sender.try_join(), Errc::abandoned);
  EXPECT_EQ(receiver.try_join(), Errc::abandoned);
  EXPECT_EQ(receiver_into.try_join(), Errc::abandoned);
  EXPECT_EQ(other.try_join(), Errc::ok);
}

// ---------------------------------------------------------------------------------------------
// Element types

TEST(ChanElements, ZeroSizeElementsBuffered) {
  static_assert(std::is_empty_v<Empty>);
  EXPECT_EQ(detail::elem_ops<Empty>()->size, 0u);
  Chan<Empty> c(3);
  EXPECT_EQ(c.capacity(), 3u);
  Empty e;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.try_send(e), Errc::ok);
  EXPECT_EQ(c.try_send(e), Errc::would_block);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_TRUE(c.recv().has_value());
  EXPECT_EQ(c.size(), 2u);
  c.send(Empty{});
  EXPECT_EQ(c.size(), 3u);
  c.close();
  EXPECT_EQ(c.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.try_recv(e), Errc::ok);
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.recv(), std::nullopt);
  EXPECT_EQ(c.try_recv(e), Errc::channel_closed);
}

TEST(ChanElements, ZeroSizeElementsUnbufferedRendezvous) {
  Runtime rt(hosted());
  Chan<Empty> c(0);
  int received = 0;
  bool sender_done = false;
  rt.spawn_detached([&] {
    for (int i = 0; i < 3; ++i) c.send(Empty{});
    sender_done = true;
  });
  settle(rt);
  EXPECT_FALSE(sender_done);
  Empty e;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(c.try_recv(e), Errc::ok) << i;
    ++received;
    EXPECT_EQ(c.try_recv(e), Errc::would_block);  // one send, one value
    settle(rt);
  }
  EXPECT_TRUE(sender_done);
  EXPECT_EQ(received, 3);
}

TEST(ChanElements, ZeroSizeElementCountsAreExact) {
  Runtime rt(threaded());
  const long per = test::scaled(40'000);
  for (std::size_t cap : {0u, 1u, 16u}) {
    Chan<Empty> c(cap);
    std::atomic<long> received{0};
    WaitGroup senders, receivers;
    senders.add(3);
    receivers.add(3);
    for (int p = 0; p < 3; ++p)
      rt.spawn_detached([&] {
        for (long i = 0; i < per; ++i) c.send(Empty{});
        senders.done();
      });
    std::thread foreign_sender([&] {
      for (long i = 0; i < per; ++i) c.send(Empty{});
    });
    for (int r = 0; r < 3; ++r)
      rt.spawn_detached([&] {
        long mine = 0;
        while (c.recv()) ++mine;
        received.fetch_add(mine);
        receivers.done();
      });
    long foreign_mine = 0;
    std::thread foreign_receiver([&] {
      Empty e;
      while (c.recv_into(e)) ++foreign_mine;
    });
    senders.wait();
    foreign_sender.join();
    c.close();
    receivers.wait();
    foreign_receiver.join();
    EXPECT_EQ(received.load() + foreign_mine, 4 * per) << "cap " << cap;
    EXPECT_EQ(c.size(), 0u);
  }
}

TEST(ChanElements, StringsMoveIntactThroughBothKinds) {
  auto text = [](int i) {
    return i % 2 ? std::to_string(i)                                        // short (SSO)
                 : std::string(100 + i % 50, static_cast<char>('a' + i % 26)) + std::to_string(i);
  };
  Chan<std::string> b(4);
  for (int i = 0; i < 4; ++i) b.send(text(i));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(b.recv(), text(i));
  Runtime rt(threaded());
  for (std::size_t cap : {0u, 3u}) {
    Chan<std::string> c(cap);
    const int n = 5000;
    auto h = rt.spawn([&] {
      for (int i = 0; i < n; ++i) c.send(text(i));
      c.close();
    });
    int i = 0;
    std::string s;
    while (c.recv_into(s)) {
      ASSERT_EQ(s, text(i)) << i;
      ++i;
    }
    EXPECT_EQ(i, n);
    h.join();
  }
}

TEST(ChanElements, UniquePtrOwnershipMovesWithTheValue) {
  using P = std::unique_ptr<int>;
  Chan<P> b(2);
  auto p1 = std::make_unique<int>(1);
  int* raw1 = p1.get();
  EXPECT_EQ(b.try_send(p1), Errc::ok);
  EXPECT_EQ(p1, nullptr);  // moved into the channel
  b.send(std::make_unique<int>(2));
  auto p3 = std::make_unique<int>(3);
  EXPECT_EQ(b.try_send(p3), Errc::would_block);
  ASSERT_NE(p3, nullptr);  // untouched when it would block
  auto got = b.recv();
  ASSERT_TRUE(got && *got);
  EXPECT_EQ(got->get(), raw1);  // the same object, not a copy
  EXPECT_EQ(**got, 1);
  P into;
  EXPECT_EQ(b.try_recv(into), Errc::ok);
  ASSERT_NE(into, nullptr);
  EXPECT_EQ(*into, 2);
  b.close();
  EXPECT_EQ(b.try_send(p3), Errc::channel_closed);
  P keep = std::make_unique<int>(9);
  EXPECT_FALSE(b.recv_into(keep));
  ASSERT_NE(keep, nullptr);  // untouched on a closed channel
  EXPECT_EQ(*keep, 9);

  Runtime rt(hosted());
  Chan<P> u(0);
  P received;
  rt.spawn_detached([&] { EXPECT_TRUE(u.recv_into(received)); });
  settle(rt);
  auto p4 = std::make_unique<int>(4);
  int* raw4 = p4.get();
  EXPECT_EQ(u.try_send(p4), Errc::ok);
  EXPECT_EQ(p4, nullptr);
  settle(rt);
  EXPECT_EQ(received.get(), raw4);
}

TEST(ChanElements, ElementsLeftInAChannelAreDestroyedWithTheLastCopy) {
  Tracked::reset();
  {
    Chan<Tracked> c(8);
    for (int i = 0; i < 5; ++i) c.send(Tracked(i));
    EXPECT_EQ(Tracked::live(), 5);  // exactly the buffered elements
    {
      Chan<Tracked> copy = c;
      auto first = c.recv();
      ASSERT_TRUE(first.has_value());
      EXPECT_EQ(first->value, 0);
      EXPECT_EQ(Tracked::live(), 5);  // four buffered, one here
    }
    EXPECT_EQ(Tracked::live(), 4);
    Chan<Tracked> last = c;
    c = Chan<Tracked>();  // not the last copy: nothing destroyed
    EXPECT_EQ(Tracked::live(), 4);
    last.close();           // close does not destroy buffered elements either
    EXPECT_EQ(Tracked::live(), 4);
    EXPECT_EQ(last.size(), 4u);
  }  // the last copy goes: the four buffered elements are destroyed, once each
  EXPECT_EQ(Tracked::live(), 0);
  EXPECT_EQ(Tracked::misuse.load(), 0);
}

TEST(ChanElements, NonTrivialElementsAreMovedNeverDuplicatedOrLost) {
  Tracked::reset();
  {
    Runtime rt(threaded());
    const int n = static_cast<int>(test::scaled(20'000));
    for (std::size_t cap : {0u, 1u, 5u}) {
      Chan<Tracked> c(cap);
      std::vector<int> seen(n, 0);
      WaitGroup sender, receiver;
      sender.add(1);
      receiver.add(1);
      rt.spawn_detached([&] {
        for (int i = 0; i < n; i += 2) c.send(Tracked(i));
        sender.done();
      });
      std::thread odd_sender([&] {
        for (int i = 1; i < n; i += 2) {
          Tracked t(i);
          while (c.try_send(t) == Errc::would_block) std::this_thread::yield();
          if (t.value != -2) ADD_FAILURE() << "try_send ok but not moved from";
        }
      });
      rt.spawn_detached([&] {
        Tracked t;
        while (c.recv_into(t)) {
          if (t.value >= 0 && t.value < n) ++seen[t.value];
          else ADD_FAILURE() << "bad value " << t.value;
        }
        receiver.done();
      });
      odd_sender.join();
      sender.wait();
      c.close();
      receiver.wait();
      EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), n) << "cap " << cap;
    }
  }
  EXPECT_EQ(Tracked::live(), 0);
  EXPECT_EQ(Tracked::misuse.load(), 0);
}

// ---------------------------------------------------------------------------------------------
// FIFO service of blocked receivers and senders

TEST(ChanFifo, WaitingReceiversAreServedInArrivalOrder) {
  Runtime rt(hosted());
  for (std::size_t cap : {0u, 4u}) {
    Chan<int> c(cap);
    constexpr int kN = 6;
    int got[kN];
    std::fill(std::begin(got), std::end(got), -1);
    for (int r = 0; r < kN; ++r) {
      rt.spawn_detached([&, r] {
        auto v = c.recv();
        got[r] = v ? *v : -100;
      });
      settle(rt);  // receiver r is parked before receiver r + 1 arrives
    }
    for (int i = 0; i < kN; ++i) {
      int v = 100 + i;
      ASSERT_EQ(c.try_send(v), Errc::ok) << "cap " << cap;  // receivers are waiting
      // Straight to the waiting receiver: no buffer round trip.
      EXPECT_EQ(c.size(), 0u) << "cap " << cap;
    }
    settle(rt);
    for (int r = 0; r < kN; ++r) EXPECT_EQ(got[r], 100 + r) << "cap " << cap << " receiver " << r;
  }
}

TEST(ChanFifo, BlockedSendersAreServedInArrivalOrderUnbuffered) {
  Runtime rt(hosted());
  Chan<int> c(0);
  constexpr int kN = 6;
  bool done[kN] = {};
  for (int s = 0; s < kN; ++s) {
    rt.spawn_detached([&, s] {
      c.send(s);
      done[s] = true;
    });
    settle(rt);
  }
  for (int i = 0; i < kN; ++i) {
    int v = -1;
    ASSERT_EQ(c.try_recv(v), Errc::ok);
    EXPECT_EQ(v, i);
    settle(rt);
    for (int s = 0; s < kN; ++s) EXPECT_EQ(done[s], s <= i) << "after receive " << i;
  }
  int v = -1;
  EXPECT_EQ(c.try_recv(v), Errc::would_block);
}

TEST(ChanFifo, BlockedSendersQueueBehindTheBufferInOrder) {
  Runtime rt(hosted());
  Chan<int> c(2);
  c.send(100);
  c.send(101);
  constexpr int kN = 4;
  bool done[kN] = {};
  for (int s = 0; s < kN; ++s) {
    rt.spawn_detached([&, s] {
      c.send(s);
      done[s] = true;
    });
    settle(rt);
  }
  EXPECT_EQ(c.size(), 2u);
  std::vector<int> order;
  for (int i = 0; i < 2 + kN; ++i) {
    int v = -1;
    ASSERT_EQ(c.try_recv(v), Errc::ok);
    order.push_back(v);
    // The oldest blocked sender's value moved into the freed slot: still full while senders wait.
    if (i < kN) {
      EXPECT_EQ(c.size(), 2u) << i;
    }
    settle(rt);
    for (int s = 0; s < kN; ++s) EXPECT_EQ(done[s], s <= i) << "after receive " << i;
  }
  EXPECT_EQ(order, (std::vector<int>{100, 101, 0, 1, 2, 3}));
  EXPECT_EQ(c.size(), 0u);
}

// ---------------------------------------------------------------------------------------------
// Tasks and foreign threads on the same channels

TEST(ChanMixed, TasksAndForeignThreadsInBothDirections) {
  Runtime rt(threaded());
  const uint64_t per = static_cast<uint64_t>(test::scaled(30'000));
  constexpr int kTaskSenders = 2, kThreadSenders = 2, kTaskReceivers = 2, kThreadReceivers = 2;
  constexpr int kSenders = kTaskSenders + kThreadSenders;
  constexpr int kReceivers = kTaskReceivers + kThreadReceivers;
  for (std::size_t cap : {0u, 8u}) {
    Chan<uint64_t> c(cap);
    std::vector<std::vector<uint64_t>> got(kReceivers);
    auto send_all = [&](uint64_t id) {
      for (uint64_t s = 0; s < per; ++s) c.send(tag(id, s));
    };
    auto recv_all = [&](int r) {
      uint64_t v;
      while (c.recv_into(v)) got[r].push_back(v);
    };
    WaitGroup task_senders, task_receivers;
    task_senders.add(kTaskSenders);
    task_receivers.add(kTaskReceivers);
    for (int i = 0; i < kTaskSenders; ++i)
      rt.spawn_detached([&, i] {
        send_all(i);
        task_senders.done();
      });
    for (int r = 0; r < kTaskReceivers; ++r)
      rt.spawn_detached([&, r] {
        recv_all(r);
        task_receivers.done();
      });
    std::vector<std::thread> senders, receivers;
    for (int i = kTaskSenders; i < kSenders; ++i) senders.emplace_back([&, i] { send_all(i); });
    for (int r = kTaskReceivers; r < kReceivers; ++r) receivers.emplace_back([&, r] { recv_all(r); });
    task_senders.wait();
    for (auto& t : senders) t.join();
    c.close();
    task_receivers.wait();
    for (auto& t : receivers) t.join();

    std::vector<std::vector<uint8_t>> seen(kSenders, std::vector<uint8_t>(per, 0));
    long total = 0, bad = 0, out_of_order = 0;
    for (auto& vec : got) {
      std::vector<int64_t> last(kSenders, -1);
      for (uint64_t v : vec) {
        uint64_t id = v >> 40, s = v & ((uint64_t{1} << 40) - 1);
        if (id >= kSenders || s >= per) {
          ++bad;
          continue;
        }
        ++seen[id][s];
        ++total;
        if (static_cast<int64_t>(s) <= last[id]) ++out_of_order;  // FIFO per sender
        last[id] = static_cast<int64_t>(s);
      }
    }
    EXPECT_EQ(bad, 0) << "cap " << cap;
    EXPECT_EQ(out_of_order, 0) << "cap " << cap;
    EXPECT_EQ(total, static_cast<long>(per) * kSenders) << "cap " << cap;
    long exactly_once = 0;
    for (auto& s : seen) exactly_once += std::count(s.begin(), s.end(), 1);
    EXPECT_EQ(exactly_once, static_cast<long>(per) * kSenders) << "cap " << cap;
  }
}

TEST(ChanMixed, BufferedChannelBoundsConcurrencyLikeASemaphore) {
  // Go memory model: the k-th receive on a channel of capacity C is synchronized before the
  // completion of the (k+C)-th send. A channel used as a counting semaphore (send to acquire,
  // receive to release) therefore admits at most C holders at once.
  Runtime rt(threaded());
  constexpr std::size_t kC = 3;
  Chan<Empty> sem(kC);
  std::atomic<int> inside{0}, max_inside{0};
  const int rounds = static_cast<int>(test::scaled(2000));
  auto critical = [&](bool in_task) {
    for (int i = 0; i < rounds; ++i) {
      sem.send(Empty{});
      int now = inside.fetch_add(1) + 1;
      int m = max_inside.load();
      while (now > m && !max_inside.compare_exchange_weak(m, now)) {
      }
      if (in_task) this_task::yield();
      else std::this_thread::yield();
      inside.fetch_sub(1);
      ASSERT_TRUE(sem.recv().has_value());
    }
  };
  WaitGroup wg;
  wg.add(16);
  for (int t = 0; t < 16; ++t)
    rt.spawn_detached([&] {
      critical(true);
      wg.done();
    });
  std::thread a([&] { critical(false); }), b([&] { critical(false); });
  wg.wait();
  a.join();
  b.join();
  EXPECT_LE(max_inside.load(), static_cast<int>(kC));
  EXPECT_GE(max_inside.load(), 1);
  EXPECT_EQ(sem.size(), 0u);
}
