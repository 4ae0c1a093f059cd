// select, from the Go specification (select statements) and the contract in myriad/chan.hpp:
// blocking and default forms, uniform choice among ready cases, nil cases never ready, closed
// channels ready for receive and fatal for send, clean withdrawal of the cases that lost.
//
// As in chan_semantics_test.cpp, "blocked" is observed with a host-driven runtime: tasks run
// only inside step(0), which returns once every task has finished or parked.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
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

void settle(Runtime& rt) {
  StepResult r = rt.step(0ns);
  EXPECT_TRUE(r.idle);
}

template <class F>
Errc error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  return Errc::ok;
}

// Checks that `counts` (how often each of k cases was chosen out of n) is uniform: each count
// within 5 standard deviations of n/k (binomial), and each ordered pair of consecutive choices
// within 6 standard deviations of (n-1)/k^2 (the variance of overlapping pair counts in an
// i.i.d. sequence, computed exactly) — the latter rules out round-robin and other patterns
// that are uniform in total but not random.
void expect_uniform(const std::vector<int>& choices, int k, const std::string& what) {
  const double n = static_cast<double>(choices.size());
  std::vector<double> count(k, 0.0);
  std::vector<double> pairs(static_cast<std::size_t>(k) * k, 0.0);
  for (std::size_t i = 0; i < choices.size(); ++i) {
    ASSERT_GE(choices[i], 0) << what;
    ASSERT_LT(choices[i], k) << what;
    count[choices[i]] += 1;
    if (i > 0) pairs[choices[i - 1] * k + choices[i]] += 1;
  }
  const double q = 1.0 / k;
  const double sd = std::sqrt(n * q * (1 - q));
  for (int c = 0; c < k; ++c)
    EXPECT_LE(std::fabs(count[c] - n * q), 5 * sd)
        << what << ": case " << c << " chosen " << count[c] << " times of " << n;
  const double m = n - 1, p = q * q;
  for (int a = 0; a < k; ++a)
    for (int b = 0; b < k; ++b) {
      const double cov = (a == b) ? q * q * q - p * p : -p * p;  // adjacent overlapping pairs
      const double var = m * p * (1 - p) + 2 * (m - 1) * cov;
      EXPECT_LE(std::fabs(pairs[a * k + b] - m * p), 6 * std::sqrt(var))
          << what << ": pair (" << a << "," << b << ") seen " << pairs[a * k + b] << " times";
    }
}

uint64_t mix(uint64_t x) {  // splitmix64 finalizer: a checksum that notices swapped values
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

constexpr int kSeqBits = 40;
uint64_t tag(uint64_t producer, uint64_t seq) { return (producer << kSeqBits) | seq; }
uint64_t producer_of(uint64_t v) { return v >> kSeqBits; }
uint64_t seq_of(uint64_t v) { return v & ((uint64_t{1} << kSeqBits) - 1); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Blocking and default forms

TEST(SelectBasics, ReadyCaseRunsAtOnce) {
  Chan<int> a(1), b(1);
  a.send(7);
  int x = 0, y = 5;
  // a has a value, b is empty (receive not ready) but has room (send ready): either may run;
  // here only the receive on a and the receive on b are offered.
  SelectResult r = select(recv_case(b, y), recv_case(a, x));
  EXPECT_EQ(r.index, 1);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(x, 7);
  EXPECT_EQ(y, 5);  // the losing receive case's variable is untouched
  int s = 9;
  r = select(recv_case(a, x), send_case(b, s));
  EXPECT_EQ(r.index, 1);
  EXPECT_EQ(b.recv(), 9);
}

TEST(SelectBasics, BlockingSelectWakesForTheCaseThatBecomesReady) {
  Runtime rt(hosted());
  Chan<int> in(0), out(0);
  SelectResult r;
  int got = -1;
  int to_send = 55;
  bool done = false;
  auto start = [&] {
    done = false;
    got = -1;
    to_send = 55;
    rt.spawn_detached([&] {
      r = select(recv_case(in, got), send_case(out, to_send));
      done = true;
    });
    settle(rt);
    EXPECT_FALSE(done);  // nothing ready: parked
  };
  // The send case becomes ready: a receiver arrives.
  start();
  int v = 0;
  ASSERT_EQ(out.try_recv(v), Errc::ok);
  EXPECT_EQ(v, 55);
  settle(rt);
  EXPECT_TRUE(done);
  EXPECT_EQ(r.index, 1);
  EXPECT_EQ(got, -1);
  // The receive case becomes ready: a sender arrives.
  start();
  int w = 66;
  ASSERT_EQ(in.try_send(w), Errc::ok);
  settle(rt);
  EXPECT_TRUE(done);
  EXPECT_EQ(r.index, 0);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(got, 66);
  // Afterwards neither channel holds a stale waiter from the select that finished.
  int z = 1;
  EXPECT_EQ(out.try_recv(z), Errc::would_block);
  EXPECT_EQ(in.try_send(z), Errc::would_block);
}

TEST(SelectBasics, LosingSendCasesKeepTheirValues) {
  Runtime rt(hosted());
  using P = std::unique_ptr<int>;
  Chan<P> a(0), b(0), c(0);
  P pa = std::make_unique<int>(1), pb = std::make_unique<int>(2), pc = std::make_unique<int>(3);
  int* raw_b = pb.get();
  SelectResult r;
  rt.spawn_detached([&] { r = select(send_case(a, pa), send_case(b, pb), send_case(c, pc)); });
  settle(rt);
  P got;
  ASSERT_EQ(b.try_recv(got), Errc::ok);
  EXPECT_EQ(got.get(), raw_b);
  settle(rt);
  EXPECT_EQ(r.index, 1);
  EXPECT_EQ(pb, nullptr);  // the chosen value moved out
  ASSERT_NE(pa, nullptr);  // the others not
  ASSERT_NE(pc, nullptr);
  EXPECT_EQ(*pa, 1);
  EXPECT_EQ(*pc, 3);
  P none;
  EXPECT_EQ(a.try_recv(none), Errc::would_block);  // withdrawn
  EXPECT_EQ(c.try_recv(none), Errc::would_block);
}

TEST(SelectBasics, TrySelectTakesTheDefaultWhenNothingIsReady) {
  Chan<int> empty_buffered(2), full_buffered(1), unbuffered(0), nil;
  full_buffered.send(1);
  int r1 = -1, r2 = -2, r3 = -3, s1 = 10, s2 = 20, s3 = 30;
  SelectResult r = try_select(recv_case(empty_buffered, r1), send_case(full_buffered, s1),
                              recv_case(unbuffered, r2), send_case(unbuffered, s2),
                              recv_case(nil, r3), send_case(nil, s3));
  EXPECT_EQ(r.index, -1);
  EXPECT_EQ(r1, -1);
  EXPECT_EQ(r2, -2);
  EXPECT_EQ(r3, -3);
  EXPECT_EQ(s1, 10);
  EXPECT_EQ(s2, 20);
  EXPECT_EQ(s3, 30);
  EXPECT_EQ(empty_buffered.size(), 0u);
  EXPECT_EQ(full_buffered.size(), 1u);
  // No case left behind: the unbuffered channel has neither a sender nor a receiver now.
  int v = 0;
  EXPECT_EQ(unbuffered.try_recv(v), Errc::would_block);
  EXPECT_EQ(unbuffered.try_send(v), Errc::would_block);
  // No cases at all: the default.
  EXPECT_EQ(try_select().index, -1);
  SelectResult out{5, true};
  EXPECT_EQ(try_select_cases(nullptr, 0, false, &out), Errc::ok);
  EXPECT_EQ(out.index, -1);
  EXPECT_EQ(select_cases(nullptr, 0, false).index, -1);
  // One ready case among not-ready ones: it runs.
  empty_buffered.send(4);
  r = try_select(recv_case(unbuffered, r2), recv_case(empty_buffered, r1), recv_case(nil, r3));
  EXPECT_EQ(r.index, 1);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r1, 4);
}

TEST(SelectBasics, TrySelectMeetsAWaitingPartner) {
  // With a partner parked on an unbuffered channel, the non-blocking select can proceed.
  Runtime rt(hosted());
  Chan<int> c(0), d(0);
  std::optional<int> got;
  rt.spawn_detached([&] { got = c.recv(); });
  settle(rt);
  int v = 8, w = 9, x = -1;
  SelectResult r = try_select(recv_case(d, x), send_case(c, v), send_case(d, w));
  EXPECT_EQ(r.index, 1);
  settle(rt);
  EXPECT_EQ(got, 8);
  bool sent = false;
  rt.spawn_detached([&] {
    d.send(12);
    sent = true;
  });
  settle(rt);
  r = try_select(recv_case(c, x), recv_case(d, x));
  EXPECT_EQ(r.index, 1);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(x, 12);
  settle(rt);
  EXPECT_TRUE(sent);
}

// ---------------------------------------------------------------------------------------------
// Send and receive on the same channel

TEST(SelectSameChannel, BufferedSendAndReceiveOnOneChannel) {
  Chan<int> c(1);
  int s = 1, out = -1;
  // Empty: only the send is ready.
  SelectResult r = select(send_case(c, s), recv_case(c, out));
  EXPECT_EQ(r.index, 0);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(out, -1);
  // Full: only the receive is ready.
  s = 2;
  r = select(send_case(c, s), recv_case(c, out));
  EXPECT_EQ(r.index, 1);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(out, 1);
  EXPECT_EQ(c.size(), 0u);
  // Half full: both are ready; both must be chosen sometimes, and the state stays consistent.
  Chan<int> h(2);
  h.send(0);
  int sends = 0, recvs = 0;
  for (int i = 0; i < 2000; ++i) {
    int v = 100 + i, o = -1;
    r = select(send_case(h, v), recv_case(h, o));
    ASSERT_TRUE(r.index == 0 || r.index == 1);
    if (r.index == 0) {
      ++sends;
      ASSERT_EQ(h.size(), 2u);
      int back;
      ASSERT_EQ(h.try_recv(back), Errc::ok);  // restore one element (the oldest)
    } else {
      ++recvs;
      ASSERT_TRUE(r.ok);
      ASSERT_EQ(h.size(), 0u);
      int again = o;
      ASSERT_EQ(h.try_send(again), Errc::ok);  // put it back
    }
    ASSERT_EQ(h.size(), 1u);
  }
  EXPECT_GT(sends, 0);
  EXPECT_GT(recvs, 0);
}

TEST(SelectSameChannel, UnbufferedSelectNeverPairsWithItself) {
  Runtime rt(hosted());
  Chan<int> c(0);
  SelectResult r;
  int out = -1, s = 1;
  bool done = false;
  rt.spawn_detached([&] {
    r = select(send_case(c, s), recv_case(c, out));
    done = true;
  });
  settle(rt);
  EXPECT_FALSE(done);  // its own send cannot satisfy its own receive
  int v = -1;
  ASSERT_EQ(c.try_recv(v), Errc::ok);  // a partner receives
  EXPECT_EQ(v, 1);
  settle(rt);
  EXPECT_TRUE(done);
  EXPECT_EQ(r.index, 0);
  EXPECT_EQ(out, -1);

  done = false;
  s = 2;
  rt.spawn_detached([&] {
    r = select(send_case(c, s), recv_case(c, out));
    done = true;
  });
  settle(rt);
  EXPECT_FALSE(done);
  int w = 77;
  ASSERT_EQ(c.try_send(w), Errc::ok);  // a partner sends
  settle(rt);
  EXPECT_TRUE(done);
  EXPECT_EQ(r.index, 1);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(out, 77);
  EXPECT_EQ(c.try_recv(v), Errc::would_block);  // the losing send case is gone
}

TEST(SelectSameChannel, TwoSelectorsOnOneUnbufferedChannelPairUp) {
  // Two parties each loop on select { case c <- mine: case v := <-c: }. Every select completes
  // only by pairing with the other party's select, so each round one sends and one receives.
  Runtime rt(threaded());
  const long rounds = test::scaled(50'000);
  for (int variant = 0; variant < 2; ++variant) {
    Chan<long> c(0);
    struct Party {
      long sends = 0, recvs = 0, foreign_values = 0;
    };
    Party parties[2];
    auto run = [&](int id) {
      Party& me = parties[id];
      for (long i = 0; i < rounds; ++i) {
        long mine = id * 1'000'000'000L + i, got = -1;
        SelectResult r = select(send_case(c, mine), recv_case(c, got));
        if (r.index == 0) {
          ++me.sends;
        } else {
          ++me.recvs;
          if (r.ok && got / 1'000'000'000L == 1 - id) ++me.foreign_values;
        }
      }
    };
    auto h0 = rt.spawn([&] { run(0); });
    if (variant == 0) {
      rt.spawn([&] { run(1); }).join();  // two tasks
    } else {
      std::thread t([&] { run(1); });  // a task and a foreign thread
      t.join();
    }
    h0.join();
    EXPECT_EQ(parties[0].sends + parties[0].recvs, rounds);
    EXPECT_EQ(parties[0].sends, parties[1].recvs) << variant;
    EXPECT_EQ(parties[1].sends, parties[0].recvs) << variant;
    EXPECT_EQ(parties[0].foreign_values, parties[0].recvs) << variant;
    EXPECT_EQ(parties[1].foreign_values, parties[1].recvs) << variant;
  }
}

TEST(SelectSameChannel, DuplicateCasesOnOneChannelTakeOneValue) {
  Runtime rt(hosted());
  Chan<int> c(0);
  int x = -1, y = -2;
  SelectResult r;
  rt.spawn_detached([&] { r = select(recv_case(c, x), recv_case(c, y)); });
  settle(rt);
  int v = 5;
  ASSERT_EQ(c.try_send(v), Errc::ok);
  EXPECT_EQ(c.try_send(v), Errc::would_block);  // the second case was withdrawn
  settle(rt);
  ASSERT_TRUE(r.index == 0 || r.index == 1);
  EXPECT_EQ(r.index == 0 ? x : y, 5);
  EXPECT_EQ(r.index == 0 ? y : x, r.index == 0 ? -2 : -1);

  int s1 = 1, s2 = 2;
  rt.spawn_detached([&] { r = select(send_case(c, s1), send_case(c, s2)); });
  settle(rt);
  int got = 0;
  ASSERT_EQ(c.try_recv(got), Errc::ok);
  EXPECT_EQ(c.try_recv(got), Errc::would_block);
  settle(rt);
  EXPECT_EQ(got, r.index == 0 ? 1 : 2);

  // Ready duplicates: both get chosen over many rounds.
  Chan<int> b(1);
  int hits[2] = {0, 0};
  for (int i = 0; i < 1000; ++i) {
    b.send(i);
    int p = -1, q = -1;
    SelectResult rr = select(recv_case(b, p), recv_case(b, q));
    ASSERT_TRUE(rr.index == 0 || rr.index == 1);
    ASSERT_EQ(rr.index == 0 ? p : q, i);
    ASSERT_EQ(rr.index == 0 ? q : p, -1);
    ++hits[rr.index];
  }
  EXPECT_GT(hits[0], 0);
  EXPECT_GT(hits[1], 0);
}

// ---------------------------------------------------------------------------------------------
// Uniform choice among ready cases

TEST(SelectFairness, ReceivesOnClosedChannels) {
  const int n = 100'000;
  for (int k : {2, 3}) {
    std::vector<Chan<int>> chans;
    for (int i = 0; i < k; ++i) {
      chans.emplace_back(i == 0 ? 0 : 4);  // unbuffered and buffered alike
      chans.back().close();
    }
    std::vector<int> choices;
    choices.reserve(n);
    int o[3] = {-1, -1, -1};
    for (int i = 0; i < n; ++i) {
      SelectResult r = k == 2 ? select(recv_case(chans[0], o[0]), recv_case(chans[1], o[1]))
                              : select(recv_case(chans[0], o[0]), recv_case(chans[1], o[1]),
                                       recv_case(chans[2], o[2]));
      ASSERT_FALSE(r.ok);
      choices.push_back(r.index);
    }
    EXPECT_EQ(o[0] + o[1] + o[2], -3);  // closed receives assign nothing
    expect_uniform(choices, k, "closed k=" + std::to_string(k));
  }
}

TEST(SelectFairness, ReceivesOnBufferedChannelsWithValues) {
  const int n = 100'000;
  for (int k : {2, 3}) {
    std::vector<Chan<int>> chans;
    for (int i = 0; i < k; ++i) {
      chans.emplace_back(2);
      chans.back().send(i);
    }
    std::vector<int> choices;
    choices.reserve(n);
    for (int i = 0; i < n; ++i) {
      int o[3] = {-1, -1, -1};
      SelectResult r = k == 2 ? try_select(recv_case(chans[0], o[0]), recv_case(chans[1], o[1]))
                              : try_select(recv_case(chans[0], o[0]), recv_case(chans[1], o[1]),
                                           recv_case(chans[2], o[2]));
      ASSERT_GE(r.index, 0);
      ASSERT_TRUE(r.ok);
      ASSERT_EQ(o[r.index], r.index);  // each channel carries its own index
      chans[r.index].send(r.index);    // refill
      choices.push_back(r.index);
    }
    expect_uniform(choices, k, "buffered receives k=" + std::to_string(k));
  }
}

TEST(SelectFairness, SendsAndMixedCases) {
  const int n = 100'000;
  // k = 2: two sends with room.  k = 3: two sends with room and a ready receive.
  for (int k : {2, 3}) {
    Chan<int> s0(1), s1(1), r2(1);
    r2.send(42);
    std::vector<int> choices;
    choices.reserve(n);
    for (int i = 0; i < n; ++i) {
      int v0 = 0, v1 = 1, o = -1;
      SelectResult r = k == 2 ? select(send_case(s0, v0), send_case(s1, v1))
                              : select(send_case(s0, v0), send_case(s1, v1), recv_case(r2, o));
      int back = -1;
      switch (r.index) {
        case 0:
          ASSERT_EQ(s0.try_recv(back), Errc::ok);
          ASSERT_EQ(back, 0);
          break;
        case 1:
          ASSERT_EQ(s1.try_recv(back), Errc::ok);
          ASSERT_EQ(back, 1);
          break;
        case 2:
          ASSERT_EQ(o, 42);
          r2.send(42);
          break;
        default:
          FAIL() << r.index;
      }
      ASSERT_EQ(s0.size() + s1.size(), 0u);  // the losing send did not happen
      choices.push_back(r.index);
    }
    expect_uniform(choices, k, "sends k=" + std::to_string(k));
  }
}

TEST(SelectFairness, NotReadyAndNilCasesAreNeverChosen) {
  const int n = 100'000;
  Chan<int> nil, idle(0), empty(3), full(1), a(0), b(0);
  full.send(0);
  a.close();
  b.close();
  std::vector<int> choices;
  choices.reserve(n);
  for (int i = 0; i < n; ++i) {
    int o0 = -1, o1 = -1, o2 = -1, o3 = -1, o4 = -1, s = 5, s2 = 6;
    SelectResult r = select(recv_case(nil, o0), send_case(nil, s), recv_case(a, o1), recv_case(idle, o2),
                            send_case(full, s2), recv_case(empty, o3), recv_case(b, o4));
    ASSERT_TRUE(r.index == 2 || r.index == 6) << r.index;
    ASSERT_EQ(o0 + o1 + o2 + o3 + o4, -5);
    choices.push_back(r.index == 2 ? 0 : 1);
  }
  expect_uniform(choices, 2, "two ready among seven");
  EXPECT_EQ(full.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Closed channels in select

TEST(SelectClosed, ReceiveFromAClosedChannelIsReady) {
  Chan<int> c(3), idle(0);
  c.send(1);
  c.send(2);
  c.close();
  int o = -1, p = -1;
  SelectResult r = select(recv_case(idle, p), recv_case(c, o));
  EXPECT_EQ(r.index, 1);
  EXPECT_TRUE(r.ok);  // buffered values come first
  EXPECT_EQ(o, 1);
  r = try_select(recv_case(c, o), recv_case(idle, p));
  EXPECT_EQ(r.index, 0);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(o, 2);
  for (int i = 0; i < 5; ++i) {
    o = -7;
    r = select(recv_case(idle, p), recv_case(c, o));
    EXPECT_EQ(r.index, 1);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(o, -7);  // untouched
    r = try_select(recv_case(c, o));
    EXPECT_EQ(r.index, 0);
    EXPECT_FALSE(r.ok);
  }
  EXPECT_EQ(p, -1);
}

TEST(SelectClosed, SendCaseOnAClosedChannelThrowsWhenChosen) {
  Chan<int> c(2), idle(0);
  c.close();
  int v = 1, o = -1;
  EXPECT_EQ(error_of([&] { select(send_case(c, v)); }), Errc::channel_closed);
  EXPECT_EQ(error_of([&] { try_select(send_case(c, v)); }), Errc::channel_closed);
  EXPECT_EQ(error_of([&] { select(recv_case(idle, o), send_case(c, v)); }), Errc::channel_closed);
  SelectCase cases[] = {recv_case(idle, o), send_case(idle, v), send_case(c, v)};
  SelectResult out;
  EXPECT_EQ(try_select_cases(cases, 3, true, &out), Errc::channel_closed);
  EXPECT_EQ(out.index, 2);
  out = SelectResult{};
  EXPECT_EQ(try_select_cases(cases, 3, false, &out), Errc::channel_closed);
  EXPECT_EQ(out.index, 2);
  EXPECT_EQ(c.size(), 0u);

  // With a ready receive as well: whichever is chosen runs, and only it.
  Chan<int> ready(1);
  int throws = 0, receives = 0;
  for (int i = 0; i < 1000; ++i) {
    if (ready.size() == 0) ready.send(i);
    Errc e = error_of([&] {
      SelectResult r = select(send_case(c, v), recv_case(ready, o));
      EXPECT_EQ(r.index, 1);
      EXPECT_TRUE(r.ok);
    });
    if (e == Errc::channel_closed) {
      ++throws;
      EXPECT_EQ(ready.size(), 1u);  // the receive did not happen
    } else {
      ASSERT_EQ(e, Errc::ok);
      ++receives;
      EXPECT_EQ(ready.size(), 0u);
    }
  }
  EXPECT_GT(throws, 0);
  EXPECT_GT(receives, 0);
}

TEST(SelectClosed, CloseWakesBlockedSelects) {
  Runtime rt(hosted());
  Chan<int> a(0), b(2);
  // Blocked on receives: the close makes its case ready with ok == false.
  SelectResult r1{-5, true};
  int x = -1, y = -1;
  rt.spawn_detached([&] { r1 = select(recv_case(a, x), recv_case(b, y)); });
  // Blocked with a send case: the close makes that case fatal.
  Chan<int> full(1), other(0);
  full.send(0);
  Errc e2 = Errc::ok;
  bool done2 = false;
  int s = 1, z = -1;
  rt.spawn_detached([&] {
    e2 = error_of([&] { select(send_case(full, s), recv_case(other, z)); });
    done2 = true;
  });
  settle(rt);
  EXPECT_EQ(r1.index, -5);
  EXPECT_FALSE(done2);
  b.close();
  full.close();
  settle(rt);
  EXPECT_EQ(r1.index, 1);
  EXPECT_FALSE(r1.ok);
  EXPECT_EQ(x, -1);
  EXPECT_EQ(y, -1);
  EXPECT_TRUE(done2);
  EXPECT_EQ(e2, Errc::channel_closed);
  EXPECT_EQ(z, -1);
  // The withdrawn cases on a and other left nothing behind.
  int v = 3;
  EXPECT_EQ(a.try_send(v), Errc::would_block);
  EXPECT_EQ(other.try_send(v), Errc::would_block);
  EXPECT_EQ(full.recv(), 0);
  EXPECT_EQ(full.recv(), std::nullopt);
}

// ---------------------------------------------------------------------------------------------
// Blocking forever, limits

TEST(SelectBlocking, NoCasesOrOnlyNilCasesBlockForever) {
  Chan<int> nil, nil2;
  bool done[3] = {};
  detail::Task* no_cases_task = nullptr;
  JoinHandle h[3], worker;
  bool worker_done = false;
  {
    Runtime rt(hosted());
    h[0] = rt.spawn([&] {
      no_cases_task = detail::current_task();
      select_cases(nullptr, 0, true);
      done[0] = true;
    });
    h[1] = rt.spawn([&] {
      int o = 0;
      select(recv_case(nil, o));
      done[1] = true;
    });
    h[2] = rt.spawn([&] {
      int o = 0, s = 1;
      select(send_case(nil, s), recv_case(nil2, o), send_case(nil2, s));
      done[2] = true;
    });
    // Other work proceeds around them.
    Chan<int> work(0);
    worker = rt.spawn([&] {
      for (int i = 0; i < 50; ++i) {
        int o = -1;
        SelectResult r = select(recv_case(nil, o), recv_case(work, o));
        EXPECT_EQ(r.index, 1);
        EXPECT_EQ(o, i);
      }
      worker_done = true;
    });
    rt.spawn_detached([&] {
      for (int i = 0; i < 50; ++i) work.send(i);
    });
    for (int i = 0; i < 5; ++i) settle(rt);
    EXPECT_TRUE(worker_done);
    EXPECT_FALSE(done[0]);
    EXPECT_FALSE(done[1]);
    EXPECT_FALSE(done[2]);
    ASSERT_NE(no_cases_task, nullptr);
    EXPECT_EQ(no_cases_task->state.load(), TaskState::waiting);
    EXPECT_EQ(static_cast<WaitReason>(no_cases_task->wait_reason), WaitReason::select_no_cases);
  }
  for (auto& j : h) EXPECT_EQ(j.try_join(), Errc::abandoned);
  EXPECT_EQ(worker.try_join(), Errc::ok);
}

TEST(SelectBlocking, TrySelectOnOnlyNilCasesTakesTheDefault) {
  Chan<int> nil;
  int o = 4, s = 5;
  SelectResult r = try_select(recv_case(nil, o), send_case(nil, s));
  EXPECT_EQ(r.index, -1);
  EXPECT_EQ(o, 4);
  EXPECT_EQ(s, 5);
}

TEST(SelectBlocking, CaseCountLimit) {
  Chan<int> ready(1);
  ready.send(9);
  int o = -1;
  std::vector<SelectCase> cases(65'536);  // nil cases...
  cases.back() = recv_case(ready, o);       // ...and one ready case: the maximum is allowed
  SelectResult r = select_cases(cases.data(), cases.size(), true);
  EXPECT_EQ(r.index, 65'535);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(o, 9);
  std::vector<SelectCase> too_many(65'537);
  SelectResult out;
  EXPECT_EQ(try_select_cases(too_many.data(), too_many.size(), false, &out), Errc::invalid_argument);
  EXPECT_EQ(error_of([&] { select_cases(too_many.data(), too_many.size(), false); }),
            Errc::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Withdrawal under load

TEST(SelectStress, LosingCasesAreWithdrawnNothingLostNothingDuplicated) {
  // Producers (tasks and a foreign thread) send unique messages with blocking selects over a
  // random subset of four shared channels; consumers (tasks and a foreign thread) receive
  // with blocking selects over all of them, replacing a channel by nil once it reports
  // closed. Every message must arrive exactly once; losing cases must neither deliver nor
  // swallow a value (their variables stay untouched).
  Runtime rt(threaded(3));
  const uint64_t per = static_cast<uint64_t>(test::scaled(40'000));
  constexpr int kTaskProducers = 4, kProducers = kTaskProducers + 1;
  constexpr int kTaskConsumers = 4, kConsumers = kTaskConsumers + 1;
  constexpr int kChans = 4;
  std::vector<Chan<uint64_t>> chans{Chan<uint64_t>(0), Chan<uint64_t>(0), Chan<uint64_t>(3),
                                    Chan<uint64_t>(1)};
  std::atomic<long> sent_on[kChans] = {};
  std::atomic<long> untouched_violations{0};

  auto produce = [&](int id) {
    std::mt19937_64 rng(1000 + id);
    for (uint64_t s = 0; s < per; ++s) {
      const uint64_t v = tag(id, s);
      int order[kChans] = {0, 1, 2, 3};
      std::shuffle(order, order + kChans, rng);
      const int k = 1 + static_cast<int>(rng() % kChans);
      uint64_t vals[kChans];
      SelectCase cases[kChans];
      for (int i = 0; i < k; ++i) {
        vals[i] = v;
        cases[i] = send_case(chans[order[i]], vals[i]);
      }
      SelectResult r = select_cases(cases, static_cast<std::size_t>(k), true);
      sent_on[order[r.index]].fetch_add(1, std::memory_order_relaxed);
      for (int i = 0; i < k; ++i)
        if (i != r.index && vals[i] != v) untouched_violations.fetch_add(1);
    }
  };

  struct Received {
    std::vector<uint64_t> values;
    std::vector<int> chan;
  };
  std::vector<Received> received(kConsumers);
  auto consume = [&](int id) {
    std::mt19937_64 rng(2000 + id);
    std::vector<Chan<uint64_t>> mine = chans;  // copies; replaced by nil once closed
    int open = kChans;
    constexpr uint64_t kSentinel = ~uint64_t{0};
    while (open > 0) {
      int order[kChans] = {0, 1, 2, 3};
      std::shuffle(order, order + kChans, rng);
      uint64_t outs[kChans];
      SelectCase cases[kChans];
      for (int i = 0; i < kChans; ++i) {
        outs[i] = kSentinel;
        cases[i] = recv_case(mine[order[i]], outs[i]);
      }
      SelectResult r = select_cases(cases, kChans, true);
      for (int i = 0; i < kChans; ++i)
        if (i != r.index && outs[i] != kSentinel) untouched_violations.fetch_add(1);
      const int ch = order[r.index];
      if (r.ok) {
        received[id].values.push_back(outs[r.index]);
        received[id].chan.push_back(ch);
      } else {
        if (outs[r.index] != kSentinel) untouched_violations.fetch_add(1);
        mine[ch] = Chan<uint64_t>();  // nil: never ready again
        --open;
      }
    }
  };

  WaitGroup producers, consumers;
  producers.add(kTaskProducers);
  consumers.add(kTaskConsumers);
  for (int c = 0; c < kTaskConsumers; ++c)
    rt.spawn_detached([&, c] {
      consume(c);
      consumers.done();
    });
  std::thread foreign_consumer([&] { consume(kTaskConsumers); });
  for (int p = 0; p < kTaskProducers; ++p)
    rt.spawn_detached([&, p] {
      produce(p);
      producers.done();
    });
  std::thread foreign_producer([&] { produce(kTaskProducers); });
  producers.wait();
  foreign_producer.join();
  for (auto& c : chans) c.close();
  consumers.wait();
  foreign_consumer.join();

  EXPECT_EQ(untouched_violations.load(), 0);
  std::vector<std::vector<uint8_t>> seen(kProducers, std::vector<uint8_t>(per, 0));
  long count = 0, bad = 0, fifo_violations = 0;
  uint64_t sum = 0, expected_sum = 0;
  long recv_on[kChans] = {};
  for (auto& r : received) {
    // Per consumer, per channel, per producer: sequence numbers increase.
    std::vector<int64_t> last(kChans * kProducers, -1);
    for (std::size_t i = 0; i < r.values.size(); ++i) {
      const uint64_t v = r.values[i];
      const uint64_t p = producer_of(v), s = seq_of(v);
      if (p >= kProducers || s >= per) {
        ++bad;
        continue;
      }
      ++count;
      sum += mix(v);
      ++seen[p][s];
      ++recv_on[r.chan[i]];
      int64_t& l = last[r.chan[i] * kProducers + p];
      if (static_cast<int64_t>(s) <= l) ++fifo_violations;
      l = static_cast<int64_t>(s);
    }
  }
  for (uint64_t p = 0; p < kProducers; ++p)
    for (uint64_t s = 0; s < per; ++s) expected_sum += mix(tag(p, s));
  long exactly_once = 0;
  for (auto& v : seen) exactly_once += std::count(v.begin(), v.end(), 1);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(count, static_cast<long>(per) * kProducers);
  EXPECT_EQ(exactly_once, static_cast<long>(per) * kProducers);
  EXPECT_EQ(sum, expected_sum);
  EXPECT_EQ(fifo_violations, 0);
  for (int c = 0; c < kChans; ++c) EXPECT_EQ(recv_on[c], sent_on[c].load()) << "channel " << c;
}

TEST(SelectStress, BlockedSelectsOnSharedChannelsWithClosesMidway) {
  // Many tasks block in selects over the same channels; a close of one of them must wake
  // exactly the selects that are still waiting, once each, and never a select that already
  // completed through another case.
  Runtime rt(threaded());
  const int rounds = test::kSanitized ? 20 : 200;
  const int waiters = test::kTsan ? 200 : 500;
  for (int round = 0; round < rounds; ++round) {
    Chan<int> data(0), stop(0);
    std::atomic<int> got_value{0}, got_closed{0}, wrong{0};
    WaitGroup wg;
    wg.add(waiters);
    for (int i = 0; i < waiters; ++i)
      rt.spawn_detached([&] {
        int d = -1, s = -1;
        SelectResult r = select(recv_case(data, d), recv_case(stop, s));
        if (r.index == 0 && r.ok && d >= 0) got_value.fetch_add(1);
        else if (r.index == 1 && !r.ok && s == -1) got_closed.fetch_add(1);
        else wrong.fetch_add(1);
        wg.done();
      });
    const int values = waiters / 2;
    for (int i = 0; i < values; ++i) data.send(i);  // each taken by exactly one select
    stop.close();                                    // releases the rest
    wg.wait();
    ASSERT_EQ(wrong.load(), 0) << round;
    ASSERT_EQ(got_value.load(), values) << round;
    ASSERT_EQ(got_closed.load(), waiters - values) << round;
    int v = 0;
    ASSERT_EQ(data.try_send(v), Errc::would_block) << round;  // no stale receiver left
  }
}
