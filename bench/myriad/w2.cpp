// W2 skynet for myriad (impl "myriad"): a 10-ary tree of tasks with n leaves (a power of 10).
// Every inner node makes one unbuffered Chan, spawns its 10 children (detached, onto its own
// runtime, like Go's `go`) and sums the 10 values they send back; a leaf sends its ordinal.
// A driver task, started with rt.spawn as Go's main goroutine, spawns the root and receives
// its sum; the clock runs from that spawn until the sum arrives. For n = 1,000,000 the answer
// must be 499999500000. Each child holds its own copy of the parent's channel (a reference
// count), as Go's closures hold the channel for the collector.
#include <myriad/chan.hpp>
#include <myriad/runtime.hpp>

#include "bench_util.hpp"

namespace {

void skynet(myriad::Chan<int64_t>& out, int64_t num, int64_t size) {
  if (size == 1) {
    out.send(num);
    return;
  }
  myriad::Chan<int64_t> rc(0);
  size /= 10;
  myriad::Runtime* rt = myriad::Runtime::current();
  for (int64_t i = 0; i < 10; ++i)
    rt->spawn_detached([rc, num, i, size]() mutable { skynet(rc, num + i * size, size); });
  int64_t sum = 0, v = 0;
  for (int i = 0; i < 10; ++i) {
    rc.recv_into(v);
    sum += v;
  }
  out.send(sum);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 1'000'000);
  if (!bench::is_power_of_10(a.n)) {
    std::fprintf(stderr, "W2: -n must be a power of 10\n");
    return 2;
  }
  int64_t sum = 0;
  double ns = 0;
  {
    myriad::Runtime rt(myriad::Config{.procs = a.procs});
    rt.spawn([&] {
        myriad::Chan<int64_t> root(0);
        auto t0 = bench::Clock::now();
        rt.spawn_detached([root, n = int64_t(a.n)]() mutable { skynet(root, 0, n); });
        root.recv_into(sum);
        ns = bench::ns_between(t0, bench::Clock::now());
      })
        .join();
  }
  int64_t want = int64_t(a.n) * int64_t(a.n - 1) / 2;
  if (sum != want) {
    std::fprintf(stderr, "W2: wrong sum %lld, want %lld\n", (long long)sum, (long long)want);
    return 1;
  }
  bench::emit("W2", "myriad", a.procs, "wall_ms", ns / 1e6, a.n);
  bench::emit("W2", "myriad", a.procs, "peak_rss_mib", bench::peak_rss_mib(), a.n);
}
