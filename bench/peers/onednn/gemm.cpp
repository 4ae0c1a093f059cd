// K1, K1c, K2 for oneDNN (impl "onednn"), through its C++ API (dnnl.hpp): one matmul primitive
// per case — batched (3-D, B×M×K · B×K×N) for K1 and K1c, 2-D for K2 — with plain row-major
// memory (format tags abc / ab), created before the timing and executed once per call on a
// CPU stream (execute + wait). Types: bf16 × bf16 → f32, f32, s8 × s8 → s32. oneDNN picks its
// implementation (ISA) itself; BENCH_VERBOSE=1 prints it. Threads: Debian's oneDNN runs on
// OpenMP, so -procs sets omp_set_num_threads (bench/compare also sets OMP_NUM_THREADS).
// OMP_WAIT_POLICY=passive unless set: libgomp's default spinning at barriers collapsed under
// the shared machine's load (K1c fp32, 2 threads, interleaved: 0.7-34 GFLOP/s spinning, 29-150
// passive); the program runs itself again with it, since libgomp reads it when it loads.
// One source, three programs (bench_onednn_k1, _k1c, _k2; BENCH_WORKLOAD).
#include <omp.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl.hpp>

#include "kernel_util.hpp"

#ifndef BENCH_WORKLOAD
#error "BENCH_WORKLOAD must be K1, K1c or K2"
#endif

using namespace bench::kern;

int main(int argc, char** argv) {
  if (!std::getenv("OMP_WAIT_POLICY")) {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv);
    std::fprintf(stderr, "onednn: could not re-run with OMP_WAIT_POLICY=passive\n");
  }
  const std::string w = BENCH_WORKLOAD;
  std::vector<GemmCase> cases = {{"bf16", Dt::bf16}, {"fp32", Dt::f32}};
  if (w != "K2") cases.push_back({"int8", Dt::s8});

  std::unique_ptr<dnnl::engine> eng;
  std::unique_ptr<dnnl::stream> strm;
  GemmBackend be;
  be.start = [&](unsigned procs) {
    omp_set_num_threads(int(procs));
    eng = std::make_unique<dnnl::engine>(dnnl::engine::kind::cpu, 0);
    strm = std::make_unique<dnnl::stream>(*eng);
  };
  be.prepare = [&](const GemmCase& c, const GemmShape& s,
                   const std::vector<GemmSet>& sets) -> GemmCall {
    using dt = dnnl::memory::data_type;
    using tag = dnnl::memory::format_tag;
    const dt in = c.dt == Dt::bf16 ? dt::bf16 : c.dt == Dt::f32 ? dt::f32 : dt::s8;
    const dt out = c.dt == Dt::s8 ? dt::s32 : dt::f32;
    const auto B = dnnl::memory::dim(s.batch), M = dnnl::memory::dim(s.m),
               N = dnnl::memory::dim(s.n), K = dnnl::memory::dim(s.k);
    const bool batched = s.batch > 1;
    const tag t = batched ? tag::abc : tag::ab;
    auto dims = [&](dnnl::memory::dim r, dnnl::memory::dim col) {
      return batched ? dnnl::memory::dims{B, r, col} : dnnl::memory::dims{r, col};
    };
    try {
      dnnl::memory::desc a_md(dims(M, K), in, t), b_md(dims(K, N), in, t), c_md(dims(M, N), out, t);
      dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), *eng);
      if (verbose())
        std::fprintf(stderr, "%s onednn %s: %s\n", BENCH_WORKLOAD, c.name.c_str(),
                     pd.impl_info_str());
      auto prim = std::make_shared<dnnl::matmul>(pd);
      auto args = std::make_shared<std::vector<std::unordered_map<int, dnnl::memory>>>();
      for (const auto& st : sets)
        args->push_back({{DNNL_ARG_SRC, dnnl::memory(a_md, *eng, st.a)},
                         {DNNL_ARG_WEIGHTS, dnnl::memory(b_md, *eng, st.b)},
                         {DNNL_ARG_DST, dnnl::memory(c_md, *eng, st.c)}});
      dnnl::stream* sp = strm.get();
      return [prim, args, sp](size_t i) {
        prim->execute(*sp, (*args)[i]);
        sp->wait();
      };
    } catch (const dnnl::error& e) {
      std::fprintf(stderr, "%s onednn %s: not supported here (%s)\n", BENCH_WORKLOAD,
                   c.name.c_str(), e.what());
      return {};
    }
  };
  return run_gemm(BENCH_WORKLOAD, "onednn", argc, argv, cases, be);
}
