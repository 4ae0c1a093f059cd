// Channels and select with the semantics of the Go specification.
//
//   myriad::Chan<int> c(16);          // buffered, capacity 16 (Chan<int>(0): unbuffered)
//   myriad::Chan<int> nil;            // a default-constructed channel is nil
//   c.send(1);                        // parks a task / blocks a foreign thread while full
//   std::optional<int> v = c.recv();  // nullopt once closed and drained (Go's ok == false)
//   c.close();
//
//   int a; std::string s;
//   switch (myriad::select(myriad::recv_case(c, a), myriad::send_case(out, s)).index) { ... }
//
// Go's rules, exactly: a send on a closed channel is an error (Error(channel_closed)); closing
// a closed channel is an error; a receive from a closed channel drains the buffer, then
// yields ok == false; a nil channel blocks forever and is never ready in a select; close of a
// nil channel is an error (Error(nil_channel)). A receiver that is waiting gets the value
// straight from the sender (no buffer round trip); blocked senders and receivers are served
// FIFO. A select picks uniformly at random among its ready cases.
//
// Chan<T> is a reference, like Go's chan: operations are const (they act on the shared
// channel, not on the handle), copies share one channel (reference-counted, the
// last copy frees it; elements still buffered are destroyed then). T must be nothrow
// move-constructible and move-assignable; empty types are zero-size elements.
//
// Who may call: tasks of any runtime and foreign threads (which block as OS threads) alike,
// on the same channel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <new>
#include <type_traits>
#include <utility>

#include "myriad/errors.hpp"

namespace myriad {

namespace detail {

// How the type-erased channel moves elements of one type. Null function pointers mean
// "trivially copyable: memcpy" (and "trivially destructible" for destroy).
struct ElemOps {
  std::size_t size;                              // 0 for zero-size elements
  std::size_t align;
  void (*construct)(void* dst, void* src) noexcept;  // move-construct raw *dst from *src
  void (*assign)(void* dst, void* src) noexcept;     // move-assign live *dst from *src
  void (*destroy)(void* p) noexcept;                 // destroy a buffered element
};

template <class T>
const ElemOps* elem_ops() noexcept {
  static_assert(std::is_nothrow_move_constructible_v<T> && std::is_nothrow_move_assignable_v<T>,
                "myriad::Chan<T>: T must be nothrow move-constructible and move-assignable");
  if constexpr (std::is_empty_v<T> && std::is_trivially_copyable_v<T>) {
    static const ElemOps ops{0, 1, nullptr, nullptr, nullptr};
    return &ops;
  } else if constexpr (std::is_trivially_copyable_v<T>) {
    static const ElemOps ops{sizeof(T), alignof(T), nullptr, nullptr, nullptr};
    return &ops;
  } else {
    static const ElemOps ops{
        sizeof(T), alignof(T),
        [](void* dst, void* src) noexcept { ::new (dst) T(std::move(*static_cast<T*>(src))); },
        [](void* dst, void* src) noexcept {
          *static_cast<T*>(dst) = std::move(*static_cast<T*>(src));
        },
        [](void* p) noexcept { static_cast<T*>(p)->~T(); }};
    return &ops;
  }
}

struct ChanCore;  // core/src/chan_impl.hpp

// The type-erased channel behind Chan<T> and the C ABI. A null ChanCore* is the nil channel.
// `elem` points at a live element of the channel's type (for a receive: the destination,
// move-assigned on success and left untouched when ok is false).
ChanCore* chan_create(const ElemOps* ops, std::size_t capacity, Errc* err) noexcept;
void chan_retain(ChanCore* c) noexcept;
void chan_release(ChanCore* c) noexcept;
// block = false: Errc::would_block instead of waiting. Send: ok / channel_closed / would_block.
// A blocked foreign thread may also get Errc::deadlock (Config::detect_deadlock).
Errc chan_send(ChanCore* c, void* elem, bool block) noexcept;
// Receive: ok (with *ok_out = true for a value, false for "closed and drained") / would_block.
Errc chan_recv(ChanCore* c, void* elem, bool* ok_out, bool block) noexcept;
Errc chan_close(ChanCore* c) noexcept;  // ok / channel_closed / nil_channel
std::size_t chan_len(const ChanCore* c) noexcept;
std::size_t chan_cap(const ChanCore* c) noexcept;

}  // namespace detail

// One case of a select: a send of *elem or a receive into *elem on `chan` (null: a nil
// channel, never ready).
struct SelectCase {
  detail::ChanCore* chan = nullptr;
  void* elem = nullptr;
  bool is_send = false;
};

struct SelectResult {
  int index = -1;   // the case that ran; -1: the default (only when non-blocking)
  bool ok = false;  // receive cases: a value arrived (false: the channel is closed)
};

// Runs one ready case, chosen uniformly at random among the ready ones; with block = false
// and none ready, returns index -1 (Go's default). With block = true and no cases (or only
// nil channels) it blocks forever, as Go does. A send case on a closed channel throws
// Error(channel_closed) when it is chosen (Go panics). n may be 0; at most 65,536 cases.
SelectResult select_cases(SelectCase* cases, std::size_t n, bool block);
// The same, reporting instead of throwing: Errc::channel_closed with *out.index set to the
// send case that hit a closed channel, Errc::invalid_argument for too many cases.
Errc try_select_cases(SelectCase* cases, std::size_t n, bool block, SelectResult* out) noexcept;

template <class T>
class Chan {
 public:
  using value_type = T;

  // The nil channel.
  Chan() noexcept = default;
  // make(chan T, capacity). Throws Error(no_memory) if the buffer cannot be allocated.
  explicit Chan(std::size_t capacity) {
    Errc e = Errc::ok;
    core_ = detail::chan_create(detail::elem_ops<T>(), capacity, &e);
    if (!core_) throw Error(e);
  }
  Chan(const Chan& o) noexcept : core_(o.core_) {
    if (core_) detail::chan_retain(core_);
  }
  Chan(Chan&& o) noexcept : core_(std::exchange(o.core_, nullptr)) {}
  Chan& operator=(Chan o) noexcept {
    std::swap(core_, o.core_);
    return *this;
  }
  ~Chan() {
    if (core_) detail::chan_release(core_);
  }

  bool is_nil() const noexcept { return core_ == nullptr; }
  explicit operator bool() const noexcept { return core_ != nullptr; }
  friend bool operator==(const Chan& a, const Chan& b) noexcept { return a.core_ == b.core_; }

  // Blocks until a receiver takes v or the buffer has room. Throws Error(channel_closed); a
  // foreign thread also Error(deadlock) (Config::detect_deadlock), as do the receives.
  void send(T v) const {
    if (Errc e = detail::chan_send(core_, std::addressof(v), true); e != Errc::ok) throw Error(e);
  }
  // Blocks until a value arrives (returned) or the channel is closed and drained (nullopt).
  std::optional<T> recv() const {
    static_assert(std::is_default_constructible_v<T>,
                  "myriad::Chan<T>::recv() needs a default-constructible T; use recv_into");
    std::optional<T> out(std::in_place);
    bool ok = false;
    if (Errc e = detail::chan_recv(core_, std::addressof(*out), &ok, true); e != Errc::ok)
      throw Error(e);
    if (!ok) out.reset();
    return out;
  }
  // Go's `v, ok := <-c` into an existing variable; on !ok, `out` is left as it was.
  bool recv_into(T& out) const {
    bool ok = false;
    if (Errc e = detail::chan_recv(core_, std::addressof(out), &ok, true); e != Errc::ok)
      throw Error(e);
    return ok;
  }
  // Non-blocking: ok (v was moved from), would_block (v untouched), or channel_closed.
  Errc try_send(T& v) const noexcept { return detail::chan_send(core_, std::addressof(v), false); }
  // Non-blocking: ok (out holds a value), channel_closed (closed and drained), would_block.
  Errc try_recv(T& out) const noexcept {
    bool ok = false;
    Errc e = detail::chan_recv(core_, std::addressof(out), &ok, false);
    if (e == Errc::ok && !ok) return Errc::channel_closed;
    return e;
  }
  // Throws Error(channel_closed) if already closed, Error(nil_channel) on a nil channel.
  void close() const {
    if (Errc e = detail::chan_close(core_); e != Errc::ok) throw Error(e);
  }
  Errc try_close() const noexcept { return detail::chan_close(core_); }

  std::size_t size() const noexcept { return detail::chan_len(core_); }      // Go's len
  std::size_t capacity() const noexcept { return detail::chan_cap(core_); }  // Go's cap

  detail::ChanCore* core() const noexcept { return core_; }
  // Wraps an existing channel whose elements are T's (takes a new reference). For the
  // runtime's own layers (timers, the C ABI); `c` must have been made with elem_ops<T>().
  static Chan from_core(detail::ChanCore* c) noexcept {
    Chan ch;
    ch.core_ = c;
    if (c) detail::chan_retain(c);
    return ch;
  }

 private:
  detail::ChanCore* core_ = nullptr;
};

// Cases for select(). The referenced variables must outlive the select call.
template <class T>
SelectCase send_case(const Chan<T>& c, T& value) noexcept {  // value is moved from if chosen
  return SelectCase{c.core(), std::addressof(value), true};
}
template <class T>
SelectCase recv_case(const Chan<T>& c, T& out) noexcept {  // out is assigned if a value arrives
  return SelectCase{c.core(), std::addressof(out), false};
}

// select { case...: } — blocks until one case can run.
template <class... Cases>
SelectResult select(Cases... cases) {
  SelectCase arr[] = {cases...};
  return select_cases(arr, sizeof...(Cases), true);
}
// select { case...: default: } — index -1 when none is ready.
template <class... Cases>
SelectResult try_select(Cases... cases) {
  if constexpr (sizeof...(Cases) == 0) {
    return SelectResult{};
  } else {
    SelectCase arr[] = {cases...};
    return select_cases(arr, sizeof...(Cases), false);
  }
}

}  // namespace myriad
