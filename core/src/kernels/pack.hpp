// The packed layout of B, shared by every path (so a PackedB made under one path works under
// any other, and tests can force paths freely).
//
// Per batch item, op(B) (k × n) is cut into column panels of 16. Within a panel, K is cut into
// groups of G elements (G = 1 for fp32, 2 for bf16, 4 for int8 — the dot-product width of
// vdpbf16ps / vpdpbusd and the VNNI layout AMX's B tiles need). A group row holds the 16 columns'
// G elements each, column-major inside the row:
//
//   byte offset of B(k, j) in the item = panel(j) · panel_bytes
//                                      + (k / G) · 64 + ((j % 16) · G + k % G) · sizeof(elem)
//   panel_bytes = kgroups · 64,  kgroups = ceil(k / G) rounded up to a multiple of 16 for bf16
//   and int8 (whole AMX tiles: 16 group rows = 32 bf16 or 64 int8 values of K), not rounded for
//   fp32.
//
// Every group row is exactly 64 bytes (one cache line, one zmm, one AMX tile row). Padding (k
// beyond K inside the last groups, columns beyond n in the last panel) is zero. For int8 the
// item ends with int32 bsum[npanels · 16]: Σ_k B(k, j), 0 for padded columns (the s8×s8
// correction of the u8×s8 dot-product instructions). Items are item_bytes apart, a multiple of
// 64; the whole buffer is 64-byte aligned.
#pragma once

#include <cstddef>
#include <cstdint>

#include "myriad/kernels.hpp"

namespace myriad::kernels::detail {

struct PackGeometry {
  GemmType type = GemmType::f32_f32;
  std::size_t k = 0, n = 0;
  std::size_t group = 1;       // G
  std::size_t elem = 4;        // bytes per element
  std::size_t kgroups = 0;     // padded group rows per panel
  std::size_t npanels = 0;     // ceil(n / 16)
  std::size_t panel_bytes = 0; // kgroups · 64
  std::size_t bsum_offset = 0; // int8: where bsum starts in an item; else 0
  std::size_t item_bytes = 0;  // multiple of 64
};

PackGeometry pack_geometry(GemmType type, std::size_t k, std::size_t n) noexcept;

// Packs one item of B (see Gemm::trans_b for `b`'s layout) into `out` (item_bytes, 64-aligned).
void pack_item(const PackGeometry& pg, const void* b, std::size_t ldb, bool trans_b,
               std::byte* out) noexcept;

}  // namespace myriad::kernels::detail
