// The load client of W9: many concurrent TCP connections, each doing round trips of a
// fixed-size message against an echo server (ours, examples/echo_server.cpp, or the Go peer),
// one task per connection.
//
//   myriad_load_client HOST PORT [--conns 10000] [--msgs 50] [--size 64] [--procs N]
//                      [--impl myriad] [--case NAME] [--timeout-s 120]
//
// Every connection first connects and does one unmeasured round trip (so the server has
// accepted it and its handler waits in read); then all start together and each does --msgs
// round trips: write the message, read the echo in full, check every byte. Each round trip's
// latency is kept; at the end the client prints BENCH.md's JSON lines for W9, labelled with
// --impl and --case (the server's, which the client cannot know):
//   roundtrips_per_s  all measured round trips / time from the start until the last finished
//   p99_us            nearest-rank 99th percentile of the round-trip latencies
// and "n" is the number of measured round trips. Exits 1 (and prints no numbers) when a
// connection failed or an echo differed. Run it in its own process: 10,000 client and
// 10,000 server descriptors do not fit in one process's usual limit.
#include <myriad/io.hpp>
#include <myriad/runtime.hpp>
#include <myriad/semaphore.hpp>
#include <myriad/time.hpp>
#include <myriad/wait_group.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  const char* host = nullptr;
  uint16_t port = 0;
  long conns = 10000;
  long msgs = 50;
  std::size_t size = 64;
  unsigned procs = 0;  // 0: the runtime's default (hardware threads or MYRIAD_PROCS)
  std::string impl = "myriad";
  std::string case_name;
  long timeout_s = 120;
};

// A burst of 10,000 SYNs overflows the listen queues (somaxconn, tcp_max_syn_backlog), and a
// dropped SYN is retried only after a second. Connecting at most this many at a time avoids
// that; the connects are not measured.
constexpr long kConnectsInFlight = 256;

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s HOST PORT [--conns N] [--msgs N] [--size BYTES] [--procs N] "
               "[--impl NAME] [--case NAME] [--timeout-s S]\n",
               argv0);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  int npos = 0;
  for (int i = 1; i < argc; ++i) {
    const char* f = argv[i];
    if (f[0] != '-') {
      if (npos == 0) o.host = f;
      else if (npos == 1) o.port = static_cast<uint16_t>(std::strtoul(f, nullptr, 10));
      else usage(argv[0]);
      ++npos;
      continue;
    }
    if (f[1] == '-') ++f;  // -flag or --flag
    if (i + 1 >= argc) usage(argv[0]);
    const char* v = argv[++i];
    if (!std::strcmp(f, "-conns")) o.conns = std::strtol(v, nullptr, 10);
    else if (!std::strcmp(f, "-msgs")) o.msgs = std::strtol(v, nullptr, 10);
    else if (!std::strcmp(f, "-size")) o.size = std::strtoul(v, nullptr, 10);
    else if (!std::strcmp(f, "-procs")) o.procs = unsigned(std::strtoul(v, nullptr, 10));
    else if (!std::strcmp(f, "-impl")) o.impl = v;
    else if (!std::strcmp(f, "-case")) o.case_name = v;
    else if (!std::strcmp(f, "-timeout-s")) o.timeout_s = std::strtol(v, nullptr, 10);
    else usage(argv[0]);
  }
  if (npos != 2 || o.conns < 1 || o.msgs < 1 || o.size < 1) usage(argv[0]);
  return o;
}

void raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
}

// The bytes of connection `conn`'s message `m`: different per connection and per message, so
// an echo sent to the wrong connection or a stale one shows up as a mismatch.
void fill(std::vector<unsigned char>& msg, long conn, long m) {
  for (std::size_t i = 0; i < msg.size(); ++i)
    msg[i] = static_cast<unsigned char>(conn * 131 + m * 31 + long(i));
}

// One round trip; false (after saying why on stderr) on an error, a short echo or a mismatch.
bool round_trip(myriad::Fd& c, long conn, long m, std::vector<unsigned char>& msg,
                std::vector<unsigned char>& echo) {
  fill(msg, conn, m);
  myriad::IoResult w = c.write_all(msg.data(), msg.size());
  myriad::IoResult r = w.ok() ? c.read_full(echo.data(), echo.size()) : w;
  if (!r.ok() || r.n != echo.size()) {
    std::fprintf(stderr, "conn %ld msg %ld: %s (%zu of %zu bytes)\n", conn, m,
                 r.ok() ? "end of file" : r.sys_errno ? std::strerror(r.sys_errno)
                                                      : myriad::strerror(r.err),
                 r.n, echo.size());
    return false;
  }
  if (echo != msg) {
    std::fprintf(stderr, "conn %ld msg %ld: the echo differs from what was sent\n", conn, m);
    return false;
  }
  return true;
}

void emit(const Options& o, unsigned procs, const char* metric, double value, long n) {
  std::string c = o.case_name.empty() ? "" : ",\"case\":\"" + o.case_name + "\"";
  std::printf(
      "{\"workload\":\"W9\",\"impl\":\"%s\"%s,\"procs\":%u,\"metric\":\"%s\",\"value\":%.6g,"
      "\"n\":%ld}\n",
      o.impl.c_str(), c.c_str(), procs, metric, value, n);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  raise_fd_limit();

  // One slot per measured round trip, allocated up front: connection i writes only its own
  // slice [i * msgs, (i + 1) * msgs), so recording is a store, with no allocation and no
  // sharing while the clock runs.
  std::vector<int64_t> latency_ns(std::size_t(o.conns) * std::size_t(o.msgs));
  std::atomic<long> failed{0};
  double seconds = 0;
  unsigned procs = 0;
  {
    myriad::Runtime rt(myriad::Config{.procs = o.procs});
    procs = rt.procs();
    rt.spawn([&] {
        myriad::Semaphore connecting(kConnectsInFlight);
        myriad::WaitGroup ready, start, finished;
        ready.add(o.conns);
        start.add(1);
        finished.add(o.conns);
        for (long i = 0; i < o.conns; ++i) {
          myriad::go([&, i] {
            std::vector<unsigned char> msg(o.size), echo(o.size);
            myriad::Fd c;
            bool ok = false;
            connecting.acquire();
            try {
              c = myriad::tcp_connect(o.host, o.port);
              // A server that stops answering fails the run instead of hanging it.
              c.set_deadline(myriad::Clock::now() + std::chrono::seconds(o.timeout_s));
              ok = round_trip(c, i, -1, msg, echo);  // warm-up, not measured
            } catch (const myriad::Error& e) {
              std::fprintf(stderr, "conn %ld: connect: %s\n", i, e.what());
            }
            connecting.release();
            ready.done();
            start.wait();
            int64_t* slot = &latency_ns[std::size_t(i) * std::size_t(o.msgs)];
            for (long m = 0; ok && m < o.msgs; ++m) {
              auto t0 = Clock::now();
              ok = round_trip(c, i, m, msg, echo);
              slot[m] = std::chrono::nanoseconds(Clock::now() - t0).count();
            }
            if (!ok) failed.fetch_add(1);
            c.close();
            finished.done();
          }).detach();
        }
        ready.wait();
        auto t0 = Clock::now();
        start.done();
        finished.wait();
        seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      })
        .join();
  }
  if (long f = failed.load()) {
    std::fprintf(stderr, "W9: %ld of %ld connections failed; no numbers\n", f, o.conns);
    return 1;
  }

  long n = long(latency_ns.size());
  // Nearest rank, as bench_util.hpp's percentile: the k-th smallest with k = ceil(0.99 n).
  auto k = std::size_t((n * 99 + 99) / 100 - 1);
  std::nth_element(latency_ns.begin(), latency_ns.begin() + long(k), latency_ns.end());
  emit(o, procs, "roundtrips_per_s", double(n) / seconds, n);
  emit(o, procs, "p99_us", double(latency_ns[k]) / 1e3, n);
  return 0;
}
