// W3 ping-pong for myriad (impl "myriad"): two tasks bounce a counter over two unbuffered
// Chans (ping, and pong sends it back incremented), n round trips, timed inside the pinging
// task; procs = 1 and all.
#include <myriad/chan.hpp>
#include <myriad/runtime.hpp>

#include "bench_util.hpp"

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 1'000'000);
  double ns = 0;
  uint64_t v = 0;
  {
    myriad::Runtime rt(myriad::Config{.procs = a.procs});
    myriad::Chan<uint64_t> ping(0), pong(0);
    auto ponger = rt.spawn([&] {
      uint64_t x = 0;
      while (ping.recv_into(x)) pong.send(x + 1);
    });
    auto pinger = rt.spawn([&] {
      auto t0 = bench::Clock::now();
      for (uint64_t i = 0; i < a.n; ++i) {
        ping.send(v);
        pong.recv_into(v);
      }
      ns = bench::ns_between(t0, bench::Clock::now());
      ping.close();
    });
    pinger.join();
    ponger.join();
  }
  if (v != a.n) {
    std::fprintf(stderr, "W3: counter %llu after %llu round trips\n", (unsigned long long)v,
                 (unsigned long long)a.n);
    return 1;
  }
  bench::emit("W3", "myriad", a.procs, "ns_per_roundtrip", ns / double(a.n), a.n);
}
