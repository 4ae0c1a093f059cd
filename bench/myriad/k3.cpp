// K3 for myriad (impl "myriad"): myriad::kernels::dot over 1,000,000 pairs of length 128, fp32,
// on a Runtime of -procs procs (the timing loop inside a task, Exec{.runtime = &rt}). Cases l1
// (one pair for every product: x and y strides 0) and stream (distinct pairs, 1 GB); sizes,
// timing, checks and the JSON lines are run_dot's (bench/common/kernel_util.hpp).
#include <myriad/kernels.hpp>
#include <myriad/runtime.hpp>

#include "kernel_util.hpp"

namespace mk = myriad::kernels;
using namespace bench::kern;

int main(int argc, char** argv) {
  std::unique_ptr<myriad::Runtime> rt;
  DotBackend be;
  be.start = [&](unsigned procs) {
    rt = std::make_unique<myriad::Runtime>(myriad::Config{.procs = procs});
  };
  be.within = [&](const std::function<void()>& body) { rt->spawn([&] { body(); }).join(); };
  be.prepare = [&](size_t count, size_t len, const float* x, size_t sx, const float* y, size_t sy,
                   float* out) -> std::function<void()> {
    const mk::Exec ex{.runtime = rt.get()};
    return [=] { mk::dot(count, len, x, sx, y, sy, out, ex); };
  };
  int rc = run_dot("myriad", argc, argv, be);
  rt.reset();
  return rc;
}
