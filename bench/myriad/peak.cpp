// peak: the machine's ceilings for the batch kernels (impl "machine"; no runtime involved).
// Register-only loops on -procs threads at once, each thread with its own accumulators:
//  - amx_bf16 (TDPBF16PS) and amx_int8 (TDPBSSD, ops counted as flops): inline asm, 4 tile
//    accumulators (a GEMM's 2×2 blocking), after arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA);
//  - avx512_fma: vfmadd on 16 independent zmm accumulators (target attribute, no -m flags);
//  - avx512_vnni: vpdpbusd likewise (not in BENCH.md: the int8 ceiling where AMX is absent);
//  - bandwidth (gbytes_per_s): AVX-512 loads over a 1 GiB buffer, each thread a contiguous share.
// Each loop checks its result. A unit the machine lacks (or AMX refused by the kernel) is said on
// stderr and left out. -n: milliseconds per measurement (default 200); best of 3 measurements.
#include "kernel_util.hpp"

using namespace bench::kern;

int main(int argc, char** argv) {
  bench::Args a = bench::parse_args(argc, argv, 200);
  const double secs = double(a.n) / 1000;
  const std::string only = a.case_name;
  auto want = [&](const char* c) { return only.empty() || only == c; };
  const char* known[] = {"amx_bf16", "amx_int8", "avx512_fma", "avx512_vnni", "bandwidth"};
  if (!only.empty() && std::none_of(std::begin(known), std::end(known),
                                    [&](const char* k) { return only == k; })) {
    std::fprintf(stderr, "peak: no case %s\n", only.c_str());
    return 2;
  }
  Features f = cpu_features();
  constexpr uint64_t kBig = uint64_t(1) << 40;
  auto report = [&](const char* c, double ops_per_s) {
    if (ops_per_s < 0) {
      std::fprintf(stderr, "peak: the %s loop computed a wrong result\n", c);
      std::exit(1);
    }
    bench::emit("peak", "machine", a.procs, "gflops", ops_per_s / 1e9, a.n, c);
  };

  if (want("amx_bf16") || want("amx_int8")) {
    if (!f.amx_bf16 && !f.amx_int8)
      std::fprintf(stderr, "peak: no AMX on this CPU (CPUID/XCR0); amx cases left out\n");
    else if (!amx_permitted())
      std::fprintf(stderr, "peak: the kernel refused AMX (arch_prctl); amx cases left out\n");
    else {
      if (want("amx_bf16") && f.amx_bf16)
        report("amx_bf16", measure_peak(a.procs, secs, 3, kAmxBf16FlopsPerIter, kAmxMaxIters,
                                        [](uint64_t i) { return amx_loop(false, i); }));
      if (want("amx_int8") && f.amx_int8)
        report("amx_int8", measure_peak(a.procs, secs, 3, kAmxInt8OpsPerIter, kAmxMaxIters,
                                        [](uint64_t i) { return amx_loop(true, i); }));
    }
  }
  if (want("avx512_fma")) {
    if (f.avx512)
      report("avx512_fma", measure_peak(a.procs, secs, 3, kFmaFlopsPerIter, kBig, fma_loop));
    else
      std::fprintf(stderr, "peak: no AVX-512; avx512_fma left out\n");
  }
  if (want("avx512_vnni")) {
    if (f.vnni)
      report("avx512_vnni", measure_peak(a.procs, secs, 3, kVnniOpsPerIter, kBig, vnni_loop));
    else
      std::fprintf(stderr, "peak: no AVX512-VNNI; avx512_vnni left out\n");
  }
  if (want("bandwidth")) {
    Buffer buf(size_t(1) << 30);
    double gbs = read_bandwidth(buf.data(), buf.size(), a.procs, 3);
    bench::emit("peak", "machine", a.procs, "gbytes_per_s", gbs, buf.size(), "bandwidth");
  }
  return 0;
}
