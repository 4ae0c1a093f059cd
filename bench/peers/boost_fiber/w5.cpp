// W5 parked density for Boost.Fiber (impl "boost_fiber"): n fibers each block receiving on one
// unbuffered_channel (as BENCH.md's W5 says: blocked receiving); bytes_per_parked is the RSS
// growth per parked fiber; wake_ms is from closing the channel until all have exited.
//
// Configuration: work_stealing on `procs` threads with sleeping idle threads (suspend=true),
// launch::post, 16 KiB malloc'ed stacks: the smallest safe size, since painted stacks showed up
// to ~9.3 KiB used on this wait path (8 KiB would overflow silently). RSS counts only the
// touched pages of each stack.
#include <boost/fiber/operations.hpp>
#include <boost/fiber/unbuffered_channel.hpp>

#include "bench_util.hpp"
#include "fiber_setup.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 1'000'000);
  auto opts = fiberbench::options("ws", boost::fibers::launch::post, 16 * 1024, true);
  double per_parked = 0, wake_ns = 0;
  unsigned threads = 0;
  {
    fiberbench::Pool pool(opts, a.procs);
    threads = pool.threads();
    boost::fibers::unbuffered_channel<int> gate;
    fiberbench::WaitGroup exited;
    exited.add(int64_t(a.n));
    std::atomic<uint64_t> parked{0};
    uint64_t before = bench::current_rss_bytes();
    for (uint64_t i = 0; i < a.n; ++i)
      pool.spawn([&] {
        parked.fetch_add(1, std::memory_order_relaxed);
        int v = 0;
        if (gate.pop(v) != boost::fibers::channel_op_status::closed) std::abort();
        exited.done();
      });
    // The main fiber sleeps (letting this thread run fibers too) until every fiber reached
    // the gate, then a little longer so the last ones are really blocked.
    while (parked.load() != a.n) boost::this_fiber::sleep_for(std::chrono::milliseconds(1));
    boost::this_fiber::sleep_for(std::chrono::milliseconds(50));
    uint64_t after = bench::current_rss_bytes();
    per_parked = double(int64_t(after - before)) / double(a.n);
    auto t0 = bench::Clock::now();
    gate.close();
    exited.wait();
    wake_ns = bench::ns_between(t0, bench::Clock::now());
  }
  bench::emit("W5", "boost_fiber", threads, "bytes_per_parked", per_parked, a.n);
  bench::emit("W5", "boost_fiber", threads, "wake_ms", wake_ns / 1e6, a.n);
}
