// The GEMM driver: checks a call, cuts it into blocks, packs B where the caller did not, and
// hands runs of blocks to the active path's table (kernel_table.hpp) on tasks (parallel.hpp).
//
// Units of work, in order: (batch item, column block, row block), row blocks innermost. A block
// is the whole item for small GEMMs; large items are cut so that one column block of packed B
// (~1 MiB) stays in L2 while the row blocks of A stream past it. A task that meets a new
// (item, column block) packs it into its own scratch, unless B came prepacked or is shared by
// the whole batch (then it was packed once, before the split).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>

#include "kernels/kernel_table.hpp"
#include "kernels/pack.hpp"
#include "kernels/parallel.hpp"

namespace myriad::kernels {

struct PackAccess {
  static PackedB make(GemmType type, std::size_t k, std::size_t n, std::size_t items,
                      std::size_t item_bytes) {
    PackedB pb;
    const std::size_t bytes = std::max<std::size_t>(64, items * item_bytes);
    void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) throw Error(Errc::no_memory);
    pb.data_.reset(static_cast<std::byte*>(p));
    pb.type_ = type;
    pb.k_ = k;
    pb.n_ = n;
    pb.items_ = items;
    pb.bytes_ = bytes;
    pb.item_bytes_ = item_bytes;
    return pb;
  }
  static std::byte* data(PackedB& pb) noexcept { return pb.data_.get(); }
  static std::size_t item_bytes(const PackedB& pb) noexcept { return pb.item_bytes_; }
};

PackedB::~PackedB() = default;
void PackedB::Free::operator()(std::byte* p) const noexcept { std::free(p); }

namespace detail {
namespace {

constexpr uint64_t kMaxExtent = uint64_t{1} << 62;

std::size_t elem_a(GemmType t) noexcept {
  return t == GemmType::f32_f32 ? 4 : t == GemmType::bf16_f32 ? 2 : 1;
}

// Byte extent of `items` matrices of rows × cols with row pitch ld and item stride, or 0 on
// overflow past kMaxExtent.
bool extent_ok(std::size_t items, std::size_t stride, std::size_t rows, std::size_t ld,
               std::size_t cols, std::size_t es) noexcept {
  if (items == 0 || rows == 0 || cols == 0) return true;
  const unsigned __int128 e = static_cast<unsigned __int128>(items - 1) * stride +
                              static_cast<unsigned __int128>(rows - 1) * ld + cols;
  return e * es < kMaxExtent;
}

bool is_int8(GemmType t) noexcept { return t == GemmType::s8s8_s32 || t == GemmType::u8s8_s32; }

// Items of B the geometry names: one when it is shared across the batch.
std::size_t b_items(const Gemm& g) noexcept { return g.stride_b == 0 || g.batch == 1 ? 1 : g.batch; }

// packed: B comes as a PackedB (checked against the geometry by the caller), so ldb and B's
// extent are not used.
void check(const Gemm& g, GemmType t, const void* a, const void* b, const void* c, bool packed) {
  const std::size_t es = elem_a(t), esc = 4;
  const bool empty = g.batch == 0 || g.m == 0 || g.n == 0;
  bool ok = true;
  if (!empty) {
    ok = c && (g.k == 0 || (a && (b || packed))) && g.lda >= g.k && g.ldc >= g.n &&
         extent_ok(g.batch, g.stride_a, g.m, g.lda, g.k, es) &&
         extent_ok(g.batch, g.stride_c, g.m, g.ldc, g.n, esc);
    if (!packed)
      ok = ok && g.ldb >= (g.trans_b ? g.k : g.n) &&
           extent_ok(b_items(g), g.stride_b, g.trans_b ? g.n : g.k, g.ldb,
                     g.trans_b ? g.k : g.n, es);
  }
  if (is_int8(t) && !(std::isfinite(g.alpha) && std::isfinite(g.beta))) ok = false;
  if (!ok) throw Error(Errc::invalid_argument);
}

// Rows and columns per block: A's rows × K and B's columns × K each about half of L2's share.
void block_dims(const Gemm& g, GemmType t, std::size_t* mb, std::size_t* nb) noexcept {
  const std::size_t row_bytes = std::max<std::size_t>(1, g.k * elem_a(t));
  auto fit = [&](std::size_t budget, std::size_t cap) {
    std::size_t r = budget / row_bytes / 16 * 16;
    return std::clamp<std::size_t>(r, 16, cap);
  };
  *mb = std::min(g.m, fit(std::size_t{512} << 10, 256));
  *nb = std::min(g.n, fit(std::size_t{1} << 20, 512));
}

struct GemmCall {
  const Gemm* g;
  GemmType type;
  const KernelTable* table;
  PackGeometry pg;  // for the whole width n
  const std::byte* a;
  const std::byte* b;        // raw B (null when packed is given)
  const std::byte* packed;   // prepacked items (or the shared pack), else null
  std::size_t packed_item_bytes;
  std::byte* c;
  std::size_t mb, nb, mblocks, nblocks;
  std::atomic<bool>* out_of_memory;  // a range could not allocate its packing scratch
};

void run_blocks(void* vctx, std::size_t begin, std::size_t end) noexcept {
  const GemmCall& call = *static_cast<const GemmCall*>(vctx);
  const Gemm& g = *call.g;
  const std::size_t ti = static_cast<std::size_t>(call.type);
  const std::size_t es = elem_a(call.type);
  GemmBlockFn fn = call.table->gemm[ti];
  // Scratch for packing one column block (allocated on first need, reused for the run).
  std::byte* scratch = nullptr;
  PackGeometry spg;
  std::size_t scratch_item = SIZE_MAX, scratch_nblock = SIZE_MAX;
  if (!call.packed) {
    spg = pack_geometry(call.type, g.k, call.nb);
    scratch = static_cast<std::byte*>(std::aligned_alloc(64, (spg.item_bytes + 63) / 64 * 64));
    if (!scratch) {
      // This range is not computed; run_gemm throws Error(no_memory) once every range ended.
      call.out_of_memory->store(true, std::memory_order_relaxed);
      return;
    }
  }
  if (call.table->gemm_begin[ti]) call.table->gemm_begin[ti]();
  for (std::size_t u = begin; u < end; ++u) {
    const std::size_t per_item = call.mblocks * call.nblocks;
    const std::size_t item = u / per_item, rest = u % per_item;
    const std::size_t nbk = rest / call.mblocks, mbk = rest % call.mblocks;
    const std::size_t i0 = mbk * call.mb, j0 = nbk * call.nb;
    GemmBlock blk;
    blk.m = std::min(call.mb, g.m - i0);
    blk.n = std::min(call.nb, g.n - j0);
    blk.k = g.k;
    blk.a = call.a + (item * g.stride_a + i0 * g.lda) * es;
    blk.lda = g.lda;
    blk.c = call.c + (item * g.stride_c + i0 * g.ldc + j0) * 4;
    blk.ldc = g.ldc;
    blk.alpha = g.alpha;
    blk.beta = g.beta;
    if (call.packed) {
      const std::size_t bi = b_items(g) == 1 ? 0 : item;
      const std::byte* it = call.packed + bi * call.packed_item_bytes;
      blk.bp = it + (j0 / 16) * call.pg.panel_bytes;
      blk.kgroups = call.pg.kgroups;
      if (call.pg.bsum_offset) blk.bsum = reinterpret_cast<const int32_t*>(it + call.pg.bsum_offset) + j0;
    } else {
      if (item != scratch_item || nbk != scratch_nblock) {
        PackGeometry bpg = pack_geometry(call.type, g.k, blk.n);
        const std::byte* src = call.b + (item * g.stride_b + (g.trans_b ? j0 * g.ldb : j0)) * es;
        pack_item(bpg, src, g.ldb, g.trans_b, scratch);
        spg = bpg;
        scratch_item = item;
        scratch_nblock = nbk;
      }
      blk.bp = scratch;
      blk.kgroups = spg.kgroups;
      if (spg.bsum_offset) blk.bsum = reinterpret_cast<const int32_t*>(scratch + spg.bsum_offset);
    }
    if (g.k == 0) {
      // No products: C = beta·C (alpha·0), through the same epilogue.
      static const float zf[16] = {};
      static const int32_t zi[16] = {};
      for (std::size_t j = 0; j < blk.n; j += 16) {
        const std::size_t w = std::min<std::size_t>(16, blk.n - j);
        if (is_int8(call.type))
          store_s32(static_cast<int32_t*>(blk.c) + j, blk.ldc, zi, 0, blk.m, w, g.alpha, g.beta);
        else
          store_f32(static_cast<float*>(blk.c) + j, blk.ldc, zf, 0, blk.m, w, g.alpha, g.beta);
      }
      continue;
    }
    fn(blk);
  }
  if (call.table->gemm_end[ti]) call.table->gemm_end[ti]();
  std::free(scratch);
}

void run_gemm(const Gemm& g, GemmType t, const void* a, const void* b, const PackedB* packed,
              void* c, const Exec& ex) {
  check(g, t, a, b, c, packed != nullptr);
  if (packed && (packed->empty() || packed->type() != t || packed->k() != g.k || packed->n() != g.n ||
                 packed->items() != b_items(g)))
    throw Error(Errc::invalid_argument);
  if (g.batch == 0 || g.m == 0 || g.n == 0) return;
  GemmCall call{};
  call.g = &g;
  call.type = t;
  call.table = &table_for(active_isa());
  call.pg = pack_geometry(t, g.k, g.n);
  call.a = static_cast<const std::byte*>(a);
  call.b = static_cast<const std::byte*>(b);
  call.c = static_cast<std::byte*>(c);
  block_dims(g, t, &call.mb, &call.nb);
  call.mblocks = (g.m + call.mb - 1) / call.mb;
  call.nblocks = (g.n + call.nb - 1) / call.nb;
  PackedB shared;
  if (packed) {
    call.packed = packed->data();
    call.packed_item_bytes = PackAccess::item_bytes(*packed);
  } else if (g.batch > 1 && b_items(g) == 1) {
    // One B for the whole batch: pack it once here rather than once per task. (A single large
    // item is packed by the tasks instead, each its own column blocks: in parallel.)
    shared = PackAccess::make(t, g.k, g.n, 1, call.pg.item_bytes);
    pack_item(call.pg, b, g.ldb, g.trans_b, PackAccess::data(shared));
    call.packed = shared.data();
    call.packed_item_bytes = call.pg.item_bytes;
  }
  const std::size_t units = g.batch * call.mblocks * call.nblocks;
  const uint64_t cost = uint64_t{std::min(call.mb, g.m)} * std::min(call.nb, g.n) *
                        std::max<std::size_t>(g.k, 1);
  std::atomic<bool> out_of_memory{false};
  call.out_of_memory = &out_of_memory;
  parallel_ranges(ex, units, cost, run_blocks, &call);
  if (out_of_memory.load(std::memory_order_relaxed)) throw Error(Errc::no_memory);
}

template <typename T>
PackedB pack(const Gemm& g, GemmType t, const T* b) {
  const std::size_t es = elem_a(t);
  const std::size_t items = b_items(g);
  const bool ok = g.ldb >= (g.trans_b ? g.k : g.n) && (b || g.k == 0 || g.n == 0) &&
                  extent_ok(items, g.stride_b, g.trans_b ? g.n : g.k, g.ldb,
                            g.trans_b ? g.k : g.n, es);
  if (!ok) throw Error(Errc::invalid_argument);
  const PackGeometry pg = pack_geometry(t, g.k, g.n);
  PackedB pb = PackAccess::make(t, g.k, g.n, items, pg.item_bytes);
  for (std::size_t i = 0; i < items; ++i)
    pack_item(pg, reinterpret_cast<const std::byte*>(b) + i * g.stride_b * es, g.ldb, g.trans_b,
              PackAccess::data(pb) + i * pg.item_bytes);
  return pb;
}

}  // namespace
}  // namespace detail

using detail::run_gemm;

PackedB pack_b(const Gemm& g, const bf16* b) { return detail::pack(g, GemmType::bf16_f32, b); }
PackedB pack_b(const Gemm& g, const float* b) { return detail::pack(g, GemmType::f32_f32, b); }
PackedB pack_b(const Gemm& g, const int8_t* b, GemmType type) {
  if (type != GemmType::s8s8_s32 && type != GemmType::u8s8_s32) throw Error(Errc::invalid_argument);
  return detail::pack(g, type, b);
}

void gemm(const Gemm& g, const bf16* a, const bf16* b, float* c, const Exec& ex) {
  run_gemm(g, GemmType::bf16_f32, a, b, nullptr, c, ex);
}
void gemm(const Gemm& g, const float* a, const float* b, float* c, const Exec& ex) {
  run_gemm(g, GemmType::f32_f32, a, b, nullptr, c, ex);
}
void gemm(const Gemm& g, const int8_t* a, const int8_t* b, int32_t* c, const Exec& ex) {
  run_gemm(g, GemmType::s8s8_s32, a, b, nullptr, c, ex);
}
void gemm(const Gemm& g, const uint8_t* a, const int8_t* b, int32_t* c, const Exec& ex) {
  run_gemm(g, GemmType::u8s8_s32, a, b, nullptr, c, ex);
}
void gemm(const Gemm& g, const bf16* a, const PackedB& b, float* c, const Exec& ex) {
  run_gemm(g, GemmType::bf16_f32, a, nullptr, &b, c, ex);
}
void gemm(const Gemm& g, const float* a, const PackedB& b, float* c, const Exec& ex) {
  run_gemm(g, GemmType::f32_f32, a, nullptr, &b, c, ex);
}
void gemm(const Gemm& g, const int8_t* a, const PackedB& b, int32_t* c, const Exec& ex) {
  run_gemm(g, GemmType::s8s8_s32, a, nullptr, &b, c, ex);
}
void gemm(const Gemm& g, const uint8_t* a, const PackedB& b, int32_t* c, const Exec& ex) {
  run_gemm(g, GemmType::u8s8_s32, a, nullptr, &b, c, ex);
}

}  // namespace myriad::kernels
