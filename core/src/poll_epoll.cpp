// The epoll backend (poll_backend.hpp): EPOLLET registrations carrying the desc's token, and
// an eventfd, registered with token 0 (never a desc's: descs are heap objects), for interrupt().
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "poll_backend.hpp"

namespace myriad::detail {
namespace {

constexpr uint64_t kInterruptToken = 0;
constexpr int kMaxEvents = 128;

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
    epoll_event evs[kMaxEvents];
    // Round a timeout up to whole milliseconds: rounding down would wake early and spin.
    int ms = -1;
    if (timeout_ns == 0)
      ms = 0;
    else if (timeout_ns > 0)
      ms = static_cast<int>(std::min<int64_t>((timeout_ns + 999'999) / 1'000'000, INT32_MAX));
    int n = epoll_wait(ep_, evs, std::min(max, kMaxEvents), ms);
    if (n < 0) return 0;  // EINTR: as a timeout; the caller loops
    int k = 0;
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.u64 == kInterruptToken) {
        uint64_t drained;
        while (::read(ev_, &drained, sizeof drained) > 0) {
        }
        continue;
      }
      const uint32_t e = evs[i].events;
      uint32_t ready = 0;
      // Errors and hang-ups wake both directions: the retried call reports what happened.
      if (e & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) ready |= kPollReadable;
      if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ready |= kPollWritable;
      out[k++] = PollEvent{evs[i].data.u64, ready};
    }
    return k;
  }

  void interrupt() noexcept override {
    uint64_t one = 1;
    while (::write(ev_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

 private:
  const int ep_;
  const int ev_;
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
    *err = Errc::io_error;
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
