// Packing B into the panel layout of pack.hpp. Plain C++: packing is a copy, bounded by memory
// traffic, and the same code serves every path.
#include "kernels/pack.hpp"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#include <xmmintrin.h>
#endif

namespace myriad::kernels::detail {

namespace {

std::size_t elem_size(GemmType t) noexcept {
  switch (t) {
    case GemmType::bf16_f32: return 2;
    case GemmType::f32_f32: return 4;
    default: return 1;
  }
}

// Scalar copy of op(B)'s columns [j0, j0 + jn) and rows [k0, k1) into one panel; ES (element
// bytes) is a template parameter so that every copy is one load and one store.
template <std::size_t ES>
void pack_scalar(const std::byte* b, std::size_t ldb, bool trans_b, std::size_t j0,
                 std::size_t jn, std::size_t k0, std::size_t k1, std::byte* panel) noexcept {
  constexpr std::size_t G = 4 / ES;
  for (std::size_t jj = 0; jj < jn; ++jj)
    for (std::size_t kk = k0; kk < k1; ++kk) {
      const std::size_t idx = trans_b ? (j0 + jj) * ldb + kk : kk * ldb + j0 + jj;
      std::memcpy(panel + (kk / G) * 64 + (jj * G + kk % G) * ES, b + idx * ES, ES);
    }
}

#if defined(__SSE2__)
// op(B) = B (not transposed), a full panel, K rows [0, k1) with k1 a multiple of G: one group
// row is the G source rows' 16 columns interleaved element by element — unpack instructions.
template <std::size_t ES>
void pack_rows_sse2(const std::byte* b, std::size_t ldb, std::size_t k1,
                    std::byte* panel) noexcept {
  constexpr std::size_t G = 4 / ES;
  const std::size_t pitch = ldb * ES;
  for (std::size_t kk = 0; kk < k1; kk += G, panel += 64) {
    const std::byte* r = b + kk * pitch;
    auto ld = [&](std::size_t row, std::size_t off) {
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(r + row * pitch + off));
    };
    auto st = [&](std::size_t off, __m128i v) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(panel + off), v);
    };
    if constexpr (G == 1) {  // fp32: the group row is the source row
      for (std::size_t o = 0; o < 64; o += 16) st(o, ld(0, o));
    } else if constexpr (G == 2) {  // bf16: pairs (B[k][j], B[k+1][j])
      const __m128i a0 = ld(0, 0), a1 = ld(0, 16), b0 = ld(1, 0), b1 = ld(1, 16);
      st(0, _mm_unpacklo_epi16(a0, b0));
      st(16, _mm_unpackhi_epi16(a0, b0));
      st(32, _mm_unpacklo_epi16(a1, b1));
      st(48, _mm_unpackhi_epi16(a1, b1));
    } else {  // int8: quads (B[k][j] .. B[k+3][j])
      const __m128i r0 = ld(0, 0), r1 = ld(1, 0), r2 = ld(2, 0), r3 = ld(3, 0);
      const __m128i lo01 = _mm_unpacklo_epi8(r0, r1), hi01 = _mm_unpackhi_epi8(r0, r1);
      const __m128i lo23 = _mm_unpacklo_epi8(r2, r3), hi23 = _mm_unpackhi_epi8(r2, r3);
      st(0, _mm_unpacklo_epi16(lo01, lo23));
      st(16, _mm_unpackhi_epi16(lo01, lo23));
      st(32, _mm_unpacklo_epi16(hi01, hi23));
      st(48, _mm_unpackhi_epi16(hi01, hi23));
    }
  }
}

// op(B) = Bᵀ (B stored n × k), a full panel, groups [0, g1) with g1 a multiple of 4: every
// group is 4 contiguous bytes of one source row, so a group row gathers one 32-bit word from
// each of 16 source rows — 4×4 transposes of 32-bit words.
void pack_cols_sse2(const std::byte* b, std::size_t pitch, std::size_t g1,
                    std::byte* panel) noexcept {
  for (std::size_t g = 0; g < g1; g += 4)
    for (std::size_t jq = 0; jq < 16; jq += 4) {
      auto ld = [&](std::size_t j) {
        return _mm_castsi128_ps(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + (jq + j) * pitch + g * 4)));
      };
      __m128 r0 = ld(0), r1 = ld(1), r2 = ld(2), r3 = ld(3);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      const __m128 out[4] = {r0, r1, r2, r3};
      for (std::size_t q = 0; q < 4; ++q)
        _mm_storeu_ps(reinterpret_cast<float*>(panel + (g + q) * 64 + jq * 4), out[q]);
    }
}
#endif

// Copies op(B) into the panels: whole panels through the SSE2 shuffles where the shape allows,
// the edges (last partial panel, K rows past the last whole group block) element by element.
template <std::size_t ES>
void pack_panels(const PackGeometry& pg, const std::byte* b, std::size_t ldb, bool trans_b,
                 std::byte* out) noexcept {
  constexpr std::size_t G = 4 / ES;
  if constexpr (G == 1) {
    if (!trans_b) {
      // fp32, not transposed: each source row is cut into the panels' group rows. Row-major
      // order reads B once, sequentially (panel-major order measured 2-4x slower here).
      const std::size_t whole = pg.n / 16;
      for (std::size_t kk = 0; kk < pg.k; ++kk) {
        const std::byte* src = b + kk * ldb * ES;
        for (std::size_t p = 0; p < whole; ++p)
          std::memcpy(out + p * pg.panel_bytes + kk * 64, src + p * 64, 64);
      }
      if (whole < pg.npanels)
        pack_scalar<ES>(b, ldb, false, whole * 16, pg.n - whole * 16, 0, pg.k,
                        out + whole * pg.panel_bytes);
      return;
    }
  }
  for (std::size_t p = 0; p < pg.npanels; ++p) {
    std::byte* panel = out + p * pg.panel_bytes;
    const std::size_t j0 = p * 16, jn = pg.n - j0 < 16 ? pg.n - j0 : 16;
    std::size_t kdone = 0;
#if defined(__SSE2__)
    if (jn == 16) {
      if (!trans_b) {
        kdone = pg.k / G * G;
        pack_rows_sse2<ES>(b + j0 * ES, ldb, kdone, panel);
      } else {
        kdone = pg.k / (4 * G) * (4 * G);
        pack_cols_sse2(b + j0 * ldb * ES, ldb * ES, kdone / G, panel);
      }
    }
#endif
    pack_scalar<ES>(b, ldb, trans_b, j0, jn, kdone, pg.k, panel);
  }
}

}  // namespace

PackGeometry pack_geometry(GemmType type, std::size_t k, std::size_t n) noexcept {
  PackGeometry pg;
  pg.type = type;
  pg.k = k;
  pg.n = n;
  pg.elem = elem_size(type);
  pg.group = 4 / pg.elem;
  pg.kgroups = (k + pg.group - 1) / pg.group;
  if (type != GemmType::f32_f32) pg.kgroups = (pg.kgroups + 15) / 16 * 16;
  pg.npanels = (n + 15) / 16;
  pg.panel_bytes = pg.kgroups * 64;
  pg.item_bytes = pg.npanels * pg.panel_bytes;
  if (type == GemmType::s8s8_s32 || type == GemmType::u8s8_s32) {
    pg.bsum_offset = pg.item_bytes;
    pg.item_bytes += (pg.npanels * 16 * sizeof(int32_t) + 63) / 64 * 64;
  }
  return pg;
}

void pack_item(const PackGeometry& pg, const void* bv, std::size_t ldb, bool trans_b,
               std::byte* out) noexcept {
  const auto* b = static_cast<const std::byte*>(bv);
  // Zero what the copy leaves untouched: padding groups, padded columns, a K tail's empty
  // slots. When there is none (n a multiple of 16, K of the tile depth) skip the memset.
  const bool exact = pg.n % 16 == 0 && pg.kgroups * pg.group == pg.k;
  if (!exact) std::memset(out, 0, pg.item_bytes);
  switch (pg.elem) {
    case 4: pack_panels<4>(pg, b, ldb, trans_b, out); break;
    case 2: pack_panels<2>(pg, b, ldb, trans_b, out); break;
    default: pack_panels<1>(pg, b, ldb, trans_b, out); break;
  }
  if (pg.bsum_offset) {
    // Column sums from the packed panels (contiguous, padding is zero) rather than from B.
    auto* bsum = reinterpret_cast<int32_t*>(out + pg.bsum_offset);
    for (std::size_t p = 0; p < pg.npanels; ++p) {
      const auto* panel = reinterpret_cast<const int8_t*>(out + p * pg.panel_bytes);
      int32_t acc[16] = {};
#if defined(__SSE2__)
      // Per 16-byte chunk (4 columns × 4 bytes): sign-extend to 16 bits, madd with ones gives
      // pair sums (2 per column) in int32; the pairs are added at the end.
      __m128i pairs[8];
      for (auto& v : pairs) v = _mm_setzero_si128();
      const __m128i ones = _mm_set1_epi16(1);
      for (std::size_t g = 0; g < pg.kgroups; ++g)
        for (std::size_t q = 0; q < 4; ++q) {
          const __m128i x =
              _mm_load_si128(reinterpret_cast<const __m128i*>(panel + g * 64 + q * 16));
          const __m128i lo = _mm_srai_epi16(_mm_unpacklo_epi8(x, x), 8);
          const __m128i hi = _mm_srai_epi16(_mm_unpackhi_epi8(x, x), 8);
          pairs[2 * q] = _mm_add_epi32(pairs[2 * q], _mm_madd_epi16(lo, ones));
          pairs[2 * q + 1] = _mm_add_epi32(pairs[2 * q + 1], _mm_madd_epi16(hi, ones));
        }
      for (std::size_t h = 0; h < 8; ++h) {
        int32_t w[4];
        _mm_storeu_si128(reinterpret_cast<__m128i*>(w), pairs[h]);
        acc[2 * h] = w[0] + w[1];
        acc[2 * h + 1] = w[2] + w[3];
      }
#else
      for (std::size_t g = 0; g < pg.kgroups; ++g)
        for (std::size_t jj = 0; jj < 16; ++jj)
          for (std::size_t e = 0; e < 4; ++e) acc[jj] += panel[g * 64 + jj * 4 + e];
#endif
      std::memcpy(bsum + p * 16, acc, sizeof acc);
    }
  }
}

}  // namespace myriad::kernels::detail
