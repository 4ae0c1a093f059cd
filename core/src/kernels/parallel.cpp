#include "kernels/parallel.hpp"

#include <algorithm>

#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "proc.hpp"

namespace myriad::kernels::detail {

void parallel_ranges(const Exec& ex, std::size_t units, uint64_t cost_per_unit,
                     void (*body)(void* ctx, std::size_t begin, std::size_t end) noexcept,
                     void* ctx) {
  if (units == 0) return;
  Runtime* here = Runtime::current();
  // Inside a blocking section the task may not park, and waiting for helpers would park it.
  const myriad::detail::Machine* m = myriad::detail::current_machine();
  const bool in_blocking = here && m && m->blocking_gen != 0;
  Runtime* rt = ex.serial || in_blocking ? nullptr : (ex.runtime ? ex.runtime : here);
  std::size_t tasks = 1;
  if (rt) {
    const uint64_t total = cost_per_unit * units;
    // Two ranges per proc let a proc that finishes early take another; with one proc there is
    // nobody to balance with and a second range only costs a spawn and a park.
    const std::size_t procs = rt->procs();
    const std::size_t limit = ex.max_tasks ? ex.max_tasks : procs == 1 ? 1 : 2 * procs;
    const std::size_t by_cost = static_cast<std::size_t>(
        std::max<uint64_t>(1, total / std::max<uint64_t>(1, kMinTaskCost)));
    tasks = std::min({units, limit, by_cost});
  }
  if (tasks <= 1) {
    body(ctx, 0, units);
    return;
  }
  // From a task of the target runtime the caller works too; from anywhere else (a foreign
  // thread, a task of another runtime) it only waits, so the work stays on rt's procs.
  const bool caller_works = rt == here;
  WaitGroup wg;
  const std::size_t first = caller_works ? 1 : 0;
  std::size_t spawned_until = tasks;  // ranges [first, spawned_until) went to tasks
  for (std::size_t t = first; t < tasks; ++t) {
    const std::size_t b = units * t / tasks, e = units * (t + 1) / tasks;
    wg.add(1);
    try {
      rt->spawn_detached([&wg, body, ctx, b, e] {
        body(ctx, b, e);
        wg.done();
      }, {.label = "myriad-kernel"});
    } catch (...) {
      // The runtime refused (closed, out of stacks): the caller does the rest itself.
      wg.done();
      spawned_until = t;
      break;
    }
  }
  if (caller_works) body(ctx, 0, units / tasks);
  for (std::size_t t = spawned_until; t < tasks; ++t)
    body(ctx, units * t / tasks, units * (t + 1) / tasks);
  wg.wait();
}

}  // namespace myriad::kernels::detail
