// The AVX2 + FMA path: GEMM blocks for all four element types and the fp32 vector operations,
// for x86-64 machines without the AVX-512 set dispatch.cpp asks for. Every function that uses
// intrinsics carries MYRIAD_AVX2, so the file builds for baseline x86-64.
//
// Same shape as avx512.cpp with 16 ymm registers instead of 32 zmm: a register tile of a few
// rows × one 16-column panel (two ymm per row) accumulates the whole K, then goes through the
// shared epilogue once. A's rows are copied chunk by chunk (widened for bf16 and int8) into a
// small stack buffer with a fixed row pitch, so the inner loop addresses every row from one
// pointer and never reads past row k. A 64-byte group row of B is two ymm.
#include "kernels/kernel_table.hpp"

#if defined(__x86_64__)

// GCC 12 reports its own _mm256_undefined_* placeholders inside the intrinsic headers as "may be
// used uninitialized" once they are inlined into target-attribute functions (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#define MYRIAD_AVX2 __attribute__((target("avx2,fma,bmi2")))
#define MYRIAD_AVX2_INLINE MYRIAD_AVX2 __attribute__((always_inline)) inline
// Loops over a tile's rows and column vectors must unroll completely, or the accumulators live
// in memory instead of registers.
#define MYRIAD_UNROLL _Pragma("GCC unroll 16")

namespace myriad::kernels::detail {
namespace {

// Bit casts to __m256i, for storing float and int32 results alike.
MYRIAD_AVX2_INLINE __m256i bits(__m256 v) noexcept { return _mm256_castps_si256(v); }
MYRIAD_AVX2_INLINE __m256i bits(__m256i v) noexcept { return v; }

// ---- Element kinds ------------------------------------------------------------------------
// As in avx512.cpp: pack (A chunk → buffer), step (one 64-byte group row of the panel), and
// finish (accumulators → epilogue). kRows: the tile height that fits 16 registers.

// fp32: G = 1; 6 rows × 2 ymm accumulators + 2 B + 1 A. A needs no conversion, so the tile
// broadcasts straight from its rows (copying them would be repeated for every panel).
struct F32 {
  using Acc = __m256;
  using Elem = float;  // A's element
  using Buf = float;   // what step reads A as
  static constexpr int kRows = 6, kAcc = 2;  // kAcc: accumulators per row
  static constexpr bool kFloat = true, kDirect = true;

  template <int R>
  MYRIAD_AVX2_INLINE static void step(__m256 (&acc)[R][kAcc], const Buf* a, std::size_t lda,
                                      const std::byte* b) noexcept {
    const __m256 b0 = _mm256_load_ps(reinterpret_cast<const float*>(b));
    const __m256 b1 = _mm256_load_ps(reinterpret_cast<const float*>(b) + 8);
    MYRIAD_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
  }
};

// bf16: G = 2. A is widened to fp32 in the buffer (exact); each ymm of a group row holds 8
// columns' (k even, k odd) pairs, split into fp32 by shifting the even element up and masking
// the odd one in place. Even and odd halves are applied one after the other to stay within 16
// registers.
struct BF16 {
  using Acc = __m256;
  using Elem = uint16_t;
  using Buf = float;
  static constexpr int kRows = 6, kAcc = 2;
  static constexpr std::size_t kG = 2, kChunk = 128, kPitch = kChunk + 8;
  static constexpr bool kFloat = true, kDirect = false;

  MYRIAD_AVX2_INLINE static void pack_row(const uint16_t* s, std::size_t kc, Buf* dst) noexcept {
    std::size_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + k));
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + k),
                         _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    }
    for (; k < kc; ++k) dst[k] = to_float(bf16{s[k]});
    dst[kc] = 0.0f;  // the odd half of a last, partial pair
  }

  template <int R>
  MYRIAD_AVX2_INLINE static void step(__m256 (&acc)[R][kAcc], const Buf* a, std::size_t pitch,
                                      const std::byte* b) noexcept {
    const __m256i v0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
    const __m256i v1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b) + 1);
    const __m256 e0 = _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16));
    const __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16));
    MYRIAD_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * pitch);
      acc[r][0] = _mm256_fmadd_ps(av, e0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, e1, acc[r][1]);
    }
    const __m256i odd_mask = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    const __m256 o0 = _mm256_castsi256_ps(_mm256_and_si256(v0, odd_mask));
    const __m256 o1 = _mm256_castsi256_ps(_mm256_and_si256(v1, odd_mask));
    MYRIAD_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * pitch + 1);
      acc[r][0] = _mm256_fmadd_ps(av, o0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, o1, acc[r][1]);
    }
  }
};

// int8: G = 4, exact without VNNI: A widened to int16 in the buffer (sign- or zero-extended),
// each 16-byte quarter of a group row (4 columns × 4 k) sign-extended to int16, and vpmaddwd
// sums pairs of products into int32 (|a·b| ≤ 255·128, so a pair never overflows; vpmaddubsw
// would saturate). Accumulator q of a row holds columns 4q..4q+3 as two partial sums each
// (k pairs 0-1 and 2-3), added together in finish.
template <bool kSigned>
struct I8 {
  using Acc = __m256i;
  using Elem = uint8_t;
  using Buf = int16_t;
  static constexpr int kRows = 2, kAcc = 4;
  static constexpr std::size_t kG = 4, kChunk = 256, kPitch = kChunk + 16;
  static constexpr bool kFloat = false, kDirect = false;

  MYRIAD_AVX2_INLINE static void pack_row(const uint8_t* s, std::size_t kc, Buf* dst) noexcept {
    std::size_t k = 0;
    for (; k + 16 <= kc; k += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + k));
      _mm256_store_si256(reinterpret_cast<__m256i*>(dst + k),
                         kSigned ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v));
    }
    for (; k < kc; ++k) dst[k] = kSigned ? int16_t(int8_t(s[k])) : int16_t(s[k]);
    for (; k % 4; ++k) dst[k] = 0;  // a last, partial group adds nothing
  }

  template <int R>
  MYRIAD_AVX2_INLINE static void step(__m256i (&acc)[R][kAcc], const Buf* a, std::size_t pitch,
                                      const std::byte* b) noexcept {
    MYRIAD_UNROLL
    for (int q = 0; q < kAcc; ++q) {
      const __m256i bq =
          _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b) + q));
      MYRIAD_UNROLL
      for (int r = 0; r < R; ++r) {
        long long quad;
        std::memcpy(&quad, a + r * pitch, 8);
        const __m256i av = _mm256_set1_epi64x(quad);  // (a0, a1, a2, a3) in every 64 bits
        acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(av, bq));
      }
    }
  }
};

// ---- The tile -----------------------------------------------------------------------------

// The tile's 16 columns of row r as two vectors in column order.
template <class K, int R>
MYRIAD_AVX2_INLINE void row_out(typename K::Acc (&acc)[R][K::kAcc], int r, typename K::Acc* v) noexcept {
  if constexpr (K::kFloat) {
    v[0] = acc[r][0];
    v[1] = acc[r][1];
  } else {
    // int8: hadd of accumulators (0,1) gives columns 0,1,4,5 | 2,3,6,7 per 128-bit lane; the
    // 64-bit permute puts them in order. Likewise (2,3) for columns 8-15.
    v[0] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][0], acc[r][1]), 0xd8);
    v[1] = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][2], acc[r][3]), 0xd8);
  }
}

// C = alpha·acc + beta·C through the shared epilogue (spilled to a small buffer). alpha == 1,
// beta == 0 means C = acc exactly, which the epilogue would only copy: whole-panel tiles are
// stored straight from the registers.
template <class K, int R>
MYRIAD_AVX2_INLINE void finish(typename K::Acc (&acc)[R][K::kAcc], const GemmBlock& b,
                               std::size_t i0, std::size_t j0) noexcept {
  using Out = std::conditional_t<K::kFloat, float, int32_t>;
  const std::size_t cols = std::min<std::size_t>(16, b.n - j0);
  Out* c = static_cast<Out*>(b.c) + i0 * b.ldc + j0;
  typename K::Acc v[2];
  if (b.alpha == 1.0f && b.beta == 0.0f && cols == 16) {
    MYRIAD_UNROLL
    for (int r = 0; r < R; ++r) {
      row_out<K, R>(acc, r, v);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * b.ldc), bits(v[0]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + r * b.ldc + 8), bits(v[1]));
    }
    return;
  }
  alignas(32) Out out[R][16];
  MYRIAD_UNROLL
  for (int r = 0; r < R; ++r) {
    row_out<K, R>(acc, r, v);
    _mm256_store_si256(reinterpret_cast<__m256i*>(&out[r][0]), bits(v[0]));
    _mm256_store_si256(reinterpret_cast<__m256i*>(&out[r][8]), bits(v[1]));
  }
  if constexpr (K::kFloat)
    store_f32(c, b.ldc, &out[0][0], 16, R, cols, b.alpha, b.beta);
  else
    store_s32(c, b.ldc, &out[0][0], 16, R, cols, b.alpha, b.beta);
}

// C rows [i0, i0+R) × the panel at column j0 = the whole K, then the epilogue.
template <class K, int R>
MYRIAD_AVX2 void tile(const GemmBlock& b, std::size_t i0, std::size_t j0) noexcept {
  const std::byte* panel = b.bp + (j0 / 16) * b.kgroups * 64;
  const auto* a = static_cast<const typename K::Elem*>(b.a) + i0 * b.lda;
  typename K::Acc acc[R][K::kAcc];
  MYRIAD_UNROLL
  for (int r = 0; r < R; ++r)
    MYRIAD_UNROLL
    for (int q = 0; q < K::kAcc; ++q) {
      if constexpr (K::kFloat)
        acc[r][q] = _mm256_setzero_ps();
      else
        acc[r][q] = _mm256_setzero_si256();
    }
  if constexpr (K::kDirect) {
    const std::byte* bk = panel;
    for (std::size_t g = 0; g < b.k; ++g, ++a, bk += 64) K::template step<R>(acc, a, b.lda, bk);
  } else {
    alignas(32) typename K::Buf buf[R * K::kPitch];
    for (std::size_t k0 = 0; k0 < b.k; k0 += K::kChunk) {
      const std::size_t kc = std::min(K::kChunk, b.k - k0);
      for (int r = 0; r < R; ++r) K::pack_row(a + r * b.lda + k0, kc, buf + r * K::kPitch);
      const std::byte* bk = panel + (k0 / K::kG) * 64;
      const std::size_t groups = (kc + K::kG - 1) / K::kG;
      const typename K::Buf* ak = buf;
      for (std::size_t g = 0; g < groups; ++g, ak += K::kG, bk += 64)
        K::template step<R>(acc, ak, K::kPitch, bk);
    }
  }
  finish<K, R>(acc, b, i0, j0);
}

using TileFn = void (*)(const GemmBlock&, std::size_t, std::size_t) noexcept;

template <class K, std::size_t... I>
constexpr std::array<TileFn, sizeof...(I)> make_tiles(std::index_sequence<I...>) {
  return {tile<K, int(I) + 1>...};
}

// Panels outermost: one B panel (K · 64 bytes) serves every row tile.
template <class K>
MYRIAD_AVX2 void gemm_block(const GemmBlock& b) noexcept {
  static constexpr auto tiles = make_tiles<K>(std::make_index_sequence<K::kRows>{});
  for (std::size_t j0 = 0; j0 < b.n; j0 += 16)
    for (std::size_t i0 = 0; i0 < b.m; i0 += K::kRows)
      tiles[std::min<std::size_t>(K::kRows, b.m - i0) - 1](b, i0, j0);
}

// ---- Vector operations ----------------------------------------------------------------------
// Four independent accumulators of 8 lanes hide the FMA/add latency; the tail is scalar.

MYRIAD_AVX2_INLINE float hsum(__m256 v) noexcept {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

MYRIAD_AVX2 float dot(const float* x, const float* y, std::size_t n) noexcept {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(y + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(y + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8)
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), s0);
  float t = 0.0f;
  for (; i < n; ++i) t += x[i] * y[i];
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) + t;
}

MYRIAD_AVX2 void axpy(float alpha, const float* x, float* y, std::size_t n) noexcept {
  const __m256 a = _mm256_set1_ps(alpha);
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    _mm256_storeu_ps(y + i + 8,
                     _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8)));
  }
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  // Scalar tail with the same fused rounding as the vector body.
  for (; i < n; ++i) y[i] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(alpha), _mm_set_ss(x[i]), _mm_set_ss(y[i])));
}

MYRIAD_AVX2 float sum(const float* x, std::size_t n) noexcept {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(x + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_loadu_ps(x + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_loadu_ps(x + i + 24));
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_add_ps(s0, _mm256_loadu_ps(x + i));
  float t = 0.0f;
  for (; i < n; ++i) t += x[i];
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) + t;
}

// vmaxps returns its second operand when either is NaN, so a NaN can enter or leave the running
// maximum depending on the order; an unordered compare records NaNs separately instead.
MYRIAD_AVX2 float max(const float* x, std::size_t n) noexcept {
  const __m256 ninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  __m256 m0 = ninf, m1 = ninf, nan = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v0, v1, _CMP_UNORD_Q));  // either lane NaN
    m0 = _mm256_max_ps(m0, v0);
    m1 = _mm256_max_ps(m1, v1);
  }
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(m0), _mm256_extractf128_ps(m0, 1));
  m = _mm_max_ps(m, _mm_max_ps(_mm256_castps256_ps128(m1), _mm256_extractf128_ps(m1, 1)));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  float r = std::max(_mm_cvtss_f32(m), _mm_cvtss_f32(_mm_movehdup_ps(m)));
  bool any_nan = _mm256_movemask_ps(nan) != 0;
  for (; i < n; ++i) {
    any_nan |= x[i] != x[i];
    r = x[i] > r ? x[i] : r;
  }
  return any_nan ? std::numeric_limits<float>::quiet_NaN() : r;
}

}  // namespace

const KernelTable& avx2_table() noexcept {
  static const KernelTable t = [] {
    KernelTable k;
    k.isa = Isa::avx2;
    k.gemm[static_cast<int>(GemmType::bf16_f32)] = gemm_block<BF16>;
    k.gemm[static_cast<int>(GemmType::f32_f32)] = gemm_block<F32>;
    k.gemm[static_cast<int>(GemmType::s8s8_s32)] = gemm_block<I8<true>>;
    k.gemm[static_cast<int>(GemmType::u8s8_s32)] = gemm_block<I8<false>>;
    k.dot = dot;
    k.axpy = axpy;
    k.sum = sum;
    k.max = max;
    return k;
  }();
  return t;
}

}  // namespace myriad::kernels::detail

#else  // not x86-64: no AVX2 path

namespace myriad::kernels::detail {
const KernelTable& avx2_table() noexcept {
  static const KernelTable t{Isa::avx2};
  return t;
}
}  // namespace myriad::kernels::detail

#endif
