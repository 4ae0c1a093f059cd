// Tasks locked to their OS thread (this_task::lock_to_thread, Go's LockOSThread).
#include <gtest/gtest.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "myriad/blocking.hpp"
#include "myriad/chan.hpp"
#include "myriad/runtime.hpp"
#include "myriad/time.hpp"
#include "myriad/wait_group.hpp"

using namespace std::chrono_literals;

namespace {

long tid() { return static_cast<long>(syscall(SYS_gettid)); }

// The check: a pinned task keeps its thread identity across parks (channel, sleep,
// yield), while other tasks keep the procs busy — and its thread runs nothing else meanwhile.
TEST(ThreadLock, KeepsThreadAcrossParksAndThreadRunsNothingElse) {
  myriad::Config c;
  c.procs = 2;
  myriad::Runtime rt(c);
  myriad::Chan<int> ping(0), pong(0);
  std::atomic<long> pinned_tid{0};
  std::atomic<bool> pinned_done{false};
  std::atomic<int> foreign_runs_on_pinned{0};
  std::atomic<int> mismatches{0};
  myriad::WaitGroup others;

  auto pinned = rt.spawn([&] {
    myriad::this_task::lock_to_thread();
    EXPECT_TRUE(myriad::this_task::locked_to_thread());
    pinned_tid = tid();
    for (int i = 0; i < 200; ++i) {
      int v = ping.recv().value();        // park on a channel
      if (tid() != pinned_tid) ++mismatches;
      pong.send(v + 1);
      if (i % 20 == 0) myriad::this_task::sleep_for(1ms);  // park on a timer
      if (tid() != pinned_tid) ++mismatches;
      myriad::this_task::yield();
      if (tid() != pinned_tid) ++mismatches;
    }
    pinned_done = true;
    myriad::this_task::unlock_from_thread();
    EXPECT_FALSE(myriad::this_task::locked_to_thread());
  });
  // Busy tasks everywhere; none may ever run on the pinned thread while it is locked.
  others.add(8);
  for (int k = 0; k < 8; ++k) {
    rt.spawn_detached([&] {
      while (pinned_tid.load() == 0) myriad::this_task::yield();
      while (!pinned_done.load()) {
        if (tid() == pinned_tid.load()) ++foreign_runs_on_pinned;
        myriad::this_task::yield();
      }
      others.done();
    });
  }
  auto driver = rt.spawn([&] {
    for (int i = 0; i < 200; ++i) {
      ping.send(i);
      EXPECT_EQ(pong.recv().value(), i + 1);
    }
  });
  driver.join();
  pinned.join();
  others.wait();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(foreign_runs_on_pinned.load(), 0);
}

TEST(ThreadLock, NestsAndUnlocksAtTaskEnd) {
  myriad::Runtime rt;
  auto h = rt.spawn([] {
    myriad::this_task::lock_to_thread();
    myriad::this_task::lock_to_thread();
    myriad::this_task::unlock_from_thread();
    EXPECT_TRUE(myriad::this_task::locked_to_thread());
    myriad::this_task::unlock_from_thread();
    EXPECT_FALSE(myriad::this_task::locked_to_thread());
    myriad::this_task::unlock_from_thread();  // no-op
    myriad::this_task::lock_to_thread();      // ends locked: the runtime unlocks
  });
  h.join();
  // The thread is usable again: many tasks run afterwards on every thread.
  std::atomic<int> n{0};
  myriad::WaitGroup wg;
  wg.add(1000);
  for (int i = 0; i < 1000; ++i)
    rt.spawn_detached([&] {
      myriad::this_task::yield();
      ++n;
      wg.done();
    });
  wg.wait();
  EXPECT_EQ(n.load(), 1000);
}

TEST(ThreadLock, Errors) {
  EXPECT_THROW(myriad::this_task::lock_to_thread(), myriad::Error);  // not in a task
  myriad::Config c;
  c.procs = 1;
  c.host_procs = 1;
  myriad::Runtime host(c);
  myriad::Errc e = myriad::Errc::ok;
  host.spawn_detached([&] {
    try {
      myriad::this_task::lock_to_thread();
    } catch (const myriad::Error& err) {
      e = err.code();
    }
  });
  host.run_until([&] { return e != myriad::Errc::ok; });
  EXPECT_EQ(e, myriad::Errc::not_supported);
}

TEST(ThreadLock, ThreadLimit) {
  myriad::Config c;
  c.procs = 1;
  c.max_threads = 2;
  myriad::Runtime rt(c);
  auto h = rt.spawn([] {
    myriad::this_task::lock_to_thread();
    auto inner = myriad::go([] {
      try {
        myriad::this_task::lock_to_thread();
        ADD_FAILURE() << "a second locked task fit under max_threads = 2";
      } catch (const myriad::Error& e) {
        EXPECT_EQ(e.code(), myriad::Errc::thread_limit);
      }
    });
    inner.join();
    myriad::this_task::unlock_from_thread();
  });
  h.join();
}

// Many locked tasks parking and waking each other: each keeps its own thread throughout.
TEST(ThreadLock, ManyLockedTasksPingPong) {
  myriad::Config c;
  c.procs = 2;
  myriad::Runtime rt(c);
  constexpr int kPairs = 4;
  std::atomic<int> mismatches{0};
  std::vector<myriad::JoinHandle> hs;
  std::mutex mu;
  std::set<long> tids;
  // Every task is locked before any proceeds: all 2 * kPairs hold a thread at the same time
  // (a task that ended would have freed its thread for a later one).
  myriad::WaitGroup all_locked;
  all_locked.add(2 * kPairs);
  for (int k = 0; k < kPairs; ++k) {
    myriad::Chan<int> a(0), b(0);
    for (int side = 0; side < 2; ++side) {
      hs.push_back(rt.spawn([&, a, b, side] {
        myriad::this_task::ThreadLock lock;
        const long me = tid();
        {
          std::lock_guard<std::mutex> g(mu);
          tids.insert(me);
        }
        all_locked.done();
        all_locked.wait();
        if (tid() != me) ++mismatches;
        for (int i = 0; i < 100; ++i) {
          if (side == 0) {
            a.send(i);
            EXPECT_EQ(b.recv().value(), i);
          } else {
            b.send(a.recv().value());
          }
          if (tid() != me) ++mismatches;
        }
      }));
    }
  }
  for (auto& h : hs) h.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(tids.size(), static_cast<std::size_t>(2 * kPairs));  // one thread each, at once
}

// Regression (seen under TSan in ManyLockedTasksPingPong): every thread of the runtime waits
// for its parked locked task and every proc is idle; new work must start a thread for an idle
// proc (Go's startm), not wait for an idle thread that does not exist.
TEST(ThreadLock, WorkSpawnedWhileEveryThreadWaitsForItsLockedTaskRuns) {
  myriad::Config c;
  c.procs = 2;
  myriad::Runtime rt(c);
  myriad::Chan<int> release(0);
  std::vector<myriad::JoinHandle> locked;
  // One locked task at a time, each parked before the next is spawned: the common path leaves
  // both procs idle and both threads in "waiting for my locked task".
  for (uint64_t k = 1; k <= 2; ++k) {
    locked.push_back(rt.spawn([release] {
      myriad::this_task::ThreadLock lock;
      (void)release.recv();
    }));
    while (rt.stats().proc_handoffs < k) std::this_thread::sleep_for(1ms);
  }
  std::atomic<bool> ran{false};
  auto worker = rt.spawn([&ran] { ran.store(true); });
  // A liveness bound, not a timing check: without a thread for the idle proc this never ends.
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (!ran.load() && std::chrono::steady_clock::now() < give_up)
    std::this_thread::sleep_for(1ms);
  if (!ran.load()) {
    // The runtime cannot shut down either (its procs run nothing): end here, loudly.
    std::fprintf(stderr, "FAILED: a task spawned while every thread waited for its locked task "
                         "never ran\n");
    std::abort();
  }
  worker.join();
  release.send(0);
  release.send(0);
  for (auto& h : locked) h.join();
}

}  // namespace
