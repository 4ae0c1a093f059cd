// Checked handles for the C ABI: a handle is (generation << 32 | index + 1) into a table of
// slots. Lookup is lock-free (two atomic loads); a destroyed handle's slot gets a new
// generation, so stale and forged handles are recognised instead of dereferenced.
//
// Invariants: a slot's `word` is (generation << 1 | live). Only insert() makes a slot live and
// only a successful CAS in remove() makes it dead, so of two threads removing the same handle
// exactly one succeeds (a double join or double destroy is reported, never executed twice).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace myriad::capi {

template <class T>
class HandleTable {
 public:
  static constexpr uint32_t kSegmentBits = 12;
  static constexpr uint32_t kSegmentSize = 1u << kSegmentBits;
  static constexpr uint32_t kMaxSegments = 1u << 12;  // 16M live handles of one kind

  ~HandleTable() {
    for (auto& s : segments_) delete[] s.load(std::memory_order_relaxed);
  }

  // Returns 0 when the table is full or out of memory.
  uint64_t insert(T* ptr) noexcept {
    std::lock_guard<std::mutex> g(mu_);
    uint32_t index;
    if (!free_.empty()) {
      index = free_.back();
      free_.pop_back();
    } else {
      if (next_ == kMaxSegments * kSegmentSize) return 0;
      index = next_;
      if ((index & (kSegmentSize - 1)) == 0) {
        Slot* seg = new (std::nothrow) Slot[kSegmentSize];
        if (!seg) return 0;
        segments_[index >> kSegmentBits].store(seg, std::memory_order_release);
      }
      ++next_;
    }
    Slot& s = slot(index);
    uint64_t gen = (s.word.load(std::memory_order_relaxed) >> 1) + 1;
    gen &= 0xffffffffu;
    if (gen == 0) gen = 1;
    s.ptr.store(ptr, std::memory_order_relaxed);
    s.word.store(gen << 1 | 1, std::memory_order_release);
    return gen << 32 | (uint64_t{index} + 1);
  }

  T* lookup(uint64_t handle) const noexcept {
    Slot* s = find(handle);
    if (!s) return nullptr;
    if (s->word.load(std::memory_order_acquire) != expected_word(handle)) return nullptr;
    return s->ptr.load(std::memory_order_acquire);
  }

  // Invalidates the handle and returns what it named, or null if it was not live.
  T* remove(uint64_t handle) noexcept {
    Slot* s = find(handle);
    if (!s) return nullptr;
    uint64_t live = expected_word(handle);
    T* ptr = s->ptr.load(std::memory_order_acquire);
    if (!s->word.compare_exchange_strong(live, live & ~uint64_t{1}, std::memory_order_acq_rel))
      return nullptr;
    std::lock_guard<std::mutex> g(mu_);
    free_.push_back(static_cast<uint32_t>((handle & 0xffffffffu) - 1));
    return ptr;
  }

 private:
  struct Slot {
    std::atomic<uint64_t> word{0};
    std::atomic<T*> ptr{nullptr};
  };
  static uint64_t expected_word(uint64_t handle) noexcept { return (handle >> 32) << 1 | 1; }
  Slot& slot(uint32_t index) const noexcept {
    return segments_[index >> kSegmentBits].load(std::memory_order_acquire)[index & (kSegmentSize - 1)];
  }
  Slot* find(uint64_t handle) const noexcept {
    uint64_t low = handle & 0xffffffffu;
    if (low == 0 || (handle >> 32) == 0) return nullptr;
    uint64_t index = low - 1;
    if (index >= uint64_t{kMaxSegments} * kSegmentSize) return nullptr;
    Slot* seg = segments_[index >> kSegmentBits].load(std::memory_order_acquire);
    if (!seg) return nullptr;
    return &seg[index & (kSegmentSize - 1)];
  }

  std::mutex mu_;
  std::vector<uint32_t> free_;
  uint32_t next_ = 0;
  std::atomic<Slot*> segments_[kMaxSegments] = {};
};

}  // namespace myriad::capi
