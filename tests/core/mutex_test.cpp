// Mutex (Go's sync.Mutex) from tasks and foreign threads: exclusion, the Lockable requirements,
// errors, normal and starvation mode, destruction right after the last waiter returns.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "myriad/mutex.hpp"
#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

using namespace myriad;
using myriad::test::scaled;

namespace {

// Runs f(rt) as a task of a one-proc runtime and waits for it: every spawn and wake-up then
// happens in a known order (a spawned task goes to runnext; a yield lets the queue run).
template <class F>
void on_one_proc(F f) {
  Runtime rt(Config{.procs = 1});
  rt.spawn([&] { f(rt); }).join();
}

}  // namespace

TEST(Mutex, UncontendedLockTryLockUnlock) {
  Mutex m;
  EXPECT_FALSE(m.is_locked());
  EXPECT_TRUE(m.try_lock());
  EXPECT_TRUE(m.is_locked());
  EXPECT_FALSE(m.try_lock());
  m.unlock();
  EXPECT_FALSE(m.is_locked());
  m.lock();
  EXPECT_FALSE(m.try_lock());
  m.unlock();
  EXPECT_FALSE(m.is_locked());
  EXPECT_FALSE(m.is_starving());
}

TEST(Mutex, UnlockOfUnlockedMutexThrowsNotLockedAndChangesNothing) {
  Mutex m;
  try {
    m.unlock();
    FAIL() << "unlock of an unlocked mutex did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_locked);
  }
  EXPECT_FALSE(m.is_locked());
  m.lock();
  m.unlock();
  EXPECT_THROW(m.unlock(), Error);  // a double unlock
  EXPECT_TRUE(m.try_lock());        // still usable
  m.unlock();

  // From a task, too.
  Runtime rt(Config{.procs = 2});
  auto h = rt.spawn([&] { m.unlock(); });
  try {
    h.join();
    FAIL() << "unlock from a task did not throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_locked);
  }
}

TEST(Mutex, MeetsLockableForStdGuardsAndStdLock) {
  Mutex a, b;
  {
    std::lock_guard<Mutex> g(a);
    EXPECT_TRUE(a.is_locked());
    std::unique_lock<Mutex> u(a, std::try_to_lock);
    EXPECT_FALSE(u.owns_lock());
  }
  EXPECT_FALSE(a.is_locked());
  // std::lock / scoped_lock over two mutexes taken in opposite orders by tasks and threads
  // must not deadlock (they back off with try_lock).
  Runtime rt(Config{.procs = 2});
  const int rounds = static_cast<int>(scaled(2000));
  long together = 0;  // guarded by both
  WaitGroup wg;
  wg.add(2);
  rt.spawn_detached([&] {
    for (int i = 0; i < rounds; ++i) {
      std::scoped_lock l(a, b);
      ++together;
    }
    wg.done();
  });
  std::thread t([&] {
    for (int i = 0; i < rounds; ++i) {
      std::scoped_lock l(b, a);
      ++together;
    }
    wg.done();
  });
  wg.wait();
  t.join();
  EXPECT_EQ(together, 2L * rounds);
  EXPECT_FALSE(a.is_locked());
  EXPECT_FALSE(b.is_locked());
}

TEST(Mutex, MutualExclusionUnderContentionFromTasksAndForeignThreadsAtOnce) {
  Runtime rt(Config{.procs = 4});
  Mutex m;
  long counter = 0;               // plain: only the mutex protects it
  std::atomic<int> inside{0};     // how many are in the critical section right now
  std::atomic<int> overlaps{0};
  const int tasks = 64, threads = 4;
  const int per_task = static_cast<int>(scaled(2000));
  const int per_thread = static_cast<int>(scaled(20000));
  auto critical = [&](int i, bool in_task) {
    std::lock_guard<Mutex> g(m);
    if (inside.fetch_add(1, std::memory_order_relaxed) != 0) overlaps.fetch_add(1);
    ++counter;
    // Now and then hold the lock across a switch, so that others must park or sleep.
    if (i % 64 == 0) {
      if (in_task)
        this_task::yield();
      else
        std::this_thread::yield();
    }
    inside.fetch_sub(1, std::memory_order_relaxed);
  };
  WaitGroup wg;
  wg.add(tasks);
  for (int t = 0; t < tasks; ++t)
    rt.spawn_detached([&] {
      for (int i = 0; i < per_task; ++i) critical(i, true);
      wg.done();
    });
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) critical(i, false);
    });
  for (auto& t : ts) t.join();
  wg.wait();
  m.lock();
  EXPECT_EQ(counter, long{tasks} * per_task + long{threads} * per_thread);
  m.unlock();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_FALSE(m.is_locked());
  EXPECT_FALSE(m.is_starving());
}

TEST(Mutex, ForeignThreadSleepsUntilATaskUnlocks) {
  Runtime rt(Config{.procs = 2});
  Mutex m;
  std::atomic<bool> released{false};
  m.lock();  // held by this (foreign) thread, unlocked by a task
  std::thread waiter([&] {
    m.lock();
    EXPECT_TRUE(released.load());
    m.unlock();
  });
  rt.spawn([&] {
    for (int i = 0; i < 100; ++i) this_task::yield();  // give the waiter time to go to sleep
    released.store(true);
    m.unlock();
  }).join();
  waiter.join();
  EXPECT_FALSE(m.is_locked());
}

TEST(Mutex, NormalModeLetsANewcomerTakeTheLockAheadOfAWokenWaiter) {
  on_one_proc([](Runtime& rt) {
    Mutex m;
    std::vector<int> order;  // one proc: no data race
    WaitGroup wg;
    wg.add(1);
    m.lock();
    rt.spawn_detached([&] {
      m.lock();
      order.push_back(1);
      m.unlock();
      wg.done();
    });
    this_task::yield();  // the waiter runs and parks on m
    m.unlock();          // wakes it (it is runnable, not running: we keep the proc)
    EXPECT_FALSE(m.is_starving());
    EXPECT_TRUE(m.try_lock());  // normal mode: the newcomer wins the race
    order.push_back(0);
    m.unlock();
    wg.wait();
    EXPECT_EQ(order, (std::vector<int>{0, 1}));
  });
}

TEST(Mutex, StarvationModeHandsTheLockToLongWaitersInFifoOrder) {
  on_one_proc([](Runtime& rt) {
    Mutex m;
    std::vector<int> order;  // one proc: no data race
    bool first_saw_starving = false;
    WaitGroup wg;
    wg.add(2);
    m.lock();
    rt.spawn_detached([&] {
      m.lock();
      order.push_back(1);
      first_saw_starving = m.is_starving();  // others still queue: the mode stays
      m.unlock();
      wg.done();
    });
    this_task::yield();  // waiter 1 parks
    rt.spawn_detached([&] {
      m.lock();
      order.push_back(2);
      m.unlock();
      wg.done();
    });
    this_task::yield();  // waiter 2 parks behind it
    // Both have now waited longer than the 1 ms starvation threshold (sleep_for sleeps at
    // least this long; the proc's only thread sleeps with it, so nothing else moves).
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    m.unlock();  // normal mode: wakes waiter 1 to compete...
    m.lock();    // ...and we, running, take the lock first (a tight relocking loop)
    EXPECT_FALSE(m.is_starving());
    EXPECT_TRUE(order.empty());
    this_task::yield();  // waiter 1 runs, finds the lock held after > 1 ms: starvation mode
    EXPECT_TRUE(m.is_starving());
    EXPECT_TRUE(order.empty());
    m.unlock();                 // hands the lock to waiter 1 (at the head again)
    EXPECT_FALSE(m.try_lock()); // newcomers may not barge in starvation mode
    m.lock();                   // we queue behind both waiters
    order.push_back(0);
    EXPECT_EQ(order, (std::vector<int>{1, 2, 0}));
    EXPECT_TRUE(first_saw_starving);
    EXPECT_FALSE(m.is_starving());  // the last waiter to get the lock leaves starvation mode
    m.unlock();
    wg.wait();
    EXPECT_FALSE(m.is_locked());
  });
}

TEST(Mutex, ATightRelockingLoopDoesNotStarveAWaiter) {
  // A foreign thread relocks in a loop without pause until a waiting task got the lock; in
  // normal mode alone the running thread would nearly always win. Liveness only: no timing.
  Runtime rt(Config{.procs = 2});
  for (int round = 0; round < 3; ++round) {
    Mutex m;
    std::atomic<bool> got{false};
    long loops = 0;
    std::thread looper([&] {
      while (!got.load(std::memory_order_relaxed)) {
        m.lock();
        ++loops;
        m.unlock();
      }
    });
    rt.spawn([&] {
      m.lock();
      got.store(true);
      m.unlock();
    }).join();
    looper.join();
    EXPECT_TRUE(got.load());
    EXPECT_FALSE(m.is_locked());
  }
}

TEST(Mutex, DestroyedByTheWaiterRightAfterItReturns) {
  // The waiter (a task or a thread) gets the lock from the unlocker (a task or a thread) and
  // deletes the mutex at once: the unlock must not touch it after the waiter can return.
  Runtime rt(Config{.procs = 2});
  const int rounds = static_cast<int>(scaled(3000));
  for (int round = 0; round < rounds; ++round) {
    auto* m = new Mutex();
    m->lock();
    std::atomic<bool> waiter_done{false};
    auto waiter = [m, &waiter_done] {
      m->lock();
      m->unlock();
      delete m;
      waiter_done.store(true);
    };
    std::thread thread_waiter;
    if (round % 2)
      rt.spawn_detached(waiter);
    else
      thread_waiter = std::thread(waiter);
    if (round % 4 < 2) {
      for (int i = 0; i < round % 7; ++i) std::this_thread::yield();
      m->unlock();
    } else {
      rt.spawn_detached([m] {
        for (int i = 0; i < 3; ++i) this_task::yield();
        m->unlock();
      });
    }
    if (thread_waiter.joinable()) thread_waiter.join();
    while (!waiter_done.load()) std::this_thread::yield();
  }
}

TEST(Mutex, DestroyedByTheLastOfSeveralWaitersHandedTheLockInTurn) {
  // Several waiters queue; the last to get the lock deletes the mutex right after its unlock,
  // while the unlocks that handed the lock over may still be returning.
  Runtime rt(Config{.procs = 2});
  const int rounds = static_cast<int>(scaled(1000));
  const int waiters = 4;
  for (int round = 0; round < rounds; ++round) {
    struct Shared {
      Mutex m;
      int acquired = 0;  // under m
    };
    auto* s = new Shared();
    WaitGroup finished;  // outlives s
    finished.add(waiters);
    s->m.lock();
    auto waiter = [s, &finished] {
      s->m.lock();
      const bool last = ++s->acquired == waiters;
      if (!last && s->acquired % 2) {  // hold it across a switch now and then
        if (this_task::in_task())
          this_task::yield();
        else
          std::this_thread::yield();
      }
      s->m.unlock();
      if (last) delete s;
      finished.done();
    };
    std::thread t(waiter);
    for (int i = 1; i < waiters; ++i) rt.spawn_detached(waiter);
    if (round % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(1500));
    s->m.unlock();
    t.join();
    finished.wait();
  }
}
