// W3 ping-pong for Boost.Fiber (impl "boost_fiber"): two fibers bounce a counter over two
// unbuffered_channels (ping, and pong sends it back incremented), n round trips, timed inside
// the pinging fiber.
//
// Configuration (see bench/README.md): procs = 1 runs round_robin on the main thread;
// procs > 1 runs shared_work on `procs` threads with sleeping idle threads (suspend=true),
// launch::post, 64 KiB stacks. With 2 threads the result is bimodal (~200 ns while both
// fibers happen to run on one thread, 3-30 us when every hand-off crosses threads); shared_work
// was more often on the fast side than work_stealing, and spinning idle threads were worse for
// both. Overridable through BENCH_FIBER_* (fiber_setup.hpp).
#include "bench_util.hpp"
#include "fiber_setup.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 1'000'000);
  auto opts = fiberbench::options(a.procs == 1 ? "rr" : "shared", boost::fibers::launch::post,
                                  64 * 1024, true);
  double ns = 0;
  uint64_t v = 0;
  unsigned threads = 0;
  {
    fiberbench::Pool pool(opts, a.procs);
    threads = pool.threads();
    boost::fibers::unbuffered_channel<uint64_t> ping, pong;
    fiberbench::WaitGroup wg;
    wg.add(2);
    pool.spawn([&] {
      uint64_t x;
      while (ping.pop(x) == boost::fibers::channel_op_status::success) pong.push(x + 1);
      wg.done();
    });
    pool.spawn([&] {
      auto t0 = bench::Clock::now();
      for (uint64_t i = 0; i < a.n; ++i) {
        ping.push(v);
        v = pong.value_pop();
      }
      ns = bench::ns_between(t0, bench::Clock::now());
      ping.close();
      wg.done();
    });
    wg.wait();
  }
  if (v != a.n) {
    std::fprintf(stderr, "W3: counter %llu after %llu round trips\n", (unsigned long long)v,
                 (unsigned long long)a.n);
    return 1;
  }
  bench::emit("W3", "boost_fiber", threads, "ns_per_roundtrip", ns / double(a.n), a.n);
}
