// The README's first command runs this: a million tasks, twice.
//  1. flat:  one task spawns 1,000,000 tasks; each adds its ordinal to a sum; a WaitGroup waits.
//  2. skynet: a 10-ary tree of depth 6 (1,000,000 leaves, 1,111,111 tasks and 111,111
//            channels); every node makes a channel, spawns its 10 children and sums what they
//            send back; leaves send their ordinal.
// Both must print 499999500000.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "myriad/chan.hpp"
#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"

namespace {

using Clock = std::chrono::steady_clock;

void skynet(const myriad::Chan<long>& out, long ordinal, int depth) {
  if (depth == 0) {
    out.send(ordinal);
    return;
  }
  myriad::Chan<long> results(0);  // unbuffered, as in Go's skynet
  for (long i = 0; i < 10; ++i)
    myriad::go([results, child = ordinal * 10 + i, depth] { skynet(results, child, depth - 1); })
        .detach();
  long sum = 0;
  for (int i = 0; i < 10; ++i) sum += results.recv().value();
  out.send(sum);
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

int main() {
  constexpr long kTasks = 1'000'000;
  myriad::Runtime rt;
  std::printf("myriad demo: %u procs\n", rt.procs());

  std::atomic<long> sum{0};
  myriad::WaitGroup wg;
  auto t0 = Clock::now();
  rt.spawn([&] {
      wg.add(kTasks);
      for (long i = 0; i < kTasks; ++i)
        rt.spawn_detached([&sum, &wg, i] {
          sum.fetch_add(i, std::memory_order_relaxed);
          wg.done();
        });
    }).join();
  wg.wait();
  double flat_ms = ms_since(t0);
  std::printf("flat: %ld tasks spawned and joined, sum = %ld, %.1f ms (%.0f ns/task)\n", kTasks,
              sum.load(), flat_ms, flat_ms * 1e6 / kTasks);

  long tree_sum = 0;
  t0 = Clock::now();
  rt.spawn([&] {
      myriad::Chan<long> root(0);
      myriad::go([root] { skynet(root, 0, 6); }).detach();
      tree_sum = root.recv().value();
    }).join();
  double tree_ms = ms_since(t0);
  std::printf("skynet: 1111111 tasks and 111111 channels (10-ary, depth 6), sum = %ld, %.1f ms\n",
              tree_sum, tree_ms);

  myriad::Stats s = rt.stats();
  std::printf("stats: spawned %llu, stolen %llu, stacks reserved %llu\n",
              static_cast<unsigned long long>(s.tasks_spawned),
              static_cast<unsigned long long>(s.tasks_stolen),
              static_cast<unsigned long long>(s.stacks_reserved));
  const long expected = kTasks * (kTasks - 1) / 2;
  bool ok = sum.load() == expected && tree_sum == expected;
  std::printf("%s\n", ok ? "OK" : "WRONG RESULT");
  return ok ? EXIT_SUCCESS : EXIT_FAILURE;
}
