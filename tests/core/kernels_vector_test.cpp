// Batched fp32 vector operations (dot, axpy, row_sum, row_max) on every path this machine
// runs, against double-precision references.
//
// Tolerances. dot: each product rounds once (u = 2⁻²⁴ relative, or not at all with an FMA) and
// any order of summing n terms with partial sums is within γ_(n−1)·Σ|x·y|; so |err| ≤
// γ_(n+1)·Σ|x·y|, and we allow 2·(n+2)·u·Σ|x·y|. row_sum: likewise 2·(n+2)·u·Σ|x|. axpy: one
// product and one sum (or one FMA): |err| ≤ 2u·(|αx| + |y|) (+u² terms); we allow 3u·(…).
// row_max is exact (the result is one of the inputs).
//
// Every vector set lives in an allocation of exactly its extent (ASan sees any access past
// it); the gaps between vectors (stride > n) hold NaN, which would show in any sum or max that
// read them, and gaps of y (axpy) and of out must be left untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "myriad/kernels.hpp"
#include "myriad/runtime.hpp"
#include "test_util.hpp"

namespace {

using myriad::Config;
using myriad::Errc;
using myriad::Error;
using myriad::Runtime;
using namespace myriad::kernels;

constexpr double kU = 1.0 / 16777216.0;  // 2^-24
constexpr float kInf = std::numeric_limits<float>::infinity();
const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 0x1234567ull) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float sym(float r) {
    return static_cast<float>((static_cast<double>(next() >> 11) / 9007199254740992.0 * 2 - 1) * r);
  }
};

// Exactly `count` floats, `offset` floats past 64-byte alignment.
class Buf {
 public:
  Buf(std::size_t count, std::size_t offset) : count_(count) {
    raw_ = static_cast<float*>(::operator new(std::max<std::size_t>(1, (offset + count) * 4),
                                              std::align_val_t{64}));
    p_ = raw_ + offset;
  }
  ~Buf() { ::operator delete(raw_, std::align_val_t{64}); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  float* get() const { return p_; }
  float& operator[](std::size_t i) const { return p_[i]; }
  std::size_t size() const { return count_; }

 private:
  std::size_t count_;
  float* raw_;
  float* p_;
};

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float sentinel() {
  const uint32_t u = 0x7fa0deadu;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::size_t extent(std::size_t count, std::size_t stride, std::size_t n) {
  return count == 0 || n == 0 ? 0 : (count - 1) * stride + n;
}

// Compares a float result with a double reference: NaN and ±Inf by class and sign, finite
// values within tol.
bool close(float got, double want, double tol) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return double(got) == want;
  return std::isfinite(got) && std::fabs(double(got) - want) <= tol;
}

void force_isa_or_skip(Isa isa) {
  const Errc e = set_isa(isa);
  if (e == Errc::not_supported) {
    if (isa == Isa::amx)
      GTEST_SKIP() << "AMX not available on this CPU: CPUID/permission (best path here: "
                   << isa_name(best_isa()) << ")";
    GTEST_SKIP() << isa_name(isa) << " not available on this CPU (best path here: "
                 << isa_name(best_isa()) << ")";
  }
  ASSERT_EQ(e, Errc::ok);
  ASSERT_EQ(active_isa(), isa);
}

class KernelsVector : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { force_isa_or_skip(GetParam()); }
  void TearDown() override { reset_isa(); }
};

INSTANTIATE_TEST_SUITE_P(, KernelsVector,
                         ::testing::Values(Isa::portable, Isa::avx2, Isa::avx512, Isa::amx),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(isa_name(info.param));
                         });

const std::size_t kLengths[] = {0, 1, 7, 8, 15, 16, 17, 31, 128, 1000};

// x and y sets of `count` vectors of length n (strides sx, sy; offsets ox, oy floats), random
// values, NaN in the gaps; out with a sentinel before and after (offset oo).
struct VecCase {
  std::size_t count, n, sx, sy, ox, oy, oo;
  uint64_t seed;
  Buf x, y, out;
  std::vector<float> y0;
  VecCase(std::size_t count_, std::size_t n_, std::size_t gap, std::size_t off, uint64_t seed_)
      : count(count_), n(n_), sx(n_ + gap), sy(n_ + 2 * gap), ox(off), oy(off ? off + 2 : 0),
        oo(off), seed(seed_),
        x(extent(count, sx, n), ox), y(extent(count, sy, n), oy), out(count + 2, oo) {
    Rng r(seed);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = kNaN;
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = -kNaN;
    for (std::size_t v = 0; v < count; ++v)
      for (std::size_t j = 0; j < n; ++j) {
        x[v * sx + j] = r.sym(3.0f);
        y[v * sy + j] = r.sym(2.0f);
      }
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = sentinel();
    y0.assign(y.get(), y.get() + y.size());
  }
  // After changing x or y by hand: y as it is now is the reference's y; out back to sentinels.
  void snapshot() {
    y0.assign(y.get(), y.get() + y.size());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = sentinel();
  }
  void restore_y() {
    std::copy(y0.begin(), y0.end(), y.get());
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = sentinel();
  }
  float* outp() const { return out.get() + 1; }  // out[0] and out[count + 1] stay sentinels
  std::string label(const char* op) const {
    std::ostringstream o;
    o << op << " count=" << count << " n=" << n << " stride_x=" << sx << " stride_y=" << sy
      << " offset=" << ox << " isa=" << isa_name(active_isa());
    return o.str();
  }
  void expect_out_guards() const {
    EXPECT_EQ(bits(out[0]), bits(sentinel())) << "written before out";
    EXPECT_EQ(bits(out[count + 1]), bits(sentinel())) << "written past out[count - 1]";
  }
  void expect_x_unchanged(const std::vector<float>& x0) const {
    for (std::size_t i = 0; i < x.size(); ++i)
      if (bits(x[i]) != bits(x0[i])) {
        ADD_FAILURE() << "x[" << i << "] modified";
        return;
      }
  }
};

enum class Op { dot, sum, max, axpy };

// Runs one operation on a VecCase and checks every output against the reference.
void check_op(Op op, VecCase& vc, const Exec& ex = {}) {
  const std::vector<float> x0(vc.x.get(), vc.x.get() + vc.x.size());
  const char* name = op == Op::dot   ? "dot"
                     : op == Op::sum ? "row_sum"
                     : op == Op::max ? "row_max"
                                     : "axpy";
  const float alpha = -1.75f;
  switch (op) {
    case Op::dot: dot(vc.count, vc.n, vc.x.get(), vc.sx, vc.y.get(), vc.sy, vc.outp(), ex); break;
    case Op::sum: row_sum(vc.count, vc.n, vc.x.get(), vc.sx, vc.outp(), ex); break;
    case Op::max: row_max(vc.count, vc.n, vc.x.get(), vc.sx, vc.outp(), ex); break;
    case Op::axpy: axpy(vc.count, vc.n, alpha, vc.x.get(), vc.sx, vc.y.get(), vc.sy, ex); break;
  }
  int bad = 0;
  for (std::size_t v = 0; v < vc.count && bad < 4; ++v) {
    const float* x = &x0[v * vc.sx];
    const float* y = &vc.y0[v * vc.sy];
    if (op == Op::axpy) {
      for (std::size_t j = 0; j < vc.n; ++j) {
        const double ax = double(alpha) * x[j];
        const double want = ax + y[j];
        const float got = vc.y[v * vc.sy + j];
        if (!close(got, want, 3 * kU * (std::fabs(ax) + std::fabs(double(y[j]))))) {
          ADD_FAILURE() << vc.label(name) << ": y[" << v << "][" << j << "] = " << got
                        << ", want " << want;
          if (++bad >= 4) break;
        }
      }
      continue;
    }
    double want = 0, tol = 0;
    if (op == Op::dot) {
      double sa = 0;
      for (std::size_t j = 0; j < vc.n; ++j) {
        want += double(x[j]) * y[j];
        sa += std::fabs(double(x[j]) * y[j]);
      }
      tol = 2.0 * double(vc.n + 2) * kU * sa;
    } else if (op == Op::sum) {
      double sa = 0;
      for (std::size_t j = 0; j < vc.n; ++j) {
        want += x[j];
        sa += std::fabs(double(x[j]));
      }
      tol = 2.0 * double(vc.n + 2) * kU * sa;
    } else {
      want = -std::numeric_limits<double>::infinity();
      for (std::size_t j = 0; j < vc.n; ++j) {
        if (std::isnan(x[j])) {
          want = std::numeric_limits<double>::quiet_NaN();
          break;
        }
        want = std::max(want, double(x[j]));
      }
    }
    const float got = vc.outp()[v];
    if (!close(got, want, tol)) {
      ADD_FAILURE() << vc.label(name) << ": out[" << v << "] = " << got << ", want " << want
                    << " (tolerance " << tol << ")";
      ++bad;
    }
  }
  if (op == Op::axpy) {
    // Gaps of y untouched, out untouched.
    for (std::size_t i = 0; i < vc.y.size(); ++i) {
      const std::size_t v = i / vc.sy, j = i % vc.sy;
      if (j >= vc.n && bits(vc.y[i]) != bits(vc.y0[i])) {
        ADD_FAILURE() << vc.label(name) << ": gap y[" << v << "][" << j << "] written";
        break;
      }
    }
    for (std::size_t i = 0; i < vc.out.size(); ++i) EXPECT_EQ(bits(vc.out[i]), bits(sentinel()));
  } else {
    vc.expect_out_guards();
    // y is read-only for dot.
    for (std::size_t i = 0; i < vc.y.size(); ++i)
      if (bits(vc.y[i]) != bits(vc.y0[i])) {
        ADD_FAILURE() << vc.label(name) << ": y modified";
        break;
      }
  }
  vc.expect_x_unchanged(x0);
}

TEST_P(KernelsVector, LengthsStridesOffsets) {
  uint64_t seed = 1;
  for (std::size_t n : kLengths)
    for (std::size_t count : {1u, 5u})
      for (std::size_t gap : {0u, 3u})
        for (std::size_t off : {0u, 1u, 3u})
          for (Op op : {Op::dot, Op::sum, Op::max, Op::axpy}) {
            VecCase vc(count, n, gap, off, ++seed);
            check_op(op, vc);
          }
}

// All-negative inputs: a max that starts from 0 (or reads padding as 0) is wrong.
TEST_P(KernelsVector, MaxOfNegativeValues) {
  for (std::size_t n : kLengths) {
    if (n == 0) continue;
    VecCase vc(3, n, 1, 1, n);
    for (std::size_t v = 0; v < 3; ++v)
      for (std::size_t j = 0; j < n; ++j)
        vc.x[v * vc.sx + j] = -1.0f - float((j * 7919 + v) % 1000);
    check_op(Op::max, vc);
    // Position of the maximum in every lane and in the tail.
    for (std::size_t pos : {std::size_t{0}, n / 2, n - 1}) {
      vc.x[pos] = -0.5f;
      row_max(1, n, vc.x.get(), vc.sx, vc.outp());
      EXPECT_EQ(vc.outp()[0], -0.5f) << "n=" << n << " pos=" << pos;
      vc.x[pos] = -1000.5f;
    }
  }
}

// NaN and Inf: max returns NaN when any element is NaN (wherever it is: first, in a vector
// lane, in the scalar tail), sums and dots propagate NaN, Inf − Inf is NaN, Inf·0 is NaN.
TEST_P(KernelsVector, NanAndInf) {
  for (std::size_t n : {1u, 7u, 8u, 15u, 16u, 17u, 31u, 128u, 1000u}) {
    for (std::size_t pos : {std::size_t{0}, n / 3, n / 2, n - 1}) {
      VecCase vc(2, n, 2, 1, 9 * n + pos);
      vc.x[pos] = kNaN;                   // vector 0
      vc.x[vc.sx + pos] = kInf;           // vector 1: +Inf
      check_op(Op::max, vc);
      EXPECT_TRUE(std::isnan(vc.outp()[0])) << "row_max n=" << n << " NaN at " << pos;
      EXPECT_EQ(vc.outp()[1], kInf) << "row_max n=" << n << " +Inf at " << pos;
      VecCase vs(2, n, 2, 0, 7 * n + pos);
      vs.x[pos] = kNaN;
      vs.x[vs.sx + pos] = kInf;
      check_op(Op::sum, vs);
      EXPECT_TRUE(std::isnan(vs.outp()[0]));
      EXPECT_EQ(vs.outp()[1], kInf);
      VecCase vd(2, n, 0, 1, 5 * n + pos);
      vd.x[pos] = kNaN;
      vd.x[vd.sx + pos] = kInf;
      vd.y[vd.sy + pos] = 0.0f;  // Inf·0
      vd.snapshot();
      check_op(Op::dot, vd);
      EXPECT_TRUE(std::isnan(vd.outp()[0]));
      EXPECT_TRUE(std::isnan(vd.outp()[1]));
      VecCase va(2, n, 1, 1, 3 * n + pos);
      va.x[pos] = kNaN;
      va.x[va.sx + pos] = kInf;
      check_op(Op::axpy, va);  // NaN / −Inf exactly at pos, finite elsewhere
      EXPECT_TRUE(std::isnan(va.y[pos]));
      EXPECT_EQ(va.y[va.sy + pos], -kInf);
    }
    if (n >= 2) {
      VecCase vc(1, n, 0, 0, n);
      vc.x[0] = kInf;
      vc.x[n - 1] = -kInf;
      check_op(Op::sum, vc);
      EXPECT_TRUE(std::isnan(vc.outp()[0])) << "Inf + −Inf, n=" << n;
    }
    VecCase vm(1, n, 0, 0, n);
    for (std::size_t j = 0; j < n; ++j) vm.x[j] = -kInf;
    check_op(Op::max, vm);
    EXPECT_EQ(vm.outp()[0], -kInf);
  }
}

// n == 0: dot and row_sum give 0, row_max −Inf, axpy changes nothing; x and y may be null.
// count == 0: nothing is read or written, any pointer may be null.
TEST_P(KernelsVector, EmptyVectorsAndNoVectors) {
  float out[5];
  for (float& f : out) f = sentinel();
  dot(3, 0, nullptr, 0, nullptr, 0, out + 1);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(out[i], 0.0f);
  row_sum(3, 0, nullptr, 7, out + 1);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(out[i], 0.0f);
  row_max(3, 0, nullptr, 7, out + 1);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(out[i], -kInf);
  EXPECT_EQ(bits(out[0]), bits(sentinel()));
  EXPECT_EQ(bits(out[4]), bits(sentinel()));
  EXPECT_NO_THROW(axpy(3, 0, 2.0f, nullptr, 0, nullptr, 0));
  float y[3] = {1, 2, 3};
  axpy(1, 0, 2.0f, nullptr, 0, y, 3);
  EXPECT_EQ(y[0], 1.0f);

  for (float& f : out) f = sentinel();
  EXPECT_NO_THROW(dot(0, 100, nullptr, 100, nullptr, 100, nullptr));
  EXPECT_NO_THROW(row_sum(0, 100, nullptr, 100, nullptr));
  EXPECT_NO_THROW(row_max(0, 100, nullptr, 100, nullptr));
  EXPECT_NO_THROW(axpy(0, 100, 1.0f, nullptr, 100, nullptr, 100));
  float x[4] = {1, 2, 3, 4};
  row_sum(0, 4, x, 4, out);
  row_max(0, 4, x, 4, out);
  dot(0, 4, x, 4, x, 4, out);
  for (float f : out) EXPECT_EQ(bits(f), bits(sentinel()));
}

// Bad arguments: Error(invalid_argument), nothing written.
TEST_P(KernelsVector, BadArguments) {
  float x[64], y[64], out[4];
  for (int i = 0; i < 64; ++i) x[i] = y[i] = float(i);
  for (float& f : out) f = sentinel();
  auto invalid = [&](auto&& f, const char* what) {
    try {
      f();
      ADD_FAILURE() << what << ": no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::invalid_argument) << what;
    }
    for (float f2 : out) EXPECT_EQ(bits(f2), bits(sentinel())) << what << ": out written";
    for (int i = 0; i < 64; ++i) EXPECT_EQ(y[i], float(i)) << what << ": y written";
  };
  invalid([&] { dot(2, 8, nullptr, 8, y, 8, out); }, "dot null x");
  invalid([&] { dot(2, 8, x, 8, nullptr, 8, out); }, "dot null y");
  invalid([&] { dot(2, 8, x, 8, y, 8, nullptr); }, "dot null out");
  invalid([&] { row_sum(2, 8, nullptr, 8, out); }, "row_sum null x");
  invalid([&] { row_sum(2, 8, x, 8, nullptr); }, "row_sum null out");
  invalid([&] { row_max(2, 8, nullptr, 8, out); }, "row_max null x");
  invalid([&] { row_max(2, 8, x, 8, nullptr); }, "row_max null out");
  invalid([&] { axpy(2, 8, 1.0f, nullptr, 8, y, 8); }, "axpy null x");
  invalid([&] { axpy(2, 8, 1.0f, x, 8, nullptr, 8); }, "axpy null y");
  invalid([&] { row_sum(1, 0, nullptr, 0, nullptr); }, "row_sum n = 0, null out");
  // Extents whose bytes reach 2^62 (and products that wrap 64 bits).
  const std::size_t big = std::size_t{1} << 61;
  invalid([&] { row_sum(2, 8, x, big, out); }, "row_sum stride 2^61");
  invalid([&] { row_max(3, 8, x, big / 2, out); }, "row_max stride 2^60, count 3");
  invalid([&] { dot(2, 8, x, 8, y, big, out); }, "dot stride_y 2^61");
  invalid([&] { axpy(2, 8, 1.0f, x, big, y, 8); }, "axpy stride_x 2^61");
  invalid([&] { axpy(2, 8, 1.0f, x, 8, y, big); }, "axpy stride_y 2^61");
  invalid([&] { row_sum(1, std::size_t{1} << 62, x, 0, out); }, "row_sum n 2^62");
  invalid([&] { row_sum(std::size_t{1} << 33, 8, x, std::size_t{1} << 33, out); },
          "row_sum (count−1)·stride past 2^64");
  invalid([&] { dot(1, SIZE_MAX, x, 0, y, 0, out); }, "dot n SIZE_MAX");
}

// Calls split into tasks: inside a task (the default: its runtime), a runtime from a foreign
// thread, serial, max_tasks; results as serial ones (checked against the reference).
TEST_P(KernelsVector, Parallel) {
  Runtime rt(Config{.procs = 2});
  // 80 · 32,768 elements: at least two tasks' worth of work (2^20 element operations each).
  const std::size_t count = 80, n = 32768;
  for (Op op : {Op::dot, Op::sum, Op::max, Op::axpy}) {
    // Sanitized builds: dot only (the driver's splitting is the same for all four).
    if (myriad::test::kSanitized && op != Op::dot) continue;
    VecCase vc(count, n, 5, 1, 11 + uint64_t(op));
    uint64_t s0 = rt.stats().tasks_spawned;
    rt.spawn([&] { check_op(op, vc); }).join();
    EXPECT_GE(rt.stats().tasks_spawned - s0, 2u) << "no split inside a task";
    vc.restore_y();
    s0 = rt.stats().tasks_spawned;
    check_op(op, vc, Exec{.runtime = &rt});
    EXPECT_GE(rt.stats().tasks_spawned - s0, 1u) << "no task on the given runtime";
    vc.restore_y();
    s0 = rt.stats().tasks_spawned;
    rt.spawn([&] { check_op(op, vc, Exec{.serial = true}); }).join();
    EXPECT_EQ(rt.stats().tasks_spawned - s0, 1u);
    vc.restore_y();
    s0 = rt.stats().tasks_spawned;
    check_op(op, vc, Exec{.runtime = &rt, .max_tasks = 2});
    EXPECT_LE(rt.stats().tasks_spawned - s0, 2u);
  }
}

}  // namespace
