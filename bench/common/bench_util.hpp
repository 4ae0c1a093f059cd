// Shared by every C++ benchmark program (ours and the C++ peers): argument parsing, the JSON
// output line of shared/BENCH.md, clocks and memory readings. Header-only so each
// program stays a single translation unit.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace bench {

// Every program takes the same flags as the Go peer: -procs N, -n N, and (where a workload has
// variants) -case NAME. "-procs 0" or "-procs all" means every hardware thread.
struct Args {
  unsigned procs = 0;
  uint64_t n = 0;
  std::string case_name;
};

inline unsigned hardware_procs() {
  unsigned n = std::thread::hardware_concurrency();
  return n ? n : 1;
}

inline Args parse_args(int argc, char** argv, uint64_t default_n) {
  Args a;
  a.n = default_n;
  for (int i = 1; i < argc; ++i) {
    // Accept both -flag and --flag, like Go's flag package.
    const char* f = argv[i];
    if (f[0] == '-' && f[1] == '-') ++f;
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (!v) {
      std::fprintf(stderr, "missing value for %s\n", argv[i]);
      std::exit(2);
    }
    if (!std::strcmp(f, "-procs")) {
      a.procs = std::strcmp(v, "all") == 0 ? 0 : unsigned(std::strtoul(v, nullptr, 10));
    } else if (!std::strcmp(f, "-n")) {
      a.n = std::strtoull(v, nullptr, 10);
    } else if (!std::strcmp(f, "-case")) {
      a.case_name = v;
    } else {
      std::fprintf(stderr, "usage: %s [-procs N|all] [-n N] [-case NAME]\n", argv[0]);
      std::exit(2);
    }
    ++i;
  }
  if (a.procs == 0) a.procs = hardware_procs();
  if (a.n == 0) a.n = default_n;
  return a;
}

// One result line. `case_name` empty = the workload's plain form (no "case" key), so that the
// lines of impls without variants pair up with ours in bench/compare's table.
inline void emit(const char* workload, const char* impl, unsigned procs, const char* metric,
                 double value, uint64_t n, const std::string& case_name = {}) {
  std::string c = case_name.empty() ? "" : ",\"case\":\"" + case_name + "\"";
  std::printf(
      "{\"workload\":\"%s\",\"impl\":\"%s\"%s,\"procs\":%u,\"metric\":\"%s\",\"value\":%.6g,"
      "\"n\":%llu}\n",
      workload, impl, c.c_str(), procs, metric, value, static_cast<unsigned long long>(n));
  std::fflush(stdout);  // bench/compare streams the lines as they come
}

using Clock = std::chrono::steady_clock;

inline double ns_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::nano>(b - a).count();
}

// Peak resident set of this program, in MiB: VmHWM from /proc/self/status. Not getrusage's
// ru_maxrss: Linux carries that across exec, so a program started by a bigger parent (the
// Python of bench/compare) reports at least the parent's size. VmHWM belongs to the address
// space, which exec replaces.
inline double peak_rss_mib() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return 0;
  char line[256];
  unsigned long long kib = 0;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %llu kB", &kib) == 1) break;
  std::fclose(f);
  return double(kib) / 1024.0;
}

// Current resident set in bytes, from /proc/self/statm (second field, in pages). Used for the
// W5 before/after difference, where the peak would hide a drop.
inline uint64_t current_rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long long size = 0, resident = 0;
  if (std::fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
  std::fclose(f);
  return resident * uint64_t(sysconf(_SC_PAGESIZE));
}

// W2: n leaves must be a power of 10 (a 10-ary tree).
inline bool is_power_of_10(uint64_t n) {
  while (n > 1 && n % 10 == 0) n /= 10;
  return n == 1;
}

// The requested sleep of W8's task i, 1..100 ms: splitmix64(i) % 100 + 1, the same sequence in
// every impl (the Go peer's w8SleepMs).
inline int64_t w8_sleep_ms(uint64_t i) {
  uint64_t z = i + 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return int64_t(z % 100) + 1;
}

// Nearest-rank percentile (p in 0..100) of ascending values (the Go peer's percentile).
inline int64_t percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  long k = long(double(sorted.size()) * p / 100 + 0.999999999) - 1;
  if (k < 0) k = 0;
  if (k >= long(sorted.size())) k = long(sorted.size()) - 1;
  return sorted[size_t(k)];
}

}  // namespace bench
