// W4 channel throughput for Boost.Fiber (impl "boost_fiber"): p producers push their share of
// the ints 0..n-1 into one buffered_channel of capacity 1024 that p consumers drain; the main
// fiber closes it once every producer is done. Timed from the first spawn until every consumer
// has seen the close; count and sum are checked. -case 1p1c (default) or 4p4c.
//
// Boost's buffered_channel needs a power-of-2 capacity and keeps one slot free, so it holds at
// most 1023 values (Go's and myriad's hold 1024).
//
// Configuration (see bench/README.md): work_stealing on `procs` threads with sleeping idle
// threads (suspend=true), launch::post, 64 KiB stacks: steadier than shared_work (which was
// sometimes faster, sometimes half as fast); spinning idle threads were 2-50x slower.
// Overridable through BENCH_FIBER_* (fiber_setup.hpp).
#include <vector>

#include "bench_util.hpp"
#include "fiber_setup.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 10'000'000);
  if (a.case_name.empty()) a.case_name = "1p1c";
  unsigned p = a.case_name == "1p1c" ? 1 : a.case_name == "4p4c" ? 4 : 0;
  if (!p) {
    std::fprintf(stderr, "W4: -case is 1p1c or 4p4c\n");
    return 2;
  }
  auto opts = fiberbench::options("ws", boost::fibers::launch::post, 64 * 1024, true);
  double ns = 0;
  std::vector<uint64_t> counts(p), sums(p);
  unsigned threads = 0;
  {
    fiberbench::Pool pool(opts, a.procs);
    threads = pool.threads();
    boost::fibers::buffered_channel<uint64_t> ch(1024);
    fiberbench::WaitGroup producers, consumers;
    producers.add(p);
    consumers.add(p);
    auto t0 = bench::Clock::now();
    for (unsigned k = 0; k < p; ++k)
      pool.spawn([&, k] {
        uint64_t v, count = 0, sum = 0;
        while (ch.pop(v) == boost::fibers::channel_op_status::success) {
          ++count;
          sum += v;
        }
        counts[k] = count;
        sums[k] = sum;
        consumers.done();
      });
    for (unsigned k = 0; k < p; ++k)
      pool.spawn([&, lo = a.n * k / p, hi = a.n * (k + 1) / p] {
        for (uint64_t v = lo; v < hi; ++v) ch.push(v);
        producers.done();
      });
    producers.wait();
    ch.close();
    consumers.wait();
    ns = bench::ns_between(t0, bench::Clock::now());
  }
  uint64_t count = 0, sum = 0;
  for (unsigned k = 0; k < p; ++k) count += counts[k], sum += sums[k];
  if (count != a.n || sum != a.n * (a.n - 1) / 2) {
    std::fprintf(stderr, "W4: received %llu values summing to %llu\n", (unsigned long long)count,
                 (unsigned long long)sum);
    return 1;
  }
  bench::emit("W4", "boost_fiber", threads, "mmsgs_per_s", double(a.n) / ns * 1e3, a.n,
              a.case_name);
}
