// RWMutex (Go's sync.RWMutex) from tasks and foreign threads: sharing, exclusion, writer
// preference, reader batches, errors, destruction right after a waiter returns.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "myriad/mutex.hpp"
#include "myriad/runtime.hpp"
#include "myriad/wait_group.hpp"
#include "test_util.hpp"

using namespace myriad;
using myriad::test::scaled;

namespace {

// Runs f(rt) as a task of a one-proc runtime: spawns and wake-ups happen in a known order.
template <class F>
void on_one_proc(F f) {
  Runtime rt(Config{.procs = 1});
  rt.spawn([&] { f(rt); }).join();
}

void expect_not_locked(auto&& f) {
  try {
    f();
    ADD_FAILURE() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::not_locked);
  }
}

}  // namespace

TEST(RWMutex, ReadersShareAndWritersExclude) {
  RWMutex rw;
  rw.rlock();
  EXPECT_TRUE(rw.try_rlock());
  EXPECT_EQ(rw.readers(), 2u);
  EXPECT_FALSE(rw.try_lock());
  rw.runlock();
  rw.runlock();
  EXPECT_EQ(rw.readers(), 0u);
  EXPECT_TRUE(rw.try_lock());
  EXPECT_TRUE(rw.is_write_locked());
  EXPECT_FALSE(rw.try_lock());
  EXPECT_FALSE(rw.try_rlock());
  rw.unlock();
  rw.lock();
  rw.unlock();
  EXPECT_FALSE(rw.is_write_locked());
  {
    std::shared_lock<RWMutex> r1(rw);
    std::shared_lock<RWMutex> r2(rw);
    EXPECT_EQ(rw.readers(), 2u);
    std::unique_lock<RWMutex> w(rw, std::try_to_lock);
    EXPECT_FALSE(w.owns_lock());
  }
  {
    std::lock_guard<RWMutex> w(rw);
    EXPECT_TRUE(rw.is_write_locked());
  }
  EXPECT_FALSE(rw.is_write_locked());
  EXPECT_EQ(rw.readers(), 0u);
}

TEST(RWMutex, BadUnlocksThrowNotLockedAndChangeNothing) {
  RWMutex rw;
  expect_not_locked([&] { rw.unlock(); });
  expect_not_locked([&] { rw.runlock(); });
  rw.rlock();
  expect_not_locked([&] { rw.unlock(); });  // read-locked, not write-locked
  EXPECT_EQ(rw.readers(), 1u);
  rw.runlock();
  expect_not_locked([&] { rw.runlock(); });
  rw.lock();
  expect_not_locked([&] { rw.runlock(); });  // write-locked, not read-locked
  EXPECT_TRUE(rw.is_write_locked());
  rw.unlock();
  expect_not_locked([&] { rw.unlock(); });
  EXPECT_TRUE(rw.try_lock());  // still consistent
  rw.unlock();
  EXPECT_TRUE(rw.try_rlock());
  rw.runlock();
}

TEST(RWMutex, AWaitingWriterStopsNewReadersAndGoesFirst) {
  on_one_proc([](Runtime& rt) {
    RWMutex rw;
    std::string order;  // one proc: no data race
    WaitGroup wg;
    wg.add(2);
    rw.rlock();
    rt.spawn_detached([&] {
      rw.lock();
      order += 'W';
      rw.unlock();
      wg.done();
    });
    this_task::yield();  // the writer parks, waiting for our read lock
    EXPECT_TRUE(rw.writer_waiting());
    EXPECT_FALSE(rw.try_rlock());  // writer preference: new readers are held back...
    rt.spawn_detached([&] {
      rw.rlock();  // ...and wait
      order += 'R';
      rw.runlock();
      wg.done();
    });
    this_task::yield();  // the reader parks behind the writer
    EXPECT_TRUE(order.empty());
    rw.runlock();  // the last reader out hands the lock to the writer
    EXPECT_TRUE(rw.is_write_locked());
    EXPECT_FALSE(rw.writer_waiting());
    wg.wait();
    EXPECT_EQ(order, "WR");
  });
}

TEST(RWMutex, AWritersUnlockAdmitsEveryWaitingReaderAtOnceBeforeTheNextWriter) {
  on_one_proc([](Runtime& rt) {
    RWMutex rw;
    std::string order;  // one proc: no data race
    const int readers = 5;
    WaitGroup wg, inside;
    wg.add(readers + 2);
    inside.add(readers + 1);
    auto reader = [&] {
      rw.rlock();
      order += 'r';
      inside.done();
      inside.wait();  // every reader holds the lock at the same time, or this never returns
      rw.runlock();
      wg.done();
    };
    rw.lock();
    for (int i = 0; i < readers; ++i) rt.spawn_detached(reader);
    this_task::yield();  // they all park
    rt.spawn_detached([&] {
      rw.lock();
      order += 'W';
      rw.unlock();
      wg.done();
    });
    this_task::yield();  // a second writer parks
    rt.spawn_detached(reader);  // and a reader arriving while it waits
    this_task::yield();
    EXPECT_TRUE(order.empty());
    rw.unlock();
    // Every queued reader (also the one that came after the waiting writer, as in Go) now
    // holds the lock; the writer still waits, and holds back newcomers.
    EXPECT_EQ(rw.readers(), static_cast<uint32_t>(readers + 1));
    EXPECT_TRUE(rw.writer_waiting());
    EXPECT_FALSE(rw.try_rlock());
    wg.wait();
    EXPECT_EQ(order, std::string(readers + 1, 'r') + "W");
  });
}

TEST(RWMutex, ExclusionUnderContentionFromTasksAndForeignThreads) {
  Runtime rt(Config{.procs = 4});
  RWMutex rw;
  long a = 0, b = 0;  // plain: writers keep a == b, readers check it
  std::atomic<long> bad_reads{0}, reads{0};
  std::atomic<int> writers_inside{0}, readers_inside{0};
  std::atomic<int> overlaps{0};
  const int tasks = 32, threads = 4;
  const int per_task = static_cast<int>(scaled(2000));
  const int per_thread = static_cast<int>(scaled(10000));
  auto work = [&](int i, bool in_task) {
    auto pause = [&] {
      if (in_task)
        this_task::yield();
      else
        std::this_thread::yield();
    };
    if (i % 4 == 0) {
      std::lock_guard<RWMutex> g(rw);
      if (writers_inside.fetch_add(1) != 0 || readers_inside.load() != 0) overlaps.fetch_add(1);
      ++a;
      if (i % 64 == 0) pause();
      ++b;
      writers_inside.fetch_sub(1);
    } else {
      std::shared_lock<RWMutex> g(rw);
      readers_inside.fetch_add(1);
      if (writers_inside.load() != 0) overlaps.fetch_add(1);
      if (a != b) bad_reads.fetch_add(1);
      if (i % 64 == 1) pause();
      if (a != b) bad_reads.fetch_add(1);
      reads.fetch_add(1, std::memory_order_relaxed);
      readers_inside.fetch_sub(1);
    }
  };
  WaitGroup wg;
  wg.add(tasks);
  for (int t = 0; t < tasks; ++t)
    rt.spawn_detached([&] {
      for (int i = 0; i < per_task; ++i) work(i, true);
      wg.done();
    });
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i) work(i, false);
    });
  for (auto& t : ts) t.join();
  wg.wait();
  rw.rlock();
  const long writes = long{tasks} * ((per_task + 3) / 4) + long{threads} * ((per_thread + 3) / 4);
  EXPECT_EQ(a, writes);
  EXPECT_EQ(b, writes);
  rw.runlock();
  EXPECT_EQ(reads.load(), long{tasks} * per_task + long{threads} * per_thread - writes);
  EXPECT_EQ(bad_reads.load(), 0);
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_FALSE(rw.is_write_locked());
  EXPECT_EQ(rw.readers(), 0u);
}

TEST(RWMutex, BusyReadersDoNotStarveAWriter) {
  // Reader threads take the read lock back to back; a writer task must still get its turns.
  // Liveness only (the ordering itself is checked on one proc above).
  Runtime rt(Config{.procs = 2});
  RWMutex rw;
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i)
    readers.emplace_back([&] {
      while (!stop.load()) {
        rw.rlock();
        std::this_thread::yield();
        rw.runlock();
      }
    });
  long writes = 0;
  rt.spawn([&] {
    for (int i = 0; i < 100; ++i) {
      rw.lock();
      ++writes;
      rw.unlock();
    }
  }).join();
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(writes, 100);
}

TEST(RWMutex, DestroyedByAWaiterRightAfterItReturns) {
  Runtime rt(Config{.procs = 2});
  const int rounds = static_cast<int>(scaled(3000));
  for (int round = 0; round < rounds; ++round) {
    auto* rw = new RWMutex();
    std::atomic<bool> waiter_done{false};
    const bool writer_waits = round % 2;  // else a reader waits for a writer
    if (writer_waits)
      rw->rlock();
    else
      rw->lock();
    auto waiter = [rw, writer_waits, &waiter_done] {
      if (writer_waits) {
        rw->lock();
        rw->unlock();
      } else {
        rw->rlock();
        rw->runlock();
      }
      delete rw;
      waiter_done.store(true);
    };
    auto release = [rw, writer_waits] {
      if (writer_waits)
        rw->runlock();
      else
        rw->unlock();
    };
    std::thread thread_waiter;
    if (round % 4 < 2)
      rt.spawn_detached(waiter);
    else
      thread_waiter = std::thread(waiter);
    if (round % 3 == 0) {
      for (int i = 0; i < round % 5; ++i) std::this_thread::yield();
      release();
    } else {
      rt.spawn_detached([release] {
        for (int i = 0; i < 3; ++i) this_task::yield();
        release();
      });
    }
    if (thread_waiter.joinable()) thread_waiter.join();
    while (!waiter_done.load()) std::this_thread::yield();
  }
}
