// W8 timers for myriad (impl "myriad"): a driver task (as Go's main goroutine) spawns n tasks
// that each call this_task::sleep_for() once for 1..100 ms (bench::w8_sleep_ms, the same
// sequence in every impl); lateness = actual - requested, measured by the task around its
// sleep. wall_ms runs from the first spawn to the last wake; p50_late_ms and p99_late_ms are
// nearest-rank percentiles.
#include <myriad/runtime.hpp>
#include <myriad/time.hpp>
#include <myriad/wait_group.hpp>

#include <algorithm>
#include <vector>

#include "bench_util.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 100'000);
  std::vector<int64_t> late(a.n), woke(a.n);
  {
    myriad::Runtime rt(myriad::Config{.procs = a.procs});
    rt.spawn([&] {
        myriad::WaitGroup wg;
        wg.add(int64_t(a.n));
        auto t0 = bench::Clock::now();
        for (uint64_t i = 0; i < a.n; ++i)
          rt.spawn_detached([&, i] {
            auto d = std::chrono::milliseconds(bench::w8_sleep_ms(i));
            auto before = bench::Clock::now();
            myriad::this_task::sleep_for(d);
            auto after = bench::Clock::now();
            late[i] = std::chrono::nanoseconds(after - before - d).count();
            woke[i] = std::chrono::nanoseconds(after - t0).count();
            wg.done();
          });
        wg.wait();
      })
        .join();
  }
  int64_t last = *std::max_element(woke.begin(), woke.end());
  std::sort(late.begin(), late.end());
  if (late.front() < 0) {
    std::fprintf(stderr, "W8: a sleep returned %lld ns early\n", (long long)-late.front());
    return 1;
  }
  bench::emit("W8", "myriad", a.procs, "wall_ms", double(last) / 1e6, a.n);
  bench::emit("W8", "myriad", a.procs, "p50_late_ms", double(bench::percentile(late, 50)) / 1e6, a.n);
  bench::emit("W8", "myriad", a.procs, "p99_late_ms", double(bench::percentile(late, 99)) / 1e6, a.n);
}
