// W1 spawn-join for myriad (impl "myriad"): n tasks that each do one atomic add and
// WaitGroup::done(); timed from the first spawn until wait() returns.
//
//   -case driver (default, printed without a "case" key so it pairs with the peers): a driver
//       task spawns the n tasks from inside the runtime, as Go's main goroutine does, and
//       waits (parks) on the WaitGroup; the main thread only joins the driver.
//   -case foreign: the main thread, which is not a runtime thread, spawns everything (to the
//       global queue) and blocks in wait() (futex).
// One case per process, because peak_rss_mib is a process-wide maximum.
#include <myriad/runtime.hpp>
#include <myriad/wait_group.hpp>

#include <atomic>

#include "bench_util.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 1'000'000);
  bool foreign = a.case_name == "foreign";
  if (!foreign && !a.case_name.empty() && a.case_name != "driver") {
    std::fprintf(stderr, "W1: -case is driver or foreign\n");
    return 2;
  }
  std::atomic<uint64_t> sum{0};
  double ns = 0;
  {
    myriad::Runtime rt(myriad::Config{.procs = a.procs});
    myriad::WaitGroup wg;
    // Spawns all n and waits; run either on the driver task or on the main thread.
    auto spawn_all_and_wait = [&] {
      wg.add(int64_t(a.n));
      auto t0 = bench::Clock::now();
      for (uint64_t i = 0; i < a.n; ++i)
        rt.spawn_detached([&sum, &wg] {
          sum.fetch_add(1, std::memory_order_relaxed);
          wg.done();
        });
      wg.wait();
      ns = bench::ns_between(t0, bench::Clock::now());
    };
    if (foreign)
      spawn_all_and_wait();
    else
      rt.spawn(spawn_all_and_wait).join();
  }
  if (sum.load() != a.n) {
    std::fprintf(stderr, "W1: wrong sum %llu\n", (unsigned long long)sum.load());
    return 1;
  }
  std::string c = foreign ? "foreign" : "";
  bench::emit("W1", "myriad", a.procs, "ns_per_task", ns / double(a.n), a.n, c);
  bench::emit("W1", "myriad", a.procs, "peak_rss_mib", bench::peak_rss_mib(), a.n, c);
}
