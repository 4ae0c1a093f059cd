// W8 timers for Boost.Fiber (impl "boost_fiber"): n fibers each call this_fiber::sleep_for()
// once for 1..100 ms (bench::w8_sleep_ms, the same sequence in every impl); lateness = actual
// - requested, measured by the fiber around its sleep. wall_ms runs from the first spawn to
// the last wake; p50_late_ms and p99_late_ms are nearest-rank percentiles.
//
// Configuration (see bench/README.md): shared_work on `procs` threads with sleeping idle
// threads (suspend=true), launch::dispatch, 16 KiB malloc'ed stacks. dispatch runs each new
// fiber at once, so it is asleep before the next spawn: with launch::post all n fibers are
// queued first, and Boost.Fiber looks at its sleepers only when the ready queue runs dry, so
// the median lateness was 150-200 ms (p99 ~290 ms) instead of 0.1-0.7 ms (p99 12-30 ms).
// work_stealing was close behind; spinning idle threads were worse. Overridable through
// BENCH_FIBER_* (fiber_setup.hpp).
#include <algorithm>
#include <vector>

#include "bench_util.hpp"
#include "fiber_setup.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 100'000);
  auto opts = fiberbench::options("shared", boost::fibers::launch::dispatch, 16 * 1024, true);
  std::vector<int64_t> late(a.n), woke(a.n);
  unsigned threads = 0;
  {
    fiberbench::Pool pool(opts, a.procs);
    threads = pool.threads();
    fiberbench::WaitGroup wg;
    wg.add(int64_t(a.n));
    auto t0 = bench::Clock::now();
    for (uint64_t i = 0; i < a.n; ++i)
      pool.spawn([&, i] {
        auto d = std::chrono::milliseconds(bench::w8_sleep_ms(i));
        auto before = bench::Clock::now();
        boost::this_fiber::sleep_for(d);
        auto after = bench::Clock::now();
        late[i] = std::chrono::nanoseconds(after - before - d).count();
        woke[i] = std::chrono::nanoseconds(after - t0).count();
        wg.done();
      });
    wg.wait();
  }
  int64_t last = *std::max_element(woke.begin(), woke.end());
  std::sort(late.begin(), late.end());
  if (late.front() < 0) {
    std::fprintf(stderr, "W8: a sleep returned %lld ns early\n", (long long)-late.front());
    return 1;
  }
  bench::emit("W8", "boost_fiber", threads, "wall_ms", double(last) / 1e6, a.n);
  bench::emit("W8", "boost_fiber", threads, "p50_late_ms", double(bench::percentile(late, 50)) / 1e6, a.n);
  bench::emit("W8", "boost_fiber", threads, "p99_late_ms", double(bench::percentile(late, 99)) / 1e6, a.n);
}
