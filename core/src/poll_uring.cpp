// The io_uring backend (poll_backend.hpp): readiness through multishot POLL_ADD requests, one
// per descriptor, whose completions carry the desc's token — the same contract as epoll, so
// the netpoller's protocol is unchanged (a completion-based read/write path would be a
// different interface; see docs/ARCHITECTURE.md). Multishot polls are edge-triggered (no
// IORING_POLL_ADD_LEVEL): one completion per wake-up of the file's wait queue.
//
// Needs Linux 5.19 (multishot poll 5.13, IORING_ASYNC_CANCEL_ALL 5.19, ext-arg waits 5.11);
// anything older, a kernel with io_uring disabled (kernel.io_uring_disabled, seccomp), a build
// without liburing, or MYRIAD_URING_DISABLE=1 in the environment (for testing the fallback,
// and for users whose sandbox kills on io_uring_setup) makes make_uring_backend() answer
// Errc::not_supported, and the netpoller uses epoll.
//
// Threads. arm/disarm/interrupt run on any thread while one thread is in wait(). The
// submission queue and `regs_` are guarded by sq_mu_; the completion queue is touched only by
// wait(), which the netpoller serialises. wait() never touches the submission queue without
// sq_mu_: liburing's waiting calls leave it alone when the kernel has IORING_FEAT_EXT_ARG
// (the timeout travels as an argument instead of a queued TIMEOUT request — checked in
// liburing 2.3's queue.c), so a kernel without it is refused at setup.
//
// user_data: a desc's token (a pointer: non-zero and even); kInterruptToken (0) for the
// eventfd that interrupt() writes; token | kCancelTag (bit 0) for the ASYNC_CANCEL requests of
// disarm, whose own completions are ignored.
//
// Why per-token state at all (epoll needs none): a multishot poll can end while its desc is
// still armed, and must then be re-armed —
//  - the CQ overflowed: the kernel ends the multishot with a last completion without
//    IORING_CQE_F_MORE;
//  - the thread that submitted it exited: the kernel runs a poll's wake-ups as task work of
//    its submitter, and once that task is gone it completes the poll with -ECANCELED
//    (observed on 6.18). Any thread may arm (a host thread in step(), a task's M), so this is
//    the common case, not a corner.
// And a desc's token is reused (PollDescs are recycled), so a late -ECANCELED from the poll of
// the desc's previous life must not re-arm it a second time. Reg counts the polls in flight
// for that: at most one is not cancelled (arm needs !live; disarm cancels ALL polls of the
// token, and submissions are consumed in order under sq_mu_), and a poll is re-armed only
// when the count drops to zero while the token is live.
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "poll_backend.hpp"

#if MYRIAD_HAVE_URING
#include <liburing.h>
#include <sys/eventfd.h>
#include <time.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <unordered_map>
#endif

namespace myriad::detail {

#if MYRIAD_HAVE_URING
namespace {

constexpr uint64_t kInterruptToken = 0;
constexpr uint64_t kCancelTag = 1;
constexpr unsigned kSqEntries = 256;
constexpr unsigned kCqEntries = 4096;
constexpr unsigned kPollMask = POLLIN | POLLOUT | POLLRDHUP | POLLERR | POLLHUP;
constexpr uint32_t kBoth = kPollReadable | kPollWritable;

// poll(2) bits to the contract's; as in the epoll backend, hang-ups and errors wake both.
uint32_t ready_bits(int res) noexcept {
  if (res & (POLLERR | POLLHUP | POLLRDHUP)) return kBoth;
  uint32_t ready = 0;
  if (res & POLLIN) ready |= kPollReadable;
  if (res & POLLOUT) ready |= kPollWritable;
  return ready;
}

int64_t monotonic_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// One armed (or recently disarmed) token. Exists while live or while a poll of it is in
// flight; erased when both have ended.
struct Reg {
  enum class Owe : uint8_t { nothing, poll, cancel };
  int fd = -1;
  uint32_t polls = 0;  // POLL_ADDs submitted whose last completion has not been harvested
  bool live = false;   // between arm and disarm
  Owe owe = Owe::nothing;  // a submission that found no free SQE; repair() retries it
};

class UringBackend final : public PollBackend {
 public:
  UringBackend() = default;
  ~UringBackend() override {
    if (inited_) io_uring_queue_exit(&ring_);  // cancels every poll
    if (ev_ >= 0) ::close(ev_);
  }

  // Errc::ok, or why the ring cannot be used. Runs before the backend is shared.
  Errc init() noexcept {
    io_uring_params p;
    std::memset(&p, 0, sizeof p);
    // CQSIZE: room for a burst of readiness from thousands of descriptors before the kernel
    // has to end multishots (see Reg). SUBMIT_ALL: one bad SQE does not hold back the rest.
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    p.cq_entries = kCqEntries;
    int r = io_uring_queue_init_params(kSqEntries, &ring_, &p);
    if (r < 0) return r == -ENOMEM ? Errc::no_memory : Errc::not_supported;
    inited_ = true;
    if (!(p.features & IORING_FEAT_EXT_ARG) || !(p.features & IORING_FEAT_NODROP))
      return Errc::not_supported;
    if (!cancel_all_supported()) return Errc::not_supported;
    ev_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ev_ < 0) return errno == ENOMEM ? Errc::no_memory : Errc::io_error;
    std::lock_guard<std::mutex> g(sq_mu_);
    try {
      regs_.reserve(64);
      regs_[kInterruptToken] = Reg{ev_, 1, true, Reg::Owe::nothing};
    } catch (...) {
      return Errc::no_memory;
    }
    return add_poll_locked(ev_, kInterruptToken) ? Errc::ok : Errc::io_error;
  }

  PollerKind kind() const noexcept override { return PollerKind::io_uring; }

  int arm(int fd, uint64_t token) noexcept override {
    if (token == kInterruptToken || (token & kCancelTag)) return EINVAL;  // reserved values
    // epoll refuses files without a poll method (they are always ready); io_uring would
    // report them ready once. Refuse the usual ones alike, so an Fd behaves the same on both.
    struct stat st;
    if (fstat(fd, &st) != 0) return errno;
    if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode)) return EPERM;
    std::lock_guard<std::mutex> g(sq_mu_);
    Reg* r;
    try {
      r = &regs_[token];
    } catch (...) {
      return ENOMEM;
    }
    if (r->live) return EEXIST;  // armed twice without a disarm: as epoll_ctl says
    // A cancel still owed by the previous life of this token goes first, or it would cancel
    // the poll we are about to add.
    if (r->owe == Reg::Owe::cancel) {
      if (!add_cancel_locked(token)) return EAGAIN;
      r->owe = Reg::Owe::nothing;
    }
    if (!add_poll_locked(fd, token)) {
      if (r->polls == 0) regs_.erase(token);
      return EAGAIN;
    }
    r->fd = fd;
    r->live = true;
    ++r->polls;
    return 0;
  }

  void disarm(int, uint64_t token) noexcept override {
    std::lock_guard<std::mutex> g(sq_mu_);
    auto it = regs_.find(token);
    if (it == regs_.end() || !it->second.live || token == kInterruptToken) return;
    Reg& r = it->second;
    r.live = false;
    r.owe = Reg::Owe::nothing;
    if (r.polls == 0) {  // its poll had already ended (a re-arm was owed)
      regs_.erase(it);
      return;
    }
    // ASYNC_CANCEL, not POLL_REMOVE: a poll remove that races with the poll's own wake-up
    // fails with EALREADY and leaves the poll armed — and the armed poll keeps the file open
    // after close(2), so the peer would never see the end of file. A cancel marks the request
    // cancelled even then; it ends as soon as its wake-up is processed. ALL: a poll of the
    // token's previous life that is still in the kernel's tables must not be the one matched.
    if (!add_cancel_locked(token)) {
      r.owe = Reg::Owe::cancel;
      repair_.store(true, std::memory_order_release);
    }
  }

  int wait(int64_t timeout_ns, PollEvent* out, int max) noexcept override {
    if (max <= 0) return 0;
    if (repair_.load(std::memory_order_acquire)) repair();
    const int64_t deadline = timeout_ns > 0 ? monotonic_ns() + timeout_ns : 0;
    for (;;) {
      // Completions that overflowed the CQ wait in the kernel (IORING_FEAT_NODROP) until an
      // io_uring_enter with GETEVENTS; a blocking wait makes one, a non-blocking one must ask.
      if (io_uring_cq_has_overflow(&ring_)) io_uring_get_events(&ring_);
      bool interrupted = false;
      const int k = harvest(out, max, &interrupted);
      // Only internal completions (a cancel's, a stale poll's): wait on for the rest of the
      // timeout rather than return early.
      if (k > 0 || interrupted || timeout_ns == 0) return k;
      io_uring_cqe* cqe;
      int r;
      if (timeout_ns < 0) {
        r = io_uring_wait_cqe(&ring_, &cqe);
      } else {
        const int64_t left = deadline - monotonic_ns();
        if (left <= 0) return 0;
        __kernel_timespec ts{left / 1'000'000'000, left % 1'000'000'000};
        r = io_uring_wait_cqe_timeout(&ring_, &cqe, &ts);
      }
      if (r < 0) return 0;  // -ETIME: timed out; -EINTR: a signal, returned as an interrupt
    }
  }

  void interrupt() noexcept override {
    uint64_t one = 1;
    while (::write(ev_, &one, sizeof one) < 0 && errno == EINTR) {
    }
  }

 private:
  // Takes what the CQ holds, up to `max` events. Sets *interrupted if interrupt() was seen.
  int harvest(PollEvent* out, int max, bool* interrupted) noexcept {
    int k = 0;
    unsigned seen = 0;
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (k == max) break;
      ++seen;
      const uint64_t data = io_uring_cqe_get_data64(cqe);
      const int res = cqe->res;
      if (data & kCancelTag) continue;  // a cancel's own completion; its poll's tells the rest
      // With F_MORE the poll goes on and res is a mask; without, it ended (see Reg).
      const uint32_t ready =
          (cqe->flags & IORING_CQE_F_MORE) ? ready_bits(res) : poll_ended(data, res);
      if (data == kInterruptToken) {
        // Drain, so that the counter never saturates; a later interrupt() is a new wake-up
        // and so a new completion, even if it raced with this read.
        uint64_t drained;
        while (::read(ev_, &drained, sizeof drained) > 0) {
        }
        *interrupted = true;
      } else if (ready) {
        out[k++] = PollEvent{data, ready};
      }
    }
    io_uring_cq_advance(&ring_, seen);
    return k;
  }

  // The last completion of a poll of `token`. Returns the ready bits to report.
  uint32_t poll_ended(uint64_t token, int res) noexcept {
    std::lock_guard<std::mutex> g(sq_mu_);
    auto it = regs_.find(token);
    if (it == regs_.end()) return 0;  // cannot happen: a Reg outlives its polls
    Reg& r = it->second;
    --r.polls;
    if (!r.live) {  // disarmed: -ECANCELED from our cancel, or a stale last event
      if (r.polls == 0) regs_.erase(it);
      return 0;
    }
    // Still armed, so not ended by our cancel (or it is a late one from the token's previous
    // life, and another poll is in flight). An error is reported on both directions (the
    // retried call finds it). Re-arm after overflow or a gone submitter, but not after other
    // errors (EBADF: closed without disarm), which would repeat on every wait. The new poll
    // checks readiness when it is added, so nothing that happened in between is lost.
    const uint32_t ready = res >= 0 ? ready_bits(res) : kBoth;
    const bool rearm = res >= 0 || res == -ECANCELED || token == kInterruptToken;
    if (rearm && r.polls == 0) {
      if (add_poll_locked(r.fd, token)) {
        ++r.polls;
      } else {
        r.owe = Reg::Owe::poll;
        repair_.store(true, std::memory_order_release);
      }
    }
    return ready;
  }

  // Retries what found the SQ full (or the kernel busy): leftover SQEs, owed polls and
  // cancels. Rare, so a scan of every Reg is fine.
  void repair() noexcept {
    std::lock_guard<std::mutex> g(sq_mu_);
    repair_.store(false, std::memory_order_relaxed);
    if (io_uring_sq_ready(&ring_) > 0) submit_locked();
    for (auto& [token, r] : regs_) {
      if (r.owe == Reg::Owe::poll && r.live && r.polls == 0) {
        if (!add_poll_locked(r.fd, token)) break;  // add_poll_locked set repair_ again
        ++r.polls;
        r.owe = Reg::Owe::nothing;
      } else if (r.owe == Reg::Owe::cancel && !r.live && r.polls > 0) {
        if (!add_cancel_locked(token)) break;
        r.owe = Reg::Owe::nothing;
      }
    }
  }

  // A free SQE, or null (then repair_ is set). Flushes the SQ to make room if it is full.
  io_uring_sqe* sqe_locked() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) {
      submit_locked();
      sqe = io_uring_get_sqe(&ring_);
    }
    if (!sqe) repair_.store(true, std::memory_order_release);
    return sqe;
  }

  // Submits whatever the SQ holds. An SQE the kernel did not take (-EBUSY, -EAGAIN, -EINTR)
  // stays queued, in order, for the next submit: count it as submitted and let repair() push.
  void submit_locked() noexcept {
    const int r = io_uring_submit(&ring_);
    if (r < 0 || io_uring_sq_ready(&ring_) > 0) repair_.store(true, std::memory_order_release);
  }

  bool add_poll_locked(int fd, uint64_t token) noexcept {
    io_uring_sqe* sqe = sqe_locked();
    if (!sqe) return false;
    io_uring_prep_poll_multishot(sqe, fd, kPollMask);
    io_uring_sqe_set_data64(sqe, token);
    submit_locked();
    return true;
  }

  bool add_cancel_locked(uint64_t token) noexcept {
    io_uring_sqe* sqe = sqe_locked();
    if (!sqe) return false;
    io_uring_prep_cancel64(sqe, token, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, token | kCancelTag);
    submit_locked();
    return true;
  }

  // IORING_ASYNC_CANCEL_ALL arrived in 5.19; before, the flag is EINVAL. A cancel of a key
  // nobody uses answers how many it cancelled (0) where it is understood (6.18: 0, not
  // ENOENT). The ring is still private to us.
  bool cancel_all_supported() noexcept {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (!sqe) return false;
    io_uring_prep_cancel64(sqe, kCancelTag, IORING_ASYNC_CANCEL_ALL);
    io_uring_sqe_set_data64(sqe, kCancelTag);
    io_uring_cqe* cqe;
    if (io_uring_submit_and_wait(&ring_, 1) < 0 || io_uring_peek_cqe(&ring_, &cqe) != 0)
      return false;
    const int res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    return res >= 0;
  }

  io_uring ring_{};
  bool inited_ = false;
  int ev_ = -1;
  std::atomic<bool> repair_{false};  // some Reg owes a submission, or the SQ holds leftovers
  std::mutex sq_mu_;                 // the SQ side of ring_, and regs_
  std::unordered_map<uint64_t, Reg> regs_;  // by token; kInterruptToken is the eventfd's
};

}  // namespace

std::unique_ptr<PollBackend> make_uring_backend(Errc* err) noexcept {
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
