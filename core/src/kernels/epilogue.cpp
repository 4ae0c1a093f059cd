// The one place where alpha and beta are applied: every path stores its accumulators through
// these, so C = alpha·acc + beta·C means the same on all of them (and beta == 0 never reads C,
// BLAS's rule: whatever C held, NaN included, is overwritten).
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/kernel_table.hpp"

namespace myriad::kernels::detail {

void store_f32(float* c, std::size_t ldc, const float* acc, std::size_t acc_ld, std::size_t m,
               std::size_t n, float alpha, float beta) noexcept {
  for (std::size_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    const float* ai = acc + i * acc_ld;
    if (beta == 0.0f) {
      if (alpha == 1.0f)
        std::memcpy(ci, ai, n * sizeof(float));
      else
        for (std::size_t j = 0; j < n; ++j) ci[j] = alpha * ai[j];
    } else if (alpha == 1.0f && beta == 1.0f) {
      for (std::size_t j = 0; j < n; ++j) ci[j] += ai[j];
    } else {
      for (std::size_t j = 0; j < n; ++j) ci[j] = alpha * ai[j] + beta * ci[j];
    }
  }
}

namespace {
// Nearest (ties to even, the default rounding mode), saturated to int32. Integer GEMMs refuse
// non-finite alpha/beta up front, so v is finite or ±Inf from overflow here.
int32_t round_saturate(double v) noexcept {
  if (!(v < 2147483647.5)) return std::numeric_limits<int32_t>::max();
  if (!(v >= -2147483648.5)) return std::numeric_limits<int32_t>::min();
  return static_cast<int32_t>(std::nearbyint(v));
}
}  // namespace

void store_s32(int32_t* c, std::size_t ldc, const int32_t* acc, std::size_t acc_ld,
               std::size_t m, std::size_t n, float alpha, float beta) noexcept {
  for (std::size_t i = 0; i < m; ++i) {
    int32_t* ci = c + i * ldc;
    const int32_t* ai = acc + i * acc_ld;
    if (alpha == 1.0f && beta == 0.0f) {
      std::memcpy(ci, ai, n * sizeof(int32_t));
    } else if (alpha == 1.0f && beta == 1.0f) {
      // Exact, wrapping like the accumulation itself (unsigned arithmetic: no UB).
      for (std::size_t j = 0; j < n; ++j)
        ci[j] = static_cast<int32_t>(static_cast<uint32_t>(ci[j]) + static_cast<uint32_t>(ai[j]));
    } else {
      // double holds every int32 exactly and alpha·acc + beta·c to well under half an ulp of
      // the int32 result, so the rounding is that of the exact value (fp32 would not be).
      for (std::size_t j = 0; j < n; ++j) {
        const double v = static_cast<double>(alpha) * ai[j] +
                         (beta == 0.0f ? 0.0 : static_cast<double>(beta) * ci[j]);
        ci[j] = round_saturate(v);
      }
    }
  }
}

}  // namespace myriad::kernels::detail
