// Stacks: sizes, deep use, overflow detection, and a million parked tasks.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "scheduler.hpp"
#include "test_util.hpp"

using namespace myriad;

namespace {

// Uses about `bytes` of stack through recursion the optimiser cannot flatten.
[[gnu::noinline]] long burn_stack(long bytes) {
  volatile char frame[1024];
  std::memset(const_cast<char*>(frame), static_cast<int>(bytes & 0x7f), sizeof frame);
  if (bytes <= 1024) return frame[0];
  return burn_stack(bytes - 1024) + frame[1];
}

}  // namespace

TEST(Stacks, PerSpawnStackSizeAllowsDeepRecursion) {
  Runtime rt(Config{.procs = 1});
  long r = 0;
  // 2 MiB of frames on a 4 MiB stack (room for the sanitizers' bigger frames); the default
  // 64 KiB stack would overflow.
  rt.spawn([&] { r = burn_stack(2 * 1024 * 1024); }, {.stack_size = 4 * 1024 * 1024}).join();
  EXPECT_NE(r, -1);
  EXPECT_GE(rt.stats().stacks_reserved, 1u);
}

TEST(Stacks, RuntimeStackSizeIsUsed) {
  Config cfg;
  cfg.procs = 1;
  cfg.stack_size = 2 * 1024 * 1024;
  Runtime rt(cfg);
  long r = 0;
  rt.spawn([&] { r = burn_stack(1024 * 1024); }).join();
  EXPECT_NE(r, -1);
}

TEST(Stacks, OversizedStackIsRejected) {
  Runtime rt(Config{.procs = 1});
  try {
    rt.spawn([] {}, {.stack_size = std::size_t{1} << 40});
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::invalid_argument);
  }
}

TEST(StacksDeathTest, OverflowIntoGuardPageIsReported) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Runtime rt(Config{.procs = 1});
        rt.spawn([] { burn_stack(10 * 1024 * 1024); }, {.label = "deep-recursion"}).join();
      },
      "stack overflow in task [0-9]+ \"deep-recursion\"");
}

TEST(StacksDeathTest, OverflowWithoutGuardPagesHitsTheCanary) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Config cfg;
        cfg.procs = 1;
        cfg.guard_pages = GuardPages::off;
        Runtime rt(cfg);
        rt.spawn(
              [] {
                // Write just below the usable stack, as an overflow by a few bytes would:
                // into the top of the canary, not yet into anything else.
                detail::Task* t = detail::current_task();
                volatile char* limit = t->stack_limit;
                limit[detail::kCanaryBytes - 1] = 1;
              },
              {.label = "scribbler"})
            .join();
      },
      "stack overflow in task [0-9]+ \"scribbler\".*canary");
}

TEST(Stacks, MillionParkedTasks) {
  const long n = test::kTsan ? test::kTsanLiveTasks : test::scaled(1'000'000);
  Runtime rt(Config{.procs = 2});
  WaitGroup gate, exited;
  gate.add(1);
  exited.add(n);
  rt.spawn([&] {
      for (long i = 0; i < n; ++i)
        go([&] {
          gate.wait();
          exited.done();
        }).detach();
    }).join();
  while (rt.stats().parks < static_cast<uint64_t>(n)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Stats s = rt.stats();
  EXPECT_GE(s.stacks_reserved, static_cast<uint64_t>(n));
  gate.done();
  exited.wait();
  EXPECT_EQ(exited.count(), 0);
}

TEST(Stacks, SpawningPastMaxStacksIsAnErrorNotACrash) {
  Config cfg;
  cfg.procs = 1;
  cfg.max_stacks = 100;
  Runtime rt(cfg);
  WaitGroup gate, parked;
  gate.add(1);
  long spawned = 0;
  Errc refused = Errc::ok;
  rt.spawn([&] {
      for (int i = 0; i < 1000; ++i) {
        try {
          parked.add(1);
          go([&] {
            gate.wait();
            parked.done();
          }).detach();
          ++spawned;
        } catch (const Error& e) {
          parked.done();
          refused = e.code();
          break;
        }
      }
      gate.done();
    }).join();
  parked.wait();
  EXPECT_EQ(refused, Errc::no_memory);
  EXPECT_EQ(spawned, 99);  // the spawning task holds the 100th slot
  EXPECT_EQ(rt.stats().stacks_reserved, 100u);
  // Slots are recycled: the runtime keeps working at the limit.
  std::atomic<int> ran{0};
  for (int i = 0; i < 10; ++i) rt.spawn([&] { ran.fetch_add(1); }).join();
  EXPECT_EQ(ran.load(), 10);
}
