// W1 spawn-join for oneTBB (impl "tbb"): the main thread runs n tasks through one
// tbb::task_group, each doing one atomic add, then tg.wait(); timed from the first run() to
// the return of wait().
//
// Configuration: a task_arena of `procs` slots (the main thread takes one, so procs-1 TBB
// workers join it), with global_control capping the whole process at `procs` threads too.
// task_group is TBB's spawn-and-join primitive; its tasks are not coroutines, so nothing
// here can block — which is exactly why TBB is only a peer for W1.
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <oneapi/tbb/version.h>

#include <atomic>

#include "bench_util.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 1'000'000);
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, a.procs);
  tbb::task_arena arena(int(a.procs));
  std::atomic<uint64_t> sum{0};
  double ns = 0;
  arena.execute([&] {
    tbb::task_group tg;
    auto t0 = bench::Clock::now();
    for (uint64_t i = 0; i < a.n; ++i)
      tg.run([&sum] { sum.fetch_add(1, std::memory_order_relaxed); });
    tg.wait();
    ns = bench::ns_between(t0, bench::Clock::now());
  });
  if (sum.load() != a.n) {
    std::fprintf(stderr, "W1: wrong sum %llu\n", (unsigned long long)sum.load());
    return 1;
  }
  bench::emit("W1", "tbb", a.procs, "ns_per_task", ns / double(a.n), a.n);
  bench::emit("W1", "tbb", a.procs, "peak_rss_mib", bench::peak_rss_mib(), a.n);
}
