// The SIGILL-trapping AMX emulator (amx_emulator.hpp says what and why).
#include "amx_emulator.hpp"

#include <cpuid.h>
#include <signal.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace amx_emulator {


namespace {

struct Tiles {
  bool configured = false;
  uint8_t rows[8] = {};
  uint16_t colsb[8] = {};
  alignas(64) uint8_t t[8][16][64] = {};
};
thread_local Tiles g;
std::atomic<long> g_count[16];  // per kind of instruction

[[noreturn]] void die(const char* what, const uint8_t* ip) {
  std::fprintf(stderr, "emu: %s at %p: %02x %02x %02x %02x %02x %02x\n", what, (void*)ip, ip[0],
               ip[1], ip[2], ip[3], ip[4], ip[5]);
  std::abort();
}

uint64_t reg(const ucontext_t* uc, int r) {
  static const int map[16] = {REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP,
                              REG_RSI, REG_RDI, REG_R8,  REG_R9,  REG_R10, REG_R11,
                              REG_R12, REG_R13, REG_R14, REG_R15};
  return static_cast<uint64_t>(uc->uc_mcontext.gregs[map[r]]);
}

float bf(uint16_t h) {  // DAZ: denormal bf16 inputs read as zero
  uint32_t u = uint32_t(h) << 16;
  if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
float ftz(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0) u &= 0x80000000u;
  std::memcpy(&f, &u, 4);
  return f;
}

void need(bool ok, const char* what, const uint8_t* ip) {
  if (!ok) die(what, ip);
}

void handler(int, siginfo_t*, void* ctx) {
  auto* uc = static_cast<ucontext_t*>(ctx);
  const uint8_t* ip = reinterpret_cast<const uint8_t*>(uc->uc_mcontext.gregs[REG_RIP]);
  need(ip[0] == 0xC4, "not a VEX3 instruction", ip);
  const int R = !(ip[1] & 0x80), X = !(ip[1] & 0x40), B = !(ip[1] & 0x20);
  need((ip[1] & 0x1f) == 2, "map is not 0F38", ip);
  const int W = ip[2] >> 7, vvvv = (~ip[2] >> 3) & 15, L = (ip[2] >> 2) & 1, pp = ip[2] & 3;
  need(W == 0 && L == 0, "W/L", ip);
  const uint8_t op = ip[3], modrm = ip[4];
  const int mod = modrm >> 6, rg = ((modrm >> 3) & 7) | (R << 3);
  int len = 5;
  uint64_t addr = 0, stride = 0;
  bool has_index = false;
  int rmreg = (modrm & 7) | (B << 3);
  if (mod != 3) {
    const int rml = modrm & 7;
    bool rip_rel = false;
    int64_t disp = 0;
    if (rml == 4) {
      const uint8_t sib = ip[5];
      len = 6;
      const int scale = sib >> 6, index = ((sib >> 3) & 7) | (X << 3), basel = sib & 7;
      if (index != 4) {
        has_index = true;
        stride = reg(uc, index) << scale;
      }
      if (basel == 5 && mod == 0) {
        disp = int32_t(ip[len] | ip[len + 1] << 8 | ip[len + 2] << 16 | uint32_t(ip[len + 3]) << 24);
        len += 4;
      } else {
        addr = reg(uc, basel | (B << 3));
      }
    } else if (rml == 5 && mod == 0) {
      rip_rel = true;
      disp = int32_t(ip[len] | ip[len + 1] << 8 | ip[len + 2] << 16 | uint32_t(ip[len + 3]) << 24);
      len += 4;
    } else {
      addr = reg(uc, rmreg);
    }
    if (mod == 1) {
      disp = int8_t(ip[len]);
      len += 1;
    } else if (mod == 2) {
      disp = int32_t(ip[len] | ip[len + 1] << 8 | ip[len + 2] << 16 | uint32_t(ip[len + 3]) << 24);
      len += 4;
    }
    if (rip_rel) addr = reinterpret_cast<uint64_t>(ip) + len;
    addr += disp;
  }
  auto tile_ok = [&](int t) { need(t < 8 && g.configured, "bad tile or unconfigured", ip); };
  if (op == 0x49 && pp == 0 && mod != 3 && rg == 0) {  // LDTILECFG
    const uint8_t* c = reinterpret_cast<const uint8_t*>(addr);
    need(c[0] == 1, "palette", ip);
    for (int i = 0; i < 8; ++i) {
      std::memcpy(&g.colsb[i], c + 16 + 2 * i, 2);
      g.rows[i] = c[48 + i];
      need(g.colsb[i] <= 64 && g.rows[i] <= 16, "config", ip);
    }
    std::memset(g.t, 0, sizeof g.t);
    g.configured = true;
    g_count[0]++;
  } else if (op == 0x49 && pp == 0 && modrm == 0xC0) {  // TILERELEASE
    g.configured = false;
    std::memset(g.t, 0, sizeof g.t);
    g_count[1]++;
  } else if (op == 0x49 && pp == 3 && mod == 3) {  // TILEZERO
    tile_ok(rg);
    std::memset(g.t[rg], 0, sizeof g.t[rg]);
    g_count[2]++;
  } else if (op == 0x4B && (pp == 3 || pp == 1) && mod != 3) {  // TILELOADD(T1)
    need((modrm & 7) == 4 && has_index, "tileloadd without SIB index", ip);
    tile_ok(rg);
    std::memset(g.t[rg], 0, sizeof g.t[rg]);
    for (int r = 0; r < g.rows[rg]; ++r)
      std::memcpy(g.t[rg][r], reinterpret_cast<const void*>(addr + r * stride), g.colsb[rg]);
    g_count[3]++;
  } else if (op == 0x4B && pp == 2 && mod != 3) {  // TILESTORED
    need((modrm & 7) == 4 && has_index, "tilestored without SIB index", ip);
    tile_ok(rg);
    for (int r = 0; r < g.rows[rg]; ++r)
      std::memcpy(reinterpret_cast<void*>(addr + r * stride), g.t[rg][r], g.colsb[rg]);
    g_count[4]++;
  } else if ((op == 0x5C && pp == 2) || op == 0x5E) {  // TDP*: reg = dst, rm = A, vvvv = B
    need(mod == 3, "tdp with memory", ip);
    const int d = rg, a = rmreg, b = vvvv;
    tile_ok(d), tile_ok(a), tile_ok(b);
    need(d != a && d != b && a != b, "tdp tiles not distinct", ip);
    const int M = g.rows[d], K = g.colsb[a] / 4, N = g.colsb[d] / 4;
    need(g.rows[a] == M && g.rows[b] == K && g.colsb[b] == g.colsb[d], "tdp shapes", ip);
    if (op == 0x5C) {
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
          float acc;
          std::memcpy(&acc, &g.t[d][m][4 * n], 4);
          for (int k = 0; k < K; ++k) {
            uint16_t a0, a1, b0, b1;
            std::memcpy(&a0, &g.t[a][m][4 * k], 2);
            std::memcpy(&a1, &g.t[a][m][4 * k + 2], 2);
            std::memcpy(&b0, &g.t[b][k][4 * n], 2);
            std::memcpy(&b1, &g.t[b][k][4 * n + 2], 2);
            acc = ftz(acc + bf(a1) * bf(b1));
            acc = ftz(acc + bf(a0) * bf(b0));
          }
          std::memcpy(&g.t[d][m][4 * n], &acc, 4);
        }
      g_count[5]++;
    } else {
      // pp: 3 = F2 TDPBSSD (s,s), 2 = F3 TDPBSUD (s,u), 1 = 66 TDPBUSD (u,s), 0 = TDPBUUD (u,u)
      const bool a_signed = pp == 3 || pp == 2, b_signed = pp == 3 || pp == 1;
      for (int m = 0; m < M; ++m)
        for (int n = 0; n < N; ++n) {
          uint32_t acc;
          std::memcpy(&acc, &g.t[d][m][4 * n], 4);
          for (int k = 0; k < K; ++k)
            for (int q = 0; q < 4; ++q) {
              const uint8_t av = g.t[a][m][4 * k + q], bv = g.t[b][k][4 * n + q];
              const int32_t x = a_signed ? int8_t(av) : int32_t(av);
              const int32_t y = b_signed ? int8_t(bv) : int32_t(bv);
              acc += uint32_t(x * y);
            }
          std::memcpy(&g.t[d][m][4 * n], &acc, 4);
        }
      g_count[6 + pp]++;
    }
  } else {
    die("unknown instruction", ip);
  }
  uc->uc_mcontext.gregs[REG_RIP] += len;
}

}  // namespace

bool real_amx() noexcept {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 24) & 1)) return false;
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

void install() noexcept {
  struct sigaction sa = {};
  sa.sa_sigaction = handler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;  // task stacks are small: use the alternate stack
  sigaction(SIGILL, &sa, nullptr);
}

bool configured() noexcept { return g.configured; }

long instructions() noexcept {
  long n = 0;
  for (const auto& c : g_count) n += c.load(std::memory_order_relaxed);
  return n;
}

}  // namespace amx_emulator
