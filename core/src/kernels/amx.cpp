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
// fit in the 4 tiles the accumulators leave, and 4 independent accumulators also cover the
// latency of one TDP* (several times its 16-cycle issue interval).
//
// Packed B panels are exactly AMX's B layout (pack.hpp), so B tiles load straight from them.
// A is the caller's raw row-major matrix: its tiles load straight from it, except where a tile
// would cross row m or element k (the block's last rows, K not a multiple of the k-block):
// those rows are copied into a small zero-padded buffer first, because only rows < m and
// elements < k may be read, and the K padding must be zero (garbage × B's zero padding could be
// Inf × 0 = NaN in a valid output). Rows of a padded tile at or beyond m are never zeroed: they
// only reach rows of C that are never stored.
//
// Loop order for a block (up to 256 × 256 × K from the driver): for each 32-row strip of A, K is
// walked in chunks of kChunk k-blocks, and each chunk of the strip (16 KiB) is used by every
// column pair of a column group while it sits in L1; B streams from L2 in contiguous 1 KiB
// tiles. Partial sums of the group's C pieces wait between chunks in a heap buffer (16 KiB;
// too big for a 64 KiB task stack that must keep ≥ 12 KiB free for a signal frame). When K
// fits in one chunk, or the buffer cannot be had, the accumulators stay in tiles for all of K.
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
// 48 KiB per core). Column group: 8 panels = 128 columns, 16 KiB of partial sums.
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

  // One R × C piece of tiles (R row tiles from row0, C panels from panel p) over k-blocks
  // [kb0, kb1). `partial` (4 tiles) holds the sums of earlier K chunks unless `first`; unless
  // `last`, the sums go back there instead of into C.
  template <int R, int C>
  void piece(std::size_t row0, std::size_t p, std::size_t kb0, std::size_t kb1,
             std::byte* partial, bool first, bool last, std::byte (*pad)[kTileBytes]) const
      noexcept {
    if (first) {
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
    for (std::size_t kb = kb0; kb < kb1; ++kb) {
      load_a<4>(row0, kb, pad[0]);
      if constexpr (R == 2) load_a<5>(row0 + 16, kb, pad[1]);
      tile_load<6>(b0 + kb * kTileBytes, kRowBytes);
      if constexpr (C == 2) tile_load<7>(b0 + panel_bytes + kb * kTileBytes, kRowBytes);
      tile_dot<G, 0, 4, 6>();
      if constexpr (C == 2) tile_dot<G, 1, 4, 7>();
      if constexpr (R == 2) tile_dot<G, 2, 5, 6>();
      if constexpr (R == 2 && C == 2) tile_dot<G, 3, 5, 7>();
    }
    if (!last) {
      tile_store<0>(partial, kRowBytes);
      if constexpr (C == 2) tile_store<1>(partial + kTileBytes, kRowBytes);
      if constexpr (R == 2) tile_store<2>(partial + 2 * kTileBytes, kRowBytes);
      if constexpr (R == 2 && C == 2) tile_store<3>(partial + 3 * kTileBytes, kRowBytes);
      return;
    }
    const std::size_t col0 = p * 16;
    finish<0>(row0, col0);
    if constexpr (C == 2) finish<1>(row0, col0 + 16);
    if constexpr (R == 2) finish<2>(row0 + 16, col0);
    if constexpr (R == 2 && C == 2) finish<3>(row0 + 16, col0 + 16);
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

  // K chunks pay only when a group has several column pairs to reuse the strip's A chunk.
  std::size_t chunk = kblocks;
  std::unique_ptr<std::byte, FreeDeleter> partials;
  if (kblocks > kChunk && npanels > 2) {
    partials.reset(static_cast<std::byte*>(
        std::aligned_alloc(64, (kGroupPanels / 2) * 4 * kTileBytes)));
    if (partials) chunk = kChunk;
  }

  for (std::size_t pg = 0; pg < npanels; pg += kGroupPanels) {
    const std::size_t pend = std::min(npanels, pg + kGroupPanels);
    for (std::size_t row0 = 0; row0 < g.m; row0 += 32) {
      const bool two_rows = g.m - row0 > 16;
      for (std::size_t kb0 = 0;; kb0 += chunk) {
        const std::size_t kb1 = std::min(kblocks, kb0 + chunk);
        const bool first = kb0 == 0, last = kb1 == kblocks;
        for (std::size_t p = pg; p < pend; p += 2) {
          std::byte* partial =
              partials ? partials.get() + (p - pg) / 2 * 4 * kTileBytes : nullptr;
          const bool two_cols = pend - p > 1;
          if (two_rows && two_cols)
            blk.template piece<2, 2>(row0, p, kb0, kb1, partial, first, last, pad);
          else if (two_rows)
            blk.template piece<2, 1>(row0, p, kb0, kb1, partial, first, last, pad);
          else if (two_cols)
            blk.template piece<1, 2>(row0, p, kb0, kb1, partial, first, last, pad);
          else
            blk.template piece<1, 1>(row0, p, kb0, kb1, partial, first, last, pad);
        }
        if (last) break;
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
