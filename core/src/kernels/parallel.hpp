// Splitting a kernel call into tasks on a runtime's procs (no thread pool of the kernels' own).
//
// A call is a list of `units` (a batch item, or a block of a large GEMM), ordered so that
// neighbours share operands (the blocks of one column panel of B are consecutive). They are cut
// into contiguous ranges, one per task: a task keeps its B block in L2 while A streams past it.
// The number of tasks is bounded by Exec::max_tasks (default 2 per proc, 1 with one proc) and by
// the work: a task gets at least kMinTaskCost units of cost, so small calls do not pay for
// spawns they cannot use.
// The calling task runs the first range itself and waits (parks) for the rest — outside any
// AMX section, which each range opens and closes on its own.
#pragma once

#include <cstddef>
#include <cstdint>

#include "myriad/kernels.hpp"

namespace myriad::kernels::detail {

// Cost is in "element operations" (multiply-adds for GEMM, elements for vector operations).
// 2^20 multiply-adds is ~1 µs of AMX or ~10 µs of AVX-512 work: well above a spawn (~0.3 µs).
inline constexpr uint64_t kMinTaskCost = uint64_t{1} << 20;

// Runs body(ctx, begin, end) over [0, units) on the tasks described above. body must not throw.
void parallel_ranges(const Exec& ex, std::size_t units, uint64_t cost_per_unit,
                     void (*body)(void* ctx, std::size_t begin, std::size_t end) noexcept,
                     void* ctx);

}  // namespace myriad::kernels::detail
