// Kernel path dispatch (best_isa / active_isa / set_isa / reset_isa, MYRIAD_KERNELS, the AMX
// permission request and its refusal), kernels called concurrently from many tasks and threads,
// and the AMX section rule (a task that parks inside a section is a fatal error naming it).
//
// The path is chosen once per process, at the first kernel call, so the environment variable
// and a refused permission are tested in child processes: this binary run again (posix_spawn of
// /proc/self/exe) with a filter selecting one helper test (DISABLED_*, run only on request) and
// the variables for the case; the helper checks the choice before and after its first kernel
// call and prints a marker the parent looks for.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/syscall.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <cstddef>
#define MYRIAD_KTEST_SECCOMP 1
#endif
#endif

#include "kernels/amx_section.hpp"
#include "myriad/kernels.hpp"
#include "myriad/runtime.hpp"
#include "myriad/task.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

extern char** environ;

namespace {

using myriad::Config;
using myriad::Errc;
using myriad::Error;
using myriad::Runtime;
using namespace myriad::kernels;

constexpr double kU = 1.0 / 16777216.0;  // 2^-24

struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 0xabcdefull) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  long range(long lo, long hi) { return lo + static_cast<long>(next() % uint64_t(hi - lo + 1)); }
  float sym(float r) {
    return static_cast<float>((static_cast<double>(next() >> 11) / 9007199254740992.0 * 2 - 1) * r);
  }
};

double dv(bf16 x) { return to_float(x); }
double dv(float x) { return x; }
double dv(int8_t x) { return x; }
double dv(uint8_t x) { return x; }
template <class T>
T gen(Rng& r);
template <>
bf16 gen<bf16>(Rng& r) { return to_bf16(r.sym(2.0f)); }
template <>
float gen<float>(Rng& r) { return r.sym(1.0f); }
template <>
int8_t gen<int8_t>(Rng& r) { return static_cast<int8_t>(r.range(-128, 127)); }
template <>
uint8_t gen<uint8_t>(Rng& r) { return static_cast<uint8_t>(r.range(0, 255)); }

// A dense GEMM with its reference, for the dispatch and concurrency checks (the exhaustive
// shape and layout coverage is in kernels_test.cpp). Tolerance as justified there:
// 2·(k+3)·2⁻²⁴·Σ|a·b| for fp32 accumulation; int8 exact.
template <class A, class B, class C>
struct GemmJob {
  Gemm g;
  std::vector<A> a;
  std::vector<B> b;
  std::vector<C> c;
  std::vector<double> want, tol;
  const PackedB* packed = nullptr;

  GemmJob(Rng& r, std::size_t batch, std::size_t m, std::size_t n, std::size_t k, bool tb) {
    g.batch = batch, g.m = m, g.n = n, g.k = k, g.trans_b = tb;
    g.set_dense();
    a.resize(batch * m * k);
    b.resize(batch * k * n);
    c.assign(batch * m * n, C(7));
    for (auto& x : a) x = gen<A>(r);
    for (auto& x : b) x = gen<B>(r);
    reference();
  }
  void reference() {
    want.assign(c.size(), 0);
    tol.assign(c.size(), 0);
    const std::size_t items_b = g.stride_b == 0 ? 1 : g.batch;
    for (std::size_t bi = 0; bi < g.batch; ++bi)
      for (std::size_t i = 0; i < g.m; ++i)
        for (std::size_t j = 0; j < g.n; ++j) {
          double s = 0, sa = 0;
          for (std::size_t kk = 0; kk < g.k; ++kk) {
            const std::size_t bb = (items_b == 1 ? 0 : bi) * g.stride_b;
            const double p = dv(a[bi * g.stride_a + i * g.lda + kk]) *
                             dv(b[bb + (g.trans_b ? j * g.ldb + kk : kk * g.ldb + j)]);
            s += p;
            sa += std::fabs(p);
          }
          want[bi * g.stride_c + i * g.ldc + j] = s;
          tol[bi * g.stride_c + i * g.ldc + j] = 2.0 * double(g.k + 3) * kU * sa;
        }
  }
  void run(const Exec& ex) {
    if (packed)
      gemm(g, a.data(), *packed, c.data(), ex);
    else
      gemm(g, a.data(), b.data(), c.data(), ex);
  }
  std::string verify() const {
    for (std::size_t i = 0; i < c.size(); ++i) {
      const double got = static_cast<double>(c[i]);
      if (!(std::fabs(got - want[i]) <= tol[i])) {
        std::ostringstream o;
        o << "gemm batch=" << g.batch << " m=" << g.m << " n=" << g.n << " k=" << g.k
          << " trans_b=" << g.trans_b << (packed ? " packed" : "") << ": C[" << i
          << "] = " << got << ", want " << want[i];
        return o.str();
      }
    }
    return "";
  }
};

// ---- the path choice in this process -------------------------------------------------------

TEST(KernelsDispatch, ResetGoesToTheBestPath) {
  reset_isa();
  EXPECT_EQ(active_isa(), best_isa());
  EXPECT_GE(static_cast<int>(best_isa()), static_cast<int>(active_isa()));
  EXPECT_GE(static_cast<int>(best_isa()), static_cast<int>(Isa::portable));
  EXPECT_LE(static_cast<int>(best_isa()), static_cast<int>(Isa::amx));
}

TEST(KernelsDispatch, IsaNames) {
  EXPECT_STREQ(isa_name(Isa::portable), "portable");
  EXPECT_STREQ(isa_name(Isa::avx2), "avx2");
  EXPECT_STREQ(isa_name(Isa::avx512), "avx512");
  EXPECT_STREQ(isa_name(Isa::amx), "amx");
  EXPECT_STREQ(isa_name(static_cast<Isa>(9)), "unknown");
}

TEST(KernelsDispatch, SetIsaRejectsInvalidValues) {
  reset_isa();
  const Isa before = active_isa();
  for (int v : {-1, 4, 99, std::numeric_limits<int>::min()}) {
    EXPECT_EQ(set_isa(static_cast<Isa>(v)), Errc::invalid_argument) << v;
    EXPECT_EQ(active_isa(), before) << v;
  }
}

// Every path up to the best one can be forced (and computes correctly); above it, refused with
// not_supported and the path in use unchanged.
TEST(KernelsDispatch, SetIsaUpToTheBestPath) {
  const Isa best = best_isa();
  Rng r(5);
  for (int v = 0; v <= static_cast<int>(Isa::amx); ++v) {
    const Isa isa = static_cast<Isa>(v);
    ASSERT_EQ(set_isa(Isa::portable), Errc::ok);
    if (isa <= best) {
      EXPECT_EQ(set_isa(isa), Errc::ok) << isa_name(isa);
      EXPECT_EQ(active_isa(), isa);
      GemmJob<bf16, bf16, float> job(r, 2, 19, 35, 47, v % 2 == 1);
      job.run({});
      EXPECT_EQ(job.verify(), "") << isa_name(isa);
    } else {
      EXPECT_EQ(set_isa(isa), Errc::not_supported) << isa_name(isa);
      EXPECT_EQ(active_isa(), Isa::portable) << "a refused set_isa changed the path";
    }
  }
  reset_isa();
  EXPECT_EQ(active_isa(), best);
}

#if defined(__x86_64__)
uint64_t xgetbv0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t{hi} << 32) | lo;
}

// The best path against this test's own reading of CPUID and XCR0 (AMX also needs the
// permission: granted exactly when best_isa() says amx).
TEST(KernelsDispatch, BestPathMatchesCpuid) {
  unsigned a, b, c, d;
  ASSERT_TRUE(__get_cpuid(1, &a, &b, &c, &d));
  const bool osxsave = (c >> 27) & 1, fma = (c >> 12) & 1;
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  unsigned b7 = 0, c7 = 0, d7 = 0, a71 = 0;
  if (__get_cpuid_max(0, nullptr) >= 7) {
    __cpuid_count(7, 0, a, b7, c7, d7);
    __cpuid_count(7, 1, a71, b, c, d);
  }
  const bool avx2 = osxsave && (xcr0 & 6) == 6 && ((b7 >> 5) & 1) && fma && ((b7 >> 8) & 1);
  const bool avx512 = avx2 && ((b7 >> 16) & 1) && ((b7 >> 17) & 1) && ((b7 >> 30) & 1) &&
                      ((b7 >> 31) & 1) && ((c7 >> 11) & 1) && ((a71 >> 5) & 1) &&
                      (xcr0 & 0xe0) == 0xe0;
  const bool amx_cpu = avx512 && ((d7 >> 22) & 1) && ((d7 >> 24) & 1) && ((d7 >> 25) & 1) &&
                       (xcr0 & (3u << 17)) == (3u << 17);
  Isa want = amx_cpu ? Isa::amx : avx512 ? Isa::avx512 : avx2 ? Isa::avx2 : Isa::portable;
  const Isa best = best_isa();
  if (amx_cpu) {
    uint64_t perm = 0;
    // ARCH_GET_XCOMP_PERM: what this process was granted (best_isa() asked already).
    const bool granted = syscall(SYS_arch_prctl, 0x1022, &perm) == 0 && (perm >> 18) & 1;
    if (!granted) want = Isa::avx512;
  }
  EXPECT_EQ(best, want) << "CPUID: avx2=" << avx2 << " avx512=" << avx512
                        << " amx=" << amx_cpu << " xcr0=0x" << std::hex << xcr0;
  std::printf("[ INFO     ] best path on this machine: %s (AMX in CPUID: %s)\n", isa_name(best),
              amx_cpu ? "yes" : "no");
}
#endif

// ---- child processes -------------------------------------------------------------------------

bool in_child() {
  const char* c = std::getenv("MYRIAD_KTEST_CHILD");
  return c && std::strcmp(c, "1") == 0;
}

struct ChildRun {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out;     // stdout and stderr together
};

// Runs this binary's helper test KernelsDispatchChild.DISABLED_<test> with extra environment
// variables (MYRIAD_KERNELS, GTEST_* and MYRIAD_KTEST_* of this process are not passed on).
ChildRun run_child(const std::string& test, const std::vector<std::string>& add_env) {
  ChildRun res;
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len <= 0) {
    res.out = "readlink /proc/self/exe failed";
    return res;
  }
  exe[len] = 0;
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string s(*e);
    if (s.rfind("MYRIAD_KERNELS=", 0) == 0 || s.rfind("MYRIAD_KTEST_", 0) == 0 ||
        s.rfind("GTEST_", 0) == 0)
      continue;
    env.push_back(s);
  }
  env.push_back("MYRIAD_KTEST_CHILD=1");
  env.insert(env.end(), add_env.begin(), add_env.end());
  std::vector<char*> envp;
  for (std::string& s : env) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string filter = "--gtest_filter=KernelsDispatchChild.DISABLED_" + test;
  std::string also = "--gtest_also_run_disabled_tests";
  char* argv[] = {exe, filter.data(), also.data(), nullptr};
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    res.out = "pipe2 failed";
    return res;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  pid_t pid;
  const int rc = posix_spawn(&pid, exe, &fa, nullptr, argv, envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    res.out = std::string("posix_spawn: ") + std::strerror(rc);
    return res;
  }
  char buf[4096];
  for (;;) {
    const ssize_t r = read(fds[0], buf, sizeof buf);
    if (r > 0) {
      res.out.append(buf, std::size_t(r));
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return res;
}

std::size_t count_of(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

// In the child: the first kernel call (with stderr captured) chooses the path the parent
// expects, with or without one warning; the path then computes correctly, and no further
// warning appears.
void child_checks() {
  const char* expect = std::getenv("MYRIAD_KTEST_EXPECT");
  const char* warn = std::getenv("MYRIAD_KTEST_WARN");
  const char* best = std::getenv("MYRIAD_KTEST_BEST");
  ASSERT_TRUE(expect && warn && best);
  testing::internal::CaptureStderr();
  const Isa first = active_isa();
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_STREQ(isa_name(first), expect);
  EXPECT_STREQ(isa_name(best_isa()), best);
  if (*warn) {
    EXPECT_NE(err.find(warn), std::string::npos) << "stderr: " << err;
    EXPECT_EQ(count_of(err, "MYRIAD_KERNELS="), 1u) << "one warning expected: " << err;
  } else {
    EXPECT_EQ(err, "") << "no warning expected";
  }
  testing::internal::CaptureStderr();
  Rng r(3);
  GemmJob<bf16, bf16, float> jb(r, 2, 17, 33, 65, true);
  GemmJob<uint8_t, int8_t, int32_t> ju(r, 3, 5, 20, 130, false);
  jb.run({});
  ju.run({});
  EXPECT_EQ(active_isa(), first);
  const std::string err2 = testing::internal::GetCapturedStderr();
  EXPECT_EQ(err2, "") << "warned again";
  EXPECT_EQ(jb.verify(), "");
  EXPECT_EQ(ju.verify(), "");
  if (!::testing::Test::HasFailure())
    std::printf("kernels-child-ok active=%s\n", isa_name(active_isa()));
  std::fflush(stdout);
}

TEST(KernelsDispatchChild, DISABLED_EnvChoice) {
  if (!in_child()) GTEST_SKIP() << "helper of KernelsDispatchEnv, run in a child process";
  child_checks();
}

#if MYRIAD_KTEST_SECCOMP
// arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, …) fails with EPERM; everything else is allowed.
bool refuse_amx_permission(std::string* why) {
  struct sock_filter f[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_arch_prctl, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),  // low half
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x1023, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {static_cast<unsigned short>(sizeof f / sizeof f[0]), f};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    *why = std::string("PR_SET_NO_NEW_PRIVS: ") + std::strerror(errno);
    return false;
  }
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
    *why = std::string("PR_SET_SECCOMP: ") + std::strerror(errno);
    return false;
  }
  return true;
}
#endif

TEST(KernelsDispatchChild, DISABLED_RefusedAmxPermission) {
  if (!in_child()) GTEST_SKIP() << "helper of KernelsDispatchEnv, run in a child process";
#if MYRIAD_KTEST_SECCOMP
  // Before the first kernel call (the detection runs at the first use).
  std::string why;
  if (!refuse_amx_permission(&why)) {
    std::printf("kernels-child-no-seccomp: %s\n", why.c_str());
    std::fflush(stdout);
    return;
  }
  errno = 0;
  ASSERT_EQ(syscall(SYS_arch_prctl, 0x1023, 18), -1);
  ASSERT_EQ(errno, EPERM) << "the filter is not in effect";
  child_checks();
  EXPECT_EQ(set_isa(Isa::amx), Errc::not_supported);
#else
  std::printf("kernels-child-no-seccomp: not Linux x86-64\n");
  std::fflush(stdout);
#endif
}

std::vector<std::string> child_env(const char* kernels, Isa expect, const char* warn) {
  std::vector<std::string> e = {std::string("MYRIAD_KTEST_EXPECT=") + isa_name(expect),
                                std::string("MYRIAD_KTEST_WARN=") + warn,
                                std::string("MYRIAD_KTEST_BEST=") + isa_name(best_isa())};
  if (kernels) e.push_back(std::string("MYRIAD_KERNELS=") + kernels);
  return e;
}

void expect_child_ok(const std::string& test, const std::vector<std::string>& env, Isa expect,
                     const std::string& what) {
  const ChildRun r = run_child(test, env);
  EXPECT_EQ(r.exit_code, 0) << what << "\n" << r.out;
  EXPECT_NE(r.out.find(std::string("kernels-child-ok active=") + isa_name(expect)),
            std::string::npos)
      << what << "\n" << r.out;
  EXPECT_NE(r.out.find("[  PASSED  ] 1 test"), std::string::npos) << what << "\n" << r.out;
}

// MYRIAD_KERNELS forces every path the machine runs.
TEST(KernelsDispatchEnv, ForcesEachSupportedPath) {
  for (int v = 0; v <= static_cast<int>(best_isa()); ++v) {
    const Isa isa = static_cast<Isa>(v);
    expect_child_ok("EnvChoice", child_env(isa_name(isa), isa, ""), isa,
                    std::string("MYRIAD_KERNELS=") + isa_name(isa));
  }
}

// A path the machine cannot run: one warning, the automatic choice.
TEST(KernelsDispatchEnv, UnsupportedPathWarnsAndKeepsTheBest) {
  const Isa best = best_isa();
  if (best == Isa::amx) GTEST_SKIP() << "every path is supported here (AMX available)";
  for (int v = static_cast<int>(best) + 1; v <= static_cast<int>(Isa::amx); ++v) {
    const char* name = isa_name(static_cast<Isa>(v));
    expect_child_ok("EnvChoice", child_env(name, best, "not supported on this machine"), best,
                    std::string("MYRIAD_KERNELS=") + name);
  }
}

// A value that names no path: one warning, the automatic choice; "auto" and "" are the
// automatic choice without a warning.
TEST(KernelsDispatchEnv, BogusValueWarnsAndKeepsTheBest) {
  const Isa best = best_isa();
  expect_child_ok("EnvChoice", child_env("bogus", best, "MYRIAD_KERNELS=bogus is not one of"),
                  best, "MYRIAD_KERNELS=bogus");
  expect_child_ok("EnvChoice", child_env("AVX2", best, "is not one of"), best,
                  "MYRIAD_KERNELS=AVX2 (names are lower case)");
  expect_child_ok("EnvChoice", child_env("auto", best, ""), best, "MYRIAD_KERNELS=auto");
  expect_child_ok("EnvChoice", child_env("", best, ""), best, "MYRIAD_KERNELS=");
  expect_child_ok("EnvChoice", child_env(nullptr, best, ""), best, "MYRIAD_KERNELS unset");
}

// The kernel refuses the AMX permission (seccomp: arch_prctl(ARCH_REQ_XCOMP_PERM) → EPERM):
// the best path is the one below AMX, chosen without a warning, and computes correctly; asking
// for AMX through MYRIAD_KERNELS then warns and falls back. Meaningful with or without AMX in
// the CPU (without it, the request is never reached and the result must be the same).
TEST(KernelsDispatchEnv, RefusedAmxPermissionFallsBack) {
  const Isa best = best_isa();
  const Isa expect = best == Isa::amx ? Isa::avx512 : best;
  auto env = child_env(nullptr, expect, "");
  env.back() = std::string("MYRIAD_KTEST_BEST=") + isa_name(expect);
  ChildRun r = run_child("RefusedAmxPermission", env);
  if (r.out.find("kernels-child-no-seccomp") != std::string::npos)
    GTEST_SKIP() << "cannot install a seccomp filter here: " << r.out;
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(std::string("kernels-child-ok active=") + isa_name(expect)),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("[  PASSED  ] 1 test"), std::string::npos) << r.out;

  auto env2 = child_env("amx", expect, "not supported on this machine");
  env2[2] = std::string("MYRIAD_KTEST_BEST=") + isa_name(expect);
  r = run_child("RefusedAmxPermission", env2);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(std::string("kernels-child-ok active=") + isa_name(expect)),
            std::string::npos)
      << r.out;
}

// ---- concurrency ------------------------------------------------------------------------------

// A job: runs a kernel with an Exec, then says what was wrong (empty when right).
struct Job {
  std::function<void(const Exec&)> run;
  std::function<std::string()> verify;
};

template <class A, class B, class C>
Job gemm_job(Rng& r, bool large, const PackedB* packed = nullptr,
             std::shared_ptr<GemmJob<A, B, C>> proto = nullptr) {
  std::shared_ptr<GemmJob<A, B, C>> j;
  if (proto) {
    // Same B (for the shared PackedB), own A and C.
    j = std::make_shared<GemmJob<A, B, C>>(*proto);
    for (auto& x : j->a) x = gen<A>(r);
    j->reference();
  } else if (large) {
    // 2^21 multiply-adds: the driver splits it into tasks of its own.
    j = std::make_shared<GemmJob<A, B, C>>(r, 8, 32, 64, 128, r.range(0, 1) == 1);
  } else {
    const long top = myriad::test::kSanitized ? 40 : 70;
    j = std::make_shared<GemmJob<A, B, C>>(r, std::size_t(r.range(1, 3)),
                                           std::size_t(r.range(1, top)),
                                           std::size_t(r.range(1, top)),
                                           std::size_t(r.range(1, top)), r.range(0, 1) == 1);
  }
  j->packed = packed;
  return Job{[j](const Exec& ex) { j->run(ex); }, [j] { return j->verify(); }};
}

// dot / row_sum / row_max / axpy over a few vectors.
Job vector_job(Rng& r, int kind) {
  struct V {
    std::size_t count, n;
    std::vector<float> x, y, y0, out;
  };
  auto v = std::make_shared<V>();
  v->count = std::size_t(r.range(1, 6));
  v->n = std::size_t(r.range(0, 600));
  v->x.resize(v->count * v->n);
  v->y.resize(v->count * v->n);
  for (float& f : v->x) f = r.sym(2.0f);
  for (float& f : v->y) f = r.sym(2.0f);
  v->y0 = v->y;
  v->out.assign(v->count, -1.0f);
  auto run = [v, kind](const Exec& ex) {
    const std::size_t c = v->count, n = v->n;
    switch (kind) {
      case 0: dot(c, n, v->x.data(), n, v->y.data(), n, v->out.data(), ex); break;
      case 1: row_sum(c, n, v->x.data(), n, v->out.data(), ex); break;
      case 2: row_max(c, n, v->x.data(), n, v->out.data(), ex); break;
      default: axpy(c, n, 0.5f, v->x.data(), n, v->y.data(), n, ex); break;
    }
  };
  auto verify = [v, kind]() -> std::string {
    const std::size_t n = v->n;
    for (std::size_t i = 0; i < v->count; ++i) {
      double want = kind == 2 ? -INFINITY : 0, sa = 0;
      for (std::size_t j = 0; j < n; ++j) {
        const double x = v->x[i * n + j], y = v->y0[i * n + j];
        if (kind == 0) want += x * y, sa += std::fabs(x * y);
        if (kind == 1) want += x, sa += std::fabs(x);
        if (kind == 2) want = std::max(want, x);
        if (kind == 3) {
          const double w = 0.5 * x + y;
          if (std::fabs(v->y[i * n + j] - w) > 3 * kU * (std::fabs(0.5 * x) + std::fabs(y)))
            return "axpy wrong at " + std::to_string(i) + "," + std::to_string(j);
        }
      }
      if (kind != 3 && !(std::fabs(v->out[i] - want) <= 2.0 * double(n + 2) * kU * sa))
        return "vector op " + std::to_string(kind) + " n=" + std::to_string(n) + ": " +
               std::to_string(v->out[i]) + " want " + std::to_string(want);
    }
    return "";
  };
  return Job{run, verify};
}

class KernelsConcurrency : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override {
    const Errc e = set_isa(GetParam());
    if (e == Errc::not_supported) {
      if (GetParam() == Isa::amx)
        GTEST_SKIP() << "AMX not available on this CPU: CPUID/permission (best path here: "
                     << isa_name(best_isa()) << ")";
      GTEST_SKIP() << isa_name(GetParam()) << " not available on this CPU";
    }
    ASSERT_EQ(e, Errc::ok);
  }
  void TearDown() override { reset_isa(); }
};

INSTANTIATE_TEST_SUITE_P(, KernelsConcurrency,
                         ::testing::Values(Isa::portable, Isa::avx2, Isa::avx512, Isa::amx),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(isa_name(info.param));
                         });

// 64 tasks on a 2-proc runtime, each running a different GEMM (all four types; some large
// enough to split into tasks of their own; some through one PackedB shared by all) or vector
// operation, at the same time as 4 foreign threads running theirs (on the runtime's tasks or
// serially): every result checked. On the AMX path this also checks that tasks which ran AMX
// sections park, migrate and run other tasks' sections correctly.
TEST_P(KernelsConcurrency, ManyTasksAndThreadsAtOnce) {
  Rng r(2024);
  auto proto = std::make_shared<GemmJob<uint8_t, int8_t, int32_t>>(r, 2, 8, 45, 70, true);
  const PackedB shared_pb = pack_b(proto->g, proto->b.data(), GemmType::u8s8_s32);
  const bool small = myriad::test::kSanitized;
  auto make = [&](int i) {
    switch (i % 9) {
      case 0: return gemm_job<bf16, bf16, float>(r, i == 0 || (!small && i % 18 == 0));
      case 1: return gemm_job<float, float, float>(r, i == 1 || (!small && i % 27 == 1));
      case 2: return gemm_job<int8_t, int8_t, int32_t>(r, false);
      case 3: return gemm_job<uint8_t, int8_t, int32_t>(r, false);
      case 4: return gemm_job<uint8_t, int8_t, int32_t>(r, false, &shared_pb, proto);
      default: return vector_job(r, i % 9 - 5);
    }
  };
  const int kTasks = 64, kThreads = 4, kPerThread = 8;
  std::vector<Job> task_jobs, thread_jobs;
  for (int i = 0; i < kTasks; ++i) task_jobs.push_back(make(i));
  for (int i = 0; i < kThreads * kPerThread; ++i) thread_jobs.push_back(make(i + 5));

  Runtime rt(Config{.procs = 2});
  std::atomic<bool> go{false};
  myriad::WaitGroup wg;
  wg.add(kTasks);
  std::atomic<int> exceptions{0};
  for (int i = 0; i < kTasks; ++i)
    rt.spawn_detached([&, i] {
      while (!go.load()) myriad::this_task::yield();
      try {
        task_jobs[std::size_t(i)].run({});  // default: this task's runtime
      } catch (...) {
        exceptions.fetch_add(1);
      }
      wg.done();
    });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int j = 0; j < kPerThread; ++j) {
        const Exec ex = j % 2 == 0 ? Exec{.runtime = &rt} : Exec{};
        try {
          thread_jobs[std::size_t(t * kPerThread + j)].run(ex);
        } catch (...) {
          exceptions.fetch_add(1);
        }
      }
    });
  go = true;
  for (auto& th : threads) th.join();
  wg.wait();
  EXPECT_EQ(exceptions.load(), 0);
  for (std::size_t i = 0; i < task_jobs.size(); ++i)
    EXPECT_EQ(task_jobs[i].verify(), "") << "task " << i;
  for (std::size_t i = 0; i < thread_jobs.size(); ++i)
    EXPECT_EQ(thread_jobs[i].verify(), "") << "thread job " << i;
}

// ---- the AMX section rule ---------------------------------------------------------------------

// Entering and leaving a section, then parking, is fine; outside tasks the marks do nothing.
TEST(KernelsAmxSection, LeftSectionThenParkIsFine) {
  Runtime rt(Config{.procs = 1});
  myriad::WaitGroup wg;
  wg.add(1);
  std::atomic<bool> resumed{false};
  auto h = rt.spawn([&] {
    myriad::kernels::detail::amx_section_enter();
    myriad::kernels::detail::amx_section_leave();
    wg.wait();
    myriad::this_task::yield();
    resumed = true;
  });
  rt.spawn([&] { wg.done(); }).join();
  h.join();
  EXPECT_TRUE(resumed.load());
  // A foreign thread cannot switch tasks: nothing to mark, nothing breaks.
  myriad::kernels::detail::amx_section_enter();
  myriad::kernels::detail::amx_section_leave();
  rt.spawn([] { myriad::this_task::yield(); }).join();
}

TEST(KernelsDeathTest, ParkInsideAmxSectionAbortsNamingTheTask) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Runtime rt(Config{.procs = 1});
        myriad::WaitGroup wg;
        wg.add(1);
        rt.spawn(
              [&] {
                myriad::kernels::detail::amx_section_enter();
                wg.wait();  // parks: tiles would be lost
              },
              {.label = "amx-parker"})
            .join();
      },
      "task [0-9]+ \"amx-parker\" \\(spawned at [^)]*kernels_dispatch_test.cpp:[0-9]+\\) tried to "
      "park, yield or end inside an AMX kernel section");
}

TEST(KernelsDeathTest, YieldInsideAmxSectionAbortsNamingTheTask) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Runtime rt(Config{.procs = 1});
        rt.spawn(
              [] {
                auto other = myriad::go([] {});  // runnable on this proc: the yield switches
                myriad::kernels::detail::amx_section_enter();
                myriad::this_task::yield();
                myriad::kernels::detail::amx_section_leave();
                other.join();
              },
              {.label = "amx-yielder"})
            .join();
      },
      "task [0-9]+ \"amx-yielder\".*inside an AMX kernel section");
}

TEST(KernelsDeathTest, EndingInsideAmxSectionAbortsNamingTheTask) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Runtime rt(Config{.procs = 1});
        rt.spawn([] { myriad::kernels::detail::amx_section_enter(); }, {.label = "amx-leaker"})
            .join();
      },
      "task [0-9]+ \"amx-leaker\".*inside an AMX kernel section");
}

}  // namespace
