// The seam between the kernel driver (validation, packing, splitting into tasks) and the
// per-ISA code (portable.cpp, avx2.cpp, avx512.cpp, amx.cpp). Each path fills a KernelTable;
// entries it leaves null are taken from the next slower path (dispatch.cpp layers them), so AMX
// supplies only its GEMMs and the vector operations come from AVX-512.
//
// Invariants every block function relies on (the driver guarantees them):
//  - B is packed (pack.hpp): a block's columns start at a panel boundary (col0 % 16 == 0) and
//    `bp` points at that first panel; panels are 64-byte aligned; padding is zero.
//  - A is raw, row-major, any alignment; only rows [0, m) and elements [0, k) may be read.
//  - C: only rows [0, m) × columns [0, n) may be read or written; with beta == 0, C is not read.
//  - Inside begin()/end() nothing parks, yields or migrates (the AMX section rule; see
//    amx_section.hpp). Block functions called between them run on one thread.
#pragma once

#include <cstddef>
#include <cstdint>

#include "myriad/kernels.hpp"

namespace myriad::kernels::detail {

// One block of one batch item: C[0..m) × [0..n) = alpha · A[0..m) × B-block + beta · C.
struct GemmBlock {
  std::size_t m = 0, n = 0, k = 0;
  const void* a = nullptr;  // first row of the block (element type by GemmType)
  std::size_t lda = 0;      // elements
  const std::byte* bp = nullptr;  // packed panels of the block's columns (pack.hpp)
  std::size_t kgroups = 0;        // padded k-groups per panel: a panel is kgroups · 64 bytes
  const int32_t* bsum = nullptr;  // int8 only: Σ_k B[k][j] for the block's columns (padded to 16)
  void* c = nullptr;              // first row of the block
  std::size_t ldc = 0;            // elements
  float alpha = 1.0f, beta = 0.0f;
};

using GemmBlockFn = void (*)(const GemmBlock&) noexcept;

struct KernelTable {
  Isa isa = Isa::portable;
  // Called around a run of block functions on one thread (AMX: tile configuration and release).
  void (*begin)() noexcept = nullptr;
  void (*end)() noexcept = nullptr;
  GemmBlockFn gemm[4] = {};  // indexed by GemmType
  float (*dot)(const float* x, const float* y, std::size_t n) noexcept = nullptr;
  void (*axpy)(float alpha, const float* x, float* y, std::size_t n) noexcept = nullptr;
  float (*sum)(const float* x, std::size_t n) noexcept = nullptr;
  float (*max)(const float* x, std::size_t n) noexcept = nullptr;
  // Filled by dispatch.cpp in layered tables only: the begin/end of the path that supplied each
  // gemm entry (null when that path needs none), so fp32 GEMMs on the AMX path skip ldtilecfg.
  void (*gemm_begin[4])() noexcept = {};
  void (*gemm_end[4])() noexcept = {};
};

// Each path's own entries (null where it has none). Defined in the path's file; on non-x86
// builds the x86 ones return an empty table.
const KernelTable& portable_table() noexcept;
const KernelTable& avx2_table() noexcept;
const KernelTable& avx512_table() noexcept;
const KernelTable& amx_table() noexcept;

// The layered table for a path (dispatch.cpp).
const KernelTable& table_for(Isa isa) noexcept;

// Tests only: makes `isa` the active path without asking whether the CPU can run it. The AMX
// tests use it with an emulator (tests/core/amx_emulator.*) on machines that hide AMX, so the
// AMX path's code runs through the whole driver there too.
void set_isa_unchecked(Isa isa) noexcept;

// Shared epilogue: writes alpha·acc + beta·C for an m×n block of accumulators (rows acc_ld
// apart). Every path ends through these, so alpha/beta semantics are identical everywhere.
void store_f32(float* c, std::size_t ldc, const float* acc, std::size_t acc_ld, std::size_t m,
               std::size_t n, float alpha, float beta) noexcept;
void store_s32(int32_t* c, std::size_t ldc, const int32_t* acc, std::size_t acc_ld,
               std::size_t m, std::size_t n, float alpha, float beta) noexcept;

}  // namespace myriad::kernels::detail
