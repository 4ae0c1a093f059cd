// Context-switch microbenchmark (Google Benchmark): one round trip (switch to a context and
// back) on a 64 KiB stack, through
//   - the raw Boost.Context assembly primitive, make_fcontext/jump_fcontext, which is what a
//     scheduler built directly on fcontext pays per switch pair, and
//   - the public boost::context::fiber API (resume() there and back), which adds its
//     record/ownership bookkeeping on top of the same primitive.
// The difference bounds what building on the raw primitive can save per switch.
#include <benchmark/benchmark.h>
#include <boost/context/detail/fcontext.hpp>
#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>

#include <cstdlib>
#include <memory>

namespace ctx = boost::context;

namespace {

constexpr std::size_t kStackSize = 64 * 1024;

// Runs on the new stack: every jump back to the caller is one half of a round trip. It never
// returns (returning from an fcontext entry function exits the thread), so the benchmark
// simply abandons it; nothing on that stack needs destroying.
void bounce(ctx::detail::transfer_t t) {
  for (;;) t = ctx::detail::jump_fcontext(t.fctx, nullptr);
}

void BM_fcontext_roundtrip(benchmark::State& state) {
  std::unique_ptr<char[]> stack(new char[kStackSize]);
  // make_fcontext takes the top of the stack (stacks grow down on x86-64).
  ctx::detail::fcontext_t c = ctx::detail::make_fcontext(stack.get() + kStackSize, kStackSize,
                                                         bounce);
  for (auto _ : state) {
    ctx::detail::transfer_t t = ctx::detail::jump_fcontext(c, nullptr);
    c = t.fctx;  // where the other side stopped; resume it there next time
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_fcontext_roundtrip);

void BM_fiber_roundtrip(benchmark::State& state) {
  bool stop = false;
  ctx::fiber f{std::allocator_arg, ctx::fixedsize_stack(kStackSize), [&stop](ctx::fiber&& caller) {
                 while (!stop) caller = std::move(caller).resume();
                 return std::move(caller);
               }};
  for (auto _ : state) f = std::move(f).resume();
  // Let the fiber function return so the fiber finishes normally.
  stop = true;
  f = std::move(f).resume();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_fiber_roundtrip);

}  // namespace

BENCHMARK_MAIN();
