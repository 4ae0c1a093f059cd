// The io_uring backend (poll_backend.hpp): readiness through multishot POLL_ADD requests, one
// per descriptor, whose completions carry the desc's token — the same contract as epoll, so
// the netpoller's protocol is unchanged (a completion-based read/write path would be a
// different interface; see docs/ARCHITECTURE.md).
//
// Threads: arm/disarm/interrupt may run on any thread while one thread is in wait(). The
// submission queue is guarded by sq_mu_; the completion queue is touched only by wait(),
// which the netpoller serialises. wait() must not flush the submission queue: liburing's
// waiting calls leave it alone when the kernel has IORING_FEAT_EXT_ARG (timeouts passed as an
// argument, not as a queued timeout request), so a kernel without it is refused at setup.
//
// user_data: a desc's token (a pointer, 8-byte aligned); kInterruptToken (0) for the
// eventfd that interrupt() writes; token | kRemoveTag for the ASYNC_CANCEL requests of disarm,
// whose own completions are ignored.
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "poll_backend.hpp"

#if MYRIAD_HAVE_URING
#include <liburing.h>
#include <sys/eventfd.h>

#include <mutex>
#include <unordered_map>
#endif

namespace myriad::detail {

#if MYRIAD_HAVE_URING
namespace {

constexpr uint64_t kInterruptToken = 0;
constexpr uint64_t kRemoveTag = 1;
constexpr unsigned kSqEntries = 256;
constexpr unsigned kCqEntries = 4096;
constexpr unsigned kPollMask = POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP;

class UringBackend final : public PollBackend {
 public:
  UringBackend() = default;
  ~UringBackend() override {
    if (inited_) io_uring_queue_exit(&ring_);
    if (ev_ >= 0) ::close(ev_);
  }

  // Errc::ok, or why the ring cannot be used.
  Errc init() noexcept {
    io_uring_params p;
    std::memset(&p, 0, sizeof p);
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = kCqEntries;
    int r = io_uring_queue_init_params(kSqEntries, &ring_, &p);
    if (r < 0) return r == -ENOMEM ? Errc::no_memory : Errc::not_supported;
    inited_ = true;
    if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_NODROP))
      return Errc::not_supported;
    ev_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ev_ < 0) return Errc::io_error;
    std::lock_guard<std::mutex> g(sq_mu_);
    return submit_poll_locked(ev_, kInterruptToken) == 0 ? Errc::ok : Errc::not_supported;
  }
  bool inited() const noexcept { return inited_; }

  PollerKind kind() const noexcept override { return PollerKind::io_uring; }

  int arm(int fd, uint64_t token) noexcept override {
    // epoll refuses regular files (they are always ready); refuse them the same way so an Fd
    // behaves alike on both backends.
    struct stat st;
    if (fstat(fd, &st) != 0) return errno;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return EPERM;
    std::lock_guard<std::mutex> g(sq_mu_);
    try {
      live_[token] = fd;
    } catch (...) {
      return ENOMEM;
    }
    int r = submit_poll_locked(fd, token);
    if (r != 0) live_.erase(token);
    return r;
  }

  void disarm(int, uint64_t token) noexcept override {
    std::lock_guard<std::mutex> g(sq_mu_);
    live_.erase(token);
    io_uring_sqe* sqe = get_sqe_locked();
    if (!sqe) return;  // the multishot ends when the descriptor is closed anyway
    // ASYNC_CANCEL, not POLL_REMOVE: a poll remove that races with the poll's own wake-up
    // fails with EALREADY and leaves the poll armed — and the armed poll keeps the file open
    // after close(2), so the peer would never see the end of file. A cancel marks the request
    // cancelled even then; it ends as soon as its wake-up is processed.
    io_uring_prep_cancel64(sqe, token, 0);
    io_uring_sqe_set_data64(sqe, token | kRemoveTag);
    io_uring_submit(&ring_);
  }

  int wait(int64_t timeout_ns, PollEvent* out, int max) noexcept override {
    io_uring_cqe* cqe = nullptr;
    if (timeout_ns != 0 && io_uring_cq_ready(&ring_) == 0) {
      int r;
      if (timeout_ns < 0) {
        r = io_uring_wait_cqe(&ring_, &cqe);
      } else {
        __kernel_timespec ts{timeout_ns / 1'000'000'000, timeout_ns % 1'000'000'000};
        r = io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
      }
      if (r < 0) return 0;  // -ETIME, -EINTR: nothing this time
    }
    int k = 0;
    unsigned seen = 0;
    unsigned head;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (k == max) break;
      ++seen;
      const uint64_t data = io_uring_cqe_get_data64(cqe);
      const int res = cqe->res;
      const bool more = cqe->flags & IORING_CQE_F_MORE;
      if (data & kRemoveTag) continue;  // a disarm's own completion
      if (data == kInterruptToken) {
        uint64_t drained;
        while (::read(ev_, &drained, sizeof drained) > 0) {
        }
        if (!more) rearm(ev_, kInterruptToken, /*check_live=*/false);
        continue;
      }
      if (res == -ECANCELED || res == -ENOENT) continue;  // removed by disarm
      uint32_t ready = kPollReadable | kPollWritable;     // errors: let the call find out
      if (res >= 0) {
        ready = 0;
        if (res & (POLLIN | POLLRDHUP | POLLERR | POLLHUP)) ready |= kPollReadable;
        if (res & (POLLOUT | POLLERR | POLLHUP)) ready |= kPollWritable;
      }
      if (ready) out[k++] = PollEvent{data, ready};
      // The kernel ended the multishot (overflow, error): re-arm while the desc is live.
      if (!more) rearm(-1, data, /*check_live=*/true);
    }
    io_uring_cq_advance(&ring_, seen);
    return k;
  }

  void interrupt() noexcept override {
    uint64_t one = 1;
    while (::write(ev_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

 private:
  io_uring_sqe* get_sqe_locked() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {  // full: flush what is queued and retry once
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }

  int submit_poll_locked(int fd, uint64_t token) noexcept {
    io_uring_sqe* sqe = get_sqe_locked();
    if (!sqe) return EBUSY;
    io_uring_prep_poll_multishot(sqe, fd, kPollMask);
    io_uring_sqe_set_data64(sqe, token);
    int r = io_uring_submit(&ring_);
    return r < 0 ? -r : 0;
  }

  void rearm(int fd, uint64_t token, bool check_live) noexcept {
    std::lock_guard<std::mutex> g(sq_mu_);
    if (check_live) {
      auto it = live_.find(token);
      if (it == live_.end()) return;
      fd = it->second;
    }
    submit_poll_locked(fd, token);
  }

  io_uring ring_{};
  bool inited_ = false;
  int ev_ = -1;
  std::mutex sq_mu_;
  std::unordered_map<uint64_t, int> live_;  // armed tokens and their descriptors, under sq_mu_
};

}  // namespace

std::unique_ptr<PollBackend> make_uring_backend(Errc* err) noexcept {
  // For tests and for users who must avoid io_uring (some seccomp profiles kill on it).
  if (const char* off = std::getenv("MYRIAD_URING_DISABLE"); off && *off && *off != '0') {
    *err = Errc::not_supported;
    return nullptr;
  }
  auto* b = new (std::nothrow) UringBackend();
  if (!b) {
    *err = Errc::no_memory;
    return nullptr;
  }
  Errc e = b->init();
  if (e != Errc::ok) {
    delete b;
    *err = e;
    return nullptr;
  }
  return std::unique_ptr<PollBackend>(b);
}

#else  // built without liburing

std::unique_ptr<PollBackend> make_uring_backend(Errc* err) noexcept {
  *err = Errc::not_supported;
  return nullptr;
}

#endif

}  // namespace myriad::detail
