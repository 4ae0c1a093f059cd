// Stack slots: large reservations carved into fixed-size slots, one task per slot.
//
// Layout of one slot (addresses grow to the right):
//
//   [ guard page | canary (64 B) | ...... stack grows down ...... | closure | Task ]
//   ^ slot base   ^ stack_limit                                              ^ slot end
//
// - A slab is one mmap(MAP_NORESERVE) of many slots, so a million stacks cost a few thousand
//   mappings, not a million (vm.max_map_count is ~65k). Pages are committed on first touch:
//   a parked task that never recursed costs the top page or two.
// - The guard page is mprotect(PROT_NONE)'d only while the process-wide guard budget lasts,
//   because each one splits the slab mapping (two more mappings). Unguarded slots keep the
//   page as an unprotected gap so a small overflow hits the canary before a neighbour.
// - Slots are recycled with the Task inside them (Go keeps stacks on its free g's the same
//   way): per-proc caches in Proc, a global free list here behind a mutex.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "myriad/runtime.hpp"

namespace myriad::detail {

struct Task;

inline constexpr std::size_t kPageSize = 4096;
inline constexpr std::size_t kMinStackSize = 16 * 1024;
inline constexpr std::size_t kMaxStackSize = std::size_t{1} << 30;

class StackPool {
 public:
  // usable_size: bytes from the canary to the end of the slot (includes the Task).
  // slot_budget: shared by a runtime's pools; each carved slot takes one, none left means no
  // more slots (Config::max_stacks). Null: unlimited.
  StackPool(std::size_t usable_size, GuardPages guard, std::atomic<int64_t>* slot_budget);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  std::size_t usable_size() const noexcept { return usable_; }

  // Takes up to `max` slots (recycled first, else newly carved) into a list linked through
  // Task::next; returns how many. 0 means out of memory.
  std::size_t take(std::size_t max, Task** list_out) noexcept;
  // Returns a list of `count` slots linked through Task::next.
  void give(Task* list, std::size_t count) noexcept;

  // Calls fn(Task*) for every slot ever carved (for the shutdown scan and the task dump).
  template <class Fn>
  void for_each_slot(Fn&& fn) {
    std::lock_guard<std::mutex> g(mu_);
    for (const Slab& s : slabs_)
      for (std::size_t i = 0; i < s.carved; ++i) fn(slot_task(s.base + i * slot_size_));
  }

  uint64_t slots_carved() const noexcept;
  uint64_t slots_guarded() const noexcept;

  // Maps a faulting address inside some guard page to the task of that slot (signal-safe;
  // used by the SIGSEGV reporter). Null if the address is in no guard page.
  static Task* task_for_guard_fault(const void* addr) noexcept;

 private:
  struct Slab {
    char* base;
    std::size_t slots;
    std::size_t carved;
    std::size_t guarded;
    int registry_index;
  };
  Task* slot_task(char* slot_base) const noexcept;
  Task* carve_locked() noexcept;

  const std::size_t usable_;
  const std::size_t slot_size_;
  const GuardPages guard_;
  std::atomic<int64_t>* const slot_budget_;
  std::size_t slots_per_slab_;

  mutable std::mutex mu_;
  std::vector<Slab> slabs_;
  // Free slots, kept as the batches they were given back in (linked through Task::next):
  // handing a whole batch to a proc's cache is O(1), where walking a list of slots would touch
  // one cold page per slot while holding the lock.
  struct FreeBatch {
    Task* head;
    std::size_t count;
  };
  std::vector<FreeBatch> free_batches_;
  uint64_t carved_ = 0;
  uint64_t guarded_ = 0;
};

}  // namespace myriad::detail
