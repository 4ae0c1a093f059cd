// The seam between the netpoller (netpoll.hpp) and the kernel's readiness notifier: epoll
// (poll_epoll.cpp) or io_uring (poll_uring.cpp). A policy/mechanism split in the manner of
// Boost.Fiber: the netpoller's wait protocol knows nothing of which backend reports readiness.
//
// Contract:
//  - arm(fd, token) starts watching fd for readability and writability, edge-triggered: at
//    least one event after every change that may make a direction ready (spurious events are
//    allowed; the netpoller's callers retry their system call and park again). Every event
//    carries `token` back.
//  - disarm(fd, token) stops watching, before the descriptor is closed. Events with that token
//    may still arrive afterwards (already harvested, or in flight in a ring): the token's
//    PollDesc is type-stable memory, so a stale event is at worst a spurious wake-up.
//  - wait() is called by one thread at a time (the netpoller serialises it); arm, disarm and
//    interrupt may be called by any thread at any time, concurrently with wait().
//  - interrupt() makes a wait() that is blocked, or the next one, return promptly (it may
//    return with no events). Interrupts may coalesce.
#pragma once

#include <cstdint>
#include <memory>

#include "myriad/errors.hpp"
#include "myriad/runtime.hpp"

namespace myriad::detail {

inline constexpr uint32_t kPollReadable = 1;
inline constexpr uint32_t kPollWritable = 2;

struct PollEvent {
  uint64_t token = 0;
  uint32_t ready = 0;  // kPollReadable | kPollWritable (errors and hang-ups set both)
};

class PollBackend {
 public:
  virtual ~PollBackend() = default;
  virtual PollerKind kind() const noexcept = 0;
  // 0, or the errno that made watching fd impossible (EPERM: a regular file, EBADF, ENOMEM).
  virtual int arm(int fd, uint64_t token) noexcept = 0;
  virtual void disarm(int fd, uint64_t token) noexcept = 0;
  // Waits for events: timeout_ns 0 = only what is ready now, < 0 = until an event or an
  // interrupt. Returns how many were written to out[0..max) (0 on timeout or interrupt).
  virtual int wait(int64_t timeout_ns, PollEvent* out, int max) noexcept = 0;
  virtual void interrupt() noexcept = 0;
};

// Each returns null and sets *err (not_supported: the kernel or build has no such backend;
// io_error / no_memory: it exists but could not be set up) on failure.
std::unique_ptr<PollBackend> make_epoll_backend(Errc* err) noexcept;
std::unique_ptr<PollBackend> make_uring_backend(Errc* err) noexcept;

}  // namespace myriad::detail
