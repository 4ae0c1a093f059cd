// W5 parked density for myriad (impl "myriad"): n tasks each block receiving from one shared
// unbuffered Chan of an empty type (Go's chan struct{}), as BENCH.md's "blocked receiving".
// bytes_per_parked = (RSS once all are parked - RSS before the spawns) / n; wake_ms = from the
// close() that releases them until all n have exited.
#include <myriad/chan.hpp>
#include <myriad/runtime.hpp>
#include <myriad/wait_group.hpp>

#include <atomic>
#include <thread>

#include "bench_util.hpp"

namespace {
struct Empty {};  // a zero-size element, like Go's struct{}
}  // namespace

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 1'000'000);
  double per_parked = 0, wake_ns = 0;
  uint64_t got_value = 0;
  {
    myriad::Runtime rt(myriad::Config{.procs = a.procs});
    myriad::Chan<Empty> gate(0);
    myriad::WaitGroup exited;
    exited.add(int64_t(a.n));
    std::atomic<uint64_t> parked{0}, values{0};
    uint64_t before = bench::current_rss_bytes();
    for (uint64_t i = 0; i < a.n; ++i)
      rt.spawn_detached([&] {
        parked.fetch_add(1, std::memory_order_relaxed);
        Empty e;
        if (gate.recv_into(e)) values.fetch_add(1, std::memory_order_relaxed);
        exited.done();
      });
    // The counter says every task reached the receive; the sleep lets the last ones actually
    // park before RSS is read.
    while (parked.load() != a.n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    uint64_t after = bench::current_rss_bytes();
    per_parked = double(int64_t(after - before)) / double(a.n);
    auto t0 = bench::Clock::now();
    gate.close();
    exited.wait();
    wake_ns = bench::ns_between(t0, bench::Clock::now());
    got_value = values.load();
  }
  if (got_value != 0) {
    std::fprintf(stderr, "W5: %llu receives got a value from a channel nobody sent on\n",
                 (unsigned long long)got_value);
    return 1;
  }
  bench::emit("W5", "myriad", a.procs, "bytes_per_parked", per_parked, a.n);
  bench::emit("W5", "myriad", a.procs, "wake_ms", wake_ns / 1e6, a.n);
}
