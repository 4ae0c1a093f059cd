// W7 select for Boost.Fiber (impl "boost_fiber"): two producer fibers each push their half of
// the ints 0..n-1 into their own buffered_channel of capacity 1024; a consumer fiber takes n
// values from the two, checked by count and sum; ns_per_op = time / n.
//
// Boost.Fiber has no select, and no faithful substitute: a select parks on both channels at
// once. So the consumer POLLS: try_pop() on one channel, then on the other (the first one
// tried alternates, standing in for select's random choice), and this_fiber::yield() when both
// are empty. It never parks, so it burns its thread while it waits; the producers park when
// their channel is full. The comparison is with a polling loop, not with a real select.
//
// Configuration (see bench/README.md): work_stealing on `procs` threads with sleeping idle
// threads (suspend=true), launch::post, 64 KiB stacks. Boost's buffered_channel keeps one slot
// free, so each holds at most 1023 values. Overridable through BENCH_FIBER_* (fiber_setup.hpp).
#include "bench_util.hpp"
#include "fiber_setup.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 5'000'000);
  auto opts = fiberbench::options("ws", boost::fibers::launch::post, 64 * 1024, true);
  double ns = 0;
  uint64_t sum = 0, from_a = 0;
  unsigned threads = 0;
  {
    fiberbench::Pool pool(opts, a.procs);
    threads = pool.threads();
    using Channel = boost::fibers::buffered_channel<uint64_t>;
    Channel ca(1024), cb(1024);
    Channel* chans[2] = {&ca, &cb};
    fiberbench::WaitGroup wg;
    wg.add(3);
    auto t0 = bench::Clock::now();
    auto produce = [&](Channel& ch, uint64_t lo, uint64_t hi) {
      for (uint64_t v = lo; v < hi; ++v) ch.push(v);
      wg.done();
    };
    pool.spawn([&] { produce(ca, 0, a.n / 2); });
    pool.spawn([&] { produce(cb, a.n / 2, a.n); });
    pool.spawn([&] {
      unsigned first = 0;
      for (uint64_t i = 0; i < a.n; ++i) {
        uint64_t v;
        for (;;) {
          first ^= 1;
          if (chans[first]->try_pop(v) == boost::fibers::channel_op_status::success) {
            from_a += first == 0;
            break;
          }
          if (chans[first ^ 1]->try_pop(v) == boost::fibers::channel_op_status::success) {
            from_a += first == 1;
            break;
          }
          boost::this_fiber::yield();
        }
        sum += v;
      }
      ns = bench::ns_between(t0, bench::Clock::now());
      wg.done();
    });
    wg.wait();
  }
  if (sum != a.n * (a.n - 1) / 2 || from_a != a.n / 2) {
    std::fprintf(stderr, "W7: sum %llu, %llu from the first channel\n", (unsigned long long)sum,
                 (unsigned long long)from_a);
    return 1;
  }
  bench::emit("W7", "boost_fiber", threads, "ns_per_op", ns / double(a.n), a.n);
}
