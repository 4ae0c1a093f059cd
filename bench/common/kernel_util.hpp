// Shared by the batch-kernel benchmarks (K1, K1c, K2, K3, peak) of every impl: CPU features,
// register-only peak loops (AMX, AVX-512), a memory-bandwidth loop, operands made of small
// integers (so every summation order gives the exact result and outputs are checked for
// equality), and the drivers that time an impl's GEMM or dot calls and print the JSON lines.
// A program supplies only its backend: how to run one call. Header-only, like bench_util.hpp.
//
// Vector and AMX code uses per-function target attributes (and inline asm for AMX), never -m
// flags, so every program runs on any x86-64 and reports what the machine lacks.
#pragma once

#include <cpuid.h>
#include <immintrin.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "bench_util.hpp"

namespace bench::kern {

inline bool verbose() {
  static const bool v = [] {
    const char* e = std::getenv("BENCH_VERBOSE");
    return e && *e && std::strcmp(e, "0") != 0;
  }();
  return v;
}

inline double seconds_since(Clock::time_point t0) { return ns_between(t0, Clock::now()) * 1e-9; }

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t h = v.size() / 2;
  return v.size() % 2 ? v[h] : (v[h - 1] + v[h]) / 2;
}

// ---- CPU features ------------------------------------------------------------------------------

struct Features {
  bool avx512 = false;    // F, DQ, BW, VL, and the OS saves the zmm state
  bool vnni = false;      // AVX512-VNNI
  bool amx_bf16 = false;  // CPUID + tile state enabled in XCR0 (the permission is separate)
  bool amx_int8 = false;
};

inline Features cpu_features() {
  Features f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return f;  // no OSXSAVE
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  uint64_t xcr0 = (uint64_t(hi) << 32) | lo;
  if (__get_cpuid_max(0, nullptr) < 7) return f;
  __cpuid_count(7, 0, a, b, c, d);
  bool zmm = (xcr0 & 0xe6) == 0xe6;  // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
  f.avx512 = zmm && (b >> 16 & 1) && (b >> 17 & 1) && (b >> 30 & 1) && (b >> 31 & 1);
  f.vnni = f.avx512 && (c >> 11 & 1);
  bool tiles = ((xcr0 >> 17) & 3) == 3 && (d >> 24 & 1);  // XTILECFG + XTILEDATA, AMX-TILE
  f.amx_bf16 = tiles && (d >> 22 & 1);
  f.amx_int8 = tiles && (d >> 25 & 1);
  return f;
}

// AMX needs the process's permission first (ARCH_REQ_XCOMP_PERM = 0x1023, XTILEDATA = 18), or
// the first tile instruction raises SIGILL. Asked once; false when the CPU or kernel says no.
inline bool amx_permitted() {
  static const bool ok = [] {
    Features f = cpu_features();
    if (!f.amx_bf16 && !f.amx_int8) return false;
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
  }();
  return ok;
}

// ---- Threads -----------------------------------------------------------------------------------

// Runs f(t) for t in [0, n) on n new threads released together; returns the seconds from the
// release until the last one finished.
template <class F>
double timed_threads(unsigned n, F&& f) {
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> ts;
  ts.reserve(n);
  for (unsigned t = 0; t < n; ++t)
    ts.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      f(t);
    });
  while (ready.load() < n) std::this_thread::yield();
  auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  for (auto& th : ts) th.join();
  return seconds_since(t0);
}

// A fork-join pool for the peers that have no threading of their own for a batch (OpenBLAS
// runs a 64³ sgemm or a sdot on one thread): run(f) calls f(t, n) on n threads — the caller is
// t = 0 — and returns when all are done. Idle workers spin for a while (so back-to-back calls
// cost about a cache-line round trip, like an OpenMP team) and then sleep on the generation
// counter (a futex), so an idle pool does not take CPU from the sibling hyperthread.
class SpinPool {
 public:
  explicit SpinPool(unsigned n) : n_(n ? n : 1) {
    for (unsigned t = 1; t < n_; ++t) workers_.emplace_back([this, t] { work(t); });
  }
  ~SpinPool() {
    stop_.store(true, std::memory_order_release);
    gen_.fetch_add(1, std::memory_order_acq_rel);
    gen_.notify_all();
    for (auto& w : workers_) w.join();
  }
  SpinPool(const SpinPool&) = delete;
  SpinPool& operator=(const SpinPool&) = delete;
  unsigned size() const { return n_; }

  template <class F>
  void run(F&& f) {
    if (n_ == 1) return f(0u, 1u);
    fn_ = [](void* ctx, unsigned t, unsigned n) { (*static_cast<std::remove_reference_t<F>*>(ctx))(t, n); };
    ctx_ = &f;
    done_.store(0, std::memory_order_relaxed);
    gen_.fetch_add(1, std::memory_order_acq_rel);
    gen_.notify_all();
    f(0u, n_);
    for (unsigned i = 0; done_.load(std::memory_order_acquire) != n_ - 1; ++i) {
      if (i < kSpin) {
        _mm_pause();
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  // Pauses before yielding / sleeping: ~0.3 ms where a pause takes ~140 cycles (Sapphire
  // Rapids). Longer spins cost much more than they save when the machine is loaded.
  static constexpr unsigned kSpin = 2000;
  void work(unsigned t) {
    uint64_t seen = 0;
    for (;;) {
      uint64_t g;
      for (unsigned i = 0; (g = gen_.load(std::memory_order_acquire)) == seen; ++i) {
        if (i < kSpin) {
          _mm_pause();
        } else {
          gen_.wait(seen, std::memory_order_acquire);
        }
      }
      seen = g;
      if (stop_.load(std::memory_order_acquire)) return;
      fn_(ctx_, t, n_);
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
  }
  unsigned n_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> gen_{0};
  std::atomic<unsigned> done_{0};
  std::atomic<bool> stop_{false};
  void (*fn_)(void*, unsigned, unsigned) = nullptr;
  void* ctx_ = nullptr;
};

// [begin, end) of part t of n of `count` items.
inline std::pair<size_t, size_t> share(size_t count, unsigned t, unsigned n) {
  return {count * t / n, count * (t + 1) / n};
}

// ---- Memory ------------------------------------------------------------------------------------

// A large buffer, 2 MiB-aligned (transparent huge pages where the kernel gives them), touched.
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t bytes) {
    constexpr size_t kAlign = size_t(2) << 20;
    n_ = (bytes + kAlign - 1) / kAlign * kAlign;
    p_ = static_cast<std::byte*>(std::aligned_alloc(kAlign, n_));
    if (!p_) throw std::bad_alloc();
    madvise(p_, n_, MADV_HUGEPAGE);
    std::memset(p_, 0, n_);
  }
  Buffer(Buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  Buffer& operator=(Buffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~Buffer() { std::free(p_); }
  std::byte* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  std::byte* p_ = nullptr;
  size_t n_ = 0;
};

inline volatile uint64_t g_sink;  // keeps the read loops' results alive

__attribute__((target("avx512f"))) inline uint64_t read_avx512(const std::byte* p, size_t bytes) {
  __m512i x0 = _mm512_setzero_si512(), x1 = x0, x2 = x0, x3 = x0;
  for (size_t i = 0; i + 256 <= bytes; i += 256) {
    x0 = _mm512_xor_si512(x0, _mm512_load_si512(p + i));
    x1 = _mm512_xor_si512(x1, _mm512_load_si512(p + i + 64));
    x2 = _mm512_xor_si512(x2, _mm512_load_si512(p + i + 128));
    x3 = _mm512_xor_si512(x3, _mm512_load_si512(p + i + 192));
  }
  x0 = _mm512_xor_si512(_mm512_xor_si512(x0, x1), _mm512_xor_si512(x2, x3));
  alignas(64) uint64_t lanes[8];  // (not _mm512_reduce_*: GCC 12 warns inside them)
  _mm512_store_si512(lanes, x0);
  uint64_t r = 0;
  for (uint64_t l : lanes) r ^= l;
  return r;
}

inline uint64_t read_scalar(const std::byte* p, size_t bytes) {
  const uint64_t* q = reinterpret_cast<const uint64_t*>(p);
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i + 4 <= bytes / 8; i += 4) {
    s0 ^= q[i];
    s1 ^= q[i + 1];
    s2 ^= q[i + 2];
    s3 ^= q[i + 3];
  }
  return s0 ^ s1 ^ s2 ^ s3;
}

// Read bandwidth in GB/s (1e9 bytes/s): n threads each read a contiguous share of buf
// (AVX-512 loads where the CPU has them), released together; the best of `passes`.
inline double read_bandwidth(const std::byte* buf, size_t bytes, unsigned n, int passes = 3) {
  bool avx512 = cpu_features().avx512;
  size_t part = bytes / n / 4096 * 4096;
  double best = 0;
  for (int p = 0; p < passes; ++p) {
    double s = timed_threads(n, [&](unsigned t) {
      const std::byte* q = buf + part * t;
      g_sink = avx512 ? read_avx512(q, part) : read_scalar(q, part);
    });
    best = std::max(best, double(part) * n / s / 1e9);
  }
  return best;
}

// ---- Register-only peak loops ------------------------------------------------------------------
// Each returns false when its result is not the one expected (the loop ran wrongly).

// AVX-512 fp32 FMA: 16 independent zmm accumulators (needs >= latency 4 × 2 ports = 8 in flight),
// a = a·0.5 + 1, which stays in [1, 2]: no denormals, no overflow. 16·16·2 = 512 flops/iteration.
constexpr double kFmaFlopsPerIter = 16 * 16 * 2;
__attribute__((target("avx512f"), noinline)) inline bool fma_loop(uint64_t iters) {
  const __m512 x = _mm512_set1_ps(0.5f), y = _mm512_set1_ps(1.0f);
  __m512 a0 = y, a1 = y, a2 = y, a3 = y, a4 = y, a5 = y, a6 = y, a7 = y;
  __m512 a8 = y, a9 = y, a10 = y, a11 = y, a12 = y, a13 = y, a14 = y, a15 = y;
  // Inline asm: with intrinsics GCC merges accumulators holding equal values into one.
  for (uint64_t i = 0; i < iters; ++i) {
    __asm__ volatile(  // 8 accumulators per statement: asm takes at most 30 operands
        "vfmadd213ps %[y], %[x], %[a0]\n\t"
        "vfmadd213ps %[y], %[x], %[a1]\n\t"
        "vfmadd213ps %[y], %[x], %[a2]\n\t"
        "vfmadd213ps %[y], %[x], %[a3]\n\t"
        "vfmadd213ps %[y], %[x], %[a4]\n\t"
        "vfmadd213ps %[y], %[x], %[a5]\n\t"
        "vfmadd213ps %[y], %[x], %[a6]\n\t"
        "vfmadd213ps %[y], %[x], %[a7]\n\t"
        : [a0] "+v"(a0), [a1] "+v"(a1), [a2] "+v"(a2), [a3] "+v"(a3),
          [a4] "+v"(a4), [a5] "+v"(a5), [a6] "+v"(a6), [a7] "+v"(a7)
        : [x] "v"(x), [y] "v"(y));
    __asm__ volatile(
        "vfmadd213ps %[y], %[x], %[a8]\n\t"
        "vfmadd213ps %[y], %[x], %[a9]\n\t"
        "vfmadd213ps %[y], %[x], %[a10]\n\t"
        "vfmadd213ps %[y], %[x], %[a11]\n\t"
        "vfmadd213ps %[y], %[x], %[a12]\n\t"
        "vfmadd213ps %[y], %[x], %[a13]\n\t"
        "vfmadd213ps %[y], %[x], %[a14]\n\t"
        "vfmadd213ps %[y], %[x], %[a15]\n\t"
        : [a8] "+v"(a8), [a9] "+v"(a9), [a10] "+v"(a10), [a11] "+v"(a11),
          [a12] "+v"(a12), [a13] "+v"(a13), [a14] "+v"(a14), [a15] "+v"(a15)
        : [x] "v"(x), [y] "v"(y));
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                                     _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  bool ok = true;  // 16 accumulators per lane, each in [1, 2]
  for (float l : lanes) ok = ok && l >= 16.0f && l <= 32.0f;
  return ok;
}

// AVX512-VNNI vpdpbusd (u8·s8, 4 products per int32 lane): 16 accumulators, every byte 1, so each
// instruction adds 4 to every lane. 16·16·4·2 = 2048 ops/iteration.
constexpr double kVnniOpsPerIter = 16 * 16 * 4 * 2;
__attribute__((target("avx512f,avx512vnni"), noinline)) inline bool vnni_loop(uint64_t iters) {
  const __m512i u = _mm512_set1_epi8(1), s = _mm512_set1_epi8(1);
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
          a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
  for (uint64_t i = 0; i < iters; ++i) {
    __asm__ volatile(  // 8 accumulators per statement: asm takes at most 30 operands
        "vpdpbusd %[s], %[u], %[a0]\n\t"
        "vpdpbusd %[s], %[u], %[a1]\n\t"
        "vpdpbusd %[s], %[u], %[a2]\n\t"
        "vpdpbusd %[s], %[u], %[a3]\n\t"
        "vpdpbusd %[s], %[u], %[a4]\n\t"
        "vpdpbusd %[s], %[u], %[a5]\n\t"
        "vpdpbusd %[s], %[u], %[a6]\n\t"
        "vpdpbusd %[s], %[u], %[a7]\n\t"
        : [a0] "+v"(a0), [a1] "+v"(a1), [a2] "+v"(a2), [a3] "+v"(a3),
          [a4] "+v"(a4), [a5] "+v"(a5), [a6] "+v"(a6), [a7] "+v"(a7)
        : [u] "v"(u), [s] "v"(s));
    __asm__ volatile(
        "vpdpbusd %[s], %[u], %[a8]\n\t"
        "vpdpbusd %[s], %[u], %[a9]\n\t"
        "vpdpbusd %[s], %[u], %[a10]\n\t"
        "vpdpbusd %[s], %[u], %[a11]\n\t"
        "vpdpbusd %[s], %[u], %[a12]\n\t"
        "vpdpbusd %[s], %[u], %[a13]\n\t"
        "vpdpbusd %[s], %[u], %[a14]\n\t"
        "vpdpbusd %[s], %[u], %[a15]\n\t"
        : [a8] "+v"(a8), [a9] "+v"(a9), [a10] "+v"(a10), [a11] "+v"(a11),
          [a12] "+v"(a12), [a13] "+v"(a13), [a14] "+v"(a14), [a15] "+v"(a15)
        : [u] "v"(u), [s] "v"(s));
  }
  const __m512i all[16] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15};
  const uint32_t expect = uint32_t(4 * iters);  // every lane of every accumulator (wrapping)
  bool ok = true;
  for (const __m512i& v : all) {
    alignas(64) uint32_t lanes[16];
    _mm512_store_si512(lanes, v);
    for (uint32_t l : lanes) ok = ok && l == expect;
  }
  return ok;
}

// AMX (inline asm; needs amx_permitted()). Tiles of 16 rows × 64 bytes; tmm0..3 accumulate
// A{tmm4,tmm5} · B{tmm6,tmm7} — a GEMM kernel's 2×2 blocking: each instruction is independent of
// the 3 before it (4 × 16 cycles > the ~52-cycle latency), so the loop is throughput-bound.
// TDPBF16PS: 16·16·32·2 = 16,384 flops; TDPBSSD: 16·16·64·2 = 32,768 ops. Every input element is
// 1, so each instruction adds 32 (bf16) or 64 (int8) to every accumulator element: exact in fp32
// up to 2^24 iterations, and in int32 (checked).
constexpr double kAmxBf16FlopsPerIter = 4 * 16384.0;
constexpr double kAmxInt8OpsPerIter = 4 * 32768.0;
constexpr uint64_t kAmxMaxIters = uint64_t(1) << 24;

struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

__attribute__((noinline)) inline bool amx_loop(bool int8, uint64_t iters) {
  if (iters == 0) return true;
  iters = std::min(iters, kAmxMaxIters);
  TileConfig cfg;
  for (int i = 0; i < 8; ++i) {
    cfg.colsb[i] = 64;
    cfg.rows[i] = 16;
  }
  alignas(64) uint16_t a[512], b[512];  // 16 × 64 bytes each
  if (int8) {
    std::memset(a, 1, sizeof a);
    std::memset(b, 1, sizeof b);
  } else {
    for (int i = 0; i < 512; ++i) a[i] = b[i] = 0x3f80;  // bf16 1.0
  }
  alignas(64) uint32_t out[4][256];
  const long stride = 64;
  __asm__ volatile("ldtilecfg %0" ::"m"(cfg));
  __asm__ volatile(
      "tilezero %%tmm0\n\t"
      "tilezero %%tmm1\n\t"
      "tilezero %%tmm2\n\t"
      "tilezero %%tmm3\n\t"
      "tileloadd (%0,%2,1), %%tmm4\n\t"
      "tileloadd (%0,%2,1), %%tmm5\n\t"
      "tileloadd (%1,%2,1), %%tmm6\n\t"
      "tileloadd (%1,%2,1), %%tmm7\n\t" ::"r"(a),
      "r"(b), "r"(stride)
      : "memory");
  uint64_t n = iters;
  if (int8) {
    __asm__ volatile(
        "1:\n\t"
        "tdpbssd %%tmm6, %%tmm4, %%tmm0\n\t"
        "tdpbssd %%tmm7, %%tmm4, %%tmm1\n\t"
        "tdpbssd %%tmm6, %%tmm5, %%tmm2\n\t"
        "tdpbssd %%tmm7, %%tmm5, %%tmm3\n\t"
        "dec %0\n\t"
        "jnz 1b"
        : "+r"(n)::"cc");
  } else {
    __asm__ volatile(
        "1:\n\t"
        "tdpbf16ps %%tmm6, %%tmm4, %%tmm0\n\t"
        "tdpbf16ps %%tmm7, %%tmm4, %%tmm1\n\t"
        "tdpbf16ps %%tmm6, %%tmm5, %%tmm2\n\t"
        "tdpbf16ps %%tmm7, %%tmm5, %%tmm3\n\t"
        "dec %0\n\t"
        "jnz 1b"
        : "+r"(n)::"cc");
  }
  __asm__ volatile(
      "tilestored %%tmm0, (%0,%4,1)\n\t"
      "tilestored %%tmm1, (%1,%4,1)\n\t"
      "tilestored %%tmm2, (%2,%4,1)\n\t"
      "tilestored %%tmm3, (%3,%4,1)\n\t"
      "tilerelease" ::"r"(out[0]),
      "r"(out[1]), "r"(out[2]), "r"(out[3]), "r"(stride)
      : "memory");
  uint32_t expect;
  if (int8) {
    expect = uint32_t(64 * iters);
  } else {
    float f = float(32 * iters);
    std::memcpy(&expect, &f, 4);
  }
  for (auto& t : out)
    for (uint32_t v : t)
      if (v != expect) return false;
  return true;
}

// Peak rate (operations/s, all n threads together) of loop(iters) doing `ops` per iteration:
// iterations sized on this thread to take ~`seconds`, then run on n threads at once; the best of
// `tries`. Returns -1 when a loop's check failed.
template <class Loop>
double measure_peak(unsigned n, double seconds, int tries, double ops, uint64_t max_iters,
                    Loop loop) {
  uint64_t it = 256;
  double t = 0;
  for (;;) {
    auto t0 = Clock::now();
    if (!loop(it)) return -1;
    t = seconds_since(t0);
    if (t > 0.005 || it >= max_iters) break;
    it *= 4;
  }
  uint64_t iters = std::clamp<uint64_t>(uint64_t(double(it) * seconds / t), 1, max_iters);
  std::atomic<bool> ok{true};
  double best = 0;
  for (int k = 0; k < tries; ++k) {
    double s = timed_threads(n, [&](unsigned) {
      if (!loop(iters)) ok.store(false);
    });
    best = std::max(best, double(iters) * ops * n / s);
  }
  return ok.load() ? best : -1;
}

// The machine's register-only peaks on n threads, in ops/s (0: the unit is absent here).
struct Peaks {
  double amx_bf16 = 0, amx_int8 = 0, avx512_fma = 0, avx512_vnni = 0;
};

inline double checked(const char* what, double v) {
  if (v < 0) {
    std::fprintf(stderr, "peak: the %s loop computed a wrong result\n", what);
    std::exit(1);
  }
  return v;
}

inline Peaks measure_peaks(unsigned n, double seconds, int tries) {
  Peaks p;
  Features f = cpu_features();
  constexpr uint64_t kBig = uint64_t(1) << 40;
  if (f.avx512)
    p.avx512_fma = checked("avx512_fma", measure_peak(n, seconds, tries, kFmaFlopsPerIter, kBig,
                                                       fma_loop));
  if (f.vnni)
    p.avx512_vnni = checked("avx512_vnni", measure_peak(n, seconds, tries, kVnniOpsPerIter, kBig,
                                                         vnni_loop));
  if (amx_permitted()) {
    if (f.amx_bf16)
      p.amx_bf16 = checked("amx_bf16",
                           measure_peak(n, seconds, tries, kAmxBf16FlopsPerIter, kAmxMaxIters,
                                        [](uint64_t i) { return amx_loop(false, i); }));
    if (f.amx_int8)
      p.amx_int8 = checked("amx_int8",
                           measure_peak(n, seconds, tries, kAmxInt8OpsPerIter, kAmxMaxIters,
                                        [](uint64_t i) { return amx_loop(true, i); }));
  }
  return p;
}

// ---- Operands ----------------------------------------------------------------------------------

// Input element types; outputs are fp32 (bf16, f32) or int32 (s8).
enum class Dt { bf16, f32, s8 };

inline size_t in_bytes(Dt dt) { return dt == Dt::bf16 ? 2 : dt == Dt::f32 ? 4 : 1; }
constexpr size_t kOutBytes = 4;

// The ceiling for a GEMM with inputs of this type on this machine: AMX where this process may use
// it, else AVX-512 — for bf16 the fp32 FMA rate (vdpbf16ps does 2 products per lane at half the
// FMA rate; converting to fp32 and using FMA is no faster), for int8 VNNI. 0 when unknown.
inline double peak_for(const Peaks& p, Dt dt, const char** unit) {
  switch (dt) {
    case Dt::bf16:
      if (p.amx_bf16 > 0) return *unit = "amx_bf16", p.amx_bf16;
      return *unit = "avx512_fma", p.avx512_fma;
    case Dt::s8:
      if (p.amx_int8 > 0) return *unit = "amx_int8", p.amx_int8;
      return *unit = "avx512_vnni", p.avx512_vnni;
    case Dt::f32:
      break;
  }
  return *unit = "avx512_fma", p.avx512_fma;
}

inline uint64_t mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

inline uint16_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t(u >> 16);  // exact for the small integers used here
}

// Fills count elements with small integers: -4..4 for bf16 and fp32 (so a K = 2048 sum stays
// below 2^24 and is exact in fp32 in any order), -128..127 for int8.
inline void fill(Dt dt, void* p, size_t count, uint64_t seed) {
  for (size_t i = 0; i < count; ++i) {
    uint64_t r = mix(seed * 0x100000001b3ull + i);
    switch (dt) {
      case Dt::bf16:
        static_cast<uint16_t*>(p)[i] = bf16_bits(float(int(r % 9) - 4));
        break;
      case Dt::f32:
        static_cast<float*>(p)[i] = float(int(r % 9) - 4);
        break;
      case Dt::s8:
        static_cast<int8_t*>(p)[i] = int8_t(int(r % 256) - 128);
        break;
    }
  }
}

inline double in_value(Dt dt, const void* p, size_t i) {
  switch (dt) {
    case Dt::bf16: {
      uint32_t u = uint32_t(static_cast<const uint16_t*>(p)[i]) << 16;
      float f;
      std::memcpy(&f, &u, 4);
      return f;
    }
    case Dt::f32:
      return static_cast<const float*>(p)[i];
    case Dt::s8:
      return static_cast<const int8_t*>(p)[i];
  }
  return 0;
}

inline double out_value(Dt dt, const void* p, size_t i) {
  if (dt == Dt::s8) return static_cast<const int32_t*>(p)[i];
  return static_cast<const float*>(p)[i];
}

// ---- GEMM workloads (K1, K1c, K2) ---------------------------------------------------------------

// Row-major, dense: A_b m×k, B_b k×n, C_b m×n, items one after another.
struct GemmShape {
  size_t batch = 1, m = 0, n = 0, k = 0;
  size_t a_elems() const { return batch * m * k; }
  size_t b_elems() const { return batch * k * n; }
  size_t c_elems() const { return batch * m * n; }
  double flops() const { return 2.0 * double(batch) * double(m) * double(n) * double(k); }
};

struct GemmSet {
  void* a = nullptr;
  void* b = nullptr;
  void* c = nullptr;
};

struct GemmCase {
  std::string name;  // the JSON "case"
  Dt dt = Dt::f32;
  bool prepacked = false;  // B packed once before the timing (ours: PackedB)
};

// Runs the whole batch of operand set `set` once (C = A·B).
using GemmCall = std::function<void(size_t set)>;

struct GemmBackend {
  // Called once, after the machine's references (peaks, bandwidth) were measured.
  std::function<void(unsigned procs)> start = [](unsigned) {};
  // For one case: the call for its operand sets, or an empty function when the impl cannot run
  // the case (it says why on stderr; the case is then left out).
  std::function<GemmCall(const GemmCase&, const GemmShape&, const std::vector<GemmSet>&)> prepare;
  // Runs a timing loop where the impl's calls are meant to be made (ours: inside a task).
  std::function<void(const std::function<void()>&)> within = [](const std::function<void()>& f) {
    f();
  };
};

// Compares C with a double-precision reference (exact: the operands are small integers): every
// element of the items in `full`, and `samples` entries at pseudo-random places. Returns the
// number of mismatches (the first few are printed).
inline size_t check_gemm(const GemmShape& s, Dt dt, const GemmSet& set, size_t samples,
                         const std::vector<size_t>& full, const char* what) {
  size_t bad = 0;
  auto one = [&](size_t b, size_t i, size_t j) {
    const size_t ao = b * s.m * s.k + i * s.k, bo = b * s.k * s.n + j, co = b * s.m * s.n + i * s.n + j;
    double ref = 0;
    for (size_t p = 0; p < s.k; ++p) ref += in_value(dt, set.a, ao + p) * in_value(dt, set.b, bo + p * s.n);
    double got = out_value(dt, set.c, co);
    if (got != ref) {
      if (bad < 5)
        std::fprintf(stderr, "%s: C[%zu][%zu][%zu] = %.9g, expected %.9g\n", what, b, i, j, got, ref);
      ++bad;
    }
  };
  for (size_t b : full)
    for (size_t i = 0; i < s.m; ++i)
      for (size_t j = 0; j < s.n; ++j) one(b, i, j);
  for (size_t q = 0; q < samples; ++q) {
    uint64_t r = mix(0xc0ffee + q);
    one(r % s.batch, (r >> 20) % s.m, (r >> 40) % s.n);
  }
  return bad;
}

// Size of the operand pool K1 cycles through: far larger than the caches (L3 here: 260 MiB
// shared), so every call reads its operands from memory.
constexpr size_t kK1Pool = size_t(1) << 30;

// The GEMM workloads; `workload` is "K1", "K1c" or "K2". Returns the exit status.
//  K1:  -n = batch (4096) of 64³; operand sets of the batch cycle through a 1 GiB pool; per-call
//       median; gflops and fraction_of_bandwidth = (A+B+C bytes / time) / read bandwidth of the
//       pool measured by this process with the same thread count.
//  K1c: 16 × 64³, one set (in L2), the call repeated -n times (default: ~0.25 s worth); gflops
//       and fraction_of_peak against the machine's peak for the type measured by this process.
//  K2:  one -n³ GEMM (2048); per-call median; gflops and fraction_of_peak.
inline int run_gemm(const char* workload, const char* impl, int argc, char** argv,
                    const std::vector<GemmCase>& cases, GemmBackend& be) {
  const std::string w = workload;
  const bool k1 = w == "K1", k1c = w == "K1c", k2 = w == "K2";
  if (!k1 && !k1c && !k2) {
    std::fprintf(stderr, "unknown GEMM workload %s\n", workload);
    return 2;
  }
  Args a = parse_args(argc, argv, k1 ? 4096 : k2 ? 2048 : 0);
  GemmShape shape = k1 ? GemmShape{a.n, 64, 64, 64}
                       : k1c ? GemmShape{16, 64, 64, 64} : GemmShape{1, a.n, a.n, a.n};
  std::vector<GemmCase> run;
  for (const auto& c : cases)
    if (a.case_name.empty() || a.case_name == c.name) run.push_back(c);
  if (run.empty()) {
    std::fprintf(stderr, "%s %s: no case %s\n", workload, impl, a.case_name.c_str());
    return 2;
  }

  // The references (K1: read bandwidth of the operand pool; K1c, K2: the peaks), measured by this
  // process with the same thread count before the impl starts any thread of its own, and again
  // after each case; the highest reading is used. On a shared machine one reading may be taken
  // while a neighbour holds the CPU, which would understate the ceiling.
  Buffer pool;
  double bandwidth = 0;
  Peaks peaks;
  if (k1) {
    size_t biggest = 0;
    for (const auto& c : run)
      biggest = std::max(biggest, (shape.a_elems() + shape.b_elems()) * in_bytes(c.dt) +
                                      shape.c_elems() * kOutBytes);
    pool = Buffer(std::max(kK1Pool, 2 * biggest) + biggest);
  }
  auto measure_references = [&] {
    if (k1) {
      bandwidth = std::max(bandwidth, read_bandwidth(pool.data(), pool.size(), a.procs));
      if (verbose())
        std::fprintf(stderr, "%s %s: read bandwidth %.2f GB/s (%u threads, %.0f MiB)\n",
                     workload, impl, bandwidth, a.procs, double(pool.size()) / (1 << 20));
    } else {
      Peaks p = measure_peaks(a.procs, 0.04, 3);
      peaks.amx_bf16 = std::max(peaks.amx_bf16, p.amx_bf16);
      peaks.amx_int8 = std::max(peaks.amx_int8, p.amx_int8);
      peaks.avx512_fma = std::max(peaks.avx512_fma, p.avx512_fma);
      peaks.avx512_vnni = std::max(peaks.avx512_vnni, p.avx512_vnni);
      if (verbose())
        std::fprintf(stderr,
                     "%s %s: peaks (GFLOP/s, %u threads): amx_bf16 %.0f amx_int8 %.0f "
                     "avx512_fma %.0f avx512_vnni %.0f\n",
                     workload, impl, a.procs, peaks.amx_bf16 / 1e9, peaks.amx_int8 / 1e9,
                     peaks.avx512_fma / 1e9, peaks.avx512_vnni / 1e9);
    }
  };
  measure_references();
  be.start(a.procs);

  struct Result {
    std::string name;
    Dt dt;
    double t_call;  // seconds per call
    uint64_t n;     // the line's n
    size_t bytes;   // A + B + C of one call
  };
  std::vector<Result> results;
  int status = 0;
  for (const auto& c : run) {
    const size_t ab = shape.a_elems() * in_bytes(c.dt), bb = shape.b_elems() * in_bytes(c.dt),
                 cb = shape.c_elems() * kOutBytes, set_bytes = ab + bb + cb;
    Buffer own;
    std::byte* base;
    size_t nsets = 1;
    if (k1) {
      base = pool.data();
      nsets = std::max<size_t>(2, (kK1Pool + set_bytes - 1) / set_bytes);
      if (nsets * set_bytes > pool.size()) nsets = pool.size() / set_bytes;
    } else {
      own = Buffer(set_bytes);
      base = own.data();
    }
    std::vector<GemmSet> sets(nsets);
    for (size_t s = 0; s < nsets; ++s) {
      std::byte* p = base + s * set_bytes;
      sets[s] = GemmSet{p, p + ab, p + ab + bb};
      if (s == 0) {
        fill(c.dt, sets[0].a, shape.a_elems(), 1);
        fill(c.dt, sets[0].b, shape.b_elems(), 2);
      } else {  // the same values at other addresses
        std::memcpy(sets[s].a, sets[0].a, ab);
        std::memcpy(sets[s].b, sets[0].b, bb);
      }
      std::memset(sets[s].c, 0xff, cb);  // NaN / -1: an output never written fails the check
    }

    GemmCall call;
    try {
      call = be.prepare(c, shape, sets);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s %s %s: %s\n", workload, impl, c.name.c_str(), e.what());
      status = 1;
      continue;
    }
    if (!call) continue;

    double t_call = 0;  // seconds per call
    uint64_t n_line = 0;
    std::vector<char> used(nsets);
    try {
      be.within([&] {
        if (k1) {
          // Calls take the sets in turn, so each reads operands last touched ~1 GiB of traffic
          // ago. 2 warm-up calls (code, JIT), then up to two rounds of the pool, or fewer once
          // at least 5 calls and 1.5 s are done.
          size_t next = 0;
          auto call_next = [&] {
            size_t s = next++ % nsets;
            call(s);
            used[s] = 1;
          };
          call_next();
          call_next();
          std::vector<double> ts;
          auto start = Clock::now();
          for (size_t r = 0; r < std::max<size_t>(2 * nsets, 5); ++r) {
            auto t0 = Clock::now();
            call_next();
            ts.push_back(seconds_since(t0));
            if (ts.size() >= 5 && seconds_since(start) > 1.5) break;
          }
          t_call = median(ts);
          n_line = shape.batch;
        } else if (k1c) {
          auto t0 = Clock::now();
          for (int r = 0; r < 20; ++r) call(0);
          used[0] = 1;
          uint64_t reps = a.n;
          if (reps == 0)
            reps = std::max<uint64_t>(50, uint64_t(0.25 / (seconds_since(t0) / 20)));
          t0 = Clock::now();
          for (uint64_t r = 0; r < reps; ++r) call(0);
          t_call = seconds_since(t0) / double(reps);
          n_line = reps * shape.batch;
        } else {
          auto t0 = Clock::now();
          call(0);
          used[0] = 1;
          double first = seconds_since(t0);
          size_t reps = std::clamp<size_t>(size_t(0.6 / first), first > 2 ? 2 : 3, 20);
          std::vector<double> ts;
          for (size_t r = 0; r < reps; ++r) {
            t0 = Clock::now();
            call(0);
            ts.push_back(seconds_since(t0));
          }
          t_call = median(ts);
          n_line = shape.m;
        }
      });
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s %s %s: %s\n", workload, impl, c.name.c_str(), e.what());
      status = 1;
      continue;
    }

    // Check every set that was computed (all of them, but in K1 when the time limit stopped the
    // calls before a full round of a large pool).
    std::string what = std::string(workload) + " " + impl + " " + c.name;
    size_t bad = 0;
    // K1: 4096 entries of every set and all of set 0's first and last items; K1c: everything;
    // K2: 2048 entries.
    for (size_t s = 0; s < nsets; ++s) {
      if (!used[s]) continue;
      std::vector<size_t> full;
      if (k1c)
        for (size_t b = 0; b < shape.batch; ++b) full.push_back(b);
      if (k1 && s == 0) full = {0, shape.batch - 1};
      bad += check_gemm(shape, c.dt, sets[s], k1c ? 0 : k2 ? 2048 : 4096, full, what.c_str());
    }
    if (bad) {
      std::fprintf(stderr, "%s: %zu wrong results; not reported\n", what.c_str(), bad);
      status = 1;
      continue;
    }

    results.push_back({c.name, c.dt, t_call, n_line, set_bytes});
    measure_references();
  }

  for (const auto& r : results) {
    double rate = shape.flops() / r.t_call;
    emit(workload, impl, a.procs, "gflops", rate / 1e9, r.n, r.name);
    if (k1) {
      double gbs = double(r.bytes) / r.t_call / 1e9;
      emit(workload, impl, a.procs, "fraction_of_bandwidth", gbs / bandwidth, r.n, r.name);
    } else {
      const char* unit = "";
      double peak = peak_for(peaks, r.dt, &unit);
      if (peak > 0) emit(workload, impl, a.procs, "fraction_of_peak", rate / peak, r.n, r.name);
      if (verbose())
        std::fprintf(stderr, "%s %s %s: peak reference %s %.0f GFLOP/s\n", workload, impl,
                     r.name.c_str(), unit, peak / 1e9);
    }
  }
  return status;
}

// ---- K3: batched dot products --------------------------------------------------------------------

struct DotBackend {
  std::function<void(unsigned procs)> start = [](unsigned) {};
  // out[i] = x_i · y_i for i < count, vector i at x + i·stride_x (likewise y), length len.
  // Returns the call, or an empty function when the impl cannot run it.
  std::function<std::function<void()>(size_t count, size_t len, const float* x, size_t stride_x,
                                      const float* y, size_t stride_y, float* out)>
      prepare;
  std::function<void(const std::function<void()>&)> within = [](const std::function<void()>& f) {
    f();
  };
};

// K3: -n dot products (1,000,000) of length 128, fp32. Case l1: one vector pair reused for every
// product (stride 0: L1-resident); case stream: -n distinct pairs (1 GB at the full size).
// gflops = 2·128·n / time; gbytes_per_s = the x and y bytes read (2·128·4·n) / time. Per-call
// median over repeated calls.
inline int run_dot(const char* impl, int argc, char** argv, DotBackend& be) {
  Args a = parse_args(argc, argv, 1'000'000);
  constexpr size_t kLen = 128;
  const size_t count = a.n;
  std::vector<std::string> cases = {"l1", "stream"};
  if (!a.case_name.empty()) {
    if (a.case_name != "l1" && a.case_name != "stream") {
      std::fprintf(stderr, "K3: no case %s (l1, stream)\n", a.case_name.c_str());
      return 2;
    }
    cases = {a.case_name};
  }
  be.start(a.procs);
  int status = 0;
  std::vector<float> out(count);
  for (const auto& cs : cases) {
    const bool l1 = cs == "l1";
    Buffer data(2 * (l1 ? kLen : count * kLen) * sizeof(float));
    float* x = reinterpret_cast<float*>(data.data());
    float* y = x + (l1 ? kLen : count * kLen);
    fill(Dt::f32, x, l1 ? kLen : count * kLen, 3);
    fill(Dt::f32, y, l1 ? kLen : count * kLen, 4);
    const size_t stride = l1 ? 0 : kLen;
    std::fill(out.begin(), out.end(), std::nanf(""));
    std::function<void()> call;
    try {
      call = be.prepare(count, kLen, x, stride, y, stride, out.data());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "K3 %s %s: %s\n", impl, cs.c_str(), e.what());
      status = 1;
      continue;
    }
    if (!call) continue;
    double t_call = 0;
    try {
      be.within([&] {
        auto t0 = Clock::now();
        call();
        double first = seconds_since(t0);
        size_t reps = std::clamp<size_t>(size_t(0.3 / first), 3, 50);
        std::vector<double> ts;
        for (size_t r = 0; r < reps; ++r) {
          t0 = Clock::now();
          call();
          ts.push_back(seconds_since(t0));
        }
        t_call = median(ts);
      });
    } catch (const std::exception& e) {
      std::fprintf(stderr, "K3 %s %s: %s\n", impl, cs.c_str(), e.what());
      status = 1;
      continue;
    }
    size_t bad = 0;
    auto one = [&](size_t i) {
      double ref = 0;
      for (size_t j = 0; j < kLen; ++j) ref += double(x[i * stride + j]) * double(y[i * stride + j]);
      if (double(out[i]) != ref) {
        if (bad < 5) std::fprintf(stderr, "K3 %s %s: out[%zu] = %.9g, expected %.9g\n", impl, cs.c_str(), i, double(out[i]), ref);
        ++bad;
      }
    };
    if (l1) {
      for (size_t i = 0; i < count; ++i) one(i);
    } else {
      one(0);
      one(count - 1);
      for (size_t q = 0; q < 8192; ++q) one(mix(0xd07 + q) % count);
    }
    if (bad) {
      std::fprintf(stderr, "K3 %s %s: %zu wrong results; not reported\n", impl, cs.c_str(), bad);
      status = 1;
      continue;
    }
    emit("K3", impl, a.procs, "gflops", 2.0 * kLen * double(count) / t_call / 1e9, count, cs);
    emit("K3", impl, a.procs, "gbytes_per_s", 2.0 * kLen * sizeof(float) * double(count) / t_call / 1e9,
         count, cs);
  }
  return status;
}

}  // namespace bench::kern
