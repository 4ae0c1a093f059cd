// W5 parked density for myriad (impl "myriad"): n tasks each call wait() on one WaitGroup
// whose counter is 1. bytes_per_parked = (RSS once all are parked - RSS before the spawns) / n;
// wake_ms = from the done() that releases them until all n have exited.
#include <myriad/runtime.hpp>
#include <myriad/wait_group.hpp>

#include <atomic>
#include <thread>

#include "bench_util.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 1'000'000);
  double per_parked = 0, wake_ns = 0;
  {
    myriad::Runtime rt(myriad::Config{.procs = a.procs});
    myriad::WaitGroup gate, exited;
    gate.add(1);
    exited.add(int64_t(a.n));
    std::atomic<uint64_t> parked{0};
    uint64_t before = bench::current_rss_bytes();
    for (uint64_t i = 0; i < a.n; ++i)
      rt.spawn_detached([&] {
        parked.fetch_add(1, std::memory_order_relaxed);
        gate.wait();
        exited.done();
      });
    // The counter says every task reached wait(); the sleep lets the last ones actually park
    // before RSS is read.
    while (parked.load() != a.n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    uint64_t after = bench::current_rss_bytes();
    per_parked = double(int64_t(after - before)) / double(a.n);
    auto t0 = bench::Clock::now();
    gate.done();
    exited.wait();
    wake_ns = bench::ns_between(t0, bench::Clock::now());
  }
  bench::emit("W5", "myriad", a.procs, "bytes_per_parked", per_parked, a.n);
  bench::emit("W5", "myriad", a.procs, "wake_ms", wake_ns / 1e6, a.n);
}
