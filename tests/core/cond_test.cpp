// Cond (Go's sync.Cond) from tasks and foreign threads: signal wakes one (the oldest),
// broadcast wakes all, a signal is not remembered, errors, destruction by a woken waiter.
#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <thread>
#include <vector>

#include "myriad/cond.hpp"
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

}  // namespace

TEST(Cond, SignalWakesExactlyOneWaiterOldestFirst) {
  on_one_proc([](Runtime& rt) {
    Mutex m;
    Cond c;
    std::vector<int> woke;  // under m
    const int n = 5;
    WaitGroup wg;
    wg.add(n);
    for (int i = 0; i < n; ++i) {
      rt.spawn_detached([&, i] {
        m.lock();
        c.wait(m);  // one wait, no predicate: each return must be one signal's doing
        woke.push_back(i);
        m.unlock();
        wg.done();
      });
      this_task::yield();  // waiter i parks before waiter i+1 registers
    }
    for (int k = 1; k <= n; ++k) {
      m.lock();
      c.signal();
      m.unlock();
      // Everything runnable runs before we do again: only the chosen waiter is.
      this_task::yield();
      this_task::yield();
      m.lock();
      EXPECT_EQ(woke.size(), static_cast<size_t>(k));
      EXPECT_EQ(woke.back(), k - 1);
      m.unlock();
    }
    wg.wait();
  });
}

TEST(Cond, ASignalWithNoWaiterIsNotRemembered) {
  on_one_proc([](Runtime& rt) {
    Mutex m;
    Cond c;
    bool woke = false;  // under m
    WaitGroup wg;
    wg.add(1);
    c.signal();
    c.broadcast();
    rt.spawn_detached([&] {
      m.lock();
      c.wait(m);
      woke = true;
      m.unlock();
      wg.done();
    });
    for (int i = 0; i < 3; ++i) this_task::yield();
    m.lock();
    EXPECT_FALSE(woke);  // the earlier signal did not wake it
    c.signal();
    m.unlock();
    wg.wait();
    EXPECT_TRUE(woke);
  });
}

TEST(Cond, BroadcastWakesEveryTaskAndThreadWaiting) {
  Runtime rt(Config{.procs = 2});
  Mutex m;
  Cond c;
  int registered = 0, woke = 0;  // under m
  const int tasks = 50, threads = 4;
  for (int round = 0; round < 20; ++round) {
    registered = woke = 0;
    WaitGroup wg;
    wg.add(tasks);
    auto waiter = [&] {
      m.lock();
      ++registered;
      c.wait(m);  // one wait: no spurious wake-ups, so each return is the broadcast's
      ++woke;
      m.unlock();
    };
    for (int i = 0; i < tasks; ++i)
      rt.spawn_detached([&] {
        waiter();
        wg.done();
      });
    std::vector<std::thread> ts;
    for (int i = 0; i < threads; ++i) ts.emplace_back(waiter);
    for (;;) {  // all registered (each registers holding m, before it unlocks it in wait)
      m.lock();
      const bool all = registered == tasks + threads;
      m.unlock();
      if (all) break;
      std::this_thread::yield();
    }
    m.lock();
    EXPECT_EQ(woke, 0);
    c.broadcast();
    m.unlock();
    wg.wait();
    for (auto& t : ts) t.join();
    EXPECT_EQ(woke, tasks + threads);
  }
}

TEST(Cond, SignalsCountedAcrossTasksAndThreads) {
  // Each signal, made while a waiter is registered, wakes exactly one: after k signals exactly
  // k waiters have returned once everything settled.
  Runtime rt(Config{.procs = 2});
  Mutex m;
  Cond c;
  int registered = 0, woke = 0;  // under m
  const int tasks = 20, threads = 4, total = tasks + threads;
  WaitGroup wg;
  wg.add(tasks);
  auto waiter = [&] {
    m.lock();
    ++registered;
    c.wait(m);
    ++woke;
    m.unlock();
  };
  for (int i = 0; i < tasks; ++i)
    rt.spawn_detached([&] {
      waiter();
      wg.done();
    });
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) ts.emplace_back(waiter);
  for (int k = 1; k <= total; ++k) {
    for (;;) {  // wait until the k-1 woken have returned and all are registered
      m.lock();
      const bool ready = registered == total && woke == k - 1;
      if (ready) {
        c.signal();
        m.unlock();
        break;
      }
      m.unlock();
      std::this_thread::yield();
    }
  }
  wg.wait();
  for (auto& t : ts) t.join();
  EXPECT_EQ(woke, total);
}

TEST(Cond, WaitWithAnUnlockedMutexThrowsAndLeavesNoRegistration) {
  on_one_proc([](Runtime& rt) {
    Mutex m;
    Cond c;
    try {
      c.wait(m);
      ADD_FAILURE() << "wait with an unlocked mutex did not throw";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), Errc::not_locked);
    }
    EXPECT_FALSE(m.is_locked());
    // A real waiter is woken by the next single signal (no stale registration absorbs it).
    bool woke = false;
    WaitGroup wg;
    wg.add(1);
    rt.spawn_detached([&] {
      m.lock();
      c.wait(m);
      woke = true;
      m.unlock();
      wg.done();
    });
    this_task::yield();
    c.signal();
    wg.wait();
    EXPECT_TRUE(woke);
  });
}

TEST(Cond, ProducersAndConsumersOverABoundedQueue) {
  Runtime rt(Config{.procs = 4});
  Mutex m;
  Cond not_empty, not_full;
  std::deque<long> q;  // under m
  const size_t capacity = 8;
  const int producers = 4, consumers = 4;  // half tasks, half threads on each side
  const long per_producer = scaled(5000);
  long consumed_sum = 0, consumed = 0;  // under m
  bool done = false;                    // under m
  auto produce = [&](long base) {
    for (long i = 0; i < per_producer; ++i) {
      m.lock();
      not_full.wait(m, [&] { return q.size() < capacity; });
      q.push_back(base + i);
      not_empty.signal();
      m.unlock();
    }
  };
  auto consume = [&] {
    m.lock();
    for (;;) {
      not_empty.wait(m, [&] { return !q.empty() || done; });
      if (q.empty()) break;
      consumed_sum += q.front();
      ++consumed;
      q.pop_front();
      not_full.signal();
    }
    m.unlock();
  };
  WaitGroup tasks_done;
  tasks_done.add(producers / 2 + consumers / 2);
  std::vector<std::thread> producer_threads, consumer_threads;
  for (int p = 0; p < producers; ++p) {
    const long base = p * per_producer;
    if (p % 2)
      rt.spawn_detached([&, base] {
        produce(base);
        tasks_done.done();
      });
    else
      producer_threads.emplace_back(produce, base);
  }
  for (int k = 0; k < consumers; ++k) {
    if (k % 2)
      rt.spawn_detached([&] {
        consume();
        tasks_done.done();
      });
    else
      consumer_threads.emplace_back(consume);
  }
  for (auto& t : producer_threads) t.join();
  // Producer tasks may still run: wait for them by watching the total.
  for (;;) {
    m.lock();
    const long n = consumed + static_cast<long>(q.size());
    m.unlock();
    if (n == producers * per_producer) break;
    std::this_thread::yield();
  }
  m.lock();
  done = true;
  not_empty.broadcast();
  m.unlock();
  for (auto& t : consumer_threads) t.join();
  tasks_done.wait();
  const long n = producers * per_producer;
  EXPECT_EQ(consumed, n);
  EXPECT_EQ(consumed_sum, n * (n - 1) / 2);
}

TEST(Cond, DestroyedByTheWaiterRightAfterWaitReturns) {
  Runtime rt(Config{.procs = 2});
  const int rounds = static_cast<int>(scaled(3000));
  struct Shared {
    Mutex m;
    Cond c;
    bool ready = false;  // under m
  };
  for (int round = 0; round < rounds; ++round) {
    auto* s = new Shared();
    std::atomic<bool> waiter_done{false};
    auto waiter = [s, &waiter_done] {
      s->m.lock();
      while (!s->ready) s->c.wait(s->m);
      s->m.unlock();
      delete s;  // the signaler may still be inside signal() or m.unlock()
      waiter_done.store(true);
    };
    const bool broadcast = round % 3 == 0;
    auto signaler = [s, broadcast] {
      s->m.lock();
      s->ready = true;
      if (broadcast)
        s->c.broadcast();
      else
        s->c.signal();
      s->m.unlock();
    };
    std::thread t;
    if (round % 2)
      rt.spawn_detached(waiter);
    else
      t = std::thread(waiter);
    if (round % 4 < 2) {
      for (int i = 0; i < round % 5; ++i) std::this_thread::yield();
      signaler();
    } else {
      rt.spawn_detached([signaler] {
        this_task::yield();
        signaler();
      });
    }
    if (t.joinable()) t.join();
    while (!waiter_done.load()) std::this_thread::yield();
  }
}
