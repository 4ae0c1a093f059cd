// Choosing the kernel path at run time: CPUID feature bits, the register state the OS enables
// (XCR0), and for AMX the Linux permission request. Never the model number: hypervisors report
// wrong ones (FIELD-NOTES.md).
//
// The choice is made once, at the first call (or by set_isa), and kept in an atomic; the
// layered tables are built once per path. A path's table lists only what that path has; the
// gaps are filled from the next slower path, so every entry of a layered table is non-null.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "kernels/kernel_table.hpp"

#if defined(__x86_64__)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace myriad::kernels {

namespace detail {
namespace {

#if defined(__x86_64__)
uint64_t xgetbv0() noexcept {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

// Linux keeps AMX's tile data disabled per process until it is asked for (it makes every
// signal frame and context switch ~8 KiB bigger). 0x1023 = ARCH_REQ_XCOMP_PERM, 18 =
// XFEATURE_XTILEDATA. Tests can make the request fail (seccomp) to check the fallback.
bool request_amx_permission() noexcept {
#if defined(__linux__)
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
  return false;
#endif
}

Isa detect() noexcept {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::portable;
  const bool osxsave = c & (1u << 27), fma = c & (1u << 12);
  if (!osxsave) return Isa::portable;
  const uint64_t xcr0 = xgetbv0();
  if ((xcr0 & 0x6) != 0x6) return Isa::portable;  // SSE and AVX state
  if (__get_cpuid_max(0, nullptr) < 7) return Isa::portable;
  __cpuid_count(7, 0, a, b, c, d);
  const unsigned ebx7 = b, ecx7 = c, edx7 = d;
  __cpuid_count(7, 1, a, b, c, d);
  const unsigned eax71 = a;
  const bool avx2 = ebx7 & (1u << 5), bmi2 = ebx7 & (1u << 8);
  if (!(avx2 && fma && bmi2)) return Isa::portable;
  // AVX-512 path: F, DQ, BW, VL + VNNI + BF16, and the OS saving opmask/ZMM state (XCR0 5-7).
  const bool avx512 = (ebx7 & (1u << 16)) && (ebx7 & (1u << 17)) && (ebx7 & (1u << 30)) &&
                      (ebx7 & (1u << 31)) && (ecx7 & (1u << 11)) && (eax71 & (1u << 5)) &&
                      (xcr0 & 0xe0) == 0xe0;
  if (!avx512) return Isa::avx2;
  // AMX: TILE, BF16, INT8, tile state enabled in XCR0 (17, 18), and the permission granted.
  const bool amx = (edx7 & (1u << 24)) && (edx7 & (1u << 22)) && (edx7 & (1u << 25)) &&
                   (xcr0 & (3u << 17)) == (3u << 17);
  if (!amx || !request_amx_permission()) return Isa::avx512;
  return Isa::amx;
}
#else
Isa detect() noexcept { return Isa::portable; }
#endif

Isa best_cached() noexcept {
  static const Isa best = detect();
  return best;
}

constexpr int kUnset = -1;
std::atomic<int> g_active{kUnset};

bool parse_isa(const char* s, Isa* out) noexcept {
  static constexpr struct {
    const char* name;
    Isa isa;
  } names[] = {{"portable", Isa::portable}, {"avx2", Isa::avx2}, {"avx512", Isa::avx512},
               {"amx", Isa::amx}};
  for (const auto& n : names)
    if (std::strcmp(s, n.name) == 0) {
      *out = n.isa;
      return true;
    }
  return false;
}

Isa initial_choice() noexcept {
  const Isa best = best_cached();
  const char* env = std::getenv("MYRIAD_KERNELS");
  if (!env || !*env || std::strcmp(env, "auto") == 0) return best;
  Isa forced;
  if (!parse_isa(env, &forced)) {
    std::fprintf(stderr, "myriad: MYRIAD_KERNELS=%s is not one of amx, avx512, avx2, portable, "
                         "auto; using %s\n", env, isa_name(best));
    return best;
  }
  if (forced > best) {
    std::fprintf(stderr, "myriad: MYRIAD_KERNELS=%s is not supported on this machine; using %s\n",
                 env, isa_name(best));
    return best;
  }
  return forced;
}

KernelTable layer(Isa isa) noexcept {
  KernelTable t = portable_table();
  const KernelTable* paths[] = {&avx2_table(), &avx512_table(), &amx_table()};
  for (int i = 1; i <= static_cast<int>(isa); ++i) {
    const KernelTable& p = *paths[i - 1];
    t.isa = static_cast<Isa>(i);
    for (int g = 0; g < 4; ++g)
      if (p.gemm[g]) {
        t.gemm[g] = p.gemm[g];
        t.gemm_begin[g] = p.begin;  // AMX's tile bracket goes with AMX's blocks only
        t.gemm_end[g] = p.end;
      }
    if (p.dot) t.dot = p.dot;
    if (p.axpy) t.axpy = p.axpy;
    if (p.sum) t.sum = p.sum;
    if (p.max) t.max = p.max;
  }
  return t;
}

}  // namespace

const KernelTable& table_for(Isa isa) noexcept {
  static const KernelTable tables[] = {layer(Isa::portable), layer(Isa::avx2), layer(Isa::avx512),
                                       layer(Isa::amx)};
  return tables[static_cast<int>(isa)];
}

void set_isa_unchecked(Isa isa) noexcept {
  g_active.store(static_cast<int>(isa), std::memory_order_release);
}

}  // namespace detail

const char* isa_name(Isa isa) noexcept {
  switch (isa) {
    case Isa::portable: return "portable";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
    case Isa::amx: return "amx";
  }
  return "unknown";
}

Isa best_isa() noexcept { return detail::best_cached(); }

Isa active_isa() noexcept {
  int v = detail::g_active.load(std::memory_order_acquire);
  if (v != detail::kUnset) return static_cast<Isa>(v);
  static std::once_flag once;
  std::call_once(once, [] {
    int expected = detail::kUnset;
    detail::g_active.compare_exchange_strong(expected, static_cast<int>(detail::initial_choice()),
                                             std::memory_order_acq_rel);
  });
  return static_cast<Isa>(detail::g_active.load(std::memory_order_acquire));
}

Errc set_isa(Isa isa) noexcept {
  const int v = static_cast<int>(isa);
  if (v < 0 || v > static_cast<int>(Isa::amx)) return Errc::invalid_argument;
  if (isa > best_isa()) return Errc::not_supported;
  detail::g_active.store(v, std::memory_order_release);
  return Errc::ok;
}

void reset_isa() noexcept {
  detail::g_active.store(static_cast<int>(best_isa()), std::memory_order_release);
}

}  // namespace myriad::kernels
