// The AVX-512 path (F/BW/VL/DQ + VNNI + BF16): GEMM blocks for all four element types and the
// fp32 vector operations. Every function that uses intrinsics carries MYRIAD_AVX512, so the file
// builds for baseline x86-64 and runs only where dispatch.cpp found the features.
//
// GEMM shape: a register tile of up to 12 rows × 2 panels (32 columns) accumulates the whole K
// (the vector paths sum per k in order, kernels.hpp), then goes through the shared epilogue
// once. K is walked in chunks: each chunk of the tile's A rows is copied (converted for bf16,
// biased for s8) into a small stack buffer with a fixed row pitch, so the inner loop addresses
// every row from one pointer with constant offsets, never reads past row k, and needs no
// per-element conversion. B streams from the packed panels (L1/L2; the driver sizes blocks so
// a block's B stays in L2).
#include "kernels/kernel_table.hpp"

#if defined(__x86_64__)

// GCC 12 reports its own _mm512_undefined_* placeholders inside the intrinsic headers as "may be
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

#define MYRIAD_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,fma,bmi2")))
#define MYRIAD_AVX512_INLINE MYRIAD_AVX512 __attribute__((always_inline)) inline
// Loops over a tile's rows and panels must unroll completely, or the accumulators live in
// memory instead of registers (GCC does not unroll 12 iterations on its own at -O2).
#define MYRIAD_UNROLL _Pragma("GCC unroll 16")

namespace myriad::kernels::detail {
namespace {

constexpr int kRows = 12;   // tile rows: 12 × 2 zmm accumulators + 2 B + 1-2 A of 32 registers
constexpr int kPanels = 2;  // tile width in 16-column panels

// The first min(left, 16) lanes.
MYRIAD_AVX512_INLINE __mmask16 mask16(std::size_t left) noexcept {
  // Not std::min(left, 16): its reference to the temporary 16 trips GCC 12's ASan
  // use-after-scope check once this is inlined into the unrolled tiles.
  const unsigned lanes = left < 16 ? static_cast<unsigned>(left) : 16u;
  return static_cast<__mmask16>(_bzhi_u32(0xffff, lanes));
}

// ---- Element kinds ------------------------------------------------------------------------
// Each kind says where the inner loop finds A (straight from its rows, or from a buffer that
// pack_row fills chunk by chunk), how one 64-byte group row of each panel meets A (step), and
// what the accumulators start from (init).

// fp32: G = 1, a step is one k. A needs no conversion, so the tile broadcasts straight from its
// rows: copying them would cost ~10% here, since every column pair copies the rows again.
struct F32 {
  using Acc = __m512;
  using Elem = float;  // A's element
  using Buf = float;   // what step reads A as
  static constexpr std::size_t kG = 1;
  static constexpr bool kFloat = true, kDirect = true;

  template <int P>
  MYRIAD_AVX512_INLINE static void init(Acc (&acc)[P], const GemmBlock&, std::size_t) noexcept {
    for (int p = 0; p < P; ++p) acc[p] = _mm512_setzero_ps();
  }

  template <int R, int P>
  MYRIAD_AVX512_INLINE static void step(Acc (&acc)[R][P], const Buf* a, std::size_t lda,
                                        const std::byte* b, std::size_t panel_bytes) noexcept {
    __m512 bv[P];
    MYRIAD_UNROLL
    for (int p = 0; p < P; ++p) bv[p] = _mm512_load_ps(b + p * panel_bytes);
    MYRIAD_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda]);
      MYRIAD_UNROLL
      for (int p = 0; p < P; ++p) acc[r][p] = _mm512_fmadd_ps(av, bv[p], acc[r][p]);
    }
  }
};

// bf16: G = 2. A is widened to fp32 in the buffer (exact: bf16 is fp32's top half), once per
// element instead of once per use; a group row holds (k even, k odd) pairs per column, split
// into two fp32 vectors by shifting the even element up and masking the odd one in place. Two
// FMAs per pair: plain FMA runs at twice vdpbf16ps's rate here (FIELD-NOTES.md) and keeps
// denormals, as the other vector paths do.
struct BF16 {
  using Acc = __m512;
  using Elem = uint16_t;
  using Buf = float;
  static constexpr std::size_t kG = 2, kChunk = 128, kPitch = kChunk + 16;
  static constexpr bool kFloat = true, kDirect = false;

  template <int P>
  MYRIAD_AVX512_INLINE static void init(Acc (&acc)[P], const GemmBlock&, std::size_t) noexcept {
    for (int p = 0; p < P; ++p) acc[p] = _mm512_setzero_ps();
  }

  // Elements past kc become 0, so an odd kc leaves a zero partner in the last pair.
  MYRIAD_AVX512_INLINE static void pack_row(const uint16_t* s, std::size_t kc, Buf* dst) noexcept {
    std::size_t k = 0;
    for (; k + 16 <= kc; k += 16) {
      const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + k)));
      _mm512_store_si512(dst + k, _mm512_slli_epi32(w, 16));
    }
    if (k < kc) {
      const __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask16(kc - k), s + k));
      _mm512_store_si512(dst + k, _mm512_slli_epi32(w, 16));
    }
  }

  template <int R, int P>
  MYRIAD_AVX512_INLINE static void step(Acc (&acc)[R][P], const Buf* a, std::size_t pitch,
                                        const std::byte* b, std::size_t panel_bytes) noexcept {
    const __m512i odd_mask = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
    __m512 even[P], odd[P];
    MYRIAD_UNROLL
    for (int p = 0; p < P; ++p) {
      const __m512i v = _mm512_load_si512(b + p * panel_bytes);
      even[p] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
      odd[p] = _mm512_castsi512_ps(_mm512_and_si512(v, odd_mask));
    }
    MYRIAD_UNROLL
    for (int r = 0; r < R; ++r) {
      const __m512 a0 = _mm512_set1_ps(a[r * pitch]);
      const __m512 a1 = _mm512_set1_ps(a[r * pitch + 1]);
      MYRIAD_UNROLL
      for (int p = 0; p < P; ++p) {
        acc[r][p] = _mm512_fmadd_ps(a0, even[p], acc[r][p]);
        acc[r][p] = _mm512_fmadd_ps(a1, odd[p], acc[r][p]);
      }
    }
  }
};

// int8: G = 4, vpdpbusd (u8 × s8, four products summed into each int32 lane, wrapping). For
// s8 × s8 the buffer holds A + 128 (xor 0x80) as u8 and the accumulators start at
// −128·Σ_k B[k][j] (bsum): Σ(a+128)·b − 128·Σb = Σa·b, exactly, modulo 2³² like the
// accumulation itself. The buffer also zero-fills a last partial group of K.
template <bool kSigned>
struct I8 {
  using Acc = __m512i;
  using Elem = uint8_t;
  using Buf = uint8_t;
  static constexpr std::size_t kG = 4, kChunk = 512, kPitch = kChunk + 64;
  // u8 needs no change, so its tile reads A's rows directly, like fp32.
  static constexpr bool kFloat = false, kDirect = !kSigned;

  template <int P>
  MYRIAD_AVX512_INLINE static void init(Acc (&acc)[P], const GemmBlock& b, std::size_t j0) noexcept {
    for (int p = 0; p < P; ++p)
      acc[p] = kSigned ? _mm512_sub_epi32(_mm512_setzero_si512(),
                                          _mm512_slli_epi32(_mm512_loadu_si512(b.bsum + j0 + p * 16), 7))
                       : _mm512_setzero_si512();
  }

  MYRIAD_AVX512_INLINE static void pack_row(const uint8_t* s, std::size_t kc, Buf* dst) noexcept {
    const __m512i bias = _mm512_set1_epi8(static_cast<char>(kSigned ? 0x80 : 0));
    std::size_t k = 0;
    for (; k + 64 <= kc; k += 64)
      _mm512_store_si512(dst + k, _mm512_xor_si512(_mm512_loadu_si512(s + k), bias));
    if (k < kc) {
      const __mmask64 m = (__mmask64(1) << (kc - k)) - 1;
      _mm512_store_si512(dst + k, _mm512_maskz_mov_epi8(m, _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, s + k), bias)));
    }
  }

  template <int R, int P>
  MYRIAD_AVX512_INLINE static void step(Acc (&acc)[R][P], const Buf* a, std::size_t pitch,
                                        const std::byte* b, std::size_t panel_bytes) noexcept {
    __m512i bv[P];
    MYRIAD_UNROLL
    for (int p = 0; p < P; ++p) bv[p] = _mm512_load_si512(b + p * panel_bytes);
    MYRIAD_UNROLL
    for (int r = 0; r < R; ++r) {
      int32_t quad;
      std::memcpy(&quad, a + r * pitch, 4);
      const __m512i av = _mm512_set1_epi32(quad);
      MYRIAD_UNROLL
      for (int p = 0; p < P; ++p) acc[r][p] = _mm512_dpbusd_epi32(acc[r][p], av, bv[p]);
    }
  }
};

// ---- The tile -----------------------------------------------------------------------------

// C = alpha·acc + beta·C through the shared epilogue (spilled to a small buffer). alpha == 1,
// beta == 0 means C = acc exactly, which the epilogue would only copy: those tiles are stored
// straight from the registers (masked for a partial last panel).
template <class K, int R, int P>
MYRIAD_AVX512_INLINE void finish(typename K::Acc (&acc)[R][P], const GemmBlock& b, std::size_t i0,
                                 std::size_t j0) noexcept {
  using Out = std::conditional_t<K::kFloat, float, int32_t>;
  const std::size_t cols = std::min<std::size_t>(P * 16, b.n - j0);
  Out* c = static_cast<Out*>(b.c) + i0 * b.ldc + j0;
  if (b.alpha == 1.0f && b.beta == 0.0f) {
    MYRIAD_UNROLL
    for (int p = 0; p < P; ++p) {
      const __mmask16 m = mask16(cols > p * 16u ? cols - p * 16 : 0);
      MYRIAD_UNROLL
      for (int r = 0; r < R; ++r) {
        if constexpr (K::kFloat)
          _mm512_mask_storeu_ps(c + r * b.ldc + p * 16, m, acc[r][p]);
        else
          _mm512_mask_storeu_epi32(c + r * b.ldc + p * 16, m, acc[r][p]);
      }
    }
    return;
  }
  alignas(64) Out out[R][P * 16];
  MYRIAD_UNROLL
  for (int r = 0; r < R; ++r)
    MYRIAD_UNROLL
    for (int p = 0; p < P; ++p) {
      if constexpr (K::kFloat)
        _mm512_store_ps(&out[r][p * 16], acc[r][p]);
      else
        _mm512_store_si512(&out[r][p * 16], acc[r][p]);
    }
  if constexpr (K::kFloat)
    store_f32(c, b.ldc, &out[0][0], P * 16, R, cols, b.alpha, b.beta);
  else
    store_s32(c, b.ldc, &out[0][0], P * 16, R, cols, b.alpha, b.beta);
}

// C rows [i0, i0+R) × P panels from column j0 = the whole K, then the epilogue.
template <class K, int R, int P>
MYRIAD_AVX512 void tile(const GemmBlock& b, std::size_t i0, std::size_t j0) noexcept {
  const std::size_t panel_bytes = b.kgroups * 64;
  const std::byte* panels = b.bp + (j0 / 16) * panel_bytes;
  const auto* a = static_cast<const typename K::Elem*>(b.a) + i0 * b.lda;
  typename K::Acc acc[R][P], start[P];
  K::template init<P>(start, b, j0);
  MYRIAD_UNROLL
  for (int r = 0; r < R; ++r)
    MYRIAD_UNROLL
    for (int p = 0; p < P; ++p) acc[r][p] = start[p];
  if constexpr (K::kDirect) {
    // Whole groups straight from A's rows; a last partial group of K from a zero-padded copy,
    // so that no read passes element k of a row.
    const std::size_t whole = b.k / K::kG;
    const std::byte* bk = panels;
    for (std::size_t g = 0; g < whole; ++g, a += K::kG, bk += 64)
      K::template step<R, P>(acc, a, b.lda, bk, panel_bytes);
    if (const std::size_t rest = b.k % K::kG) {
      alignas(64) typename K::Buf last[R][K::kG] = {};
      for (int r = 0; r < R; ++r) std::memcpy(last[r], a + r * b.lda, rest * sizeof(typename K::Elem));
      K::template step<R, P>(acc, &last[0][0], K::kG, bk, panel_bytes);
    }
  } else {
    alignas(64) typename K::Buf buf[R * K::kPitch];
    for (std::size_t k0 = 0; k0 < b.k; k0 += K::kChunk) {
      const std::size_t kc = std::min(K::kChunk, b.k - k0);
      for (int r = 0; r < R; ++r) K::pack_row(a + r * b.lda + k0, kc, buf + r * K::kPitch);
      const std::byte* bk = panels + (k0 / K::kG) * 64;
      const std::size_t groups = (kc + K::kG - 1) / K::kG;
      const typename K::Buf* ak = buf;
      for (std::size_t g = 0; g < groups; ++g, ak += K::kG, bk += 64)
        K::template step<R, P>(acc, ak, K::kPitch, bk, panel_bytes);
    }
  }
  finish<K, R, P>(acc, b, i0, j0);
}

using TileFn = void (*)(const GemmBlock&, std::size_t, std::size_t) noexcept;

// tiles[p][r]: the tile of r + 1 rows and p + 1 panels.
template <class K, std::size_t... I>
constexpr std::array<std::array<TileFn, kRows>, kPanels> make_tiles(std::index_sequence<I...>) {
  return {{{tile<K, int(I) + 1, 1>...}, {tile<K, int(I) + 1, 2>...}}};
}

// Column pairs outermost: one pair of B panels (K · 128 bytes) serves every row tile.
template <class K>
MYRIAD_AVX512 void gemm_block(const GemmBlock& b) noexcept {
  static constexpr auto tiles = make_tiles<K>(std::make_index_sequence<kRows>{});
  for (std::size_t j0 = 0; j0 < b.n; j0 += kPanels * 16) {
    const std::size_t np = std::min<std::size_t>(kPanels, (b.n - j0 + 15) / 16);
    for (std::size_t i0 = 0; i0 < b.m; i0 += kRows) {
      const std::size_t rows = std::min<std::size_t>(kRows, b.m - i0);
      tiles[np - 1][rows - 1](b, i0, j0);
    }
  }
}

// ---- Vector operations ----------------------------------------------------------------------
// Four independent accumulators of 16 lanes hide the 4-cycle FMA/add latency; the tail is one
// masked step (masked loads never touch the masked-off elements, so nothing past n is read).
// dot is load-bound: two loads per FMA. Peeling a head to align x was measured: it gains ~7%
// on misaligned rows and loses ~20% on aligned ones (the usual case), so there is none.

MYRIAD_AVX512 float dot(const float* x, const float* y, std::size_t n) noexcept {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), s3);
  }
  for (; i + 16 <= n; i += 16)
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), s0);
  if (i < n) {
    const __mmask16 m = mask16(n - i);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

MYRIAD_AVX512 void axpy(float alpha, const float* x, float* y, std::size_t n) noexcept {
  const __m512 a = _mm512_set1_ps(alpha);
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    _mm512_storeu_ps(y + i, _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
    _mm512_storeu_ps(y + i + 16,
                     _mm512_fmadd_ps(a, _mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16)));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = mask16(n - i);
    _mm512_mask_storeu_ps(
        y + i, m, _mm512_fmadd_ps(a, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

MYRIAD_AVX512 float sum(const float* x, std::size_t n) noexcept {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
    s1 = _mm512_add_ps(s1, _mm512_loadu_ps(x + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_loadu_ps(x + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_loadu_ps(x + i + 48));
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_add_ps(s0, _mm512_loadu_ps(x + i));
  if (i < n) s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(mask16(n - i), x + i));
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// vmaxps returns its second operand when either is NaN, so a NaN can enter or leave the running
// maximum depending on the order; an unordered compare records NaNs separately instead.
// Masked-off lanes load as -Inf, which never wins.
MYRIAD_AVX512 float max(const float* x, std::size_t n) noexcept {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 m0 = ninf, m1 = ninf;
  __mmask16 nan = 0;
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
    nan |= _mm512_cmp_ps_mask(v0, v1, _CMP_UNORD_Q);  // a lane is unordered if either is NaN
    m0 = _mm512_max_ps(m0, v0);
    m1 = _mm512_max_ps(m1, v1);
  }
  for (; i < n; i += 16) {
    const __m512 v = _mm512_mask_loadu_ps(ninf, mask16(n - i), x + i);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    m0 = _mm512_max_ps(m0, v);
  }
  if (nan) return std::numeric_limits<float>::quiet_NaN();
  return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

}  // namespace

const KernelTable& avx512_table() noexcept {
  static const KernelTable t = [] {
    KernelTable k;
    k.isa = Isa::avx512;
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

#else  // not x86-64: no AVX-512 path

namespace myriad::kernels::detail {
const KernelTable& avx512_table() noexcept {
  static const KernelTable t{Isa::avx512};
  return t;
}
}  // namespace myriad::kernels::detail

#endif
