// W4 channel throughput for myriad (impl "myriad"): p producers send their share of the ints
// 0..n-1 into one Chan of capacity 1024 that p consumers drain until it is closed. A driver
// task (as Go's main goroutine) spawns them, waits for the producers, closes the channel and
// waits for the consumers; timed from the first spawn until then; count and sum are checked.
// -case 1p1c (default) or 4p4c.
#include <myriad/chan.hpp>
#include <myriad/runtime.hpp>
#include <myriad/wait_group.hpp>

#include <vector>

#include "bench_util.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 10'000'000);
  if (a.case_name.empty()) a.case_name = "1p1c";
  unsigned p = a.case_name == "1p1c" ? 1 : a.case_name == "4p4c" ? 4 : 0;
  if (!p) {
    std::fprintf(stderr, "W4: -case is 1p1c or 4p4c\n");
    return 2;
  }
  double ns = 0;
  std::vector<uint64_t> counts(p), sums(p);
  {
    myriad::Runtime rt(myriad::Config{.procs = a.procs});
    rt.spawn([&] {
        myriad::Chan<uint64_t> ch(1024);
        myriad::WaitGroup producers, consumers;
        producers.add(p);
        consumers.add(p);
        auto t0 = bench::Clock::now();
        for (unsigned k = 0; k < p; ++k)
          rt.spawn_detached([&, k] {
            uint64_t v = 0, count = 0, sum = 0;
            while (ch.recv_into(v)) {
              ++count;
              sum += v;
            }
            counts[k] = count;
            sums[k] = sum;
            consumers.done();
          });
        for (unsigned k = 0; k < p; ++k)
          rt.spawn_detached([&, lo = a.n * k / p, hi = a.n * (k + 1) / p] {
            for (uint64_t v = lo; v < hi; ++v) ch.send(v);
            producers.done();
          });
        producers.wait();
        ch.close();
        consumers.wait();
        ns = bench::ns_between(t0, bench::Clock::now());
      })
        .join();
  }
  uint64_t count = 0, sum = 0;
  for (unsigned k = 0; k < p; ++k) count += counts[k], sum += sums[k];
  if (count != a.n || sum != a.n * (a.n - 1) / 2) {
    std::fprintf(stderr, "W4: received %llu values summing to %llu\n", (unsigned long long)count,
                 (unsigned long long)sum);
    return 1;
  }
  bench::emit("W4", "myriad", a.procs, "mmsgs_per_s", double(a.n) / ns * 1e3, a.n, a.case_name);
}
