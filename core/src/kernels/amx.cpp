// The AMX path: bf16 × bf16 → fp32 (TDPBF16PS), s8 × s8 → s32 (TDPBSSD) and u8 × s8 → s32
// (TDPBUSD) GEMM blocks. fp32 GEMMs and the vector operations come from the AVX-512 path.
//
// The tile instructions are written as inline asm with fixed tile numbers, so this file needs
// no -mamx flags and the binary still runs on any x86-64: nothing here executes unless dispatch
// chose AMX (CPUID, XCR0 and the granted arch_prctl permission), except amx_table() itself.
//
// Tiles, one fixed configuration for a whole run of blocks (ldtilecfg costs ~100 ns):
//   tmm0..tmm3  C accumulators of a 32 × 32 piece of C (2 row tiles × 2 column panels)
//   tmm4, tmm5  A: 16 rows × 64 bytes (32 bf16 or 64 int8 values of K) each
//   tmm6, tmm7  B: one k-block (16 group rows × 64 bytes) of a packed panel each
// Per k-block that is 4 tile loads for 4 dot products: 2×2 is the only C shape whose operands
// fit in the 4 tiles the accumulators leave, and with 4 independent accumulators consecutive
// TDP*s need not wait for each other's results.
//
// Packed B panels are exactly AMX's B layout (pack.hpp), so B tiles load straight from them.
// A is the caller's raw row-major matrix: its tiles load straight from it, except where a tile
// would cross row m or element k (the block's last rows, K not a multiple of the k-block):
// those rows are copied into a small zero-padded buffer first, because only rows < m and
// elements < k may be read, and the K padding must be zero (garbage × B's zero padding could be
// Inf × 0 = NaN in a valid output). Rows of a padded tile at or beyond m are left as they were
// (zero, or an earlier tile's rows): they only reach rows of C that are never stored.
//
// Loop order for a block (up to 256 × 256 × K from the driver): for each 32-row strip of A, K is
// walked in chunks of kChunk k-blocks, and the strip's chunk (16 KiB) serves every column pair
// of a column group while it sits in L1; B streams from L2 in contiguous 1 KiB tiles. The
// group's first column pair loads A's tiles from A and tile-stores them into a contiguous copy
// that the other pairs load: rows of A a power-of-two multiple of 2 KiB apart (lda = 1024 bf16,
// 2048 int8, ...) would all fall into one or two of L1's 64 sets (12 ways) and never stay in
// L1. Partial sums of the group's C pieces wait between chunks in the same heap scratch (32 KiB;
// too big for a 64 KiB task stack that must keep ≥ 12 KiB free for a signal frame). When K
// fits in one chunk, or the scratch cannot be had, the accumulators stay in tiles for all of K
// and A's tiles load straight from A.
//
// Every C piece ends through the shared epilogue (store_f32 / store_s32, so alpha/beta mean the
// same on every path), from a 1 KiB tile-stored buffer. One exception that is the same
// operation: with alpha == 1, beta == 0 the epilogue is a plain copy, so whole 16 × 16 tiles
// are tile-stored into C directly.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "kernels/kernel_table.hpp"

namespace myriad::kernels::detail {

// Defined in amx_section.cpp: they mark the current machine, so that a park inside is fatal.
void amx_section_enter() noexcept;
void amx_section_leave() noexcept;

#if defined(__x86_64__)
namespace {

constexpr std::size_t kRowBytes = 64;     // one tile row, one packed group row, one cache line
constexpr std::size_t kTileBytes = 1024;  // 16 rows
// K chunk: 8 k-blocks = 256 bf16 / 512 int8 values of K, 16 KiB of a 32-row A strip (L1 is
// 48 KiB per core). Column group: 8 panels = 128 columns, 16 KiB of partial sums. Both are
// sized from cache arithmetic; they are the first knobs to tune on AMX hardware.
constexpr std::size_t kChunk = 8;
constexpr std::size_t kGroupPanels = 8;

// Palette 1 (the only one), all 8 tiles 16 rows × 64 bytes. Fixed, so begin() configures once
// for every block shape; tails are handled with padded operands, not smaller tiles.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {64, 64, 64, 64, 64, 64, 64, 64};
  uint8_t rows[16] = {16, 16, 16, 16, 16, 16, 16, 16};
};
static_assert(sizeof(TileConfig) == 64);
constexpr TileConfig kConfig{};

// Tile instructions. %c prints the tile number without '$'. The "memory" clobbers keep them
// in program order with each other and with the copies into the padded buffers.
template <int T>
inline void tile_zero() noexcept {
  asm volatile("tilezero %%tmm%c0" ::"i"(T) : "memory");
}
template <int T>
inline void tile_load(const void* p, std::size_t stride) noexcept {
  asm volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(p), "r"(stride), "i"(T) : "memory");
}
template <int T>
inline void tile_store(void* p, std::size_t stride) noexcept {
  asm volatile("tilestored %%tmm%c2, (%0,%1,1)" ::"r"(p), "r"(stride), "i"(T) : "memory");
}

// AT&T order: B (VEX.vvvv), A (ModRM.rm), C (ModRM.reg).
template <GemmType G, int C, int A, int B>
inline void tile_dot() noexcept {
  if constexpr (G == GemmType::bf16_f32)
    asm volatile("tdpbf16ps %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(C), "i"(A), "i"(B) : "memory");
  else if constexpr (G == GemmType::s8s8_s32)
    asm volatile("tdpbssd %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(C), "i"(A), "i"(B) : "memory");
  else
    asm volatile("tdpbusd %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(C), "i"(A), "i"(B) : "memory");
}

void begin() noexcept {
  asm volatile("ldtilecfg %0" ::"m"(kConfig) : "memory");
  amx_section_enter();
}

void end() noexcept {
  amx_section_leave();
  asm volatile("tilerelease" ::: "memory");
}

template <GemmType G>
struct Traits;
template <>
struct Traits<GemmType::bf16_f32> {
  using Acc = float;
  static constexpr std::size_t elem = 2;
};
template <>
struct Traits<GemmType::s8s8_s32> {
  using Acc = int32_t;
  static constexpr std::size_t elem = 1;
};
template <>
struct Traits<GemmType::u8s8_s32> {
  using Acc = int32_t;
  static constexpr std::size_t elem = 1;
};

inline void epilogue(float* c, std::size_t ldc, const float* acc, std::size_t m, std::size_t n,
                     float alpha, float beta) noexcept {
  store_f32(c, ldc, acc, 16, m, n, alpha, beta);
}
inline void epilogue(int32_t* c, std::size_t ldc, const int32_t* acc, std::size_t m,
                     std::size_t n, float alpha, float beta) noexcept {
  store_s32(c, ldc, acc, 16, m, n, alpha, beta);
}

// Rows of one A tile, zero-filled from `bytes` on. Out of line: tails are rare, and inlined
// copies would crowd the register allocation of the tile loop.
[[gnu::noinline]] void copy_padded(std::byte* pad, const std::byte* src, std::size_t stride,
                                   std::size_t rows, std::size_t bytes) noexcept {
  for (std::size_t r = 0; r < rows; ++r) {
    std::memcpy(pad + r * kRowBytes, src + r * stride, bytes);
    std::memset(pad + r * kRowBytes + bytes, 0, kRowBytes - bytes);
  }
}

// Where a piece takes A's tiles from.
enum class ASrc {
  raw,   // straight from A (through a padded copy where a tile crosses row m or element k)
  keep,  // the same, and each tile also goes into the chunk copy for the next column pairs
  copy,  // from the chunk copy
};

// What the pieces of one strip of rows and one K chunk share.
struct Span {
  std::size_t row0 = 0;         // first row of the strip
  std::size_t kb0 = 0, kb1 = 0; // k-blocks of the chunk
  bool first = true, last = true;
  std::byte* a_copy = nullptr;  // the chunk's A tiles, 2 per k-block (ASrc::keep / copy)
  std::byte (*pad)[kTileBytes] = nullptr;
};

struct FreeDeleter {
  void operator()(std::byte* p) const noexcept { std::free(p); }
};

// One block's geometry in bytes, computed once.
template <GemmType G>
struct Block {
  using Acc = typename Traits<G>::Acc;
  static constexpr std::size_t kStep = kRowBytes / Traits<G>::elem;  // K values per k-block

  const std::byte* a;
  std::size_t a_stride;  // bytes between rows of A
  std::size_t m, n, k;
  std::size_t kfull;     // k-blocks lying wholly inside K
  const std::byte* bp;
  std::size_t panel_bytes;
  Acc* c;
  std::size_t ldc;
  float alpha, beta;
  bool direct_store;  // alpha == 1 && beta == 0: whole tiles may go straight into C

  explicit Block(const GemmBlock& g) noexcept
      : a(static_cast<const std::byte*>(g.a)),
        a_stride(g.lda * Traits<G>::elem),
        m(g.m),
        n(g.n),
        k(g.k),
        kfull(g.k / kStep),
        bp(g.bp),
        panel_bytes(g.kgroups * kRowBytes),
        c(static_cast<Acc*>(g.c)),
        ldc(g.ldc),
        alpha(g.alpha),
        beta(g.beta),
        direct_store(g.alpha == 1.0f && g.beta == 0.0f) {}

  // Loads A's tile for rows [row0, row0 + 16) and k-block kb into tile T: straight from A when
  // the tile lies inside rows < m and elements < k, else through `pad` (zero-filled K tail).
  template <int T>
  void load_a(std::size_t row0, std::size_t kb, std::byte* pad) const noexcept {
    const std::byte* src = a + row0 * a_stride + kb * kRowBytes;
    const std::size_t rows = std::min<std::size_t>(16, m - row0);
    if (rows == 16 && kb < kfull) {
      tile_load<T>(src, a_stride);
      return;
    }
    const std::size_t bytes = std::min(kRowBytes, (k - kb * kStep) * Traits<G>::elem);
    copy_padded(pad, src, a_stride, rows, bytes);
    tile_load<T>(pad, kRowBytes);
  }

  // Writes accumulator tile T, rows [row0, +16) × columns [col0, +16) of C, valid parts only.
  template <int T>
  void finish(std::size_t row0, std::size_t col0) const noexcept {
    const std::size_t rows = std::min<std::size_t>(16, m - row0);
    const std::size_t cols = std::min<std::size_t>(16, n - col0);
    Acc* dst = c + row0 * ldc + col0;
    if (direct_store && rows == 16 && cols == 16) {
      tile_store<T>(dst, ldc * sizeof(Acc));
      return;
    }
    alignas(64) Acc acc[16 * 16];
    tile_store<T>(acc, kRowBytes);
    epilogue(dst, ldc, acc, rows, cols, alpha, beta);
  }

  // One R × C piece of tiles (R row tiles from span.row0, C panels from panel p) over the
  // span's k-blocks. `partial` (4 tiles) holds the sums of earlier K chunks unless span.first;
  // unless span.last, the sums go back there instead of into C.
  template <int R, int C, ASrc S>
  void piece(const Span& span, std::size_t p, std::byte* partial) const noexcept {
    if (span.first) {
      tile_zero<0>();
      if constexpr (C == 2) tile_zero<1>();
      if constexpr (R == 2) tile_zero<2>();
      if constexpr (R == 2 && C == 2) tile_zero<3>();
    } else {
      tile_load<0>(partial, kRowBytes);
      if constexpr (C == 2) tile_load<1>(partial + kTileBytes, kRowBytes);
      if constexpr (R == 2) tile_load<2>(partial + 2 * kTileBytes, kRowBytes);
      if constexpr (R == 2 && C == 2) tile_load<3>(partial + 3 * kTileBytes, kRowBytes);
    }
    const std::byte* b0 = bp + p * panel_bytes;
    for (std::size_t kb = span.kb0; kb < span.kb1; ++kb) {
      std::byte* a_copy = span.a_copy + (kb - span.kb0) * 2 * kTileBytes;
      if constexpr (S == ASrc::copy) {
        tile_load<4>(a_copy, kRowBytes);
        if constexpr (R == 2) tile_load<5>(a_copy + kTileBytes, kRowBytes);
      } else {
        load_a<4>(span.row0, kb, span.pad[0]);
        if constexpr (R == 2) load_a<5>(span.row0 + 16, kb, span.pad[1]);
        if constexpr (S == ASrc::keep) {
          tile_store<4>(a_copy, kRowBytes);
          if constexpr (R == 2) tile_store<5>(a_copy + kTileBytes, kRowBytes);
        }
      }
      tile_load<6>(b0 + kb * kTileBytes, kRowBytes);
      if constexpr (C == 2) tile_load<7>(b0 + panel_bytes + kb * kTileBytes, kRowBytes);
      tile_dot<G, 0, 4, 6>();
      if constexpr (C == 2) tile_dot<G, 1, 4, 7>();
      if constexpr (R == 2) tile_dot<G, 2, 5, 6>();
      if constexpr (R == 2 && C == 2) tile_dot<G, 3, 5, 7>();
    }
    if (!span.last) {
      tile_store<0>(partial, kRowBytes);
      if constexpr (C == 2) tile_store<1>(partial + kTileBytes, kRowBytes);
      if constexpr (R == 2) tile_store<2>(partial + 2 * kTileBytes, kRowBytes);
      if constexpr (R == 2 && C == 2) tile_store<3>(partial + 3 * kTileBytes, kRowBytes);
      return;
    }
    const std::size_t row0 = span.row0, col0 = p * 16;
    finish<0>(row0, col0);
    if constexpr (C == 2) finish<1>(row0, col0 + 16);
    if constexpr (R == 2) finish<2>(row0 + 16, col0);
    if constexpr (R == 2 && C == 2) finish<3>(row0 + 16, col0 + 16);
  }

  template <int R, int C>
  void piece(ASrc src, const Span& span, std::size_t p, std::byte* partial) const noexcept {
    switch (src) {
      case ASrc::raw: return piece<R, C, ASrc::raw>(span, p, partial);
      case ASrc::keep: return piece<R, C, ASrc::keep>(span, p, partial);
      case ASrc::copy: return piece<R, C, ASrc::copy>(span, p, partial);
    }
  }

  void piece(bool two_rows, bool two_cols, ASrc src, const Span& span, std::size_t p,
             std::byte* partial) const noexcept {
    if (two_rows && two_cols) return piece<2, 2>(src, span, p, partial);
    if (two_rows) return piece<2, 1>(src, span, p, partial);
    if (two_cols) return piece<1, 2>(src, span, p, partial);
    return piece<1, 1>(src, span, p, partial);
  }
};

template <GemmType G>
void gemm_block(const GemmBlock& g) noexcept {
  const Block<G> blk(g);
  const std::size_t kblocks = (g.k + Block<G>::kStep - 1) / Block<G>::kStep;
  const std::size_t npanels = (g.n + 15) / 16;

  // Zero-padded A tiles for the tails (one per row tile of a strip). Filled before use; the
  // memset only keeps rows that are never copied (beyond m) defined.
  alignas(64) std::byte pad[2][kTileBytes];
  if (g.m % 16 != 0 || blk.kfull != kblocks) std::memset(pad, 0, sizeof pad);

  // K chunks pay when a group has several column pairs to reuse the strip's A chunk. Scratch:
  // the group's partial sums, then the A chunk copy.
  constexpr std::size_t kPartialBytes = kGroupPanels / 2 * 4 * kTileBytes;
  constexpr std::size_t kACopyBytes = kChunk * 2 * kTileBytes;
  std::size_t chunk = kblocks;
  std::unique_ptr<std::byte, FreeDeleter> scratch;
  if (kblocks > kChunk && npanels > 2) {
    scratch.reset(static_cast<std::byte*>(std::aligned_alloc(64, kPartialBytes + kACopyBytes)));
    if (scratch) chunk = kChunk;
  }

  Span span{};
  span.pad = pad;
  if (scratch) span.a_copy = scratch.get() + kPartialBytes;
  for (std::size_t pg = 0; pg < npanels; pg += kGroupPanels) {
    const std::size_t pend = std::min(npanels, pg + kGroupPanels);
    const bool reuse = scratch && pend - pg > 2;
    for (span.row0 = 0; span.row0 < g.m; span.row0 += 32) {
      const bool two_rows = g.m - span.row0 > 16;
      for (span.kb0 = 0;; span.kb0 += chunk) {
        span.kb1 = std::min(kblocks, span.kb0 + chunk);
        span.first = span.kb0 == 0;
        span.last = span.kb1 == kblocks;
        for (std::size_t p = pg; p < pend; p += 2) {
          std::byte* partial = scratch ? scratch.get() + (p - pg) / 2 * 4 * kTileBytes : nullptr;
          const ASrc src = !reuse ? ASrc::raw : p == pg ? ASrc::keep : ASrc::copy;
          blk.piece(two_rows, pend - p > 1, src, span, p, partial);
        }
        if (span.last) break;
      }
    }
  }
}

constexpr KernelTable make_table() noexcept {
  KernelTable t{};
  t.isa = Isa::amx;
  t.begin = &begin;
  t.end = &end;
  t.gemm[static_cast<int>(GemmType::bf16_f32)] = &gemm_block<GemmType::bf16_f32>;
  t.gemm[static_cast<int>(GemmType::s8s8_s32)] = &gemm_block<GemmType::s8s8_s32>;
  t.gemm[static_cast<int>(GemmType::u8s8_s32)] = &gemm_block<GemmType::u8s8_s32>;
  return t;
}

}  // namespace

const KernelTable& amx_table() noexcept {
  static constexpr KernelTable table = make_table();
  return table;
}

#else  // not x86-64: no AMX

const KernelTable& amx_table() noexcept {
  static constexpr KernelTable table{Isa::amx};
  return table;
}

#endif

}  // namespace myriad::kernels::detail
