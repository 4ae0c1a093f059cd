// Packing B into the panel layout of pack.hpp. Plain C++: packing is a copy, bounded by memory
// traffic, and the same code serves every path.
#include "kernels/pack.hpp"

#include <cstring>

namespace myriad::kernels::detail {

namespace {

std::size_t elem_size(GemmType t) noexcept {
  switch (t) {
    case GemmType::bf16_f32: return 2;
    case GemmType::f32_f32: return 4;
    default: return 1;
  }
}

// Copies op(B) into the panels; ES (element bytes) is a template parameter so that every copy
// is one load and one store, not a call to memcpy.
template <std::size_t ES>
void pack_panels(const PackGeometry& pg, const std::byte* b, std::size_t ldb, bool trans_b,
                 std::byte* out) noexcept {
  constexpr std::size_t G = 4 / ES;
  for (std::size_t p = 0; p < pg.npanels; ++p) {
    std::byte* panel = out + p * pg.panel_bytes;
    const std::size_t j0 = p * 16, jn = pg.n - j0 < 16 ? pg.n - j0 : 16;
    if (trans_b) {
      // Source rows are columns of op(B): walk each along K (contiguous reads).
      for (std::size_t jj = 0; jj < jn; ++jj) {
        const std::byte* src = b + (j0 + jj) * ldb * ES;
        for (std::size_t kk = 0; kk < pg.k; ++kk)
          std::memcpy(panel + (kk / G) * 64 + (jj * G + kk % G) * ES, src + kk * ES, ES);
      }
    } else {
      for (std::size_t kk = 0; kk < pg.k; ++kk) {
        std::byte* row = panel + (kk / G) * 64 + (kk % G) * ES;
        const std::byte* src = b + (kk * ldb + j0) * ES;
        if constexpr (G == 1) {
          std::memcpy(row, src, jn * ES);  // fp32: a group row is a row of B
        } else {
          for (std::size_t jj = 0; jj < jn; ++jj) std::memcpy(row + jj * G * ES, src + jj * ES, ES);
        }
      }
    }
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
  std::memset(out, 0, pg.item_bytes);
  switch (pg.elem) {
    case 4: pack_panels<4>(pg, b, ldb, trans_b, out); break;
    case 2: pack_panels<2>(pg, b, ldb, trans_b, out); break;
    default: pack_panels<1>(pg, b, ldb, trans_b, out); break;
  }
  if (pg.bsum_offset) {
    auto* bsum = reinterpret_cast<int32_t*>(out + pg.bsum_offset);
    for (std::size_t j = 0; j < pg.n; ++j) {
      int32_t s = 0;
      for (std::size_t kk = 0; kk < pg.k; ++kk) {
        const std::size_t idx = trans_b ? j * ldb + kk : kk * ldb + j;
        s += static_cast<int8_t>(b[idx]);
      }
      bsum[j] = s;
    }
  }
}

}  // namespace myriad::kernels::detail
