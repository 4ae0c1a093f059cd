// Once (Go's sync.Once, with std::call_once's exception rule) from tasks and foreign threads.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "myriad/once.hpp"
#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

using namespace myriad;
using myriad::test::scaled;

namespace {

template <class F>
void on_one_proc(F f) {
  Runtime rt(Config{.procs = 1});
  rt.spawn([&] { f(rt); }).join();
}

int plain_function_calls = 0;
void plain_function() { ++plain_function_calls; }

}  // namespace

TEST(Once, RunsOnceAndLaterCallsReturnAtOnce) {
  Once once;
  int runs = 0;
  EXPECT_FALSE(once.done());
  once.call([&] { ++runs; });
  EXPECT_TRUE(once.done());
  once.call([&] { ++runs; });
  once.call([&] { ADD_FAILURE() << "ran twice"; });
  EXPECT_EQ(runs, 1);
  Once other;  // a function, not a lambda
  const int before = plain_function_calls;
  other.call(plain_function);
  other.call(plain_function);
  EXPECT_EQ(plain_function_calls, before + 1);
}

TEST(Once, ConcurrentTasksAndThreadsWaitUntilTheFunctionFinished) {
  Runtime rt(Config{.procs = 2});
  for (int round = 0; round < 20; ++round) {
    Once once;
    std::atomic<int> runs{0}, arrived{0}, returned_early{0};
    std::atomic<bool> finished{false};
    const int tasks = 40, threads = 4, total = tasks + threads;
    auto f = [&] {
      runs.fetch_add(1);
      // Keep running until every caller has arrived, so that the others must wait.
      while (arrived.load() < total) {
        if (this_task::in_task())
          this_task::yield();
        else
          std::this_thread::yield();
      }
      finished.store(true);
    };
    auto caller = [&] {
      arrived.fetch_add(1);
      once.call(f);
      if (!finished.load()) returned_early.fetch_add(1);
    };
    WaitGroup wg;
    wg.add(tasks);
    for (int i = 0; i < tasks; ++i)
      rt.spawn_detached([&] {
        caller();
        wg.done();
      });
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; ++i) ts.emplace_back(caller);
    for (auto& t : ts) t.join();
    wg.wait();
    EXPECT_EQ(runs.load(), 1);
    EXPECT_EQ(returned_early.load(), 0);
    EXPECT_TRUE(once.done());
  }
}

TEST(Once, AThrowingFunctionPropagatesAndLeavesTheOnceNotDone) {
  Once once;
  int runs = 0;
  EXPECT_THROW(once.call([&] {
    ++runs;
    throw std::runtime_error("boom");
  }),
               std::runtime_error);
  EXPECT_FALSE(once.done());
  once.call([&] { ++runs; });  // runs: the first did not count
  EXPECT_TRUE(once.done());
  once.call([&] { ++runs; });
  EXPECT_EQ(runs, 2);
}

TEST(Once, AWaiterRunsItsFunctionWhenTheRunnerThrew) {
  on_one_proc([](Runtime& rt) {
    Once once;
    int runs = 0, returned = 0;  // one proc: no data race
    WaitGroup wg;
    wg.add(2);
    for (int i = 0; i < 2; ++i)
      rt.spawn_detached([&] {
        once.call([&] { ++runs; });
        ++returned;
        wg.done();
      });
    EXPECT_THROW(once.call([&] {
      this_task::yield();  // both callers run, find f running, and park
      EXPECT_EQ(returned, 0);
      throw std::runtime_error("boom");
    }),
                 std::runtime_error);
    EXPECT_FALSE(once.done());
    wg.wait();
    EXPECT_EQ(runs, 1);  // one waiter ran its f; the other then saw it done
    EXPECT_EQ(returned, 2);
    EXPECT_TRUE(once.done());
  });
}

TEST(Once, ConcurrentCallersWhileSomeFunctionsThrow) {
  // The first three attempts throw; exactly those three callers see an exception, one
  // attempt succeeds, and every other caller returns after it.
  Runtime rt(Config{.procs = 2});
  for (int round = 0; round < 20; ++round) {
    Once once;
    std::atomic<int> attempts{0}, exceptions{0}, successes{0}, returned{0};
    std::atomic<bool> finished{false};
    const int tasks = 30, threads = 3;
    auto f = [&] {
      const int a = attempts.fetch_add(1);
      if (this_task::in_task()) this_task::yield();
      if (a < 3) throw std::runtime_error("not yet");
      successes.fetch_add(1);
      finished.store(true);
    };
    auto caller = [&] {
      try {
        once.call(f);
        EXPECT_TRUE(finished.load());
        returned.fetch_add(1);
      } catch (const std::runtime_error&) {
        exceptions.fetch_add(1);
      }
    };
    WaitGroup wg;
    wg.add(tasks);
    for (int i = 0; i < tasks; ++i)
      rt.spawn_detached([&] {
        caller();
        wg.done();
      });
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; ++i) ts.emplace_back(caller);
    for (auto& t : ts) t.join();
    wg.wait();
    EXPECT_EQ(attempts.load(), 4);
    EXPECT_EQ(exceptions.load(), 3);
    EXPECT_EQ(successes.load(), 1);
    EXPECT_EQ(returned.load(), tasks + threads - 3);
    EXPECT_TRUE(once.done());
  }
}

TEST(Once, DestroyedByACallerRightAfterItsCallReturns) {
  // A caller that waited for the runner, or one that saw "done" on the fast path, deletes the
  // Once at once, while the runner may still be finishing its call().
  Runtime rt(Config{.procs = 2});
  const int rounds = static_cast<int>(scaled(3000));
  auto pause = [] {
    if (this_task::in_task())
      this_task::yield();
    else
      std::this_thread::yield();
  };
  for (int round = 0; round < rounds; ++round) {
    auto* once = new Once();
    std::atomic<bool> f_started{false}, deleted{false};
    WaitGroup runner_done;  // outlives the Once
    runner_done.add(1);
    rt.spawn_detached([once, &runner_done, &f_started, round] {
      once->call([&f_started, round] {
        f_started.store(true);
        if (round % 2) this_task::yield();
      });
      runner_done.done();  // no access to *once after its call returned
    });
    auto deleter = [once, &deleted, &f_started, round, pause] {
      while (!f_started.load()) pause();  // the runner is inside call() running f
      if (round % 3 == 0)
        while (!once->done()) pause();  // then call() takes the fast path
      once->call([] { ADD_FAILURE() << "ran twice"; });
      delete once;
      deleted.store(true);
    };
    if (round % 2) {
      std::thread(deleter).join();
    } else {
      rt.spawn_detached(deleter);
      while (!deleted.load()) std::this_thread::yield();
    }
    runner_done.wait();
  }
}
