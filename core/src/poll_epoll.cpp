// The epoll backend (poll_backend.hpp): EPOLLET registrations carrying the desc's token, and
// an eventfd, registered with token 0 (never a desc's: descs are heap objects), for interrupt().
//
// Edge-triggered registrations give the contract's "at least one event after every change"
// directly: the kernel queues the registration again on every wake-up of the file's wait
// queue, so nothing needs re-arming and no per-token state exists here.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>

#include "poll_backend.hpp"

// epoll_pwait2 (nanosecond timeouts) needs glibc 2.35 to declare it and Linux 5.11 to run it.
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
#define MYRIAD_HAVE_EPOLL_PWAIT2 1
#else
#define MYRIAD_HAVE_EPOLL_PWAIT2 0
#endif

namespace myriad::detail {
namespace {

constexpr uint64_t kInterruptToken = 0;
constexpr int kMaxEvents = 128;  // per epoll call; a larger `max` is served over several waits
constexpr int64_t kNsPerMs = 1'000'000;

// epoll's bits to the contract's. A hang-up or an error (peer gone, RST) wakes both
// directions, and so does a half close (RDHUP): the retried call is what finds out.
uint32_t ready_bits(uint32_t e) noexcept {
  if (e & (EPOLLERR | EPOLLHUP | EPOLLRDHUP)) return kPollReadable | kPollWritable;
  uint32_t ready = 0;
  if (e & EPOLLIN) ready |= kPollReadable;
  if (e & EPOLLOUT) ready |= kPollWritable;
  return ready;
}

// A timeout for epoll_wait, in whole milliseconds rounded up: rounding down would turn a
// 0.5 ms wait into a non-blocking one, and the caller (waiting for its next timer) would spin.
int timeout_ms(int64_t timeout_ns) noexcept {
  if (timeout_ns < 0) return -1;
  const int64_t ms = timeout_ns / kNsPerMs + (timeout_ns % kNsPerMs != 0);
  return static_cast<int>(std::min<int64_t>(ms, INT32_MAX));
}

class EpollBackend final : public PollBackend {
 public:
  EpollBackend(int ep, int ev) noexcept : ep_(ep), ev_(ev) {}
  ~EpollBackend() override {
    ::close(ev_);
    ::close(ep_);
  }

  PollerKind kind() const noexcept override { return PollerKind::epoll; }

  int arm(int fd, uint64_t token) noexcept override {
    epoll_event e{};
    e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    e.data.u64 = token;
    return epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e) == 0 ? 0 : errno;
  }

  void disarm(int fd, uint64_t) noexcept override {
    epoll_event e{};  // ENOENT / EBADF: already gone, nothing to do
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, &e);
  }

  int wait(int64_t timeout_ns, PollEvent* out, int max) noexcept override {
    if (max <= 0) return 0;
    epoll_event evs[kMaxEvents];
    const int n = epoll_wait_ns(timeout_ns, evs, std::min(max, kMaxEvents));
    if (n < 0) return 0;  // EINTR: as an interrupt; the caller loops
    int k = 0;
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.u64 == kInterruptToken) {
        // Drain, so that the counter never saturates (a write would then fail with EAGAIN).
        // Edge-triggered: the next interrupt() is a new wake-up even if we raced with it.
        uint64_t drained;
        while (::read(ev_, &drained, sizeof drained) > 0) {
        }
        continue;
      }
      out[k++] = PollEvent{evs[i].data.u64, ready_bits(evs[i].events)};
    }
    return k;
  }

  void interrupt() noexcept override {
    uint64_t one = 1;
    while (::write(ev_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

 private:
  int epoll_wait_ns(int64_t timeout_ns, epoll_event* evs, int n) noexcept {
#if MYRIAD_HAVE_EPOLL_PWAIT2
    // Nanosecond timeouts where the kernel has them (5.11+): a timer due in 300 us is then
    // waited for 300 us, not 1 ms. ENOSYS (older kernel, or a seccomp filter) switches to
    // epoll_wait for good; the flag is only a hint, so relaxed order suffices.
    if (timeout_ns > 0 && pwait2_.load(std::memory_order_relaxed)) {
      timespec ts{static_cast<time_t>(timeout_ns / 1'000'000'000),
                  static_cast<long>(timeout_ns % 1'000'000'000)};
      const int r = epoll_pwait2(ep_, evs, n, &ts, nullptr);
      if (r >= 0 || errno != ENOSYS) return r;
      pwait2_.store(false, std::memory_order_relaxed);
    }
#endif
    return epoll_wait(ep_, evs, n, timeout_ms(timeout_ns));
  }

  const int ep_;
  const int ev_;
#if MYRIAD_HAVE_EPOLL_PWAIT2
  std::atomic<bool> pwait2_{true};
#endif
};

}  // namespace

std::unique_ptr<PollBackend> make_epoll_backend(Errc* err) noexcept {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    *err = errno == ENOMEM ? Errc::no_memory : Errc::io_error;
    return nullptr;
  }
  int ev = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event e{};
  e.events = EPOLLIN | EPOLLET;
  e.data.u64 = kInterruptToken;
  if (ev < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) != 0) {
    *err = errno == ENOMEM ? Errc::no_memory : Errc::io_error;
    if (ev >= 0) ::close(ev);
    ::close(ep);
    return nullptr;
  }
  auto* b = new (std::nothrow) EpollBackend(ep, ev);
  if (!b) {
    *err = Errc::no_memory;
    ::close(ev);
    ::close(ep);
    return nullptr;
  }
  return std::unique_ptr<PollBackend>(b);
}

}  // namespace myriad::detail
