#include "stack_pool.hpp"

#include <sys/mman.h>

#include <atomic>
#include <cstdio>
#include <new>

#include "task_impl.hpp"

namespace myriad::detail {
namespace {

// Process-wide budget of guard pages (each costs two kernel mappings). A quarter of
// vm.max_map_count leaves room for malloc arenas, thread stacks and the host's own mappings.
std::atomic<long>& guard_budget() {
  static std::atomic<long> budget = [] {
    long max_maps = 65530;
    if (FILE* f = std::fopen("/proc/sys/vm/max_map_count", "r")) {
      if (std::fscanf(f, "%ld", &max_maps) != 1) max_maps = 65530;
      std::fclose(f);
    }
    return max_maps / 4 / 2;
  }();
  return budget;
}

// Signal-safe registry of slab ranges: fixed array of atomics, written under the owning pool's
// mutex, read lock-free by the SIGSEGV handler.
constexpr int kRegistrySize = 1 << 16;
struct RegistryEntry {
  std::atomic<char*> base{nullptr};
  std::atomic<std::size_t> bytes{0};
  std::atomic<std::size_t> slot_size{0};
  std::atomic<std::size_t> guarded{0};  // slots [0, guarded) of the slab have guard pages
};
RegistryEntry g_registry[kRegistrySize];
std::mutex g_registry_mu;

int registry_add(char* base, std::size_t bytes, std::size_t slot_size) {
  std::lock_guard<std::mutex> g(g_registry_mu);
  for (int i = 0; i < kRegistrySize; ++i) {
    if (g_registry[i].base.load(std::memory_order_relaxed) == nullptr) {
      g_registry[i].bytes.store(bytes, std::memory_order_relaxed);
      g_registry[i].slot_size.store(slot_size, std::memory_order_relaxed);
      g_registry[i].guarded.store(0, std::memory_order_relaxed);
      g_registry[i].base.store(base, std::memory_order_release);
      return i;
    }
  }
  return -1;  // registry full: slabs still work, faults in them are just not attributed
}

void registry_remove(int i) {
  if (i < 0) return;
  std::lock_guard<std::mutex> g(g_registry_mu);
  g_registry[i].base.store(nullptr, std::memory_order_release);
}

}  // namespace

StackPool::StackPool(std::size_t usable_size, GuardPages guard, std::atomic<int64_t>* slot_budget)
    : usable_(usable_size),
      slot_size_(usable_size + kPageSize),
      guard_(guard),
      slot_budget_(slot_budget) {
  // Slabs of ~16 MiB: big enough that a million slots need a few thousand mappings, small
  // enough that a runtime which spawns ten tasks reserves little.
  slots_per_slab_ = (std::size_t{16} << 20) / slot_size_;
  if (slots_per_slab_ < 4) slots_per_slab_ = 4;
}

StackPool::~StackPool() {
#if MYRIAD_TSAN
  for (Slab& s : slabs_)
    for (std::size_t i = 0; i < s.carved; ++i)
      if (void* f = slot_task(s.base + i * slot_size_)->san.tsan_fiber) __tsan_destroy_fiber(f);
#endif
  for (Slab& s : slabs_) {
    registry_remove(s.registry_index);
    guard_budget().fetch_add(static_cast<long>(s.guarded), std::memory_order_relaxed);
    munmap(s.base, s.slots * slot_size_);
  }
}

Task* StackPool::slot_task(char* slot_base) const noexcept {
  auto end = reinterpret_cast<uintptr_t>(slot_base + slot_size_);
  return reinterpret_cast<Task*>((end - sizeof(Task)) & ~uintptr_t{alignof(Task) - 1});
}

Task* StackPool::carve_locked() noexcept {
  if (slot_budget_ && slot_budget_->fetch_sub(1, std::memory_order_relaxed) <= 0) {
    slot_budget_->fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  if (slabs_.empty() || slabs_.back().carved == slabs_.back().slots) {
    std::size_t bytes = slots_per_slab_ * slot_size_;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
      if (slot_budget_) slot_budget_->fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    // A huge page would commit 2 MiB for a task that touched 4 KiB.
    madvise(p, bytes, MADV_NOHUGEPAGE);
    char* base = static_cast<char*>(p);
    slabs_.push_back(Slab{base, slots_per_slab_, 0, 0, registry_add(base, bytes, slot_size_)});
  }
  Slab& s = slabs_.back();
  char* slot = s.base + s.carved * slot_size_;
  // Guard pages only for a prefix of each slab, so the registry can describe them by a count.
  if (guard_ == GuardPages::automatic && s.guarded == s.carved &&
      guard_budget().fetch_sub(1, std::memory_order_relaxed) > 0) {
    if (mprotect(slot, kPageSize, PROT_NONE) == 0) {
      ++s.guarded;
      ++guarded_;
      if (s.registry_index >= 0)
        g_registry[s.registry_index].guarded.store(s.guarded, std::memory_order_release);
    } else {
      guard_budget().fetch_add(1, std::memory_order_relaxed);
    }
  } else if (guard_ == GuardPages::automatic && s.guarded == s.carved) {
    guard_budget().fetch_add(1, std::memory_order_relaxed);  // undo the failed take
  }
  ++s.carved;
  ++carved_;
  Task* t = ::new (slot_task(slot)) Task();
  t->pool = this;
  t->stack_limit = slot + kPageSize;
  return t;
}

std::size_t StackPool::take(std::size_t max, Task** list_out) noexcept {
  std::lock_guard<std::mutex> g(mu_);
  Task* head = nullptr;
  std::size_t n = 0;
  if (!free_batches_.empty()) {
    FreeBatch& b = free_batches_.back();
    if (b.count <= max) {  // the common case: a proc's cache takes a whole batch
      head = b.head;
      n = b.count;
      free_batches_.pop_back();
    } else {  // a few slots (a foreign spawn): split them off the front of the batch
      head = b.head;
      Task* last = head;
      for (n = 1; n < max; ++n) last = last->next;
      b.head = last->next;
      b.count -= n;
      last->next = nullptr;
    }
    *list_out = head;
    return n;
  }
  while (n < max) {
    Task* t = carve_locked();
    if (!t) break;
    t->next = head;
    head = t;
    ++n;
  }
  *list_out = head;
  return n;
}

void StackPool::give(Task* list, std::size_t count) noexcept {
  if (!list) return;
  std::lock_guard<std::mutex> g(mu_);
  try {
    free_batches_.push_back(FreeBatch{list, count});
  } catch (...) {
    // No memory for the bookkeeping: append to an existing batch instead (a walk, but no loss).
    if (free_batches_.empty()) return;  // unreachable: a failed push_back on an empty vector
    Task* tail = list;
    while (tail->next) tail = tail->next;
    tail->next = free_batches_.back().head;
    free_batches_.back().head = list;
    free_batches_.back().count += count;
  }
}

uint64_t StackPool::slots_carved() const noexcept {
  std::lock_guard<std::mutex> g(mu_);
  return carved_;
}

uint64_t StackPool::slots_guarded() const noexcept {
  std::lock_guard<std::mutex> g(mu_);
  return guarded_;
}

Task* StackPool::task_for_guard_fault(const void* addr) noexcept {
  auto a = reinterpret_cast<uintptr_t>(addr);
  for (int i = 0; i < kRegistrySize; ++i) {
    char* base = g_registry[i].base.load(std::memory_order_acquire);
    if (!base) continue;
    auto b = reinterpret_cast<uintptr_t>(base);
    std::size_t bytes = g_registry[i].bytes.load(std::memory_order_relaxed);
    if (a < b || a >= b + bytes) continue;
    std::size_t slot_size = g_registry[i].slot_size.load(std::memory_order_relaxed);
    std::size_t idx = (a - b) / slot_size;
    std::size_t off = (a - b) % slot_size;
    if (off >= kPageSize || idx >= g_registry[i].guarded.load(std::memory_order_acquire))
      return nullptr;
    uintptr_t end = b + (idx + 1) * slot_size;
    return reinterpret_cast<Task*>((end - sizeof(Task)) & ~uintptr_t{alignof(Task) - 1});
  }
  return nullptr;
}

}  // namespace myriad::detail
