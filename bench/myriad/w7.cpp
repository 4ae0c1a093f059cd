// W7 select for myriad (impl "myriad"): two producer tasks each send their half of the ints
// 0..n-1 on their own Chan of capacity 1024; a driver task (as Go's main goroutine) spawns
// them and runs a 2-way myriad::select loop for n receives, checked by count and sum.
// ns_per_op = time from the producers' spawn to the last receive, / n.
#include <myriad/chan.hpp>
#include <myriad/runtime.hpp>

#include "bench_util.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 5'000'000);
  double ns = 0;
  uint64_t sum = 0, from_a = 0;
  bool closed = false;
  {
    myriad::Runtime rt(myriad::Config{.procs = a.procs});
    rt.spawn([&] {
        myriad::Chan<uint64_t> ca(1024), cb(1024);
        auto produce = [](myriad::Chan<uint64_t> ch, uint64_t lo, uint64_t hi) {
          for (uint64_t v = lo; v < hi; ++v) ch.send(v);
        };
        auto t0 = bench::Clock::now();
        rt.spawn_detached([=] { produce(ca, 0, a.n / 2); });
        rt.spawn_detached([=] { produce(cb, a.n / 2, a.n); });
        uint64_t va = 0, vb = 0;
        for (uint64_t i = 0; i < a.n; ++i) {
          auto r = myriad::select(myriad::recv_case(ca, va), myriad::recv_case(cb, vb));
          if (!r.ok) closed = true;
          if (r.index == 0) {
            sum += va;
            ++from_a;
          } else {
            sum += vb;
          }
        }
        ns = bench::ns_between(t0, bench::Clock::now());
      })
        .join();
  }
  if (closed || sum != a.n * (a.n - 1) / 2 || from_a != a.n / 2) {
    std::fprintf(stderr, "W7: sum %llu, %llu from the first channel%s\n",
                 (unsigned long long)sum, (unsigned long long)from_a,
                 closed ? ", a receive saw a closed channel" : "");
    return 1;
  }
  bench::emit("W7", "myriad", a.procs, "ns_per_op", ns / double(a.n), a.n);
}
