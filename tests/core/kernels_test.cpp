// Batch GEMM kernels (myriad/kernels.hpp): every path this machine runs (portable, avx2, avx512;
// amx where the CPU and kernel allow it), forced in turn with set_isa, against a double-precision
// reference, on many shapes and layouts, all four element types; bf16 conversion; bad input.
//
// Tolerances (float results). bf16 inputs have 8-bit significands, so a bf16·bf16 product needs
// at most 16 bits and is exact in fp32's 24: the only error is the fp32 accumulation. For fp32
// inputs each product may round once more (u = 2⁻²⁴ relative) unless an FMA keeps it exact. Any
// summation order (in k order, pairs then 32-element blocks, several partial sums) of k terms is
// within γ_(k−1)·Σ|a·b| of the exact sum (γ_n = n·u/(1−n·u)); the products' rounding, alpha·acc,
// beta·C and the final addition add one u each. So
//   |C − C_exact| ≤ γ_(k+3)·(|alpha|·Σ|a·b| + |beta·C₀|),
// and we allow 2·(k+3)·u·(…) (the 2 covers the 1/(1−n·u) factor with room to spare). Integer
// GEMMs are compared for exact equality. NaN and ±Inf are compared by class and sign.
//
// Every operand lives in its own allocation of exactly its extent (ASan sees any access past
// it); gaps inside the extent (ld > width, batch strides with gaps) hold NaN in A and B (an
// element outside [0, k) that reaches a product, e.g. multiplied by B's zero padding, makes
// the output NaN) and a sentinel bit pattern in C that must survive untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

#include "amx_emulator.hpp"
#include "kernels/kernel_table.hpp"
#include "myriad/blocking.hpp"
#include "myriad/kernels.hpp"
#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

namespace {

using myriad::Config;
using myriad::Errc;
using myriad::Error;
using myriad::Runtime;
using namespace myriad::kernels;

constexpr double kU = 1.0 / 16777216.0;  // 2^-24, fp32's unit roundoff

// ---- deterministic random numbers (splitmix64: the same values on every platform) ----------
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi].
  long range(long lo, long hi) { return lo + static_cast<long>(next() % uint64_t(hi - lo + 1)); }
  double unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  float sym(float r) { return static_cast<float>((unit() * 2 - 1) * r); }
};

// ---- an allocation of exactly `count` elements, starting `offset` bytes past 64-byte alignment
template <class T>
class Buf {
 public:
  Buf(std::size_t count, std::size_t offset_bytes) : count_(count), offset_(offset_bytes) {
    const std::size_t bytes = std::max<std::size_t>(1, offset_ + count * sizeof(T));
    raw_ = static_cast<std::byte*>(::operator new(bytes, std::align_val_t{64}));
    p_ = reinterpret_cast<T*>(raw_ + offset_);
  }
  ~Buf() { ::operator delete(raw_, std::align_val_t{64}); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  T* get() const { return p_; }
  T& operator[](std::size_t i) const { return p_[i]; }
  std::size_t size() const { return count_; }

 private:
  std::size_t count_, offset_;
  std::byte* raw_;
  T* p_;
};

template <class T>
uint64_t bits_of(T v) {
  uint64_t u = 0;
  std::memcpy(&u, &v, sizeof v);
  return u;
}

// ---- element types ---------------------------------------------------------------------------
// Fill modes: 0 random; 1 random among the extreme values (ints); 2 A = its most negative /
// largest value everywhere and B = −128; 3 the same with B = 127 (catches int16 saturation in
// pair sums, e.g. 255·127 + 255·127 > 32767).
template <GemmType T>
struct Tr;
template <>
struct Tr<GemmType::bf16_f32> {
  using A = bf16;
  using B = bf16;
  using C = float;
  static constexpr const char* name = "bf16";
  static constexpr bool kInt = false;
  static double da(A x) { return to_float(x); }
  static double db(B x) { return to_float(x); }
  static A ga(Rng& r, int) { return to_bf16(r.sym(2.0f)); }
  static B gb(Rng& r, int) { return to_bf16(r.sym(2.0f)); }
  static A gap_a() { return bf16{0x7fc1}; }  // NaN
  static B gap_b() { return bf16{0xffc3}; }  // NaN
  static A from_double_a(double v) { return to_bf16(static_cast<float>(v)); }
  static B from_double_b(double v) { return to_bf16(static_cast<float>(v)); }
  static PackedB pack(const Gemm& g, const B* b) { return pack_b(g, b); }
};
template <>
struct Tr<GemmType::f32_f32> {
  using A = float;
  using B = float;
  using C = float;
  static constexpr const char* name = "f32";
  static constexpr bool kInt = false;
  static double da(A x) { return x; }
  static double db(B x) { return x; }
  static A ga(Rng& r, int) { return r.sym(1.0f); }
  static B gb(Rng& r, int) { return r.sym(1.0f); }
  static A gap_a() { return std::numeric_limits<float>::quiet_NaN(); }
  static B gap_b() { return -std::numeric_limits<float>::quiet_NaN(); }
  static A from_double_a(double v) { return static_cast<float>(v); }
  static B from_double_b(double v) { return static_cast<float>(v); }
  static PackedB pack(const Gemm& g, const B* b) { return pack_b(g, b); }
};
template <class AT, GemmType GT>
struct TrInt {
  using A = AT;
  using B = int8_t;
  using C = int32_t;
  static constexpr bool kInt = true;
  static constexpr A amax = std::is_signed_v<AT> ? AT(-128) : AT(255);
  static double da(A x) { return x; }
  static double db(B x) { return x; }
  static A ga(Rng& r, int mode) {
    if (mode >= 2) return amax;
    if (mode == 1) {
      static constexpr int s[] = {-128, 127, -127, 0, 1, -1}, u[] = {255, 254, 0, 1, 128, 127};
      return static_cast<A>((std::is_signed_v<AT> ? s : u)[r.range(0, 5)]);
    }
    return static_cast<A>(std::is_signed_v<AT> ? r.range(-128, 127) : r.range(0, 255));
  }
  static B gb(Rng& r, int mode) {
    if (mode == 2) return -128;
    if (mode == 3) return 127;
    if (mode == 1) {
      static constexpr int s[] = {-128, 127, -127, 0, 1, -1};
      return static_cast<B>(s[r.range(0, 5)]);
    }
    return static_cast<B>(r.range(-128, 127));
  }
  static A gap_a() { return amax; }  // any value read by mistake changes an exact result
  static B gap_b() { return -128; }
  static A from_double_a(double v) { return static_cast<A>(v); }
  static B from_double_b(double v) { return static_cast<B>(v); }
  static PackedB pack(const Gemm& g, const B* b) { return pack_b(g, b, GT); }
};
template <>
struct Tr<GemmType::s8s8_s32> : TrInt<int8_t, GemmType::s8s8_s32> {
  static constexpr const char* name = "s8s8";
};
template <>
struct Tr<GemmType::u8s8_s32> : TrInt<uint8_t, GemmType::u8s8_s32> {
  static constexpr const char* name = "u8s8";
};

constexpr uint32_t kSentinelF = 0x7fa0deadu;  // a signalling NaN no kernel would produce
constexpr int32_t kSentinelI = 0x5eadbeef;

template <class C>
C sentinel() {
  if constexpr (std::is_same_v<C, float>) {
    float f;
    std::memcpy(&f, &kSentinelF, 4);
    return f;
  } else {
    return kSentinelI;
  }
}

// An element set to a special value after the random fill: A(b, i, kk) or op(B)(b, kk, j).
struct Special {
  char mat;  // 'A' or 'B'
  std::size_t b, r, c;
  double v;
};

// One GEMM call: geometry, layout and what to check.
struct Case {
  std::size_t batch = 1, m = 1, n = 1, k = 1;
  bool trans_b = false;
  std::size_t pad_a = 0, pad_b = 0, pad_c = 0;  // ld = row width + pad
  std::size_t gap_a = 0, gap_b = 0, gap_c = 0;  // batch stride = rows·ld + gap
  bool shared_b = false;                        // stride_b = 0
  std::size_t off_a = 0, off_b = 0, off_c = 0;  // bytes past 64-byte alignment
  float alpha = 1.0f, beta = 0.0f;
  bool garbage_c = false;  // C starts NaN (float) / INT32_MIN (int): beta == 0 must not read it
  int mode = 0;            // fill mode (Tr::ga)
  uint64_t seed_a = 1, seed_b = 2, seed_c = 3;
  std::vector<Special> specials;

  std::string label(const char* type) const {
    std::ostringstream o;
    o << type << " batch=" << batch << " m=" << m << " n=" << n << " k=" << k
      << " trans_b=" << trans_b << " pad=(" << pad_a << "," << pad_b << "," << pad_c
      << ") gap=(" << gap_a << "," << gap_b << "," << gap_c << ") shared_b=" << shared_b
      << " off=(" << off_a << "," << off_b << "," << off_c << ") alpha=" << alpha
      << " beta=" << beta << " garbage_c=" << garbage_c << " mode=" << mode
      << " isa=" << isa_name(active_isa());
    return o.str();
  }
};

std::size_t extent(std::size_t items, std::size_t stride, std::size_t rows, std::size_t ld,
                   std::size_t cols) {
  if (items == 0 || rows == 0 || cols == 0) return 0;
  return (items - 1) * stride + (rows - 1) * ld + cols;
}

// A, B and C for a Case, filled; run() calls the kernel, check() compares with the reference.
template <GemmType GT>
struct Operands {
  using T = Tr<GT>;
  using A = typename T::A;
  using B = typename T::B;
  using C = typename T::C;
  Case cs;
  Gemm g;
  std::size_t b_rows, b_cols;  // B as stored
  Buf<A> a;
  Buf<B> b;
  Buf<C> c;
  std::vector<C> c0;  // C before the call

  static Gemm make_gemm(const Case& cs) {
    Gemm g;
    g.batch = cs.batch;
    g.m = cs.m;
    g.n = cs.n;
    g.k = cs.k;
    g.trans_b = cs.trans_b;
    g.lda = cs.k + cs.pad_a;
    g.ldb = (cs.trans_b ? cs.k : cs.n) + cs.pad_b;
    g.ldc = cs.n + cs.pad_c;
    g.stride_a = cs.m * g.lda + cs.gap_a;
    g.stride_b = cs.shared_b ? 0 : (cs.trans_b ? cs.n : cs.k) * g.ldb + cs.gap_b;
    g.stride_c = cs.m * g.ldc + cs.gap_c;
    g.alpha = cs.alpha;
    g.beta = cs.beta;
    return g;
  }
  // Buffers are sized for max(batch, 1) items, so a batch-0 call has a C to leave alone.
  explicit Operands(const Case& c_)
      : cs(c_),
        g(make_gemm(c_)),
        b_rows(cs.trans_b ? cs.n : cs.k),
        b_cols(cs.trans_b ? cs.k : cs.n),
        a(extent(std::max<std::size_t>(cs.batch, 1), g.stride_a, cs.m, g.lda, cs.k), cs.off_a),
        b(extent(cs.shared_b ? 1 : std::max<std::size_t>(cs.batch, 1), g.stride_b, b_rows, g.ldb,
                 b_cols),
          cs.off_b),
        c(extent(std::max<std::size_t>(cs.batch, 1), g.stride_c, cs.m, g.ldc, cs.n), cs.off_c) {
    const std::size_t items = std::max<std::size_t>(cs.batch, 1);
    Rng ra(cs.seed_a), rb(cs.seed_b), rc(cs.seed_c);
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = T::gap_a();
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = T::gap_b();
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = sentinel<C>();
    for (std::size_t bi = 0; bi < items; ++bi)
      for (std::size_t i = 0; i < cs.m; ++i)
        for (std::size_t kk = 0; kk < cs.k; ++kk) a[a_index(bi, i, kk)] = T::ga(ra, cs.mode);
    for (std::size_t bi = 0; bi < (cs.shared_b ? 1 : items); ++bi)
      for (std::size_t kk = 0; kk < cs.k; ++kk)
        for (std::size_t j = 0; j < cs.n; ++j) b[b_index(bi, kk, j)] = T::gb(rb, cs.mode);
    for (std::size_t bi = 0; bi < items; ++bi)
      for (std::size_t i = 0; i < cs.m; ++i)
        for (std::size_t j = 0; j < cs.n; ++j) {
          C v;
          if constexpr (T::kInt)
            v = cs.garbage_c ? std::numeric_limits<int32_t>::min()
                             : static_cast<int32_t>(rc.range(-100000, 100000));
          else
            v = cs.garbage_c ? std::numeric_limits<float>::quiet_NaN() : rc.sym(4.0f);
          c[c_index(bi, i, j)] = v;
        }
    for (const Special& s : cs.specials) {
      if (s.mat == 'A')
        a[a_index(s.b, s.r, s.c)] = T::from_double_a(s.v);
      else
        b[b_index(s.b, s.r, s.c)] = T::from_double_b(s.v);
    }
    c0.assign(c.get(), c.get() + c.size());
  }

  std::size_t a_index(std::size_t bi, std::size_t i, std::size_t kk) const {
    return bi * g.stride_a + i * g.lda + kk;
  }
  // op(B)(kk, j) of item bi.
  std::size_t b_index(std::size_t bi, std::size_t kk, std::size_t j) const {
    const std::size_t base = cs.shared_b ? 0 : bi * g.stride_b;
    return base + (cs.trans_b ? j * g.ldb + kk : kk * g.ldb + j);
  }
  std::size_t c_index(std::size_t bi, std::size_t i, std::size_t j) const {
    return bi * g.stride_c + i * g.ldc + j;
  }

  void run(const Exec& ex = {}) { gemm(g, a.get(), b.get(), c.get(), ex); }
  void run_packed(const PackedB& pb, const Exec& ex = {}) { gemm(g, a.get(), pb, c.get(), ex); }
  PackedB pack() const { return T::pack(g, b.get()); }

  // Compares C with the double-precision reference; gaps must hold the sentinel still.
  // Reports at most a few elements; returns whether all matched.
  bool check(const std::string& extra = "") const {
    const std::size_t m = cs.m, n = cs.n, k = cs.k;
    std::vector<char> valid(c.size(), 0);
    std::vector<double> ad(m * k), bt(n * k);
    std::ostringstream errs;
    std::size_t bad = 0;
    auto report = [&](std::size_t idx, const std::string& what) {
      if (++bad <= 4) errs << "\n  C[" << idx << "]: " << what;
    };
    for (std::size_t bi = 0; bi < cs.batch; ++bi) {
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t kk = 0; kk < k; ++kk) ad[i * k + kk] = T::da(a[a_index(bi, i, kk)]);
      for (std::size_t kk = 0; kk < k; ++kk)
        for (std::size_t j = 0; j < n; ++j) bt[j * k + kk] = T::db(b[b_index(bi, kk, j)]);
      for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = 0; j < n; ++j) {
          const std::size_t idx = c_index(bi, i, j);
          valid[idx] = 1;
          const double* ar = &ad[i * k];
          const double* br = &bt[j * k];
          const C got = c[idx];
          if constexpr (T::kInt) {
            int64_t s = 0;
            for (std::size_t kk = 0; kk < k; ++kk)
              s += static_cast<int64_t>(ar[kk]) * static_cast<int64_t>(br[kk]);
            // int32 accumulation wraps (documented).
            const auto acc = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(s)));
            int32_t want;
            if (cs.alpha == 1.0f && cs.beta == 0.0f) {
              want = acc;
            } else if (cs.alpha == 1.0f && cs.beta == 1.0f) {
              want = static_cast<int32_t>(static_cast<uint32_t>(c0[idx]) +
                                          static_cast<uint32_t>(acc));
            } else {
              // The test's alpha/beta have few significant bits: exact in double; then round
              // to nearest even and saturate.
              const double v = double(cs.alpha) * acc +
                               (cs.beta == 0.0f ? 0.0 : double(cs.beta) * c0[idx]);
              if (v >= 2147483647.5)
                want = std::numeric_limits<int32_t>::max();
              else if (v <= -2147483648.5)
                want = std::numeric_limits<int32_t>::min();
              else
                want = static_cast<int32_t>(std::nearbyint(v));
            }
            if (got != want) {
              std::ostringstream o;
              o << "got " << got << " want " << want << " (item " << bi << ", " << i << ", " << j
                << ")";
              report(idx, o.str());
            }
          } else {
            double s = 0, sa = 0;
            for (std::size_t kk = 0; kk < k; ++kk) {
              const double p = ar[kk] * br[kk];
              s += p;
              sa += std::fabs(p);
            }
            const double cterm = cs.beta == 0.0f ? 0.0 : double(cs.beta) * double(c0[idx]);
            const double want = double(cs.alpha) * s + cterm;
            bool ok;
            if (std::isnan(want))
              ok = std::isnan(got);
            else if (std::isinf(want))
              ok = double(got) == want;
            else
              ok = std::isfinite(got) &&
                   std::fabs(double(got) - want) <=
                       2.0 * double(k + 3) * kU *
                           (std::fabs(double(cs.alpha)) * sa + std::fabs(cterm));
            if (!ok) {
              std::ostringstream o;
              o.precision(9);
              o << "got " << got << " want " << want << " (item " << bi << ", " << i << ", " << j
                << ", sum|ab|=" << sa << ")";
              report(idx, o.str());
            }
          }
        }
    }
    for (std::size_t idx = 0; idx < c.size(); ++idx)
      if (!valid[idx] && bits_of(c[idx]) != bits_of(c0[idx]))
        report(idx, "outside the matrix (ld/stride gap), overwritten");
    if (bad) {
      ADD_FAILURE() << cs.label(T::name) << extra << ": " << bad << " wrong element(s)"
                    << errs.str();
      return false;
    }
    return true;
  }

  // True when C is exactly as it was before the call (nothing written).
  bool unchanged() const {
    for (std::size_t i = 0; i < c.size(); ++i)
      if (bits_of(c[i]) != bits_of(c0[i])) return false;
    return true;
  }
};

template <GemmType GT>
bool run_case(const Case& cs, bool packed = false, const Exec& ex = {}) {
  Operands<GT> op(cs);
  if (packed) {
    PackedB pb = op.pack();
    op.run_packed(pb, ex);
  } else {
    op.run(ex);
  }
  return op.check(packed ? " packed" : "");
}

// ---- the paths ------------------------------------------------------------------------------

// The AMX path's own code on a CPU that hides AMX: the test-only SIGILL-trapping emulator
// (amx_emulator.hpp) and set_isa_unchecked. A parameter value of its own, so that the real
// `amx` instantiation still reports a skip on such machines and this one on machines with AMX.
constexpr Isa kAmxEmulated = static_cast<Isa>(0x103);

// Reduced volume: sanitized builds (the same code ~10-50x slower) and the emulated AMX path (a
// signal per tile instruction). The checks are the same; the largest sizes are left out.
bool g_light = myriad::test::kSanitized;
bool light() { return g_light; }

// The path a parameter runs.
Isa path_of(Isa param) { return param == kAmxEmulated ? Isa::amx : param; }

// Makes the parameter's path the active one (set_isa, or the emulator for kAmxEmulated).
Errc force_path(Isa param) {
  if (param != kAmxEmulated) return set_isa(param);
  amx_emulator::install();
  myriad::kernels::detail::set_isa_unchecked(Isa::amx);
  return Errc::ok;
}

// A path the machine cannot run is skipped with the reason, never passed silently.
void force_isa_or_skip(Isa isa, bool* skipped) {
  *skipped = false;
  if (isa == kAmxEmulated && amx_emulator::real_amx()) {
    *skipped = true;
    GTEST_SKIP() << "AMX runs natively on this CPU: the amx instantiation covers it";
  }
  if (isa == kAmxEmulated) {
    ASSERT_EQ(force_path(isa), Errc::ok);
    ASSERT_EQ(active_isa(), Isa::amx);
    return;
  }
  const Errc e = set_isa(isa);
  if (e == Errc::not_supported) {
    *skipped = true;
    if (isa == Isa::amx)
      GTEST_SKIP() << "AMX not available on this CPU: CPUID/permission (best path here: "
                   << isa_name(best_isa()) << ")";
    GTEST_SKIP() << isa_name(isa) << " not available on this CPU (best path here: "
                 << isa_name(best_isa()) << ")";
  }
  ASSERT_EQ(e, Errc::ok);
  ASSERT_EQ(active_isa(), isa);
}

std::string isa_param_name(const ::testing::TestParamInfo<Isa>& info) {
  return info.param == kAmxEmulated ? "amx_emulated" : isa_name(info.param);
}

class KernelsGemm : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    g_light = myriad::test::kSanitized || GetParam() == kAmxEmulated;
    bool skipped;
    force_isa_or_skip(GetParam(), &skipped);
  }
  void TearDown() override {
    reset_isa();
    g_light = myriad::test::kSanitized;
  }
};

// The emulated AMX path in a sanitized build costs a signal and an instrumented emulation per
// tile instruction: there the big sweeps are left to the native paths (and to KernelsAmx), with
// the reason given.
#define KERNELS_SKIP_EMULATED_IN_SANITIZED_BUILD()                         \
  do {                                                                    \
    if (myriad::test::kSanitized && GetParam() == kAmxEmulated)           \
      GTEST_SKIP() << "emulated AMX in a sanitized build: this sweep runs " \
                      "on the native paths";                              \
  } while (0)

INSTANTIATE_TEST_SUITE_P(, KernelsGemm,
                         ::testing::Values(Isa::portable, Isa::avx2, Isa::avx512, Isa::amx,
                                           kAmxEmulated),
                         isa_param_name);

const std::size_t kSizes[] = {1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 130};

struct Shape {
  std::size_t m, n, k;
};

// Each dimension over the whole list with the other two at awkward values, the diagonal, a
// cross product of edge sizes, and random shapes from a fixed seed.
// Reduced runs (light(): sanitized builds, emulated AMX) keep the sweeps and edge sizes but
// leave out the largest cubes and most random shapes.
std::vector<Shape> shapes() {
  const bool small = light();
  std::vector<Shape> v;
  for (std::size_t x : kSizes) {
    v.push_back({x, 17, 33});
    v.push_back({17, x, 33});
    v.push_back({17, 33, x});
    if (!small || x <= 65) v.push_back({x, x, x});
  }
  const std::size_t edge[] = {1, 16, 31, 65};
  for (std::size_t m : edge)
    for (std::size_t n : edge)
      for (std::size_t k : edge)
        if (!small || m * n * k <= 16 * 31 * 65) v.push_back({m, n, k});
  Rng r(20240611);
  const long randoms = small ? 4 : 24;
  for (long i = 0; i < randoms; ++i)
    v.push_back({std::size_t(r.range(1, 130)), std::size_t(r.range(1, 130)),
                 std::size_t(r.range(1, 130))});
  return v;
}

template <GemmType GT>
void shape_sweep() {
  int failures = 0;
  uint64_t seed = 100;
  int si = 0;
  for (const Shape& s : shapes())
    for (bool tb : {false, true}) {
      // Reduced runs: one B layout per shape, alternating.
      if (light() && tb != (si++ % 2 == 1)) continue;
      Case cs;
      cs.m = s.m;
      cs.n = s.n;
      cs.k = s.k;
      cs.trans_b = tb;
      cs.seed_a = ++seed;
      cs.seed_b = ++seed;
      if (!run_case<GT>(cs) && ++failures >= 5) return;
    }
}

TEST_P(KernelsGemm, ShapesBf16) {
  KERNELS_SKIP_EMULATED_IN_SANITIZED_BUILD();
  shape_sweep<GemmType::bf16_f32>();
}
TEST_P(KernelsGemm, ShapesF32) {
  KERNELS_SKIP_EMULATED_IN_SANITIZED_BUILD();
  shape_sweep<GemmType::f32_f32>();
}
TEST_P(KernelsGemm, ShapesS8S8) {
  KERNELS_SKIP_EMULATED_IN_SANITIZED_BUILD();
  shape_sweep<GemmType::s8s8_s32>();
}
TEST_P(KernelsGemm, ShapesU8S8) {
  KERNELS_SKIP_EMULATED_IN_SANITIZED_BUILD();
  shape_sweep<GemmType::u8s8_s32>();
}

struct AlphaBeta {
  float alpha, beta;
  bool garbage_c;
};
// Float: plain, scaled with NaN already in C (beta == 0 never reads C), accumulate, general.
const AlphaBeta kFloatAB[] = {{1, 0, false}, {2.5f, 0, true}, {1, 1, false},
                              {-0.5f, 1.5f, false}, {0, 2, false}, {1, 0, true}};
// Int: exact paths (1,0) and (1,1); 2.5 and 0.5 give ties (odd accumulators) that must round
// to even; ±1e6 saturates; (1,0) with INT32_MIN in C must overwrite it.
const AlphaBeta kIntAB[] = {{1, 0, true},     {1, 1, false},     {2.5f, -1, false},
                            {0.5f, 0, false}, {-0.75f, 0.5f, false}, {1e6f, 0, false},
                            {-1e6f, 1, false}, {3, 0, true}};

template <GemmType GT>
const AlphaBeta* ab_list(std::size_t* count) {
  if constexpr (Tr<GT>::kInt) {
    *count = std::size(kIntAB);
    return kIntAB;
  } else {
    *count = std::size(kFloatAB);
    return kFloatAB;
  }
}

// Layouts: padded leading dimensions, batch strides with gaps, shared B, trans_b, misaligned
// pointers (one element; for the int8 types also odd byte offsets — float and bf16 pointers
// must stay aligned to their type), batch 0/1/>1, plain and prepacked B.
template <GemmType GT>
void layouts() {
  using T = Tr<GT>;
  const std::size_t ea = sizeof(typename T::A), eb = sizeof(typename T::B),
                    ec = sizeof(typename T::C);
  const bool bytes_ok = ea == 1;  // odd byte offsets only where the element type allows them
  const Shape shapes_[] = {{17, 33, 31}, {1, 130, 2}, {16, 16, 16}, {65, 17, 64}, {33, 47, 65}};
  std::size_t nab;
  const AlphaBeta* abs_ = ab_list<GT>(&nab);
  int failures = 0, idx = 0;
  for (const Shape& s : shapes_) {
    if (light() && &s - shapes_ >= 3) break;
    for (int v = 0; v < 7; ++v)
      for (bool packed : {false, true}) {
        Case cs;
        cs.m = s.m;
        cs.n = s.n;
        cs.k = s.k;
        const AlphaBeta& ab = abs_[std::size_t(idx++) % nab];
        cs.alpha = ab.alpha;
        cs.beta = ab.beta;
        cs.garbage_c = ab.garbage_c;
        cs.seed_a = 1000 + std::size_t(idx);
        switch (v) {
          case 0:  // batch > 1, padded, gaps, one element off alignment
            cs.batch = 3;
            cs.pad_a = 3, cs.pad_b = 5, cs.pad_c = 7;
            cs.gap_a = 11, cs.gap_b = 13, cs.gap_c = 17;
            cs.off_a = ea, cs.off_b = eb, cs.off_c = ec;
            break;
          case 1:  // shared B, trans_b
            cs.batch = 4;
            cs.shared_b = true;
            cs.trans_b = true;
            cs.pad_a = 1, cs.pad_b = 2, cs.pad_c = 1;
            cs.gap_c = 5;
            cs.off_b = eb;
            break;
          case 2:  // trans_b with gaps, odd byte offsets where allowed
            cs.batch = 2;
            cs.trans_b = true;
            cs.pad_b = 9, cs.gap_a = 1, cs.gap_b = 3, cs.gap_c = 2;
            cs.off_a = bytes_ok ? 3 : ea, cs.off_b = bytes_ok ? 1 : eb, cs.off_c = ec;
            break;
          case 3:  // batch 1 with (ignored) strides and padding
            cs.pad_a = 16, cs.pad_b = 16, cs.pad_c = 16;
            cs.off_a = bytes_ok ? 1 : 0;
            break;
          case 4:  // batch 0: nothing is written
            cs.batch = 0;
            cs.pad_c = 2;
            break;
          case 5:  // shared B, not transposed, dense A/C
            cs.batch = 3;
            cs.shared_b = true;
            cs.off_c = ec;
            break;
          case 6:  // many small items
            cs.batch = 9;
            cs.gap_a = 7, cs.gap_b = 64, cs.gap_c = 31;
            cs.off_a = bytes_ok ? 5 : 2 * ea;
            break;
        }
        if (!run_case<GT>(cs, packed) && ++failures >= 5) return;
      }
  }
}

TEST_P(KernelsGemm, LayoutsBf16) { layouts<GemmType::bf16_f32>(); }
TEST_P(KernelsGemm, LayoutsF32) { layouts<GemmType::f32_f32>(); }
TEST_P(KernelsGemm, LayoutsS8S8) { layouts<GemmType::s8s8_s32>(); }
TEST_P(KernelsGemm, LayoutsU8S8) { layouts<GemmType::u8s8_s32>(); }

// Every alpha/beta pair on a few shapes, with both B layouts.
template <GemmType GT>
void alpha_beta(int mode) {
  std::size_t nab;
  const AlphaBeta* abs_ = ab_list<GT>(&nab);
  const Shape shapes_[] = {{17, 33, 31}, {2, 20, 5}, {16, 64, 130}};
  for (std::size_t i = 0; i < nab; ++i)
    for (const Shape& s : shapes_)
      for (bool tb : {false, true}) {
        if (light() && s.k == 130) continue;
        Case cs;
        cs.batch = 2;
        cs.m = s.m, cs.n = s.n, cs.k = s.k;
        cs.trans_b = tb;
        cs.gap_c = 3;
        cs.alpha = abs_[i].alpha, cs.beta = abs_[i].beta, cs.garbage_c = abs_[i].garbage_c;
        cs.mode = mode;
        run_case<GT>(cs);
      }
}

TEST_P(KernelsGemm, AlphaBetaBf16) { alpha_beta<GemmType::bf16_f32>(0); }
TEST_P(KernelsGemm, AlphaBetaF32) { alpha_beta<GemmType::f32_f32>(0); }
TEST_P(KernelsGemm, AlphaBetaS8S8) {
  alpha_beta<GemmType::s8s8_s32>(0);
  alpha_beta<GemmType::s8s8_s32>(1);
}
TEST_P(KernelsGemm, AlphaBetaU8S8) {
  alpha_beta<GemmType::u8s8_s32>(0);
  alpha_beta<GemmType::u8s8_s32>(1);
}

// int8 extremes: 255 and −128 everywhere (every pair sum far beyond int16), and random
// extremes, on K tails of every length modulo the 4-element groups and the 64-element tiles.
template <GemmType GT>
void int_extremes() {
  const std::size_t ks[] = {1, 2, 3, 4, 5, 63, 64, 65, 130, 1000};
  for (int mode : {1, 2, 3})
    for (std::size_t k : ks)
      for (bool tb : {false, true}) {
        Case cs;
        cs.m = 3, cs.n = 17, cs.k = k;
        cs.trans_b = tb;
        cs.mode = mode;
        cs.seed_a = k;
        run_case<GT>(cs);
      }
}
TEST_P(KernelsGemm, ExtremesS8S8) { int_extremes<GemmType::s8s8_s32>(); }
TEST_P(KernelsGemm, ExtremesU8S8) { int_extremes<GemmType::u8s8_s32>(); }

// K > 131,072 wraps the int32 accumulator (documented): (−128)·(−128)·140,000 = 2,293,760,000
// → −2,001,207,296; 255·(−128)·140,000 → −274,632,704.
TEST_P(KernelsGemm, Int32AccumulationWraps) {
  KERNELS_SKIP_EMULATED_IN_SANITIZED_BUILD();
  for (bool tb : {false, true}) {
    if (light()) break;  // the explicit 1×1 cases below suffice there
    Case cs;
    cs.m = 2, cs.n = 3, cs.k = 140000;
    cs.trans_b = tb;
    cs.mode = 2;
    run_case<GemmType::s8s8_s32>(cs);
    run_case<GemmType::u8s8_s32>(cs);
  }
  Operands<GemmType::s8s8_s32> op([] {
    Case cs;
    cs.m = 1, cs.n = 1, cs.k = 140000, cs.mode = 2;
    return cs;
  }());
  op.run();
  EXPECT_EQ(op.c[0], -2001207296);
  Operands<GemmType::u8s8_s32> ou([] {
    Case cs;
    cs.m = 1, cs.n = 1, cs.k = 140000, cs.mode = 2;
    return cs;
  }());
  ou.run();
  EXPECT_EQ(ou.c[0], -274632704);
}

// NaN and Inf propagate where IEEE says, and only there: +Inf in B's last column (n not a
// multiple of 16, so the panel has zero padding next to it) and in the last K row (K tail of
// a pair/tile); a zero in A against it gives NaN (Inf·0); NaN in one A row poisons that row.
// Every other output stays finite, and the NaN in the ld/stride gaps never gets in.
template <GemmType GT>
void nan_inf() {
  const double inf = std::numeric_limits<double>::infinity();
  const Shape shapes_[] = {{6, 17, 37}, {6, 33, 31}, {7, 20, 64}, {6, 1, 3}, {6, 130, 65}};
  for (const Shape& s : shapes_)
    for (bool tb : {false, true})
      for (bool packed : {false, true}) {
        Case cs;
        cs.batch = 2;
        cs.m = s.m, cs.n = s.n, cs.k = s.k;
        cs.trans_b = tb;
        cs.pad_a = 3, cs.pad_b = 1, cs.pad_c = 2, cs.gap_a = 5, cs.gap_b = 2, cs.gap_c = 1;
        const std::size_t kinf = s.k / 2, klast = s.k - 1, j = s.n - 1;
        for (std::size_t bi = 0; bi < 2; ++bi) {
          cs.specials.push_back({'B', bi, kinf, j, inf});
          cs.specials.push_back({'A', bi, 0, kinf, 0.0});   // Inf·0 → NaN at (0, j)
          cs.specials.push_back({'A', bi, 1, kinf, 1.5});   // → +Inf at (1, j)
          cs.specials.push_back({'A', bi, 2, kinf, -0.5});  // → −Inf at (2, j)
          cs.specials.push_back({'A', bi, 3, s.k / 3, std::nan("")});  // row 3 all NaN
          if (klast != kinf) {
            cs.specials.push_back({'B', bi, klast, 0, -inf});  // column 0: −Inf·a
            cs.specials.push_back({'A', bi, 4, klast, 0.0});   // (4, 0) NaN
          }
        }
        run_case<GT>(cs, packed);
        // And with a scaling epilogue: alpha·Inf stays Inf, beta·C adds finite values.
        cs.alpha = 2.0f, cs.beta = 1.0f;
        run_case<GT>(cs, packed);
      }
  // The expected classes spelled out once (the reference above derives them the same way).
  Case cs;
  cs.m = 3, cs.n = 17, cs.k = 5;
  cs.specials = {
      {'B', 0, 4, 16, inf}, {'A', 0, 0, 4, 0.0}, {'A', 0, 1, 4, 1.0}, {'A', 0, 2, 4, -1.0}};
  Operands<GT> op(cs);
  op.run();
  EXPECT_TRUE(std::isnan(op.c[16]));
  EXPECT_EQ(op.c[17 + 16], std::numeric_limits<float>::infinity());
  EXPECT_EQ(op.c[34 + 16], -std::numeric_limits<float>::infinity());
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t jj = 0; jj < 16; ++jj) EXPECT_TRUE(std::isfinite(op.c[i * 17 + jj]));
}
TEST_P(KernelsGemm, NanInfBf16) { nan_inf<GemmType::bf16_f32>(); }
TEST_P(KernelsGemm, NanInfF32) { nan_inf<GemmType::f32_f32>(); }

// K == 0: C = beta·C; beta == 0 overwrites NaN with zeros. A and B may be null.
template <GemmType GT>
void zero_k() {
  using C = typename Tr<GT>::C;
  for (float beta : {0.0f, 2.0f, -1.0f})
    for (bool tb : {false, true}) {
      Case cs;
      cs.batch = 3, cs.m = 5, cs.n = 19, cs.k = 0;
      cs.trans_b = tb;
      cs.pad_c = 3, cs.gap_c = 2;
      cs.alpha = Tr<GT>::kInt ? 2.5f : 1.5f;
      cs.beta = beta;
      cs.garbage_c = beta == 0.0f;
      Operands<GT> op(cs);
      gemm(op.g, static_cast<const typename Tr<GT>::A*>(nullptr),
           static_cast<const typename Tr<GT>::B*>(nullptr), op.c.get());
      op.check(" (null A and B)");
      if (beta == 0.0f) {
        EXPECT_EQ(op.c[0], C(0));
      }
    }
}
TEST_P(KernelsGemm, ZeroKBf16) { zero_k<GemmType::bf16_f32>(); }
TEST_P(KernelsGemm, ZeroKF32) { zero_k<GemmType::f32_f32>(); }
TEST_P(KernelsGemm, ZeroKS8S8) { zero_k<GemmType::s8s8_s32>(); }
TEST_P(KernelsGemm, ZeroKU8S8) { zero_k<GemmType::u8s8_s32>(); }

// Large items: several row blocks and column blocks of the driver, with partial edge blocks.
// Sizes from its L2 budget: at 22,000 bytes of K per row a block is 16 rows × 32 columns, so
// 17 × 33 is 2 × 2 blocks with edges of one; at small K 256 × 512, so 300 × 600 is 2 × 2 with
// edges of 44 and 88. Covered: per-item scratch packing, a shared B, prepacked B (its panel
// and column-sum offsets per column block), and calls split into tasks whose ranges begin
// inside items and column blocks.
template <GemmType GT>
void blocking() {
  const std::size_t es = sizeof(typename Tr<GT>::A);
  const Shape deep{17, 33, 22000 / es}, wide{300, 600, 16};
  // Reduced runs: only the cheap wide shape, at its smallest (edges of one).
  const bool small = light();
  Runtime rt(Config{.procs = 2});
  auto in_task = [&](Operands<GT>& op, bool packed, const char* what) {
    std::exception_ptr err;
    rt.spawn([&] {
        try {
          if (packed)
            op.run_packed(op.pack());
          else
            op.run();
        } catch (...) {
          err = std::current_exception();
        }
      }).join();
    ASSERT_FALSE(err);
    op.check(what);
  };
  for (Shape s : {deep, wide}) {
    if (small && s.k != 16) continue;
    if (small) s.m = 257, s.n = 513;
    Case cs;
    cs.m = s.m, cs.n = s.n, cs.k = s.k;
    cs.pad_a = 1, cs.pad_c = 3;
    {  // two items, each packed by the tasks column block by column block
      Case c2 = cs;
      c2.batch = 2, c2.trans_b = s.k > 16;
      Operands<GT> op(c2);
      in_task(op, false, " (in a task of a 2-proc runtime)");
    }
    {  // prepacked, alpha/beta
      Case c2 = cs;
      c2.trans_b = s.k == 16, c2.alpha = 0.5f, c2.beta = 1.0f;
      Operands<GT> op(c2);
      in_task(op, true, " (prepacked, in a task of a 2-proc runtime)");
    }
    if (small) continue;
    {  // shared B, serial
      Case c2 = cs;
      c2.batch = 2, c2.shared_b = true;
      run_case<GT>(c2, false);
    }
  }
}
TEST_P(KernelsGemm, BlockingBf16) {
  KERNELS_SKIP_EMULATED_IN_SANITIZED_BUILD();
  blocking<GemmType::bf16_f32>();
}
TEST_P(KernelsGemm, BlockingF32) {
  KERNELS_SKIP_EMULATED_IN_SANITIZED_BUILD();
  blocking<GemmType::f32_f32>();
}
TEST_P(KernelsGemm, BlockingS8S8) {
  KERNELS_SKIP_EMULATED_IN_SANITIZED_BUILD();
  blocking<GemmType::s8s8_s32>();
}
TEST_P(KernelsGemm, BlockingU8S8) {
  KERNELS_SKIP_EMULATED_IN_SANITIZED_BUILD();
  blocking<GemmType::u8s8_s32>();
}

// PackedB: packed once, then several calls that differ in everything the packing does not fix
// (A, m, lda, C, ldc, strides of A and C, alpha, beta, offsets, Exec); packed under another
// path than the one that uses it, and the bytes of a pack do not depend on the path.
template <GemmType GT>
void packed_reuse(Isa here) {
  for (bool tb : {false, true})
    for (bool shared : {false, true}) {
      Case base;
      base.batch = 3, base.m = 9, base.n = 37, base.k = 45;
      base.trans_b = tb;
      base.shared_b = shared;
      base.pad_b = 3, base.gap_b = 4;
      base.seed_b = 4242;
      // Pack under the portable path; use under `here`.
      ASSERT_EQ(set_isa(Isa::portable), Errc::ok);
      Operands<GT> first(base);
      PackedB pb = first.pack();
      PackedB pb_portable = first.pack();
      ASSERT_EQ(set_isa(best_isa()), Errc::ok);
      PackedB pb_best = first.pack();
      ASSERT_EQ(pb_portable.bytes(), pb_best.bytes());
      EXPECT_EQ(0, std::memcmp(pb_portable.data(), pb_best.data(), pb_best.bytes()))
          << "packed bytes depend on the path";
      ASSERT_EQ(force_path(here), Errc::ok);
      EXPECT_EQ(pb.type(), GT);
      EXPECT_EQ(pb.k(), base.k);
      EXPECT_EQ(pb.n(), base.n);
      EXPECT_EQ(pb.items(), shared ? 1u : 3u);
      EXPECT_FALSE(pb.empty());
      EXPECT_EQ(reinterpret_cast<uintptr_t>(pb.data()) % 64, 0u);
      Runtime rt(Config{.procs = 2});
      for (int call = 0; call < 4; ++call) {
        Case cs = base;
        cs.m = std::size_t(1 + call * 11);
        cs.pad_a = std::size_t(call), cs.pad_c = std::size_t(2 * call);
        cs.gap_a = std::size_t(call * 3), cs.gap_c = 1;
        cs.off_a = std::size_t(call % 2) * sizeof(typename Tr<GT>::A);
        cs.seed_a = 500 + std::size_t(call), cs.seed_c = 600 + std::size_t(call);
        const AlphaBeta ab[] = {{1, 0, true}, {2.5f, -1, false}, {1, 1, false}, {0.5f, 0, false}};
        cs.alpha = ab[call].alpha, cs.beta = ab[call].beta, cs.garbage_c = ab[call].garbage_c;
        Operands<GT> op(cs);
        if (call == 3) {
          // The same PackedB read by a call split into tasks.
          op.run_packed(pb, Exec{.runtime = &rt, .max_tasks = 4});
        } else {
          op.run_packed(pb);
        }
        op.check(" (PackedB reused, call " + std::to_string(call) + ")");
      }
    }
}
TEST_P(KernelsGemm, PackedReuseBf16) { packed_reuse<GemmType::bf16_f32>(GetParam()); }
TEST_P(KernelsGemm, PackedReuseF32) { packed_reuse<GemmType::f32_f32>(GetParam()); }
TEST_P(KernelsGemm, PackedReuseS8S8) { packed_reuse<GemmType::s8s8_s32>(GetParam()); }
TEST_P(KernelsGemm, PackedReuseU8S8) { packed_reuse<GemmType::u8s8_s32>(GetParam()); }

// A PackedB made under this path used under the portable one.
TEST_P(KernelsGemm, PackedHereUsedUnderPortable) {
  Case cs;
  cs.batch = 2, cs.m = 13, cs.n = 50, cs.k = 70, cs.trans_b = true;
  Operands<GemmType::bf16_f32> op(cs);
  PackedB pb = op.pack();
  ASSERT_EQ(set_isa(Isa::portable), Errc::ok);
  op.run_packed(pb);
  const std::string where =
      " (packed under " + std::string(isa_name(path_of(GetParam()))) + ", run under portable)";
  op.check(where);
  Operands<GemmType::u8s8_s32> oi(cs);
  ASSERT_EQ(force_path(GetParam()), Errc::ok);
  PackedB pi = oi.pack();
  ASSERT_EQ(set_isa(Isa::portable), Errc::ok);
  oi.run_packed(pi);
  oi.check(where);
}

// Denormals. fp32: kept on every path (no path turns on FTZ/DAZ for fp32, and AMX has no fp32
// tiles). bf16: kept on the vector paths; the AMX unit treats denormal inputs as zero and
// flushes denormal results (documented), so there either the exact value or zero.
TEST_P(KernelsGemm, Denormals) {
  const float tiny = std::ldexp(1.0f, -140);  // a denormal, exact in fp32 and as 2^-70·2^-70
  {
    Case cs;
    cs.m = 2, cs.n = 17, cs.k = 3;
    Operands<GemmType::f32_f32> op(cs);
    for (std::size_t i = 0; i < op.a.size(); ++i) op.a[i] = 0;
    for (std::size_t i = 0; i < op.b.size(); ++i) op.b[i] = 0;
    op.a[1] = std::ldexp(1.0f, -70);
    op.b[1 * 17 + 16] = std::ldexp(1.0f, -70);  // product 2^-140: a denormal result
    op.a[3 + 2] = 1e-40f;                       // a denormal input
    op.b[2 * 17 + 5] = 1.0f;
    op.run();
    EXPECT_EQ(op.c[16], tiny);
    EXPECT_EQ(op.c[17 + 5], 1e-40f);
  }
  {
    Case cs;
    cs.m = 2, cs.n = 17, cs.k = 3;
    Operands<GemmType::bf16_f32> op(cs);
    for (std::size_t i = 0; i < op.a.size(); ++i) op.a[i] = bf16{0};
    for (std::size_t i = 0; i < op.b.size(); ++i) op.b[i] = bf16{0};
    op.a[1] = to_bf16(std::ldexp(1.0f, -70));
    op.b[1 * 17 + 16] = to_bf16(std::ldexp(1.0f, -70));
    op.a[3 + 2] = bf16{0x0001};  // 2^-133, the smallest bf16 denormal
    op.b[2 * 17 + 5] = to_bf16(1.0f);
    op.run();
    if (path_of(GetParam()) == Isa::amx) {
      EXPECT_TRUE(op.c[16] == tiny || op.c[16] == 0.0f) << op.c[16];
      EXPECT_TRUE(op.c[17 + 5] == std::ldexp(1.0f, -133) || op.c[17 + 5] == 0.0f);
    } else {
      EXPECT_EQ(op.c[16], tiny);
      EXPECT_EQ(op.c[17 + 5], std::ldexp(1.0f, -133));
    }
  }
#if defined(__x86_64__) || defined(__i386__)
  // The calling thread's MXCSR (FTZ/DAZ, rounding) is what it was.
  const unsigned before = _mm_getcsr();
  run_case<GemmType::bf16_f32>([] {
    Case cs;
    cs.m = 20, cs.n = 20, cs.k = 40;
    return cs;
  }());
  run_case<GemmType::f32_f32>([] {
    Case cs;
    cs.m = 20, cs.n = 20, cs.k = 40;
    return cs;
  }());
  EXPECT_EQ(_mm_getcsr(), before);
#endif
}

// Exec: a runtime from a foreign thread (the work goes to its tasks), the current runtime from
// inside a task, another runtime from inside a task, serial, max_tasks; the runtime refusing
// tasks (shut down, out of stacks) makes the caller do the work itself.
TEST_P(KernelsGemm, ExecVariants) {
  // 6 items of 64×64×128 (2^19 multiply-adds each): 3·2^20 in all, three tasks' worth for the
  // driver (at least 2^20 per task).
  Case cs;
  cs.batch = 6, cs.m = 64, cs.n = 64, cs.k = 128;
  cs.gap_c = 3;
  Runtime rt(Config{.procs = 2});
  Runtime other(Config{.procs = 1});
  auto spawned = [](Runtime& r) { return r.stats().tasks_spawned; };

  {  // Inside a task, the default: the task's runtime.
    Operands<GemmType::bf16_f32> op(cs);
    const uint64_t s0 = spawned(rt);
    rt.spawn([&] { op.run(); }).join();
    op.check(" (inside a task)");
    EXPECT_GE(spawned(rt) - s0, 2u) << "the call did not split into tasks";
  }
  {  // Inside a blocking section (the task must not park): serially, no task spawned.
    Operands<GemmType::bf16_f32> op(cs);
    const uint64_t s0 = spawned(rt);
    rt.spawn([&] { myriad::this_task::blocking([&] { op.run(); }); }).join();
    op.check(" (inside a blocking section)");
    EXPECT_EQ(spawned(rt) - s0, 1u);
  }
  // Reduced runs: the Exec handling (path-independent driver code) fully on the portable path
  // only; the other paths have the split inside a task above.
  if (light() && GetParam() != Isa::portable) return;
  {  // From a foreign thread, on rt's tasks.
    Operands<GemmType::f32_f32> op(cs);
    const uint64_t s0 = spawned(rt);
    op.run(Exec{.runtime = &rt});
    op.check(" (Exec runtime, foreign thread)");
    EXPECT_GE(spawned(rt) - s0, 1u);
  }
  {  // From another plain thread, concurrently with the main one.
    Operands<GemmType::s8s8_s32> op1(cs);
    Operands<GemmType::bf16_f32> op2(cs);
    std::thread t([&] { op1.run(Exec{.runtime = &rt}); });
    op2.run(Exec{.runtime = &rt});
    t.join();
    op1.check(" (Exec runtime, second thread)");
    op2.check(" (Exec runtime, main thread)");
  }
  {  // Inside a task with serial = true: no task spawned.
    Operands<GemmType::u8s8_s32> op(cs);
    const uint64_t s0 = spawned(rt);
    rt.spawn([&] { op.run(Exec{.serial = true}); }).join();
    op.check(" (serial inside a task)");
    EXPECT_EQ(spawned(rt) - s0, 1u);
  }
  {  // Serial from a foreign thread even with a runtime given.
    Operands<GemmType::f32_f32> op(cs);
    const uint64_t s0 = spawned(rt);
    op.run(Exec{.runtime = &rt, .serial = true});
    op.check(" (serial with a runtime)");
    EXPECT_EQ(spawned(rt) - s0, 0u);
  }
  {  // max_tasks.
    Operands<GemmType::f32_f32> op(cs);
    uint64_t s0 = spawned(rt);
    rt.spawn([&] { op.run(Exec{.max_tasks = 1}); }).join();
    op.check(" (max_tasks 1)");
    EXPECT_EQ(spawned(rt) - s0, 1u);
    Operands<GemmType::s8s8_s32> op3(cs);
    s0 = spawned(rt);
    op3.run(Exec{.runtime = &rt, .max_tasks = 3});
    op3.check(" (max_tasks 3)");
    EXPECT_GE(spawned(rt) - s0, 1u);
    EXPECT_LE(spawned(rt) - s0, 3u);
  }
  {  // From a task of `other`, on rt: rt's tasks do the work.
    Operands<GemmType::bf16_f32> op(cs);
    const uint64_t s0 = spawned(rt), o0 = spawned(other);
    other.spawn([&] { op.run(Exec{.runtime = &rt}); }).join();
    op.check(" (task of another runtime)");
    EXPECT_GE(spawned(rt) - s0, 1u);
    EXPECT_EQ(spawned(other) - o0, 1u);
  }
  {  // Out of stacks: a spawn fails, the caller computes those ranges itself.
    Runtime tight(Config{.procs = 1, .max_stacks = 2});
    Operands<GemmType::f32_f32> op(cs);
    // One proc: the first kernel task waits in the spawner's queue holding the second stack,
    // so the next spawn fails.
    tight.spawn([&] { op.run(Exec{.max_tasks = 8}); }).join();
    op.check(" (runtime out of stacks)");
  }
  {  // A runtime that was shut down takes no tasks: the caller does everything.
    Runtime closed(Config{.procs = 1});
    closed.shutdown();
    Operands<GemmType::u8s8_s32> op(cs);
    op.run(Exec{.runtime = &closed});
    op.check(" (runtime shut down)");
  }
}

// ---- arguments (path-independent) ----------------------------------------------------------

template <class F>
void expect_invalid(F&& f, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << what << ": no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument) << what;
  }
}

template <GemmType GT>
void bad_geometry() {
  using T = Tr<GT>;
  using A = typename T::A;
  using B = typename T::B;
  using C = typename T::C;
  Case cs;
  cs.batch = 2, cs.m = 5, cs.n = 18, cs.k = 7;
  Operands<GT> op(cs);
  const A* a = op.a.get();
  const B* b = op.b.get();
  C* c = op.c.get();
  const std::string t = T::name;
  auto bad = [&](Gemm g, const std::string& what, const A* aa, const B* bb, C* cc) {
    expect_invalid([&] { gemm(g, aa, bb, cc); }, t + " " + what);
    EXPECT_TRUE(op.unchanged()) << t << " " << what << ": C written";
  };
  const Gemm g0 = op.g;
  bad(g0, "null A", nullptr, b, c);
  bad(g0, "null B", a, nullptr, c);
  bad(g0, "null C", a, b, nullptr);
  Gemm g = g0;
  g.lda = g.k - 1;
  bad(g, "lda < k", a, b, c);
  g = g0;
  g.ldb = g.n - 1;
  bad(g, "ldb < n", a, b, c);
  g = g0;
  g.trans_b = true;
  g.ldb = g.k - 1;
  bad(g, "trans_b, ldb < k", a, b, c);
  g = g0;
  g.ldc = g.n - 1;
  bad(g, "ldc < n", a, b, c);
  const std::size_t big = std::size_t{1} << 62;
  g = g0;
  g.m = big;
  bad(g, "m = 2^62", a, b, c);
  g = g0;
  g.k = big, g.lda = big;
  bad(g, "k = 2^62", a, b, c);
  g = g0;
  g.n = big / 4, g.ldb = big / 4, g.ldc = big / 4;
  bad(g, "n = 2^60 (C's bytes 2^62)", a, b, c);
  g = g0;
  g.stride_c = big / 4;
  bad(g, "stride_c = 2^60 (C's bytes past 2^62)", a, b, c);
  g = g0;
  g.stride_b = big;
  bad(g, "stride_b = 2^62", a, b, c);
  g = g0;
  g.stride_a = big;
  bad(g, "stride_a = 2^62", a, b, c);
  g = g0;
  g.batch = big;
  bad(g, "batch = 2^62", a, b, c);
  g = g0;
  g.m = std::size_t{1} << 33, g.ldc = std::size_t{1} << 33;  // (m−1)·ldc ≈ 2^66: wraps size_t
  g.stride_c = 0;
  bad(g, "m·ldc past 2^64", a, b, c);
  g = g0;
  g.batch = std::size_t{1} << 40, g.stride_a = std::size_t{1} << 24;  // (batch−1)·stride wraps
  bad(g, "batch·stride_a past 2^64", a, b, c);
  g = g0;
  g.lda = SIZE_MAX;
  bad(g, "lda = SIZE_MAX", a, b, c);
  if constexpr (T::kInt) {
    const float nan = std::numeric_limits<float>::quiet_NaN(),
                inf = std::numeric_limits<float>::infinity();
    g = g0;
    g.alpha = nan;
    bad(g, "alpha NaN", a, b, c);
    g = g0;
    g.alpha = inf;
    bad(g, "alpha Inf", a, b, c);
    g = g0;
    g.beta = -inf;
    bad(g, "beta -Inf", a, b, c);
    g = g0;
    g.beta = nan;
    bad(g, "beta NaN", a, b, c);
    // The same through a PackedB.
    PackedB pb = op.pack();
    g = g0;
    g.alpha = inf;
    expect_invalid([&] { gemm(g, a, pb, c); }, t + " packed, alpha Inf");
    EXPECT_TRUE(op.unchanged());
  }
  // Nothing to do: null pointers are fine when batch·m·n == 0.
  for (int which = 0; which < 3; ++which) {
    g = g0;
    (which == 0 ? g.batch : which == 1 ? g.m : g.n) = 0;
    EXPECT_NO_THROW(gemm(g, static_cast<const A*>(nullptr), static_cast<const B*>(nullptr),
                         static_cast<C*>(nullptr)))
        << t << " empty " << which;
  }
  // pack_b checks its own geometry.
  g = g0;
  expect_invalid([&] { (void)T::pack(g, nullptr); }, t + " pack_b null B");
  g.ldb = g.n - 1;
  expect_invalid([&] { (void)T::pack(g, b); }, t + " pack_b ldb < n");
  g = g0;
  g.stride_b = big;
  expect_invalid([&] { (void)T::pack(g, b); }, t + " pack_b stride_b = 2^62");
  g = g0;
  g.k = big, g.ldb = big;
  g.trans_b = true;
  expect_invalid([&] { (void)T::pack(g, b); }, t + " pack_b k = 2^62");
}
TEST(KernelsGemmArgs, BadGeometryBf16) { bad_geometry<GemmType::bf16_f32>(); }
TEST(KernelsGemmArgs, BadGeometryF32) { bad_geometry<GemmType::f32_f32>(); }
TEST(KernelsGemmArgs, BadGeometryS8S8) { bad_geometry<GemmType::s8s8_s32>(); }
TEST(KernelsGemmArgs, BadGeometryU8S8) { bad_geometry<GemmType::u8s8_s32>(); }

// A PackedB used with another geometry or type.
TEST(KernelsGemmArgs, PackedBMismatch) {
  Case cs;
  cs.batch = 3, cs.m = 4, cs.n = 17, cs.k = 31;
  Operands<GemmType::bf16_f32> op(cs);
  const PackedB pb = op.pack();
  auto bad = [&](Gemm g, const std::string& what) {
    expect_invalid([&] { gemm(g, op.a.get(), pb, op.c.get()); }, what);
    EXPECT_TRUE(op.unchanged()) << what << ": C written";
  };
  Gemm g = op.g;
  g.k = 30, g.lda = 31;
  bad(g, "k differs");
  g = op.g;
  g.n = 16;
  bad(g, "n differs");
  g = op.g;
  g.batch = 2;
  bad(g, "batch differs");
  g = op.g;
  g.stride_b = 0;
  bad(g, "shared B vs per-item pack");
  {  // other element types
    Operands<GemmType::f32_f32> of(cs);
    expect_invalid([&] { gemm(of.g, of.a.get(), pb, of.c.get()); }, "bf16 pack, f32 A");
    EXPECT_TRUE(of.unchanged());
    Operands<GemmType::u8s8_s32> ou(cs);
    const PackedB ps = pack_b(ou.g, ou.b.get(), GemmType::s8s8_s32);
    EXPECT_EQ(ps.type(), GemmType::s8s8_s32);
    expect_invalid([&] { gemm(ou.g, ou.a.get(), ps, ou.c.get()); }, "s8s8 pack, u8 A");
    EXPECT_TRUE(ou.unchanged());
    expect_invalid([&] { (void)pack_b(ou.g, ou.b.get(), GemmType::bf16_f32); },
                   "int8 pack_b with a float type");
  }
  {  // empty PackedB; a moved-to one works
    PackedB empty;
    EXPECT_TRUE(empty.empty());
    expect_invalid([&] { gemm(op.g, op.a.get(), empty, op.c.get()); }, "empty PackedB");
    EXPECT_TRUE(op.unchanged());
    PackedB moved = op.pack();
    PackedB to = std::move(moved);
    EXPECT_FALSE(to.empty());
    EXPECT_TRUE(moved.empty());
    op.run_packed(to);
    op.check(" (moved-to PackedB)");
  }
}

// A moved-from PackedB is empty: using it is Error(invalid_argument), nothing written. Run in a
// child process (threadsafe death-test machinery) so that a crash is reported as this test's
// failure instead of ending the whole test binary.
[[noreturn]] void use_moved_from_packed_b() {
  Case cs;
  cs.batch = 3, cs.m = 4, cs.n = 17, cs.k = 31;
  Operands<GemmType::bf16_f32> op(cs);
  PackedB moved = op.pack();
  PackedB to = std::move(moved);
  int code = 3;  // no error
  try {
    gemm(op.g, op.a.get(), moved, op.c.get(), Exec{.serial = true});
  } catch (const Error& e) {
    code = e.code() == Errc::invalid_argument ? (op.unchanged() ? 0 : 4) : 5;
  }
  std::fprintf(stderr, "moved-from PackedB: exit code %d\n", code);
  std::fflush(stderr);
  std::_Exit(code);
}

TEST(KernelsGemmArgsDeathTest, MovedFromPackedBIsInvalid) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(use_moved_from_packed_b(), ::testing::ExitedWithCode(0),
              "moved-from PackedB: exit code 0");
}

// ---- bf16 conversion ------------------------------------------------------------------------

uint16_t bf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return to_bf16(f).bits;
}

// Independent reference: the nearest of the two bf16 neighbours by exact (double) distance,
// ties to the even one; past the largest finite bf16's rounding boundary, Inf.
uint16_t bf_reference(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  const uint16_t lo = static_cast<uint16_t>(u >> 16);  // truncation toward zero
  if ((u & 0xffffu) == 0) return lo;
  const uint16_t hi = static_cast<uint16_t>(lo + 1);  // next magnitude (may become Inf)
  const double x = std::fabs(double(f));
  const double dlo = x - std::fabs(double(to_float(bf16{lo})));
  // Above the largest finite bf16 the next value (unbounded exponent) is 2^128; rounding there
  // overflows to Inf.
  const double vhi = (hi & 0x7fffu) == 0x7f80u ? std::ldexp(1.0, 128)
                                                : std::fabs(double(to_float(bf16{hi})));
  const double dhi = vhi - x;
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) ? hi : lo;
}

TEST(KernelsBf16, RoundsToNearestEven) {
  EXPECT_EQ(bf(0x3f800000), 0x3f80);  // 1.0 exact
  EXPECT_EQ(bf(0x3f808000), 0x3f80);  // tie, even below
  EXPECT_EQ(bf(0x3f818000), 0x3f82);  // tie, even above
  EXPECT_EQ(bf(0x3f808001), 0x3f81);  // just above the tie
  EXPECT_EQ(bf(0x3f807fff), 0x3f80);  // just below
  EXPECT_EQ(bf(0xbf818000), 0xbf82);  // negative tie
  EXPECT_EQ(bf(0xbf808000), 0xbf80);
  EXPECT_EQ(bf(0x00000000), 0x0000);
  EXPECT_EQ(bf(0x80000000), 0x8000);
}

TEST(KernelsBf16, NanInfAndOverflow) {
  EXPECT_EQ(bf(0x7f800000), 0x7f80);  // +Inf
  EXPECT_EQ(bf(0xff800000), 0xff80);  // −Inf
  for (uint32_t nan : {0x7fc00000u, 0x7f800001u, 0x7fbfffffu, 0xff800001u, 0xffffffffu,
                       0x7f80ffffu, 0x7f810000u}) {
    const uint16_t h = bf(nan);
    EXPECT_TRUE(std::isnan(to_float(bf16{h}))) << std::hex << nan << " -> " << h;
    EXPECT_TRUE(h & 0x0040) << "not quiet: " << std::hex << nan << " -> " << h;
    EXPECT_EQ(h & 0x8000, (nan >> 16) & 0x8000) << "sign lost: " << std::hex << nan;
  }
  // FLT_MAX and values above the largest finite bf16's rounding boundary become Inf.
  EXPECT_EQ(bf(0x7f7fffff), 0x7f80);
  EXPECT_EQ(bf(0xff7fffff), 0xff80);
  EXPECT_EQ(bf(0x7f7f8000), 0x7f80);  // tie at the top, odd below → up to Inf
  EXPECT_EQ(bf(0x7f7f7fff), 0x7f7f);  // largest that stays finite
  EXPECT_EQ(to_bf16(FLT_MAX).bits, 0x7f80);
}

TEST(KernelsBf16, Denormals) {
  EXPECT_EQ(bf(0x00000001), 0x0000);  // smallest float denormal → +0
  EXPECT_EQ(bf(0x80000001), 0x8000);  // → −0
  EXPECT_EQ(bf(0x00008000), 0x0000);  // tie, even (0) below
  EXPECT_EQ(bf(0x00018000), 0x0002);  // tie, even above
  EXPECT_EQ(bf(0x00008001), 0x0001);
  EXPECT_EQ(bf(0x0000ffff), 0x0001);
  EXPECT_EQ(bf(0x007fffff), 0x0080);  // largest denormal rounds up to the smallest normal
  EXPECT_EQ(bf(0x007f7fff), 0x007f);
  EXPECT_EQ(bf(0x00400000), 0x0040);  // exact denormal
}

TEST(KernelsBf16, RoundTripAndSampledReference) {
  // Every bf16 value converts to a float and back to itself (NaNs stay NaN).
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = to_float(bf16{static_cast<uint16_t>(h)});
    const uint16_t back = to_bf16(f).bits;
    if (std::isnan(f))
      ASSERT_TRUE(std::isnan(to_float(bf16{back}))) << std::hex << h;
    else
      ASSERT_EQ(back, h) << std::hex << h;
  }
  // Finite floats across the whole range (a stride coprime to 2^32, plus the values around
  // every tie of the low 16 bits) against the independent reference.
  const uint32_t step = myriad::test::kSanitized ? 100003u : 10007u;
  for (uint64_t x = 0; x < (uint64_t{1} << 32); x += step) {
    const uint32_t u = static_cast<uint32_t>(x);
    if ((u & 0x7f800000u) == 0x7f800000u) continue;  // Inf/NaN: tested above
    ASSERT_EQ(bf(u), bf_reference(u)) << std::hex << u;
    for (uint32_t lowv : {0x7fffu, 0x8000u, 0x8001u}) {
      const uint32_t w = (u & 0xffff0000u) | lowv;
      if ((w & 0x7f800000u) == 0x7f800000u) continue;
      ASSERT_EQ(bf(w), bf_reference(w)) << std::hex << w;
    }
  }
}

}  // namespace
