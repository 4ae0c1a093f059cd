// Batch compute kernels: GEMM (bf16, int8, fp32) and vector operations over batches, run in
// parallel by tasks on a runtime's procs, on the best instruction set the CPU allows.
//
//   using namespace myriad::kernels;
//   Gemm g{.batch = 16, .m = 64, .n = 64, .k = 64};          // dense row-major, ld = widths
//   g.set_dense();                                            // lda = k, ldb = n, ldc = n, strides
//   gemm(g, a_bf16, b_bf16, c_f32);                           // C = A·B for every batch item
//   PackedB pb = pack_b(g, b_bf16);                           // once ...
//   gemm(g, a_bf16, pb, c_f32);                               // ... then without repacking
//
// Paths (`Isa`), chosen once per process at the first call: AMX (tiles; bf16 and int8 GEMM) →
// AVX-512 (F/BW/VL/DQ + VNNI + BF16) → AVX2 + FMA → portable C++. Each path is compiled with
// per-function target attributes, so one binary runs on any x86-64; other architectures and wasm
// get the portable path. `MYRIAD_KERNELS=amx|avx512|avx2|portable` (or set_isa) forces a path;
// a path the machine cannot run is refused (Errc::not_supported) — set_isa returns it, the
// environment variable prints one warning and keeps the automatic choice. AMX needs the Linux
// permission request `arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)`; when the kernel refuses it the
// AVX-512 path is used.
//
// Parallelism: a call made inside a task splits into tasks on that task's runtime (no thread pool
// of its own), one unit of work per batch item or per block of a large GEMM, grouped so that each
// task's operands fit in L2; the calling task runs one share and waits for the others. `Exec`
// chooses another runtime, or serial execution on the calling thread. A call from inside a
// blocking section (blocking.hpp), where the task must not park, runs serially. Calls from many
// tasks at once are safe: the kernels keep no shared mutable state. Outputs of one call must not
// overlap each other (they are written by different tasks).
//
// AMX: tile registers belong to the OS thread and do not survive a task switch. An AMX section
// (ldtilecfg … compute … tilerelease) is a leaf: it never parks, yields or migrates. The runtime
// enforces it — a park inside one is a fatal error naming the task — and each section ends with
// tilerelease, so a thread never carries tile state into another task.
//
// Numerics (docs/KERNELS.md has the details):
//  - bf16 is the top half of an IEEE binary32. to_bf16 rounds to nearest, ties to even; NaN stays
//    NaN (quiet), ±Inf and ±0 are kept; denormal floats round like any other value.
//  - bf16 and fp32 GEMMs accumulate in fp32. The order of the K sum differs between paths (AMX
//    sums pairs, then 32-element blocks; the vector paths sum per k in order): results agree with
//    a double-precision reference within ~K·2⁻²⁴·Σ|a·b|, not bit for bit across paths.
//  - int8 GEMMs accumulate in int32 exactly (wrapping on overflow, which needs K > 131,072).
//  - Denormals: the AMX bf16 unit treats denormal inputs as zero and flushes denormal results;
//    the vector paths keep them (they do not touch MXCSR). Results that depend on denormals may
//    therefore differ between paths.
//  - NaN and Inf in A or B propagate to the outputs whose sum they enter, as IEEE says (Inf·0 is
//    NaN). Zero padding added for tile sizes never reaches a valid output.
//  - alpha/beta: C = alpha·(A·B) + beta·C. With beta == 0, C is only written (NaN already in C
//    does not propagate — BLAS's rule). For int8, alpha == 1 and beta ∈ {0, 1} are exact integer
//    operations (beta == 1 wraps like the accumulation); other values are applied in double and
//    rounded to nearest even, saturating to the int32 range; alpha and beta must be finite.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <utility>

#include "myriad/errors.hpp"

namespace myriad {
class Runtime;
}

namespace myriad::kernels {

// Instruction-set paths, slowest to fastest.
enum class Isa : int { portable = 0, avx2 = 1, avx512 = 2, amx = 3 };
const char* isa_name(Isa isa) noexcept;

// The path in use (chosen at the first call, or by set_isa / MYRIAD_KERNELS).
Isa active_isa() noexcept;
// The fastest path this machine and kernel allow (AMX only after a granted permission request).
Isa best_isa() noexcept;
// Forces a path for the whole process. Errc::not_supported when the machine cannot run it.
// Not meant to be raced with running kernel calls (they use the path they started with).
Errc set_isa(Isa isa) noexcept;
// Returns to the automatic choice (best_isa).
void reset_isa() noexcept;

// Brain floating point: the top 16 bits of an IEEE binary32.
struct bf16 {
  uint16_t bits = 0;
};
// Round to nearest, ties to even; NaN stays a (quiet) NaN.
inline bf16 to_bf16(float f) noexcept {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>(u >> 16)};
}
inline float to_float(bf16 h) noexcept {
  uint32_t u = static_cast<uint32_t>(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Geometry of a batched GEMM: for b in [0, batch): C_b = alpha · A_b · op(B_b) + beta · C_b.
// Row-major. A_b is m×k at a + b·stride_a with rows lda apart; op(B_b) is k×n: B_b stored k×n
// with rows ldb apart, or, with trans_b, stored n×k (rows of length k, ldb apart) — the layout of
// weights in most models. C_b is m×n at c + b·stride_c, rows ldc apart. All strides and leading
// dimensions count elements. stride_b = 0 shares one B across the batch.
// Checked on every call (Errc::invalid_argument): leading dimensions at least the row widths,
// sizes and strides whose byte extents fit in 2⁶², null pointers only when batch·m·n == 0.
struct Gemm {
  std::size_t batch = 1;
  std::size_t m = 0, n = 0, k = 0;
  std::size_t lda = 0, ldb = 0, ldc = 0;
  std::size_t stride_a = 0, stride_b = 0, stride_c = 0;
  bool trans_b = false;
  float alpha = 1.0f;
  float beta = 0.0f;

  // Fills leading dimensions and batch strides for densely packed operands.
  Gemm& set_dense() noexcept {
    lda = k;
    ldb = trans_b ? k : n;
    ldc = n;
    stride_a = m * k;
    stride_b = k * n;
    stride_c = m * n;
    return *this;
  }
};

// Element types of a GEMM: A × B → C.
enum class GemmType : int {
  bf16_f32 = 0,  // bf16 × bf16 → fp32
  f32_f32 = 1,   // fp32 × fp32 → fp32
  s8s8_s32 = 2,  // int8 × int8 → int32
  u8s8_s32 = 3,  // uint8 × int8 → int32
};

// How a call runs. By default: in parallel on the current task's runtime, or serially on the
// calling thread outside any task.
struct Exec {
  Runtime* runtime = nullptr;  // run on this runtime's procs (may be called from any thread)
  bool serial = false;         // run everything on the calling thread
  unsigned max_tasks = 0;      // at most this many tasks (0: 2 per proc; 1 with one proc)
};

// B laid out once for a GEMM geometry (k, n, trans_b, batch items) in the layout every path
// reads: column panels of 16, K grouped for the dot-product instructions (pairs for bf16, quads
// for int8 — AMX's VNNI layout), zero-padded. Independent of the path in use. Move-only.
class PackedB {
 public:
  PackedB() noexcept = default;
  // A moved-from PackedB is empty (as if default-constructed); gemm refuses it.
  PackedB(PackedB&& o) noexcept { swap(o); }
  PackedB& operator=(PackedB&& o) noexcept {
    PackedB(std::move(o)).swap(*this);
    return *this;
  }
  ~PackedB();
  void swap(PackedB& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(type_, o.type_);
    std::swap(k_, o.k_);
    std::swap(n_, o.n_);
    std::swap(items_, o.items_);
    std::swap(bytes_, o.bytes_);
    std::swap(item_bytes_, o.item_bytes_);
  }

  GemmType type() const noexcept { return type_; }
  std::size_t k() const noexcept { return k_; }
  std::size_t n() const noexcept { return n_; }
  std::size_t items() const noexcept { return items_; }  // 1 when B is shared (stride_b == 0)
  std::size_t bytes() const noexcept { return bytes_; }
  bool empty() const noexcept { return !data_; }
  const std::byte* data() const noexcept { return data_.get(); }

 private:
  friend struct PackAccess;
  struct Free {
    void operator()(std::byte* p) const noexcept;
  };
  std::unique_ptr<std::byte, Free> data_;
  GemmType type_ = GemmType::f32_f32;
  std::size_t k_ = 0, n_ = 0, items_ = 0, bytes_ = 0, item_bytes_ = 0;
};

// Pack B for gemm calls with the same k, n, trans_b, batch and stride_b (others may differ).
// Throws Error(invalid_argument) for a bad geometry, Error(no_memory) when allocation fails.
PackedB pack_b(const Gemm& g, const bf16* b);
PackedB pack_b(const Gemm& g, const float* b);
PackedB pack_b(const Gemm& g, const int8_t* b, GemmType type = GemmType::s8s8_s32);

// GEMM. Throws Error(invalid_argument) for a bad geometry or a PackedB made for another one
// (nothing is written then), Error(no_memory) when scratch for packing B cannot be allocated
// (C may then be partly written).
void gemm(const Gemm& g, const bf16* a, const bf16* b, float* c, const Exec& ex = {});
void gemm(const Gemm& g, const float* a, const float* b, float* c, const Exec& ex = {});
void gemm(const Gemm& g, const int8_t* a, const int8_t* b, int32_t* c, const Exec& ex = {});
void gemm(const Gemm& g, const uint8_t* a, const int8_t* b, int32_t* c, const Exec& ex = {});
void gemm(const Gemm& g, const bf16* a, const PackedB& b, float* c, const Exec& ex = {});
void gemm(const Gemm& g, const float* a, const PackedB& b, float* c, const Exec& ex = {});
void gemm(const Gemm& g, const int8_t* a, const PackedB& b, int32_t* c, const Exec& ex = {});
void gemm(const Gemm& g, const uint8_t* a, const PackedB& b, int32_t* c, const Exec& ex = {});

// Batched vector operations on fp32, `count` vectors of length n; vector i of x starts at
// x + i·stride_x (likewise y, out). Sums accumulate in fp32 with several partial sums (not in
// index order). NaN propagates; max returns NaN when any element is NaN, -Inf for n == 0.
// out[i] = Σ_j x_i[j]·y_i[j]
void dot(std::size_t count, std::size_t n, const float* x, std::size_t stride_x, const float* y,
         std::size_t stride_y, float* out, const Exec& ex = {});
// y_i[j] += alpha · x_i[j]
void axpy(std::size_t count, std::size_t n, float alpha, const float* x, std::size_t stride_x,
          float* y, std::size_t stride_y, const Exec& ex = {});
// out[i] = Σ_j x_i[j]   and   out[i] = max_j x_i[j]   (rows of a matrix: stride_x = ld)
void row_sum(std::size_t count, std::size_t n, const float* x, std::size_t stride_x, float* out,
             const Exec& ex = {});
void row_max(std::size_t count, std::size_t n, const float* x, std::size_t stride_x, float* out,
             const Exec& ex = {});

}  // namespace myriad::kernels
