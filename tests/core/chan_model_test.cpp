// Model-based tests for channels and select.
//
//  - Concurrent: tasks and foreign threads run random mixes of send, recv, try_send, try_recv,
//    blocking and non-blocking selects (sends, receives, both, with nil cases) over a small set
//    of buffered and unbuffered channels, then the channels are closed and drained. Every value
//    is unique (producer, sequence); the outcome is checked against what a channel guarantees:
//    each successful send received exactly once, on the channel it was sent on; per receiver,
//    values of one producer on one channel arrive in the order sent; per channel as many
//    receives as sends; len never above cap; losing select cases untouched.
//  - Sequential: one task applies a random sequence of non-blocking (and provably
//    non-blocking) operations to several channels and compares every result, step by step,
//    with a reference model (a deque with a capacity and a closed flag).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "myriad/chan.hpp"
#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

using namespace myriad;

namespace {

Config model_config(unsigned procs) {
  Config c;
  c.procs = procs;
  c.on_task_failure = [](const TaskFailure& f) { ADD_FAILURE() << "task failed: " << f.what; };
  return c;
}

constexpr int kSeqBits = 40;
constexpr uint64_t kSentinel = ~uint64_t{0};
uint64_t tag(uint64_t producer, uint64_t seq) { return (producer << kSeqBits) | seq; }
uint64_t producer_of(uint64_t v) { return v >> kSeqBits; }
uint64_t seq_of(uint64_t v) { return v & ((uint64_t{1} << kSeqBits) - 1); }

void pause_briefly() {
  if (this_task::in_task())
    this_task::yield();
  else
    std::this_thread::yield();
}

// ---------------------------------------------------------------------------------------------
// The concurrent model

struct Received {
  std::vector<uint8_t> chan;
  std::vector<uint64_t> value;
  void add(int ch, uint64_t v) {
    chan.push_back(static_cast<uint8_t>(ch));
    value.push_back(v);
  }
};

struct ProducerLog {
  std::vector<uint8_t> chan_of_seq;  // where sequence number i was sent (its length: sends)
  Received received;                 // what its mixed selects and try_recvs received
  long ops = 0;
};

struct ConsumerLog {
  Received received;
  long ops = 0;
};

struct Violations {
  std::atomic<long> len_over_cap{0};
  std::atomic<long> wrong_cap{0};
  std::atomic<long> untouched{0};     // a losing select case's variable was written
  std::atomic<long> unexpected{0};    // an error code or result that cannot happen here
};

class ConcurrentModel {
 public:
  ConcurrentModel() {
    for (std::size_t cap : kCaps) chans_.emplace_back(cap);
  }

  static constexpr std::size_t kCaps[] = {0, 0, 1, 4, 16};
  static constexpr int kChans = 5;

  void sample_len(int ch) {
    const Chan<uint64_t>& c = chans_[ch];
    if (c.capacity() != kCaps[ch]) v_.wrong_cap.fetch_add(1);
    if (c.size() > c.capacity()) v_.len_over_cap.fetch_add(1);
  }

  // Picks 1..max distinct channel indexes in random order.
  static int pick_set(std::mt19937_64& rng, int* out, int max) {
    int all[kChans] = {0, 1, 2, 3, 4};
    std::shuffle(all, all + kChans, rng);
    const int k = 1 + static_cast<int>(rng() % max);
    std::copy(all, all + k, out);
    return k;
  }

  void produce(int id, long ops, ProducerLog& log) {
    std::mt19937_64 rng(0xC0FFEE + id);
    uint64_t seq = 0;
    auto sent = [&](int ch) {
      log.chan_of_seq.push_back(static_cast<uint8_t>(ch));
      ++seq;
    };
    for (long op = 0; op < ops; ++op) {
      const int kind = static_cast<int>(rng() % 100);
      const uint64_t v = tag(id, seq);
      if (kind < 25) {  // send
        const int ch = static_cast<int>(rng() % kChans);
        chans_[ch].send(v);
        sent(ch);
      } else if (kind < 45) {  // try_send
        const int ch = static_cast<int>(rng() % kChans);
        uint64_t x = v;
        Errc e = chans_[ch].try_send(x);
        if (e == Errc::ok) {
          sent(ch);
        } else {
          if (e != Errc::would_block || x != v) v_.unexpected.fetch_add(1);
          pause_briefly();
        }
      } else if (kind < 80) {  // select over send cases, blocking or with default, a nil case
        const bool block = kind < 65;
        int set[kChans];
        const int k = pick_set(rng, set, 3);
        uint64_t vals[kChans + 1];
        SelectCase cases[kChans + 1];
        int n = 0;
        for (int i = 0; i < k; ++i) {
          vals[n] = v;
          cases[n] = send_case(chans_[set[i]], vals[n]);
          ++n;
        }
        Chan<uint64_t> nil;
        if (rng() % 4 == 0) {
          vals[n] = v;
          cases[n] = send_case(nil, vals[n]);
          std::swap(cases[n], cases[rng() % (n + 1)]);  // anywhere; vals stay where they are
          ++n;
        }
        SelectResult r = select_cases(cases, static_cast<std::size_t>(n), block);
        if (r.index < 0) {
          if (block) v_.unexpected.fetch_add(1);
          pause_briefly();
        } else if (cases[r.index].chan == nullptr) {
          v_.unexpected.fetch_add(1);  // a nil case ran
        } else {
          for (int i = 0; i < k; ++i)
            if (cases[r.index].chan == chans_[set[i]].core()) sent(set[i]);
        }
        int moved = 0;
        for (int i = 0; i < n; ++i)
          if (vals[i] != v) ++moved;
        if (moved != 0) v_.unexpected.fetch_add(1);  // uint64_t: a move leaves the value as is
      } else if (kind < 88) {  // blocking select mixing sends and receives (maybe one channel)
        int sset[kChans], rset[kChans];
        const int ks = pick_set(rng, sset, 2), kr = pick_set(rng, rset, 2);
        uint64_t vals[4], outs[4];
        SelectCase cases[4];
        int caseChan[4];
        bool isSend[4];
        int n = 0;
        for (int i = 0; i < ks; ++i) {
          vals[n] = v;
          cases[n] = send_case(chans_[sset[i]], vals[n]);
          caseChan[n] = sset[i];
          isSend[n++] = true;
        }
        for (int i = 0; i < kr; ++i) {
          outs[n] = kSentinel;
          cases[n] = recv_case(chans_[rset[i]], outs[n]);
          caseChan[n] = rset[i];
          isSend[n++] = false;
        }
        SelectResult r = select_cases(cases, static_cast<std::size_t>(n), true);
        if (r.index < 0 || r.index >= n) {
          v_.unexpected.fetch_add(1);
          continue;
        }
        if (isSend[r.index]) {
          sent(caseChan[r.index]);
        } else if (r.ok) {
          log.received.add(caseChan[r.index], outs[r.index]);
        } else {
          v_.unexpected.fetch_add(1);  // nothing is closed while producers run
        }
        for (int i = 0; i < n; ++i)
          if (i != r.index && !isSend[i] && outs[i] != kSentinel) v_.untouched.fetch_add(1);
      } else if (kind < 95) {  // try_recv
        const int ch = static_cast<int>(rng() % kChans);
        uint64_t out = kSentinel;
        Errc e = chans_[ch].try_recv(out);
        if (e == Errc::ok) {
          log.received.add(ch, out);
        } else {
          if (e != Errc::would_block || out != kSentinel) v_.unexpected.fetch_add(1);
          pause_briefly();
        }
      } else {
        for (int ch = 0; ch < kChans; ++ch) sample_len(ch);
      }
      ++log.ops;
    }
  }

  // drainer: only blocking selects over every open channel — whatever any producer blocks on,
  // the drainer will take, so no configuration of the others can deadlock.
  void consume(int id, bool drainer, ConsumerLog& log) {
    std::mt19937_64 rng(0xFEED + id);
    std::vector<Chan<uint64_t>> mine = chans_;  // a channel found closed is replaced by nil
    int open = kChans;
    auto closed = [&](int ch) {
      if (mine[ch].is_nil()) {
        v_.unexpected.fetch_add(1);
        return;
      }
      mine[ch] = Chan<uint64_t>();
      --open;
    };
    auto random_open = [&] {
      for (;;) {
        int ch = static_cast<int>(rng() % kChans);
        if (!mine[ch].is_nil()) return ch;
      }
    };
    while (open > 0) {
      ++log.ops;
      const int kind = drainer ? 50 : static_cast<int>(rng() % 100);
      if (kind < 25) {  // recv
        const int ch = random_open();
        uint64_t out = kSentinel;
        if (mine[ch].recv_into(out)) {
          log.received.add(ch, out);
        } else {
          if (out != kSentinel) v_.unexpected.fetch_add(1);
          closed(ch);
        }
      } else if (kind < 45) {  // try_recv
        const int ch = random_open();
        uint64_t out = kSentinel;
        Errc e = mine[ch].try_recv(out);
        if (e == Errc::ok) {
          log.received.add(ch, out);
        } else if (e == Errc::channel_closed) {
          if (out != kSentinel) v_.unexpected.fetch_add(1);
          closed(ch);
        } else {
          if (e != Errc::would_block || out != kSentinel) v_.unexpected.fetch_add(1);
          pause_briefly();
        }
      } else if (kind < 90) {  // select over receives (all channels for the drainer)
        const bool block = drainer || kind < 70;
        int set[kChans];
        int k = drainer ? kChans : pick_set(rng, set, kChans);
        if (drainer) {
          for (int i = 0; i < kChans; ++i) set[i] = i;
          std::shuffle(set, set + kChans, rng);
        } else if (std::all_of(set, set + k, [&](int ch) { return mine[ch].is_nil(); })) {
          set[0] = random_open();  // a blocking select on nil channels only would never return
        }
        uint64_t outs[kChans];
        SelectCase cases[kChans];
        for (int i = 0; i < k; ++i) {
          outs[i] = kSentinel;
          cases[i] = recv_case(mine[set[i]], outs[i]);  // nil once closed: never ready
        }
        SelectResult r = select_cases(cases, static_cast<std::size_t>(k), block);
        for (int i = 0; i < k; ++i)
          if (i != r.index && outs[i] != kSentinel) v_.untouched.fetch_add(1);
        if (r.index < 0) {
          if (block) v_.unexpected.fetch_add(1);
          pause_briefly();
        } else if (r.ok) {
          log.received.add(set[r.index], outs[r.index]);
        } else {
          if (outs[r.index] != kSentinel) v_.unexpected.fetch_add(1);
          closed(set[r.index]);
        }
      } else {
        for (int ch = 0; ch < kChans; ++ch) sample_len(ch);
      }
    }
  }

  void close_all() {
    for (auto& c : chans_) c.close();
  }
  const std::vector<Chan<uint64_t>>& chans() const { return chans_; }
  Violations& violations() { return v_; }

 private:
  std::vector<Chan<uint64_t>> chans_;
  Violations v_;
};

// ---------------------------------------------------------------------------------------------
// The sequential model

template <class T>
T make_value(uint64_t n);
template <>
uint64_t make_value<uint64_t>(uint64_t n) {
  return n;
}
template <>
std::string make_value<std::string>(uint64_t n) {
  // Short strings live inline (SSO), long ones on the heap: both must move intact.
  return n % 3 ? std::to_string(n) : std::string(24 + n % 17, 'x') + std::to_string(n);
}

template <class T>
struct ModelChan {
  Chan<T> ch;
  std::size_t cap = 0;
  std::deque<T> q;
  bool closed = false;
  bool can_send() const { return !closed && q.size() < cap; }
  bool can_recv() const { return !q.empty() || closed; }
};

std::string describe(int step, int op) {
  return "step " + std::to_string(step) + " op " + std::to_string(op);
}

template <class T>
void run_sequential_model(uint64_t seed, long steps) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const std::size_t caps[] = {0, 1, 2, 3, 7, 32};
  constexpr int kN = 6;
  std::vector<ModelChan<T>> m(kN);
  for (int i = 0; i < kN; ++i) {
    m[i].cap = caps[i];
    m[i].ch = Chan<T>(caps[i]);
  }
  uint64_t next = 0;
  const T sentinel = make_value<T>(kSentinel);
  long counts[8] = {};
  for (int step = 0; step < steps; ++step) {
    const int i = static_cast<int>(rng() % kN);
    ModelChan<T>& mc = m[i];
    const int r = static_cast<int>(rng() % 1000);
    const int op = r < 300 ? 0 : r < 580 ? 1 : r < 660 ? 2 : r < 740 ? 3 : r < 800 ? 4 : r < 990 ? 5 : 6;
    ++counts[op];
    const std::string where = describe(step, op) + " chan " + std::to_string(i);
    switch (op) {
      case 0: {  // try_send
        T v = make_value<T>(next);
        Errc e = mc.ch.try_send(v);
        if (mc.closed) {
          ASSERT_EQ(e, Errc::channel_closed) << where;
        } else if (mc.q.size() < mc.cap) {
          ASSERT_EQ(e, Errc::ok) << where;
          mc.q.push_back(make_value<T>(next++));
        } else {
          ASSERT_EQ(e, Errc::would_block) << where;
          ASSERT_EQ(v, make_value<T>(next)) << where << ": untouched when it would block";
        }
        break;
      }
      case 1: {  // try_recv
        T out = sentinel;
        Errc e = mc.ch.try_recv(out);
        if (!mc.q.empty()) {
          ASSERT_EQ(e, Errc::ok) << where;
          ASSERT_EQ(out, mc.q.front()) << where;
          mc.q.pop_front();
        } else if (mc.closed) {
          ASSERT_EQ(e, Errc::channel_closed) << where;
          ASSERT_EQ(out, sentinel) << where;
        } else {
          ASSERT_EQ(e, Errc::would_block) << where;
          ASSERT_EQ(out, sentinel) << where;
        }
        break;
      }
      case 2: {  // blocking send, only where the model says it cannot block
        if (mc.closed) {
          Errc e = Errc::ok;
          try {
            mc.ch.send(make_value<T>(next));
          } catch (const Error& err) {
            e = err.code();
          }
          ASSERT_EQ(e, Errc::channel_closed) << where;
        } else if (mc.can_send()) {
          mc.ch.send(make_value<T>(next));
          mc.q.push_back(make_value<T>(next++));
        }
        break;
      }
      case 3: {  // blocking recv, only where it cannot block
        if (!mc.can_recv()) break;
        std::optional<T> got = mc.ch.recv();
        if (!mc.q.empty()) {
          ASSERT_TRUE(got.has_value()) << where;
          ASSERT_EQ(*got, mc.q.front()) << where;
          mc.q.pop_front();
        } else {
          ASSERT_FALSE(got.has_value()) << where;
        }
        break;
      }
      case 4: {  // len and cap
        ASSERT_EQ(mc.ch.size(), mc.q.size()) << where;
        ASSERT_EQ(mc.ch.capacity(), mc.cap) << where;
        break;
      }
      case 5: {  // select over 1..4 cases (sends, receives, nil), with or without default
        const int k = 1 + static_cast<int>(rng() % 4);
        SelectCase cases[4];
        int chan_of[4];
        bool is_send[4];
        std::vector<T> vals(4, sentinel);
        std::vector<T> orig(4, sentinel);
        std::vector<int> ready;
        Chan<T> nil;
        for (int c = 0; c < k; ++c) {
          chan_of[c] = rng() % 8 == 0 ? -1 : static_cast<int>(rng() % kN);
          is_send[c] = rng() % 2 == 0;
          if (is_send[c]) orig[c] = vals[c] = make_value<T>(next + 1 + c);
          const Chan<T>& ch = chan_of[c] < 0 ? nil : m[chan_of[c]].ch;
          cases[c] = is_send[c] ? send_case(ch, vals[c]) : recv_case(ch, vals[c]);
          if (chan_of[c] >= 0) {
            const ModelChan<T>& t = m[chan_of[c]];
            // A send on a closed channel is "ready" (it runs, and fails).
            if (is_send[c] ? (t.closed || t.q.size() < t.cap) : t.can_recv()) ready.push_back(c);
          }
        }
        const bool block = !ready.empty() && rng() % 2 == 0;
        SelectResult res;
        Errc e = try_select_cases(cases, static_cast<std::size_t>(k), block, &res);
        if (ready.empty()) {
          ASSERT_EQ(e, Errc::ok) << where;
          ASSERT_EQ(res.index, -1) << where << ": nothing was ready";
        } else {
          ASSERT_NE(std::find(ready.begin(), ready.end(), res.index), ready.end())
              << where << ": case " << res.index << " was not ready";
          const int c = res.index;
          ModelChan<T>& t = m[chan_of[c]];
          if (is_send[c]) {
            if (t.closed) {
              ASSERT_EQ(e, Errc::channel_closed) << where;
            } else {
              ASSERT_EQ(e, Errc::ok) << where;
              t.q.push_back(orig[c]);
            }
          } else {
            ASSERT_EQ(e, Errc::ok) << where;
            if (!t.q.empty()) {
              ASSERT_TRUE(res.ok) << where;
              ASSERT_EQ(vals[c], t.q.front()) << where;
              t.q.pop_front();
            } else {
              ASSERT_FALSE(res.ok) << where;
              ASSERT_EQ(vals[c], sentinel) << where;
            }
          }
        }
        for (int c = 0; c < k; ++c) {
          if (c != res.index) {
            ASSERT_EQ(vals[c], orig[c]) << where << ": losing case " << c << " touched";
          }
        }
        next += 5;
        break;
      }
      case 6: {  // close, and now and then a fresh channel in place of a closed, drained one
        Errc e = mc.ch.try_close();
        if (mc.closed) {
          ASSERT_EQ(e, Errc::channel_closed) << where;
          if (mc.q.empty() && rng() % 2 == 0) {
            mc.ch = Chan<T>(mc.cap);
            mc.closed = false;
          }
        } else {
          ASSERT_EQ(e, Errc::ok) << where;
          mc.closed = true;
        }
        break;
      }
    }
  }
  // Every operation kind was exercised.
  for (int op = 0; op < 7; ++op) EXPECT_GT(counts[op], 0) << "op " << op;
  // Drain: what is left comes out in order, then the channels report closed.
  for (auto& mc : m) {
    mc.ch.try_close();
    T out = sentinel;
    while (!mc.q.empty()) {
      ASSERT_EQ(mc.ch.try_recv(out), Errc::ok);
      ASSERT_EQ(out, mc.q.front());
      mc.q.pop_front();
    }
    ASSERT_EQ(mc.ch.try_recv(out), Errc::channel_closed);
    ASSERT_EQ(mc.ch.size(), 0u);
  }
}

}  // namespace

TEST(ChanModel, ConcurrentRandomOperationsAgainstTheReferenceModel) {
  constexpr int kTaskProducers = 5, kProducers = kTaskProducers + 1;  // + one foreign thread
  constexpr int kTaskConsumers = 4, kConsumers = kTaskConsumers + 1;  // + one foreign thread
  const long per_producer = test::scaled(1'000'000) / kProducers + 1;
  ConcurrentModel model;
  std::vector<ProducerLog> plog(kProducers);
  std::vector<ConsumerLog> clog(kConsumers);
  {
    Runtime rt(model_config(3));
    WaitGroup producers, consumers;
    producers.add(kTaskProducers);
    consumers.add(kTaskConsumers);
    for (int c = 0; c < kTaskConsumers; ++c)
      rt.spawn_detached([&, c] {
        model.consume(c, /*drainer=*/c == 0, clog[c]);
        consumers.done();
      });
    std::thread foreign_consumer([&] { model.consume(kTaskConsumers, false, clog[kTaskConsumers]); });
    for (int p = 0; p < kTaskProducers; ++p)
      rt.spawn_detached([&, p] {
        model.produce(p, per_producer, plog[p]);
        producers.done();
      });
    std::thread foreign_producer([&] { model.produce(kTaskProducers, per_producer, plog[kTaskProducers]); });
    producers.wait();
    foreign_producer.join();
    model.close_all();
    consumers.wait();
    foreign_consumer.join();
  }

  Violations& v = model.violations();
  EXPECT_EQ(v.len_over_cap.load(), 0);
  EXPECT_EQ(v.wrong_cap.load(), 0);
  EXPECT_EQ(v.untouched.load(), 0);
  EXPECT_EQ(v.unexpected.load(), 0);

  long ops = 0;
  for (auto& l : plog) ops += l.ops;
  for (auto& l : clog) ops += l.ops;
  EXPECT_GE(ops, test::scaled(1'000'000));

  // After close and drain: every value sent was received exactly once, on its channel.
  constexpr int kChans = ConcurrentModel::kChans;
  std::vector<std::vector<uint8_t>> times(kProducers);
  long sent_on[kChans] = {}, recv_on[kChans] = {};
  long total_sent = 0;
  for (int p = 0; p < kProducers; ++p) {
    times[p].assign(plog[p].chan_of_seq.size(), 0);
    for (uint8_t ch : plog[p].chan_of_seq) ++sent_on[ch];
    total_sent += static_cast<long>(plog[p].chan_of_seq.size());
  }
  long received = 0, foreign = 0, wrong_channel = 0, fifo = 0;
  auto check = [&](const Received& r) {
    // Per receiver, per channel, per producer: sequence numbers strictly increase.
    std::vector<int64_t> last(kChans * kProducers, -1);
    for (std::size_t i = 0; i < r.value.size(); ++i) {
      const uint64_t val = r.value[i];
      const int ch = r.chan[i];
      const uint64_t p = producer_of(val), s = seq_of(val);
      if (p >= static_cast<uint64_t>(kProducers) || s >= plog[p].chan_of_seq.size()) {
        ++foreign;  // never sent (or a send that did not succeed)
        continue;
      }
      ++received;
      ++recv_on[ch];
      ++times[p][s];
      if (plog[p].chan_of_seq[s] != ch) ++wrong_channel;
      int64_t& l = last[ch * kProducers + p];
      if (static_cast<int64_t>(s) <= l) ++fifo;
      l = static_cast<int64_t>(s);
    }
  };
  for (auto& l : plog) check(l.received);
  for (auto& l : clog) check(l.received);
  long once = 0, twice_or_more = 0, never = 0;
  for (auto& t : times)
    for (uint8_t n : t) (n == 1 ? once : n == 0 ? never : twice_or_more)++;
  EXPECT_EQ(foreign, 0);
  EXPECT_EQ(wrong_channel, 0);
  EXPECT_EQ(fifo, 0);
  EXPECT_EQ(twice_or_more, 0);
  EXPECT_EQ(never, 0);
  EXPECT_EQ(once, total_sent);
  EXPECT_EQ(received, total_sent);
  for (int ch = 0; ch < kChans; ++ch) {
    EXPECT_EQ(recv_on[ch], sent_on[ch]) << "channel " << ch;
    EXPECT_GT(sent_on[ch], 0) << "channel " << ch;
  }
  // Closed and drained.
  for (const auto& c : model.chans()) {
    EXPECT_EQ(c.size(), 0u);
    uint64_t x = 1;
    EXPECT_EQ(c.try_recv(x), Errc::channel_closed);
    EXPECT_EQ(c.try_send(x), Errc::channel_closed);
  }
}

TEST(ChanModel, SequentialOperationsMatchADequeModel) {
  Runtime rt(model_config(1));
  const long steps = test::scaled(400'000);
  auto h = rt.spawn([&] {
    run_sequential_model<uint64_t>(1, steps);
    run_sequential_model<uint64_t>(2, steps);
    run_sequential_model<std::string>(3, steps / 2);
  });
  h.join();
}

TEST(ChanModel, SequentialOperationsFromAForeignThread) {
  // The same model with no runtime at all: a foreign thread's non-blocking operations.
  run_sequential_model<uint64_t>(4, test::scaled(200'000));
}
