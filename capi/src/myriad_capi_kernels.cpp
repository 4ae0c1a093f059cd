// The C ABI of the batch compute kernels (myriad/kernels.hpp): argument translation, handle
// checks and error codes only — the kernels live in core/src/kernels.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#include "capi_internal.hpp"
#include "handle_table.hpp"
#include "myriad.h"
#include "myriad/errors.hpp"
#include "myriad/kernels.hpp"

namespace {

namespace k = myriad::kernels;
using myriad::Errc;

// ---- The C types mirror the C++ ones -----------------------------------------------------------
static_assert(MYRIAD_ISA_PORTABLE == static_cast<int>(k::Isa::portable) &&
              MYRIAD_ISA_AVX2 == static_cast<int>(k::Isa::avx2) &&
              MYRIAD_ISA_AVX512 == static_cast<int>(k::Isa::avx512) &&
              MYRIAD_ISA_AMX == static_cast<int>(k::Isa::amx));
static_assert(MYRIAD_GEMM_BF16_F32 == static_cast<int>(k::GemmType::bf16_f32) &&
              MYRIAD_GEMM_F32_F32 == static_cast<int>(k::GemmType::f32_f32) &&
              MYRIAD_GEMM_S8S8_S32 == static_cast<int>(k::GemmType::s8s8_s32) &&
              MYRIAD_GEMM_U8S8_S32 == static_cast<int>(k::GemmType::u8s8_s32));
// C passes bf16 as uint16_t; the kernels read the same bits through k::bf16.
static_assert(sizeof(k::bf16) == sizeof(uint16_t) && alignof(k::bf16) == alignof(uint16_t) &&
              std::is_standard_layout_v<k::bf16> && std::is_trivially_copyable_v<k::bf16>);
static_assert(MYRIAD_ENOTSUP == static_cast<int>(Errc::not_supported) &&
              MYRIAD_EINVAL == static_cast<int>(Errc::invalid_argument) &&
              MYRIAD_ENOMEM == static_cast<int>(Errc::no_memory));

// The first ABI versions of the structs: a smaller size field is refused.
constexpr size_t kGemmV1Size = offsetof(myriad_gemm, beta) + sizeof(float);
constexpr size_t kExecV1Size = offsetof(myriad_exec, max_tasks) + sizeof(uint32_t);

using myriad::capi::guarded;
using myriad::capi::to_status;

bool valid_type(int t) { return t >= MYRIAD_GEMM_BF16_F32 && t <= MYRIAD_GEMM_U8S8_S32; }

// A caller's myriad_gemm (of any version from the first on) as the C++ geometry.
myriad_status read_gemm(const myriad_gemm* g, k::Gemm* out) {
  if (!g || g->size < kGemmV1Size) return MYRIAD_EINVAL;
  myriad_gemm x;
  std::memset(&x, 0, sizeof x);
  std::memcpy(&x, g, std::min(g->size, sizeof x));
  out->batch = x.batch;
  out->m = x.m;
  out->n = x.n;
  out->k = x.k;
  out->lda = x.lda;
  out->ldb = x.ldb;
  out->ldc = x.ldc;
  out->stride_a = x.stride_a;
  out->stride_b = x.stride_b;
  out->stride_c = x.stride_c;
  out->trans_b = x.trans_b != 0;
  out->alpha = x.alpha;
  out->beta = x.beta;
  return MYRIAD_OK;
}

// NULL: the defaults. A zero runtime handle: the default (the calling task's runtime).
myriad_status read_exec(const myriad_exec* e, k::Exec* out) {
  if (!e) return MYRIAD_OK;
  if (e->size < kExecV1Size) return MYRIAD_EINVAL;
  myriad_exec x;
  std::memset(&x, 0, sizeof x);
  std::memcpy(&x, e, std::min(e->size, sizeof x));
  if (x.runtime.bits) {
    out->runtime = myriad::capi::lookup_runtime(x.runtime.bits);
    if (!out->runtime) return MYRIAD_EBADHANDLE;
  }
  out->serial = x.serial != 0;
  out->max_tasks = x.max_tasks;
  return MYRIAD_OK;
}

// Fills the first `size` bytes of a struct from a complete default `value`, zeroing any tail
// the library does not know, and sets its size field to `size`.
template <class T>
myriad_status init_struct(T* p, size_t size, size_t v1_size, const T& value) {
  if (!p || size < v1_size) return MYRIAD_EINVAL;
  std::memset(static_cast<void*>(p), 0, size);
  std::memcpy(static_cast<void*>(p), &value, std::min(size, sizeof(T)));
  p->size = size;
  return MYRIAD_OK;
}

// ---- Packed B: checked handles, pinned for the length of a GEMM (destroy meanwhile: busy) -------

using PackedTable = myriad::capi::HandleTable<k::PackedB, true>;
PackedTable& packed_bs() {
  static auto* t = new PackedTable();  // never destroyed: handles may be used at static exit
  return *t;
}

class PackedPin {
 public:
  explicit PackedPin(uint64_t bits) noexcept : bits_(bits), p_(packed_bs().pin(bits)) {}
  ~PackedPin() {
    if (p_) packed_bs().unpin(bits_);
  }
  PackedPin(const PackedPin&) = delete;
  PackedPin& operator=(const PackedPin&) = delete;
  const k::PackedB* get() const noexcept { return p_; }

 private:
  uint64_t bits_;
  k::PackedB* p_;
};

template <class T>
const T* as(const void* p) {
  return static_cast<const T*>(p);
}
template <class T>
T* as_mut(void* p) {
  return static_cast<T*>(p);
}
const k::bf16* as_bf16(const void* p) { return static_cast<const k::bf16*>(p); }

// The four typed entry points: read the geometry and the exec, then the C++ call.
template <class TA, class TB, class TC>
myriad_status typed_gemm(const myriad_gemm* gemm, const TA* a, const TB* b, TC* c,
                         const myriad_exec* exec) {
  return guarded([&] {
    k::Gemm g;
    k::Exec ex;
    if (myriad_status st = read_gemm(gemm, &g)) return st;
    if (myriad_status st = read_exec(exec, &ex)) return st;
    k::gemm(g, a, b, c, ex);
    return MYRIAD_OK;
  });
}

}  // namespace

extern "C" {

// ---- Paths -------------------------------------------------------------------------------------

myriad_isa myriad_kernels_isa(void) { return static_cast<myriad_isa>(k::active_isa()); }

myriad_isa myriad_kernels_best_isa(void) { return static_cast<myriad_isa>(k::best_isa()); }

myriad_status myriad_kernels_set_isa(myriad_isa isa) {
  const int v = static_cast<int>(isa);
  if (v < MYRIAD_ISA_PORTABLE || v > MYRIAD_ISA_AMX) return MYRIAD_EINVAL;
  return to_status(k::set_isa(static_cast<k::Isa>(v)));
}

void myriad_kernels_reset_isa(void) { k::reset_isa(); }

const char* myriad_kernels_isa_name(int isa) {
  if (isa < MYRIAD_ISA_PORTABLE || isa > MYRIAD_ISA_AMX) return "?";
  return k::isa_name(static_cast<k::Isa>(isa));
}

// ---- bf16 --------------------------------------------------------------------------------------

uint16_t myriad_bf16_from_float(float f) { return k::to_bf16(f).bits; }

float myriad_bf16_to_float(uint16_t h) { return k::to_float(k::bf16{h}); }

myriad_status myriad_bf16_from_float_n(const float* in, uint16_t* out, size_t n) {
  if (n && (!in || !out)) return MYRIAD_EINVAL;
  for (size_t i = 0; i < n; ++i) out[i] = k::to_bf16(in[i]).bits;
  return MYRIAD_OK;
}

myriad_status myriad_bf16_to_float_n(const uint16_t* in, float* out, size_t n) {
  if (n && (!in || !out)) return MYRIAD_EINVAL;
  for (size_t i = 0; i < n; ++i) out[i] = k::to_float(k::bf16{in[i]});
  return MYRIAD_OK;
}

// ---- Structs -----------------------------------------------------------------------------------

myriad_status myriad_gemm_init(myriad_gemm* gemm, size_t size) {
  myriad_gemm d;
  std::memset(&d, 0, sizeof d);
  d.batch = 1;
  d.alpha = 1.0f;
  d.beta = 0.0f;
  return init_struct(gemm, size, kGemmV1Size, d);
}

myriad_status myriad_gemm_set_dense(myriad_gemm* gemm) {
  k::Gemm g;
  if (myriad_status st = read_gemm(gemm, &g)) return st;
  g.set_dense();
  gemm->lda = g.lda;
  gemm->ldb = g.ldb;
  gemm->ldc = g.ldc;
  gemm->stride_a = g.stride_a;
  gemm->stride_b = g.stride_b;
  gemm->stride_c = g.stride_c;
  return MYRIAD_OK;
}

myriad_status myriad_exec_init(myriad_exec* exec, size_t size) {
  myriad_exec d;
  std::memset(&d, 0, sizeof d);
  return init_struct(exec, size, kExecV1Size, d);
}

// ---- GEMM --------------------------------------------------------------------------------------

myriad_status myriad_gemm_bf16(const myriad_gemm* gemm, const uint16_t* a, const uint16_t* b,
                               float* c, const myriad_exec* exec) {
  return typed_gemm(gemm, as_bf16(a), as_bf16(b), c, exec);
}

myriad_status myriad_gemm_f32(const myriad_gemm* gemm, const float* a, const float* b, float* c,
                              const myriad_exec* exec) {
  return typed_gemm(gemm, a, b, c, exec);
}

myriad_status myriad_gemm_s8s8(const myriad_gemm* gemm, const int8_t* a, const int8_t* b,
                               int32_t* c, const myriad_exec* exec) {
  return typed_gemm(gemm, a, b, c, exec);
}

myriad_status myriad_gemm_u8s8(const myriad_gemm* gemm, const uint8_t* a, const int8_t* b,
                               int32_t* c, const myriad_exec* exec) {
  return typed_gemm(gemm, a, b, c, exec);
}

// ---- Packed B ----------------------------------------------------------------------------------

myriad_status myriad_pack_b(const myriad_gemm* gemm, myriad_gemm_type type, const void* b,
                            myriad_packed_b* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  const int t = static_cast<int>(type);
  if (!valid_type(t)) return MYRIAD_EINVAL;
  return guarded([&]() -> myriad_status {
    k::Gemm g;
    if (myriad_status st = read_gemm(gemm, &g)) return st;
    k::PackedB pb;
    switch (static_cast<k::GemmType>(t)) {
      case k::GemmType::bf16_f32: pb = k::pack_b(g, as_bf16(b)); break;
      case k::GemmType::f32_f32: pb = k::pack_b(g, as<float>(b)); break;
      case k::GemmType::s8s8_s32:
      case k::GemmType::u8s8_s32:
        pb = k::pack_b(g, as<int8_t>(b), static_cast<k::GemmType>(t));
        break;
    }
    auto* p = new k::PackedB(std::move(pb));
    const uint64_t h = packed_bs().insert(p);
    if (!h) {
      delete p;
      return MYRIAD_ENOMEM;
    }
    out->bits = h;
    return MYRIAD_OK;
  });
}

myriad_status myriad_packed_b_destroy(myriad_packed_b pb) {
  k::PackedB* p = nullptr;
  switch (packed_bs().remove_if_idle(pb.bits, [](k::PackedB*) { return false; }, &p)) {
    case PackedTable::Removed::bad_handle: return MYRIAD_EBADHANDLE;
    case PackedTable::Removed::busy: return MYRIAD_EBUSY;
    case PackedTable::Removed::ok: break;
  }
  delete p;
  return MYRIAD_OK;
}

myriad_status myriad_packed_b_info(myriad_packed_b pb, myriad_gemm_type* type_out, size_t* k_out,
                                   size_t* n_out, size_t* items_out, size_t* bytes_out) {
  PackedPin pin(pb.bits);
  const k::PackedB* p = pin.get();
  if (!p) return MYRIAD_EBADHANDLE;
  if (type_out) *type_out = static_cast<myriad_gemm_type>(static_cast<int>(p->type()));
  if (k_out) *k_out = p->k();
  if (n_out) *n_out = p->n();
  if (items_out) *items_out = p->items();
  if (bytes_out) *bytes_out = p->bytes();
  return MYRIAD_OK;
}

myriad_status myriad_gemm_packed(const myriad_gemm* gemm, myriad_gemm_type type, const void* a,
                                 myriad_packed_b pb, void* c, const myriad_exec* exec) {
  const int t = static_cast<int>(type);
  if (!valid_type(t)) return MYRIAD_EINVAL;
  k::Gemm g;
  k::Exec ex;
  if (myriad_status st = read_gemm(gemm, &g)) return st;
  if (myriad_status st = read_exec(exec, &ex)) return st;
  PackedPin pin(pb.bits);
  const k::PackedB* p = pin.get();
  if (!p) return MYRIAD_EBADHANDLE;
  return guarded([&] {
    // The C++ call checks that the packed B was made for this type, k, n and batch.
    switch (static_cast<k::GemmType>(t)) {
      case k::GemmType::bf16_f32: k::gemm(g, as_bf16(a), *p, as_mut<float>(c), ex); break;
      case k::GemmType::f32_f32: k::gemm(g, as<float>(a), *p, as_mut<float>(c), ex); break;
      case k::GemmType::s8s8_s32: k::gemm(g, as<int8_t>(a), *p, as_mut<int32_t>(c), ex); break;
      case k::GemmType::u8s8_s32: k::gemm(g, as<uint8_t>(a), *p, as_mut<int32_t>(c), ex); break;
    }
    return MYRIAD_OK;
  });
}

// ---- Vector operations -------------------------------------------------------------------------

myriad_status myriad_dot(size_t count, size_t n, const float* x, size_t stride_x, const float* y,
                         size_t stride_y, float* out, const myriad_exec* exec) {
  return guarded([&] {
    k::Exec ex;
    if (myriad_status st = read_exec(exec, &ex)) return st;
    k::dot(count, n, x, stride_x, y, stride_y, out, ex);
    return MYRIAD_OK;
  });
}

myriad_status myriad_axpy(size_t count, size_t n, float alpha, const float* x, size_t stride_x,
                          float* y, size_t stride_y, const myriad_exec* exec) {
  return guarded([&] {
    k::Exec ex;
    if (myriad_status st = read_exec(exec, &ex)) return st;
    k::axpy(count, n, alpha, x, stride_x, y, stride_y, ex);
    return MYRIAD_OK;
  });
}

myriad_status myriad_row_sum(size_t count, size_t n, const float* x, size_t stride_x, float* out,
                             const myriad_exec* exec) {
  return guarded([&] {
    k::Exec ex;
    if (myriad_status st = read_exec(exec, &ex)) return st;
    k::row_sum(count, n, x, stride_x, out, ex);
    return MYRIAD_OK;
  });
}

myriad_status myriad_row_max(size_t count, size_t n, const float* x, size_t stride_x, float* out,
                             const myriad_exec* exec) {
  return guarded([&] {
    k::Exec ex;
    if (myriad_status st = read_exec(exec, &ex)) return st;
    k::row_max(count, n, x, stride_x, out, ex);
    return MYRIAD_OK;
  });
}

}  // extern "C"
