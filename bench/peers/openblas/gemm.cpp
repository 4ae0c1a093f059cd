// K1, K1c, K2 for OpenBLAS (impl "openblas"), fp32 only: Debian's OpenBLAS 0.3.21 is built
// without BUILD_BFLOAT16 (no cblas_sbgemm) and BLAS has no int8 GEMM, so the bf16 and int8 cases
// are left out (said on stderr).
//  - K1, K1c: a batch is a loop of cblas_sgemm calls, one per 64³ item. OpenBLAS runs a GEMM
//    this small on one thread whatever its thread count (m·n·k under its threshold), and has no
//    batched call in 0.3.21, so the batch is split over -procs threads of a spinning fork-join
//    pool (kernel_util.hpp SpinPool, like an OpenMP team), each calling cblas_sgemm with
//    OpenBLAS set to 1 thread.
//  - K2: one cblas_sgemm with openblas_set_num_threads(procs) (bench/compare also sets
//    OPENBLAS_NUM_THREADS).
// Kernels: see openblas_setup.hpp (SkylakeX's unless OPENBLAS_CORETYPE says otherwise).
// One source, three programs (bench_openblas_k1, _k1c, _k2; BENCH_WORKLOAD).
#include "openblas_setup.hpp"

#ifndef BENCH_WORKLOAD
#error "BENCH_WORKLOAD must be K1, K1c or K2"
#endif

using namespace bench::kern;

int main(int argc, char** argv) {
  bench::openblas::use_best_core(argv);
  const std::string w = BENCH_WORKLOAD;
  std::vector<GemmCase> cases = {{"bf16", Dt::bf16}, {"fp32", Dt::f32}};
  if (w != "K2") cases.push_back({"int8", Dt::s8});

  unsigned procs = 1;
  GemmBackend be;
  be.start = [&](unsigned p) {
    procs = p;
    if (verbose())
      std::fprintf(stderr, "%s openblas: %s, core %s\n", BENCH_WORKLOAD, openblas_get_config(),
                   openblas_get_corename());
  };
  be.prepare = [&](const GemmCase& c, const GemmShape& s,
                   const std::vector<GemmSet>& sets) -> GemmCall {
    if (c.dt != Dt::f32) {
      std::fprintf(stderr, "%s openblas %s: no %s GEMM in OpenBLAS %s; left out\n",
                   BENCH_WORKLOAD, c.name.c_str(), c.name.c_str(),
                   bench::openblas::version().c_str());
      return {};
    }
    const int M = int(s.m), N = int(s.n), K = int(s.k);
    auto one = [M, N, K](const float* a, const float* b, float* cc) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a, K, b, N, 0.0f, cc,
                  N);
    };
    if (s.batch == 1) {
      openblas_set_num_threads(int(procs));
      return [one, sets](size_t i) {
        one(static_cast<const float*>(sets[i].a), static_cast<const float*>(sets[i].b),
            static_cast<float*>(sets[i].c));
      };
    }
    openblas_set_num_threads(1);
    auto pool = std::make_shared<SpinPool>(procs);
    const size_t batch = s.batch, sa = s.m * s.k, sb = s.k * s.n, sc = s.m * s.n;
    return [one, sets, pool, batch, sa, sb, sc](size_t i) {
      const float* a = static_cast<const float*>(sets[i].a);
      const float* b = static_cast<const float*>(sets[i].b);
      float* cc = static_cast<float*>(sets[i].c);
      pool->run([&](unsigned t, unsigned n) {
        auto [lo, hi] = share(batch, t, n);
        for (size_t j = lo; j < hi; ++j) one(a + j * sa, b + j * sb, cc + j * sc);
      });
    };
  };
  return run_gemm(BENCH_WORKLOAD, "openblas", argc, argv, cases, be);
}
