// K1, K1c, K2 for myriad (impl "myriad"): myriad::kernels::gemm on a Runtime of -procs procs.
// One source, three programs: bench/CMakeLists.txt builds it as bench_myriad_k1, _k1c and _k2
// with BENCH_WORKLOAD set; the sizes, timing, checks and JSON lines are run_gemm's
// (bench/common/kernel_util.hpp). The timing loop runs inside a task of the runtime and every
// call passes Exec{.runtime = &rt}, so a call splits into tasks on the runtime's procs (procs = 1:
// all of it on one thread). K1c also runs each type with B packed once (PackedB, cases
// *_prepacked); pack_b is outside the timing.
#include <myriad/kernels.hpp>
#include <myriad/runtime.hpp>

#include "kernel_util.hpp"

#ifndef BENCH_WORKLOAD
#error "BENCH_WORKLOAD must be K1, K1c or K2"
#endif

namespace mk = myriad::kernels;
using namespace bench::kern;

int main(int argc, char** argv) {
  const std::string w = BENCH_WORKLOAD;
  std::vector<GemmCase> cases;
  if (w == "K2") {
    cases = {{"bf16", Dt::bf16}, {"fp32", Dt::f32}};
  } else {
    cases = {{"bf16", Dt::bf16}, {"fp32", Dt::f32}, {"int8", Dt::s8}};
    if (w == "K1c")
      cases = {{"bf16", Dt::bf16},        {"bf16_prepacked", Dt::bf16, true},
               {"fp32", Dt::f32},         {"fp32_prepacked", Dt::f32, true},
               {"int8", Dt::s8},          {"int8_prepacked", Dt::s8, true}};
  }

  std::unique_ptr<myriad::Runtime> rt;
  GemmBackend be;
  be.start = [&](unsigned procs) {
    rt = std::make_unique<myriad::Runtime>(myriad::Config{.procs = procs});
    if (verbose())
      std::fprintf(stderr, "%s myriad: kernels path %s (best %s)\n", BENCH_WORKLOAD,
                   mk::isa_name(mk::active_isa()), mk::isa_name(mk::best_isa()));
  };
  be.within = [&](const std::function<void()>& body) { rt->spawn([&] { body(); }).join(); };
  be.prepare = [&](const GemmCase& c, const GemmShape& s,
                   const std::vector<GemmSet>& sets) -> GemmCall {
    mk::Gemm g{.batch = s.batch, .m = s.m, .n = s.n, .k = s.k};
    g.set_dense();
    const mk::Exec ex{.runtime = rt.get()};
    if (!c.prepacked) {
      switch (c.dt) {
        case Dt::bf16:
          return [g, ex, sets](size_t i) {
            mk::gemm(g, static_cast<const mk::bf16*>(sets[i].a),
                     static_cast<const mk::bf16*>(sets[i].b), static_cast<float*>(sets[i].c), ex);
          };
        case Dt::f32:
          return [g, ex, sets](size_t i) {
            mk::gemm(g, static_cast<const float*>(sets[i].a), static_cast<const float*>(sets[i].b),
                     static_cast<float*>(sets[i].c), ex);
          };
        case Dt::s8:
          return [g, ex, sets](size_t i) {
            mk::gemm(g, static_cast<const int8_t*>(sets[i].a),
                     static_cast<const int8_t*>(sets[i].b), static_cast<int32_t*>(sets[i].c), ex);
          };
      }
    }
    // B packed once per operand set, before the timing.
    auto packs = std::make_shared<std::vector<mk::PackedB>>();
    for (const auto& st : sets) {
      switch (c.dt) {
        case Dt::bf16:
          packs->push_back(mk::pack_b(g, static_cast<const mk::bf16*>(st.b)));
          break;
        case Dt::f32:
          packs->push_back(mk::pack_b(g, static_cast<const float*>(st.b)));
          break;
        case Dt::s8:
          packs->push_back(mk::pack_b(g, static_cast<const int8_t*>(st.b)));
          break;
      }
    }
    switch (c.dt) {
      case Dt::bf16:
        return [g, ex, sets, packs](size_t i) {
          mk::gemm(g, static_cast<const mk::bf16*>(sets[i].a), (*packs)[i],
                   static_cast<float*>(sets[i].c), ex);
        };
      case Dt::f32:
        return [g, ex, sets, packs](size_t i) {
          mk::gemm(g, static_cast<const float*>(sets[i].a), (*packs)[i],
                   static_cast<float*>(sets[i].c), ex);
        };
      case Dt::s8:
        break;
    }
    return [g, ex, sets, packs](size_t i) {
      mk::gemm(g, static_cast<const int8_t*>(sets[i].a), (*packs)[i],
               static_cast<int32_t*>(sets[i].c), ex);
    };
  };
  int rc = run_gemm(BENCH_WORKLOAD, "myriad", argc, argv, cases, be);
  rt.reset();
  return rc;
}
