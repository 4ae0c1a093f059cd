// The AMX path through the whole driver: on a CPU with AMX on the real instructions; on one
// that hides AMX (this project's CI machine) on the SIGILL-trapping emulator
// (amx_emulator.hpp), selected with the test-only set_isa_unchecked. Either way the code under
// test is amx.cpp's, tile instructions included.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "amx_emulator.hpp"
#include "kernels/kernel_table.hpp"
#include "myriad/kernels.hpp"
#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

namespace {

using namespace myriad::kernels;

// Selects the AMX path for one test and restores the automatic choice after it.
class KernelsAmx : public ::testing::Test {
 protected:
  void SetUp() override {
    if (amx_emulator::real_amx()) {
      ASSERT_EQ(set_isa(Isa::amx), myriad::Errc::ok);
    } else {
      amx_emulator::install();
      detail::set_isa_unchecked(Isa::amx);
    }
    ASSERT_EQ(active_isa(), Isa::amx);
  }
  void TearDown() override { reset_isa(); }
};

// One GEMM of any AMX type with a double reference. Buffers have leading dimensions beyond the
// widths and a guard row, so writes outside C's m × n are caught.
struct Case {
  GemmType type;
  std::size_t batch, m, n, k;
  float alpha, beta;
  bool trans_b;
  bool specials;  // bf16: Inf in A, NaN in B
};

double value(bf16 v) { return to_float(v); }
double value(int8_t v) { return v; }
double value(uint8_t v) { return v; }

int32_t round_saturate(double v) {
  if (!(v < 2147483647.5)) return INT32_MAX;
  if (!(v >= -2147483648.5)) return INT32_MIN;
  return static_cast<int32_t>(std::nearbyint(v));
}

// Fills, runs through the public API, checks. Returns the number of wrong elements.
template <typename TA, typename TB, typename TC>
long run_case(const Case& cs, std::mt19937& rng, const Exec& ex) {
  Gemm g{.batch = cs.batch, .m = cs.m, .n = cs.n, .k = cs.k};
  g.trans_b = cs.trans_b;
  g.lda = cs.k + 3;
  g.ldb = (cs.trans_b ? cs.k : cs.n) + 5;
  g.ldc = cs.n + 2;
  g.stride_a = g.lda * cs.m + 7;
  g.stride_b = g.ldb * (cs.trans_b ? cs.n : cs.k) + 1;
  g.stride_c = g.ldc * cs.m + 16;
  g.alpha = cs.alpha;
  g.beta = cs.beta;
  std::vector<TA> a(g.stride_a * cs.batch + 1);
  std::vector<TB> b(g.stride_b * cs.batch + 1);
  std::vector<TC> c(g.stride_c * cs.batch + 1);
  std::uniform_real_distribution<float> fr(-2.0f, 2.0f);
  std::uniform_int_distribution<int> ir(-128, 127);
  auto fill = [&](auto& v) {
    for (auto& x : v) {
      using T = std::decay_t<decltype(x)>;
      if constexpr (std::is_same_v<T, bf16>) x = to_bf16(fr(rng));
      else if constexpr (std::is_same_v<T, float>) x = fr(rng);
      else x = static_cast<T>(ir(rng));
    }
  };
  fill(a);
  fill(b);
  fill(c);
  if constexpr (std::is_same_v<TA, bf16>) {
    if (cs.specials && cs.m && cs.k && cs.n) {
      a[(cs.m / 2) * g.lda + cs.k / 3] = to_bf16(INFINITY);
      b[cs.trans_b ? (cs.n - 1) * g.ldb + cs.k - 1 : (cs.k - 1) * g.ldb + cs.n - 1] =
          to_bf16(NAN);
    }
    if (cs.beta == 0.0f)
      for (auto& x : c) x = NAN;  // beta == 0 never reads C
  }
  const std::vector<TC> c0 = c;
  gemm(g, a.data(), b.data(), c.data(), ex);

  long bad = 0;
  for (std::size_t it = 0; it < cs.batch; ++it)
    for (std::size_t i = 0; i < cs.m; ++i)
      for (std::size_t j = 0; j < cs.n; ++j) {
        double dot = 0, sabs = 0;
        for (std::size_t kk = 0; kk < cs.k; ++kk) {
          const double av = value(a[it * g.stride_a + i * g.lda + kk]);
          const double bv = value(cs.trans_b ? b[it * g.stride_b + j * g.ldb + kk]
                                             : b[it * g.stride_b + kk * g.ldb + j]);
          dot += av * bv;
          sabs += std::fabs(av * bv);
        }
        const std::size_t at = it * g.stride_c + i * g.ldc + j;
        if constexpr (std::is_same_v<TC, float>) {
          const double ref = cs.alpha * dot + (cs.beta == 0.0f ? 0.0 : cs.beta * double(c0[at]));
          const double got = c[at];
          // bf16 products are exact in fp32 (8 + 8 significant bits); the error is the fp32
          // sum of k terms, ≤ k·2⁻²⁴·Σ|ab| (plus one rounding of alpha·sum + beta·c).
          const double old_term = cs.beta == 0.0f ? 0.0 : std::fabs(cs.beta * double(c0[at]));
          const double tol = (cs.k + 2) * std::ldexp(std::fabs(cs.alpha) * sabs, -24) +
                             std::ldexp(std::fabs(cs.alpha * dot) + old_term, -23) + 1e-30;
          const bool ok = std::isnan(ref)   ? std::isnan(got)
                           : std::isinf(ref) ? got == ref
                                             : std::fabs(got - ref) <= tol;
          bad += !ok;
        } else {
          const int32_t acc = static_cast<int32_t>(static_cast<uint32_t>(int64_t(dot)));
          int32_t want;
          if (cs.alpha == 1.0f && cs.beta == 0.0f)
            want = acc;
          else if (cs.alpha == 1.0f && cs.beta == 1.0f)
            want = static_cast<int32_t>(uint32_t(c0[at]) + uint32_t(acc));
          else
            want = round_saturate(double(cs.alpha) * acc +
                                  (cs.beta == 0.0f ? 0.0 : double(cs.beta) * c0[at]));
          bad += c[at] != want;
        }
      }
  // Nothing outside the m × n blocks changed (compared as bits: NaN == NaN here).
  for (std::size_t i = 0; i < c.size(); ++i) {
    const std::size_t item = i / g.stride_c, in = i % g.stride_c;
    const bool inside = item < cs.batch && in / g.ldc < cs.m && in % g.ldc < cs.n;
    if (!inside) bad += std::memcmp(&c[i], &c0[i], sizeof(TC)) != 0;
  }
  return bad;
}

long run_any(const Case& cs, std::mt19937& rng, const Exec& ex = {}) {
  switch (cs.type) {
    case GemmType::bf16_f32: return run_case<bf16, bf16, float>(cs, rng, ex);
    case GemmType::s8s8_s32: return run_case<int8_t, int8_t, int32_t>(cs, rng, ex);
    case GemmType::u8s8_s32: return run_case<uint8_t, int8_t, int32_t>(cs, rng, ex);
    default: return -1;
  }
}

constexpr GemmType kTypes[] = {GemmType::bf16_f32, GemmType::s8s8_s32, GemmType::u8s8_s32};

TEST(KernelsAmxTable, HasTilesBracketAndOnlyItsOwnEntries) {
  const detail::KernelTable& t = detail::amx_table();
#if defined(__x86_64__)
  EXPECT_EQ(t.isa, Isa::amx);
  EXPECT_NE(t.begin, nullptr);
  EXPECT_NE(t.end, nullptr);
  EXPECT_NE(t.gemm[static_cast<int>(GemmType::bf16_f32)], nullptr);
  EXPECT_NE(t.gemm[static_cast<int>(GemmType::s8s8_s32)], nullptr);
  EXPECT_NE(t.gemm[static_cast<int>(GemmType::u8s8_s32)], nullptr);
  EXPECT_EQ(t.gemm[static_cast<int>(GemmType::f32_f32)], nullptr);  // from AVX-512
  EXPECT_EQ(t.dot, nullptr);
  // The layered AMX table brackets AMX blocks only: fp32 GEMMs skip ldtilecfg.
  const detail::KernelTable& l = detail::table_for(Isa::amx);
  EXPECT_NE(l.gemm_begin[static_cast<int>(GemmType::bf16_f32)], nullptr);
  EXPECT_EQ(l.gemm_begin[static_cast<int>(GemmType::f32_f32)], nullptr);
#else
  EXPECT_EQ(t.begin, nullptr);
#endif
}

#if defined(__x86_64__)

TEST_F(KernelsAmx, ShapesAcrossTileEdgesMatchTheReference) {
  std::mt19937 rng(7);
  const std::size_t dims[] = {1, 15, 16, 17, 33, 64, 65, 130};
  const float ab[][2] = {{1, 0}, {1, 1}, {0.5f, -2}, {-1.5f, 0}};
  int idx = 0;
  for (GemmType ty : kTypes)
    for (std::size_t m : dims)
      for (std::size_t n : dims)
        for (std::size_t k : {std::size_t{1}, std::size_t{31}, std::size_t{64}, std::size_t{97}}) {
          ++idx;
          const Case cs{ty, 1 + static_cast<std::size_t>(idx % 2), m, n, k, ab[idx % 4][0],
                        ab[idx % 4][1], idx % 3 == 0, ty == GemmType::bf16_f32 && idx % 5 == 0};
          ASSERT_EQ(run_any(cs, rng, {.serial = true}), 0)
              << "type " << int(ty) << " m " << m << " n " << n << " k " << k << " trans "
              << cs.trans_b;
        }
  if (!amx_emulator::real_amx()) {
    EXPECT_GT(amx_emulator::instructions(), 0);  // the tile code really ran (emulated)
    EXPECT_FALSE(amx_emulator::configured());    // and released its tiles
  }
}

TEST_F(KernelsAmx, LargeBlocksWithKChunksAndColumnGroups) {
  // K past one chunk (256 bf16 / 512 int8) and more than one column group (128 columns):
  // the partial-sum path of amx.cpp, through the driver's L2 blocking.
  std::mt19937 rng(11);
  const std::size_t k = myriad::test::kSanitized ? 300 : 1000;
  for (GemmType ty : kTypes) {
    const Case cs{ty, 1, 70, 300, ty == GemmType::bf16_f32 ? k : k + 24, 1, 0, false, false};
    EXPECT_EQ(run_any(cs, rng, {.serial = true}), 0) << "type " << int(ty);
  }
}

TEST_F(KernelsAmx, ConcurrentTasksEachGetCorrectResults) {
  // Tasks on 2 procs run AMX sections at once, each a different GEMM, each split further into
  // tasks by the driver. Tile state is per thread (also in the emulator): a section that
  // survived a switch or a migration would corrupt a neighbour's result or die unconfigured.
  myriad::Runtime rt(myriad::Config{.procs = 2});
  const int tasks = myriad::test::kSanitized ? 8 : 32;
  std::atomic<long> bad{0};
  myriad::WaitGroup wg;
  for (int t = 0; t < tasks; ++t) {
    wg.add(1);
    rt.spawn_detached([&, t] {
      std::mt19937 rng(100 + t);
      const Case cs{kTypes[t % 3], 4, 40 + std::size_t(t), 48, 70 + std::size_t(t) * 3,
                    t % 2 ? 1.0f : 0.5f, t % 4 == 1 ? 1.0f : 0.0f, t % 2 == 0, false};
      bad += run_any(cs, rng);  // default Exec: this task's runtime
      wg.done();
    });
  }
  wg.wait();
  EXPECT_EQ(bad.load(), 0);
}

#endif

}  // namespace
