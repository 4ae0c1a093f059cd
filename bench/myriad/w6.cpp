// W6 yield for myriad (impl "myriad"): one task calls this_task::yield() n times while a
// second task yields in a loop until told to stop. With -procs 1 both share the one proc, so
// every yield is a switch to the other task; with more procs they may run on different procs.
#include <myriad/runtime.hpp>
#include <myriad/wait_group.hpp>

#include <atomic>

#include "bench_util.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 10'000'000);
  std::atomic<bool> other_running{false}, stop{false};
  double ns = 0;
  {
    myriad::Runtime rt(myriad::Config{.procs = a.procs});
    myriad::WaitGroup wg;
    wg.add(2);
    rt.spawn_detached([&] {
      other_running.store(true);
      while (!stop.load(std::memory_order_relaxed)) myriad::this_task::yield();
      wg.done();
    });
    rt.spawn_detached([&] {
      // Start the clock only once the partner runs, so every timed yield has one.
      while (!other_running.load()) myriad::this_task::yield();
      auto t0 = bench::Clock::now();
      for (uint64_t i = 0; i < a.n; ++i) myriad::this_task::yield();
      ns = bench::ns_between(t0, bench::Clock::now());
      stop.store(true);
      wg.done();
    });
    wg.wait();
  }
  bench::emit("W6", "myriad", a.procs, "ns_per_yield", ns / double(a.n), a.n);
}
