// W2 skynet for Boost.Fiber (impl "boost_fiber"): a 10-ary tree of fibers with n leaves (a
// power of 10). Every inner node makes one unbuffered_channel, starts its 10 children and
// sums the 10 values they push back; a leaf pushes its ordinal. Timed from the root's spawn
// until its sum arrives; the answer for n = 1,000,000 must be 499999500000.
//
// The channel is held by a shared_ptr that every child also holds: a child's push() may still
// be inside the channel (releasing its spinlock on another thread) after the parent's last
// pop() returned, so a channel on the parent's stack could be destroyed under it. Go's
// channels are garbage-collected and myriad's reference-counted, so this costs the same kind
// of allocation they make.
//
// Configuration (see bench/README.md): work_stealing on `procs` threads with SPINNING idle
// threads (suspend=false), launch::post, 16 KiB malloc'ed stacks. On the 2-vCPU machine at
// n = 1,000,000 that took 2.0-3.6 s and 1.5-3.5 GiB peak RSS, against 3.7-9.5 s and 3-4.8 GiB
// with sleeping idle threads; launch::dispatch was slower either way (3.3-10 s), and
// shared_work slower still. Overridable through BENCH_FIBER_* (fiber_setup.hpp).
#include <memory>

#include "bench_util.hpp"
#include "fiber_setup.hpp"

namespace {

using Channel = boost::fibers::unbuffered_channel<int64_t>;

void skynet(fiberbench::Pool& pool, std::shared_ptr<Channel> out, int64_t num, int64_t size) {
  if (size == 1) {
    out->push(num);
    return;
  }
  auto rc = std::make_shared<Channel>();
  size /= 10;
  for (int64_t i = 0; i < 10; ++i)
    pool.spawn([&pool, rc, num, i, size] { skynet(pool, rc, num + i * size, size); });
  int64_t sum = 0;
  for (int i = 0; i < 10; ++i) sum += rc->value_pop();
  out->push(sum);
}

}  // namespace

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 1'000'000);
  if (!bench::is_power_of_10(a.n)) {
    std::fprintf(stderr, "W2: -n must be a power of 10\n");
    return 2;
  }
  auto opts = fiberbench::options("ws", boost::fibers::launch::post, 16 * 1024, false);
  int64_t sum = 0;
  double ns = 0;
  unsigned threads = 0;
  {
    fiberbench::Pool pool(opts, a.procs);
    threads = pool.threads();
    auto root = std::make_shared<Channel>();
    auto t0 = bench::Clock::now();
    pool.spawn([&pool, root, n = int64_t(a.n)] { skynet(pool, root, 0, n); });
    sum = root->value_pop();
    ns = bench::ns_between(t0, bench::Clock::now());
  }
  int64_t want = int64_t(a.n) * int64_t(a.n - 1) / 2;
  if (sum != want) {
    std::fprintf(stderr, "W2: wrong sum %lld, want %lld\n", (long long)sum, (long long)want);
    return 1;
  }
  bench::emit("W2", "boost_fiber", threads, "wall_ms", ns / 1e6, a.n);
  bench::emit("W2", "boost_fiber", threads, "peak_rss_mib", bench::peak_rss_mib(), a.n);
}
