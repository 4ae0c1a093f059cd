// The portable path: plain C++ that any compiler vectorises as far as the baseline target
// allows (SSE2 on x86-64, SIMD128 on wasm with -msimd128, NEON on arm64). It defines the
// reference semantics the faster paths are tested against, and is the only path off x86-64.
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/kernel_table.hpp"

namespace myriad::kernels::detail {
namespace {

template <typename T>
T load(const void* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline float bf16_bits_to_float(uint16_t bits) noexcept { return to_float(bf16{bits}); }

// One row of A times one 16-column panel of packed B into acc[16] (Acc: float or int32).
// G elements of K per group row; ES bytes per B element.
template <typename Acc, std::size_t ES, typename LoadA, typename LoadB>
void row_panel(const std::byte* a_row, const std::byte* panel, std::size_t k, Acc* acc,
               LoadA load_a, LoadB load_b) noexcept {
  constexpr std::size_t G = 4 / ES;
  for (std::size_t j = 0; j < 16; ++j) acc[j] = 0;
  for (std::size_t kk = 0; kk < k; ++kk) {
    const Acc a = load_a(a_row, kk);
    const std::byte* row = panel + (kk / G) * 64 + (kk % G) * ES;
    for (std::size_t j = 0; j < 16; ++j) acc[j] += a * load_b(row + j * G * ES);
  }
}

template <typename Acc, std::size_t ES, std::size_t AES, typename LoadA, typename LoadB,
          typename Store>
void gemm_block(const GemmBlock& b, LoadA load_a, LoadB load_b, Store store) noexcept {
  const std::size_t panel_bytes = b.kgroups * 64;
  Acc acc[16];
  for (std::size_t i = 0; i < b.m; ++i) {
    const auto* a_row = static_cast<const std::byte*>(b.a) + i * b.lda * AES;
    for (std::size_t j0 = 0; j0 < b.n; j0 += 16) {
      row_panel<Acc, ES>(a_row, b.bp + (j0 / 16) * panel_bytes, b.k, acc, load_a, load_b);
      store(i, j0, acc, b.n - j0 < 16 ? b.n - j0 : 16);
    }
  }
}

void gemm_bf16(const GemmBlock& b) noexcept {
  gemm_block<float, 2, 2>(
      b,
      [](const std::byte* a, std::size_t kk) {
        return bf16_bits_to_float(load<uint16_t>(a + kk * 2));
      },
      [](const std::byte* p) { return bf16_bits_to_float(load<uint16_t>(p)); },
      [&b](std::size_t i, std::size_t j0, const float* acc, std::size_t n) {
        store_f32(static_cast<float*>(b.c) + i * b.ldc + j0, b.ldc, acc, 16, 1, n, b.alpha,
                  b.beta);
      });
}

void gemm_f32(const GemmBlock& b) noexcept {
  gemm_block<float, 4, 4>(
      b, [](const std::byte* a, std::size_t kk) { return load<float>(a + kk * 4); },
      [](const std::byte* p) { return load<float>(p); },
      [&b](std::size_t i, std::size_t j0, const float* acc, std::size_t n) {
        store_f32(static_cast<float*>(b.c) + i * b.ldc + j0, b.ldc, acc, 16, 1, n, b.alpha,
                  b.beta);
      });
}

// int32 accumulation of int8 products is exact until it wraps (documented); the sum is done
// in uint32 so wrapping is defined behaviour.
template <typename AT>
void gemm_int8(const GemmBlock& b) noexcept {
  gemm_block<uint32_t, 1, 1>(
      b,
      [](const std::byte* a, std::size_t kk) {
        return static_cast<uint32_t>(static_cast<int32_t>(load<AT>(a + kk)));
      },
      [](const std::byte* p) {
        return static_cast<uint32_t>(static_cast<int32_t>(load<int8_t>(p)));
      },
      [&b](std::size_t i, std::size_t j0, const uint32_t* acc, std::size_t n) {
        int32_t out[16];
        std::memcpy(out, acc, sizeof out);
        store_s32(static_cast<int32_t*>(b.c) + i * b.ldc + j0, b.ldc, out, 16, 1, n, b.alpha,
                  b.beta);
      });
}

float dot(const float* x, const float* y, std::size_t n) noexcept {
  float s[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) s[l] += x[i + l] * y[i + l];
  for (; i < n; ++i) s[0] += x[i] * y[i];
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

void axpy(float alpha, const float* x, float* y, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

float sum(const float* x, std::size_t n) noexcept {
  float s[8] = {};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) s[l] += x[i + l];
  for (; i < n; ++i) s[0] += x[i];
  return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

float max(const float* x, std::size_t n) noexcept {
  float m = -std::numeric_limits<float>::infinity();
  bool nan = false;
  for (std::size_t i = 0; i < n; ++i) {
    nan |= x[i] != x[i];
    m = x[i] > m ? x[i] : m;
  }
  return nan ? std::numeric_limits<float>::quiet_NaN() : m;
}

}  // namespace

const KernelTable& portable_table() noexcept {
  static const KernelTable t = [] {
    KernelTable k;
    k.isa = Isa::portable;
    k.gemm[static_cast<int>(GemmType::bf16_f32)] = gemm_bf16;
    k.gemm[static_cast<int>(GemmType::f32_f32)] = gemm_f32;
    k.gemm[static_cast<int>(GemmType::s8s8_s32)] = gemm_int8<int8_t>;
    k.gemm[static_cast<int>(GemmType::u8s8_s32)] = gemm_int8<uint8_t>;
    k.dot = dot;
    k.axpy = axpy;
    k.sum = sum;
    k.max = max;
    return k;
  }();
  return t;
}

}  // namespace myriad::kernels::detail
