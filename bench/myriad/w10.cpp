// W10 blocking handoff for myriad (impl "myriad"), run with -procs 1: one task sits in a
// 100 ms nanosleep inside this_task::blocking while n tasks (1,000) each call
// this_task::yield() 1,000 times. Without a handoff the one proc would be stuck with the
// sleeper's thread for 100 ms; with it, the monitor gives the proc to another thread after
// Config::blocking_handoff and the yielders go on. wall_ms runs from the first spawn until
// all n + 1 tasks have finished (the Go peer: syscall.Nanosleep under GOMAXPROCS(1)).
#include <myriad/blocking.hpp>
#include <myriad/runtime.hpp>
#include <myriad/wait_group.hpp>

#include <cerrno>
#include <ctime>

#include "bench_util.hpp"

namespace {
constexpr long kBlockNs = 100'000'000;
constexpr int kYields = 1000;
}  // namespace

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 1000);
  double ms = 0;
  {
    myriad::Runtime rt(myriad::Config{.procs = a.procs});
    rt.spawn([&] {
        myriad::WaitGroup wg;
        wg.add(int64_t(a.n) + 1);
        auto t0 = bench::Clock::now();
        rt.spawn_detached([&] {
          myriad::this_task::blocking([] {
            timespec ts{0, kBlockNs};
            while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {  // the rest is left in ts
            }
          });
          wg.done();
        });
        for (uint64_t i = 0; i < a.n; ++i)
          rt.spawn_detached([&] {
            for (int j = 0; j < kYields; ++j) myriad::this_task::yield();
            wg.done();
          });
        wg.wait();
        ms = bench::ns_between(t0, bench::Clock::now()) / 1e6;
      })
        .join();
  }
  bench::emit("W10", "myriad", a.procs, "wall_ms", ms, a.n);
}
