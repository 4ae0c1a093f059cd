// W6 yield for Boost.Fiber (impl "boost_fiber"): one fiber calls this_fiber::yield() n times
// while a second fiber yields in a loop until told to stop.
//
// Best configuration: procs=1 runs round_robin on the main thread (the library's default and
// cheapest algorithm); procs>1 runs shared_work on `procs` threads with sleeping idle threads
// (measured faster here than work_stealing, spinning or not), so the two fibers may run on
// different threads, as with the other impls.
#include "bench_util.hpp"
#include "fiber_setup.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 10'000'000);
  auto opts = fiberbench::options(a.procs == 1 ? "rr" : "shared", boost::fibers::launch::post,
                                  64 * 1024, true);
  std::atomic<bool> other_running{false}, stop{false};
  double ns = 0;
  unsigned threads = 0;
  {
    fiberbench::Pool pool(opts, a.procs);
    threads = pool.threads();
    fiberbench::WaitGroup wg;
    wg.add(2);
    pool.spawn([&] {
      other_running.store(true);
      while (!stop.load(std::memory_order_relaxed)) boost::this_fiber::yield();
      wg.done();
    });
    pool.spawn([&] {
      // Start the clock only once the partner runs, so every timed yield has one.
      while (!other_running.load()) boost::this_fiber::yield();
      auto t0 = bench::Clock::now();
      for (uint64_t i = 0; i < a.n; ++i) boost::this_fiber::yield();
      ns = bench::ns_between(t0, bench::Clock::now());
      stop.store(true);
      wg.done();
    });
    wg.wait();
  }
  bench::emit("W6", "boost_fiber", threads, "ns_per_yield", ns / double(a.n), a.n);
}
