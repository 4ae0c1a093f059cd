// W1 spawn-join for Boost.Fiber (impl "boost_fiber"): the main fiber spawns n detached fibers
// that each do one atomic add and a WaitGroup done; timed from the first spawn to wait().
//
// Best configuration found on the 2-core machine (see bench/README.md): work_stealing on
// `procs` threads with sleeping idle threads (suspend=true; spinning ones cost ~2x here),
// launch::dispatch and 16 KiB malloc'ed fixedsize stacks. dispatch switches to each new fiber
// at once, so it finishes before the next spawn and malloc keeps recycling one stack; with
// launch::post all n fibers exist before any runs (4-28 us/task, 5-9 GiB peak RSS).
// Overridable through BENCH_FIBER_* (fiber_setup.hpp).
#include "bench_util.hpp"
#include "fiber_setup.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 1'000'000);
  auto opts = fiberbench::options("ws", boost::fibers::launch::dispatch, 16 * 1024, true);
  std::atomic<uint64_t> sum{0};
  double ns = 0;
  unsigned threads = 0;
  {
    fiberbench::Pool pool(opts, a.procs);
    threads = pool.threads();
    fiberbench::WaitGroup wg;
    wg.add(int64_t(a.n));
    auto t0 = bench::Clock::now();
    for (uint64_t i = 0; i < a.n; ++i)
      pool.spawn([&] {
        sum.fetch_add(1, std::memory_order_relaxed);
        wg.done();
      });
    wg.wait();
    ns = bench::ns_between(t0, bench::Clock::now());
  }
  if (sum.load() != a.n) {
    std::fprintf(stderr, "W1: wrong sum %llu\n", (unsigned long long)sum.load());
    return 1;
  }
  bench::emit("W1", "boost_fiber", threads, "ns_per_task", ns / double(a.n), a.n);
  bench::emit("W1", "boost_fiber", threads, "peak_rss_mib", bench::peak_rss_mib(), a.n);
}
