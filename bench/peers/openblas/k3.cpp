// K3 for OpenBLAS (impl "openblas"): 1,000,000 cblas_sdot calls of length 128, fp32, split over
// -procs threads of a spinning fork-join pool (kernel_util.hpp SpinPool); OpenBLAS runs a dot
// this short on the calling thread (set to 1 thread). Cases l1 (one pair for every product) and
// stream (distinct pairs, 1 GB); sizes, timing, checks and JSON lines are run_dot's.
#include "openblas_setup.hpp"

using namespace bench::kern;

int main(int argc, char** argv) {
  bench::openblas::use_best_core(argv);
  std::unique_ptr<SpinPool> pool;
  DotBackend be;
  be.start = [&](unsigned procs) {
    openblas_set_num_threads(1);
    pool = std::make_unique<SpinPool>(procs);
  };
  be.prepare = [&](size_t count, size_t len, const float* x, size_t sx, const float* y, size_t sy,
                   float* out) -> std::function<void()> {
    SpinPool* p = pool.get();
    return [=] {
      p->run([&](unsigned t, unsigned n) {
        auto [lo, hi] = share(count, t, n);
        for (size_t i = lo; i < hi; ++i) out[i] = cblas_sdot(int(len), x + i * sx, 1, y + i * sy, 1);
      });
    };
  };
  int rc = run_dot("openblas", argc, argv, be);
  pool.reset();
  return rc;
}
