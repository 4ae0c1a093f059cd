// The local run queue alone: capacity, order, runnext, stealing and spilling, and a
// concurrent owner-versus-thieves stress where every task must be taken exactly once.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "run_queue.hpp"
#include "test_util.hpp"

using myriad::detail::LocalRunQueue;
using myriad::detail::Task;

namespace {
std::vector<std::unique_ptr<Task>> make_tasks(int n) {
  std::vector<std::unique_ptr<Task>> v;
  for (int i = 0; i < n; ++i) {
    v.push_back(std::make_unique<Task>());
    v.back()->id = static_cast<uint64_t>(i);
  }
  return v;
}
}  // namespace

TEST(RunQueue, FifoWithCapacityAndRunnext) {
  auto tasks = make_tasks(300);
  auto q = std::make_unique<LocalRunQueue>();
  for (int i = 0; i < 256; ++i) ASSERT_TRUE(q->push_back(tasks[i].get()));
  EXPECT_FALSE(q->push_back(tasks[256].get()));
  EXPECT_EQ(q->exchange_runnext(tasks[299].get()), nullptr);
  EXPECT_EQ(q->size(), 257u);
  bool from_next = false;
  EXPECT_EQ(q->pop(true, &from_next), tasks[299].get());
  EXPECT_TRUE(from_next);
  for (int i = 0; i < 256; ++i) {
    ASSERT_EQ(q->pop(true, &from_next), tasks[i].get());
    EXPECT_FALSE(from_next);
  }
  EXPECT_EQ(q->pop(true, &from_next), nullptr);
  EXPECT_TRUE(q->empty());
}

TEST(RunQueue, RunnextSkippedWhenAskedUnlessRingEmpty) {
  auto tasks = make_tasks(3);
  auto q = std::make_unique<LocalRunQueue>();
  q->push_back(tasks[0].get());
  q->exchange_runnext(tasks[1].get());
  bool from_next = false;
  EXPECT_EQ(q->pop(false, &from_next), tasks[0].get());
  EXPECT_EQ(q->pop(false, &from_next), tasks[1].get());
  EXPECT_TRUE(from_next);
}

TEST(RunQueue, StealTakesHalfAndRunnextOnlyWhenAllowed) {
  auto tasks = make_tasks(10);
  auto victim = std::make_unique<LocalRunQueue>();
  auto thief = std::make_unique<LocalRunQueue>();
  for (int i = 0; i < 8; ++i) victim->push_back(tasks[i].get());
  victim->exchange_runnext(tasks[9].get());
  uint32_t n = 0;
  Task* t = victim->steal_into(*thief, false, &n);
  EXPECT_EQ(n, 4u);
  EXPECT_EQ(t, tasks[3].get());  // the last of the stolen half runs now
  EXPECT_EQ(thief->size(), 3u);
  EXPECT_EQ(victim->size(), 5u);  // 4 in the ring + runnext
  // Drain the victim's ring; runnext is stolen only on request.
  bool fn = false;
  for (int i = 0; i < 4; ++i) victim->pop(false, &fn);
  EXPECT_EQ(victim->steal_into(*thief, false, &n), nullptr);
  EXPECT_EQ(victim->steal_into(*thief, true, &n), tasks[9].get());
}

TEST(RunQueue, SpillGrabsTheOlderHalfOfAFullRing) {
  auto tasks = make_tasks(256);
  auto q = std::make_unique<LocalRunQueue>();
  for (int i = 0; i < 256; ++i) q->push_back(tasks[i].get());
  Task* batch[128];
  ASSERT_EQ(q->grab_half_for_spill(batch), 128u);
  for (int i = 0; i < 128; ++i) EXPECT_EQ(batch[i], tasks[i].get());
  EXPECT_EQ(q->size(), 128u);
}

TEST(RunQueue, OwnerAndThievesTakeEveryTaskExactlyOnce) {
  const int n = static_cast<int>(myriad::test::scaled(2'000'000));
  auto tasks = make_tasks(n);
  std::vector<std::atomic<int>> taken(n);
  auto owner_q = std::make_unique<LocalRunQueue>();
  std::atomic<bool> done{false};
  auto take = [&](Task* t) { taken[t->id].fetch_add(1, std::memory_order_relaxed); };
  std::vector<std::thread> thieves;
  for (int k = 0; k < 2; ++k)
    thieves.emplace_back([&] {
      auto mine = std::make_unique<LocalRunQueue>();
      bool fn = false;
      while (!done.load(std::memory_order_acquire) || !owner_q->empty()) {
        uint32_t got = 0;
        if (Task* t = owner_q->steal_into(*mine, true, &got)) take(t);
        while (Task* t = mine->pop(true, &fn)) take(t);
      }
    });
  bool fn = false;
  for (int i = 0; i < n; ++i) {
    if (i % 3 == 0) {
      if (Task* old = owner_q->exchange_runnext(tasks[i].get())) {
        while (!owner_q->push_back(old))
          if (Task* t = owner_q->pop(false, &fn)) take(t);
      }
    } else {
      while (!owner_q->push_back(tasks[i].get()))
        if (Task* t = owner_q->pop(true, &fn)) take(t);
    }
    if (i % 7 == 0)
      if (Task* t = owner_q->pop(true, &fn)) take(t);
  }
  while (Task* t = owner_q->pop(true, &fn)) take(t);
  done.store(true, std::memory_order_release);
  for (auto& t : thieves) t.join();
  for (int i = 0; i < n; ++i) ASSERT_EQ(taken[i].load(), 1) << "task " << i;
}
