// Checked handles for the C ABI: a handle is (generation << 32 | index + 1) into a table of
// slots. Lookup is lock-free (two atomic loads); a destroyed handle's slot gets a new
// generation, so stale and forged handles are recognised instead of dereferenced.
//
// A slot's `word` is (generation << 32 | pins << 2 | closing << 1 | live):
//  - Only insert() makes a slot live and only a successful CAS in remove()/remove_if_idle()
//    makes it dead, so of two threads removing the same handle exactly one succeeds (a double
//    join or double destroy is reported, never executed twice).
//  - pin() counts a user into a live slot in the same CAS that checks the generation, and
//    unpin() counts it out. A pinned slot's object cannot be freed: remove() waits until the
//    pins drain (callers pin only for a few instructions when they use remove()), and
//    remove_if_idle() refuses (busy) while any pin is held (callers that pin for a whole call,
//    even a blocking one). This closes the window between looking a handle up and using the
//    object that a plain lookup() leaves open when another thread destroys the handle.
//  - `closing` is set only by remove_if_idle() while it asks its predicate whether the object
//    is busy; there are no pins then, and pin() and the removers wait until it is cleared, so
//    "idle" cannot change between the check and the removal.
//  - A slot returns to the free list only once it is dead with no pins, so a late unpin()
//    never touches a recycled slot.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace myriad::capi {

// Padded = true gives every slot its own cache line: for handles whose every call pins the
// slot (channels, locks), so that unrelated objects' calls do not contend on one line.
template <class T, bool Padded = false>
class HandleTable {
 public:
  static constexpr uint32_t kSegmentBits = 12;
  static constexpr uint32_t kSegmentSize = 1u << kSegmentBits;
  static constexpr uint32_t kMaxSegments = 1u << 12;  // 16M live handles of one kind

  enum class Removed { ok, bad_handle, busy };

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
    uint64_t gen = (s.word.load(std::memory_order_relaxed) >> 32) + 1;
    gen &= 0xffffffffu;
    if (gen == 0) gen = 1;
    s.ptr.store(ptr, std::memory_order_relaxed);
    s.word.store(gen << 32 | kLive, std::memory_order_release);
    return gen << 32 | (uint64_t{index} + 1);
  }

  // The object, or null for a handle that is not live. Nothing keeps it alive afterwards.
  T* lookup(uint64_t handle) const noexcept {
    Slot* s = find(handle);
    if (!s) return nullptr;
    if (!matches(s->word.load(std::memory_order_acquire), handle)) return nullptr;
    return s->ptr.load(std::memory_order_acquire);
  }

  // The object, pinned (see the header comment) until unpin(handle); null if not live.
  T* pin(uint64_t handle) noexcept {
    Slot* s = find(handle);
    if (!s) return nullptr;
    uint64_t w = s->word.load(std::memory_order_acquire);
    for (unsigned spins = 0;;) {
      if (!matches(w, handle)) return nullptr;
      if (w & kClosing) {
        backoff(spins++);
        w = s->word.load(std::memory_order_acquire);
        continue;
      }
      if (s->word.compare_exchange_weak(w, w + kPin, std::memory_order_acq_rel,
                                        std::memory_order_acquire))
        return s->ptr.load(std::memory_order_acquire);
    }
  }
  // Only after a successful pin(handle).
  void unpin(uint64_t handle) noexcept {
    find(handle)->word.fetch_sub(kPin, std::memory_order_release);
  }

  // Invalidates the handle and returns what it named, or null if it was not live. Waits for
  // pins taken before the invalidation to be dropped.
  T* remove(uint64_t handle) noexcept {
    Slot* s = find(handle);
    if (!s) return nullptr;
    uint64_t w = s->word.load(std::memory_order_acquire);
    for (unsigned spins = 0;;) {
      if (!matches(w, handle)) return nullptr;
      if (w & kClosing) {
        backoff(spins++);
        w = s->word.load(std::memory_order_acquire);
        continue;
      }
      if (s->word.compare_exchange_weak(w, w & ~kLive, std::memory_order_acq_rel,
                                        std::memory_order_acquire))
        break;
    }
    T* ptr = s->ptr.load(std::memory_order_relaxed);
    for (unsigned spins = 0; s->word.load(std::memory_order_acquire) & kPinMask;)
      backoff(spins++);
    recycle(handle);
    return ptr;
  }

  // Invalidates the handle only if nobody holds a pin and busy(object) is false (asked while
  // no pin can be taken). On Removed::ok, *out is the object.
  template <class Busy>
  Removed remove_if_idle(uint64_t handle, Busy&& busy, T** out) noexcept {
    Slot* s = find(handle);
    if (!s) return Removed::bad_handle;
    uint64_t w = s->word.load(std::memory_order_acquire);
    for (unsigned spins = 0;;) {
      if (!matches(w, handle)) return Removed::bad_handle;
      if (w & kClosing) {
        backoff(spins++);
        w = s->word.load(std::memory_order_acquire);
        continue;
      }
      if (w & kPinMask) return Removed::busy;
      if (s->word.compare_exchange_weak(w, w | kClosing, std::memory_order_acq_rel,
                                        std::memory_order_acquire))
        break;
    }
    // No pins, and none can be taken: the word stays `w | kClosing` until we store it.
    T* ptr = s->ptr.load(std::memory_order_relaxed);
    if (busy(ptr)) {
      s->word.store(w, std::memory_order_release);
      return Removed::busy;
    }
    s->word.store(w & ~kLive, std::memory_order_release);
    recycle(handle);
    *out = ptr;
    return Removed::ok;
  }

 private:
  static constexpr uint64_t kLive = 1;
  static constexpr uint64_t kClosing = 2;
  static constexpr uint64_t kPin = 4;
  static constexpr uint64_t kPinMask = 0xfffffffcu;

  struct PlainSlot {
    std::atomic<uint64_t> word{0};
    std::atomic<T*> ptr{nullptr};
  };
  struct alignas(64) PaddedSlot {
    std::atomic<uint64_t> word{0};
    std::atomic<T*> ptr{nullptr};
  };
  using Slot = std::conditional_t<Padded, PaddedSlot, PlainSlot>;

  static bool matches(uint64_t word, uint64_t handle) noexcept {
    return (word >> 32) == (handle >> 32) && (word & kLive);
  }
  static void backoff(unsigned spins) noexcept {
    if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
    } else {
      std::this_thread::yield();
    }
  }
  void recycle(uint64_t handle) noexcept {
    std::lock_guard<std::mutex> g(mu_);
    free_.push_back(static_cast<uint32_t>((handle & 0xffffffffu) - 1));
  }
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
