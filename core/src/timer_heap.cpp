// The per-proc timer heap: a 4-ary min-heap on `when` (shallower than a binary heap, so a
// push or pop of 100,000 timers touches ~8 levels; Go uses the same arity).
#include <time.h>

#include <new>

#include "timers.hpp"

namespace myriad::detail {

int64_t monotonic_now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void TimerHeap::up(uint32_t i) noexcept {
  TimerNode* t = nodes[i];
  while (i > 0) {
    uint32_t parent = (i - 1) / 4;
    if (nodes[parent]->when <= t->when) break;
    place(i, nodes[parent]);
    i = parent;
  }
  place(i, t);
}

void TimerHeap::down(uint32_t i) noexcept {
  const uint32_t n = static_cast<uint32_t>(nodes.size());
  TimerNode* t = nodes[i];
  for (;;) {
    uint32_t first = 4 * i + 1;
    if (first >= n) break;
    uint32_t best = first;
    uint32_t last = first + 4 < n ? first + 4 : n;
    for (uint32_t c = first + 1; c < last; ++c)
      if (nodes[c]->when < nodes[best]->when) best = c;
    if (t->when <= nodes[best]->when) break;
    place(i, nodes[best]);
    i = best;
  }
  place(i, t);
}

void TimerHeap::push_locked(TimerNode* t) {
  nodes.push_back(t);
  up(static_cast<uint32_t>(nodes.size() - 1));
  t->heap.store(this, std::memory_order_release);
  fix_next();
}

void TimerHeap::remove_locked(TimerNode* t) noexcept {
  uint32_t i = t->index;
  TimerNode* last = nodes.back();
  nodes.pop_back();
  if (last != t) {
    place(i, last);
    if (i > 0 && nodes[(i - 1) / 4]->when > last->when)
      up(i);
    else
      down(i);
  }
  t->heap.store(nullptr, std::memory_order_release);
  fix_next();
}

bool timer_disarm(TimerNode* t) noexcept {
  for (;;) {
    TimerHeap* h = t->heap.load(std::memory_order_acquire);
    if (!h) return false;
    h->lock.lock();
    if (t->heap.load(std::memory_order_relaxed) != h) {  // fired or moved meanwhile
      h->lock.unlock();
      continue;
    }
    h->remove_locked(t);
    h->lock.unlock();
    if (t->release) t->release(t);  // the heap's reference
    return true;
  }
}

uint32_t run_due_timers(TimerHeap& h, int64_t now) noexcept {
  uint32_t fired = 0;
  for (;;) {
    // Pop a batch under the lock, fire it outside.
    constexpr int kBatch = 32;
    TimerNode* due[kBatch];
    uint64_t seqs[kBatch];
    int n = 0;
    h.lock.lock();
    while (n < kBatch && !h.nodes.empty() && h.nodes[0]->when <= now) {
      TimerNode* t = h.nodes[0];
      seqs[n] = t->seq;
      due[n++] = t;
      if (t->period > 0) {
        // Re-arm in place; skip missed periods instead of firing a burst (Go's ticker drops
        // ticks for slow receivers too). The fire needs its own reference.
        int64_t next = t->when + t->period;
        if (next <= now) next = now + t->period - (now - t->when) % t->period;
        t->when = next;
        h.down(0);
        if (t->retain) t->retain(t);
      } else {
        h.remove_locked(t);  // the heap's reference passes to the fire
      }
    }
    h.fix_next();
    h.lock.unlock();
    for (int i = 0; i < n; ++i) due[i]->fire(due[i], seqs[i], now);
    fired += static_cast<uint32_t>(n);
    if (n < kBatch) return fired;
  }
}

void drop_all_timers(TimerHeap& h) noexcept {
  h.lock.lock();
  std::vector<TimerNode*> nodes;
  nodes.swap(h.nodes);
  for (TimerNode* t : nodes) t->heap.store(nullptr, std::memory_order_release);
  h.fix_next();
  h.lock.unlock();
  for (TimerNode* t : nodes)
    if (t->release) t->release(t);
}

}  // namespace myriad::detail
