// W1 spawn-join for Boost.Fiber (impl "boost_fiber"): the main fiber spawns n detached fibers
// that each do one atomic add and a WaitGroup done; timed from the first spawn to wait().
//
// Best configuration found on the 2-core machine (see bench/README.md): work_stealing on
// `procs` threads, launch::post, 16 KiB malloc'ed fixedsize stacks (the fibers run a few
// frames; malloc recycles the chunks, so peak RSS stays bounded by the backlog), idle threads
// spin (suspend=false). Overridable through BENCH_FIBER_* (fiber_setup.hpp).
#include "bench_util.hpp"
#include "fiber_setup.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 1'000'000);
  auto opts = fiberbench::options("ws", boost::fibers::launch::post, 16 * 1024);
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
