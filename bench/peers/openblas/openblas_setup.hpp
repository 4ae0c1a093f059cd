// OpenBLAS peer setup shared by its programs.
#pragma once

#include <cblas.h>
#include <strings.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "kernel_util.hpp"

namespace bench::openblas {

// Debian's OpenBLAS is built with DYNAMIC_ARCH and picks its kernels from the CPUID family/model,
// which the hypervisor reports wrongly here: it falls back to its Prescott (SSE3) kernels, ~6×
// slower than SkylakeX's on this machine (K2 fp32, 1 thread: ~25 vs ~150 GFLOP/s). The core can
// only be chosen before the library loads (OPENBLAS_CORETYPE), so on a CPU with AVX-512 and no
// OPENBLAS_CORETYPE set, the program runs itself again with OPENBLAS_CORETYPE=SkylakeX.
// Set OPENBLAS_CORETYPE yourself to measure another choice (the chosen core is printed with
// BENCH_VERBOSE=1).
inline void use_best_core(char** argv) {
  if (std::getenv("OPENBLAS_CORETYPE") || !kern::cpu_features().avx512) return;
  const char* core = openblas_get_corename();
  for (const char* good : {"skylakex", "cooperlake", "sapphirerapids"})
    if (core && strcasecmp(core, good) == 0) return;
  setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "openblas: could not re-run with OPENBLAS_CORETYPE=SkylakeX; core %s\n",
               core ? core : "?");
}

// " OpenBLAS 0.3.21 " -> "0.3.21"
inline std::string version() {
  std::string v = OPENBLAS_VERSION;
  auto p = v.find_first_of("0123456789");
  v = p == std::string::npos ? v : v.substr(p);
  while (!v.empty() && v.back() == ' ') v.pop_back();
  return v;
}

}  // namespace bench::openblas
