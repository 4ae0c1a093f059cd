// The C ABI: translation, handle checks and error codes only — the logic lives in core/.
#include "myriad.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "capi_internal.hpp"
#include "handle_table.hpp"
#include "myriad/blocking.hpp"
#include "myriad/chan.hpp"
#include "myriad/cond.hpp"
#include "myriad/context.hpp"
#include "myriad/io.hpp"
#include "myriad/mutex.hpp"
#include "myriad/once.hpp"
#include "myriad/runtime.hpp"
#include "myriad/semaphore.hpp"
#include "myriad/task_dump.hpp"
#include "myriad/time.hpp"
#include "myriad/wait_group.hpp"

namespace {

using myriad::Errc;

myriad::capi::HandleTable<myriad::Runtime>& runtimes() {
  static auto* t = new myriad::capi::HandleTable<myriad::Runtime>();  // never destroyed:
  return *t;  // handles may be used during static destruction of the host
}
myriad::capi::HandleTable<myriad::detail::JoinState>& tasks() {
  static auto* t = new myriad::capi::HandleTable<myriad::detail::JoinState>();
  return *t;
}
myriad::capi::HandleTable<myriad::WaitGroup>& wait_groups() {
  static auto* t = new myriad::capi::HandleTable<myriad::WaitGroup>();
  return *t;
}

// Hands a new object to its table; on failure (table full) the object is deleted.
template <class T>
myriad_status publish(myriad::capi::HandleTable<T>& table, T* object, uint64_t* bits_out) {
  uint64_t h = table.insert(object);
  if (!h) {
    delete object;
    return MYRIAD_ENOMEM;
  }
  *bits_out = h;
  return MYRIAD_OK;
}

using myriad::capi::guarded;
using myriad::capi::to_status;

struct CClosure {
  myriad_task_fn fn;
  void* arg;
  void operator()() const { fn(arg); }
};

// Reads the id through a borrowed handle (release() hands the reference back untouched).
uint64_t task_id_of(myriad::detail::JoinState* js) {
  myriad::JoinHandle borrowed(js);
  uint64_t id = borrowed.id();
  borrowed.release();
  return id;
}

constexpr size_t kConfigV1Size = offsetof(myriad_config, max_stacks) + sizeof(uint64_t);
constexpr size_t kConfigDetectDeadlockSize =
    offsetof(myriad_config, detect_deadlock) + sizeof(int32_t);
constexpr size_t kConfigOnDeadlockSize = offsetof(myriad_config, on_deadlock_user) + sizeof(void*);
// A field appended later is read only when the caller's struct has it.
#define MYRIAD_CONFIG_HAS(config, field) \
  ((config)->size >= offsetof(myriad_config, field) + sizeof((config)->field))
constexpr size_t kStatsV1Size = offsetof(myriad_stats, guarded_stacks) + sizeof(uint64_t);
constexpr size_t kSpawnOptionsV1Size =
    offsetof(myriad_spawn_options, function) + sizeof(const char*);

// ---- The status codes mirror Errc (errors.hpp) one for one -----------------------------------
static_assert(MYRIAD_ECHANCLOSED == static_cast<int>(Errc::channel_closed));
static_assert(MYRIAD_EWOULDBLOCK == static_cast<int>(Errc::would_block));
static_assert(MYRIAD_ETIMEDOUT == static_cast<int>(Errc::timed_out));
static_assert(MYRIAD_ECANCELED == static_cast<int>(Errc::canceled));
static_assert(MYRIAD_EALLASLEEP == static_cast<int>(Errc::deadlock));
static_assert(MYRIAD_ENOTLOCKED == static_cast<int>(Errc::not_locked));
static_assert(MYRIAD_ENILCHAN == static_cast<int>(Errc::nil_channel));
static_assert(MYRIAD_EDEADLOCK == static_cast<int>(Errc::would_deadlock));
static_assert(MYRIAD_EIO == static_cast<int>(Errc::io_error));
static_assert(MYRIAD_EFDCLOSED == static_cast<int>(Errc::fd_closed));
static_assert(MYRIAD_ETHREADLIMIT == static_cast<int>(Errc::thread_limit));
static_assert(MYRIAD_ENOTSUP == static_cast<int>(Errc::not_supported));
constexpr int kLastStatus = MYRIAD_ENOTSUP;  // the highest myriad_status
static_assert(kLastStatus == static_cast<int>(Errc::not_supported));

static_assert(MYRIAD_POLLER_AUTO == static_cast<int>(myriad::PollerKind::automatic) &&
              MYRIAD_POLLER_EPOLL == static_cast<int>(myriad::PollerKind::epoll) &&
              MYRIAD_POLLER_IO_URING == static_cast<int>(myriad::PollerKind::io_uring));

// ---- Runtimes in creation order: the zero myriad_runtime, and the runtime of a timer ----------

struct RuntimeEntry {
  myriad::Runtime* rt;
  uint64_t bits;
};
struct RuntimeList {
  std::mutex mu;
  std::vector<RuntimeEntry> v;  // oldest first
};
RuntimeList& runtime_list() {
  static auto* l = new RuntimeList();
  return *l;
}

// The runtime a call means: rt itself, or for the zero handle the calling task's runtime, else
// the oldest runtime created here. *bits_out is its handle (0 for a runtime made in C++, which
// the C ABI cannot check later).
myriad_status resolve_runtime(myriad_runtime rt, myriad::Runtime** out, uint64_t* bits_out) {
  if (rt.bits) {
    *out = runtimes().lookup(rt.bits);
    *bits_out = rt.bits;
    return *out ? MYRIAD_OK : MYRIAD_EBADHANDLE;
  }
  RuntimeList& l = runtime_list();
  std::lock_guard<std::mutex> g(l.mu);
  if (myriad::Runtime* cur = myriad::Runtime::current()) {
    *out = cur;
    *bits_out = 0;
    for (const RuntimeEntry& e : l.v)
      if (e.rt == cur) *bits_out = e.bits;
    return MYRIAD_OK;
  }
  if (l.v.empty()) return MYRIAD_ENOTINTASK;
  *out = l.v.front().rt;
  *bits_out = l.v.front().bits;
  return MYRIAD_OK;
}

// False once the runtime a timer was made on has been destroyed (re-arming it would touch a
// freed scheduler).
bool runtime_alive(myriad::Runtime* rt, uint64_t bits) {
  return bits == 0 || runtimes().lookup(bits) == rt;
}

// ---- Pinned handles: a handle held for the duration of one call (see handle_table.hpp) -------

template <class T>
using PaddedTable = myriad::capi::HandleTable<T, true>;

template <class T>
class Pin {
 public:
  Pin(PaddedTable<T>& table, uint64_t bits) noexcept
      : table_(table), bits_(bits), p_(table.pin(bits)) {}
  ~Pin() {
    if (p_) table_.unpin(bits_);
  }
  Pin(const Pin&) = delete;
  Pin& operator=(const Pin&) = delete;
  T* get() const noexcept { return p_; }
  T* operator->() const noexcept { return p_; }
  explicit operator bool() const noexcept { return p_ != nullptr; }

 private:
  PaddedTable<T>& table_;
  uint64_t bits_;
  T* p_;
};

// One call on a pinned handle: MYRIAD_EBADHANDLE for a dead handle, else f(object) with any
// exception turned into its status code.
template <class T, class F>
myriad_status with_pinned(PaddedTable<T>& table, uint64_t bits, F&& f) noexcept {
  Pin<T> p(table, bits);
  if (!p) return MYRIAD_EBADHANDLE;
  return guarded([&] { return f(*p.get()); });
}

// Destroys the object behind `bits` unless a call is in progress on it or busy(object).
template <class T, class Busy>
myriad_status destroy_if_idle(PaddedTable<T>& table, uint64_t bits, Busy&& busy) {
  T* p = nullptr;
  switch (table.remove_if_idle(bits, busy, &p)) {
    case PaddedTable<T>::Removed::bad_handle: return MYRIAD_EBADHANDLE;
    case PaddedTable<T>::Removed::busy: return MYRIAD_EBUSY;
    case PaddedTable<T>::Removed::ok: break;
  }
  delete p;
  return MYRIAD_OK;
}

template <class T>
myriad_status publish_padded(PaddedTable<T>& table, T* object, uint64_t* bits_out) {
  uint64_t h = table.insert(object);
  if (!h) {
    delete object;
    return MYRIAD_ENOMEM;
  }
  *bits_out = h;
  return MYRIAD_OK;
}

// ---- Channels ----------------------------------------------------------------------------------

namespace d = myriad::detail;

// What a myriad_chan names: a reference to a core channel plus what the C side knows of it.
// `refs` counts the handle and every call in progress; the last release frees the buffered
// elements with elem_dtor (it must be the C side that does so: the core's ElemOps::destroy
// also runs on moved-from slots, which for memcpy'd C elements still own their resources) and
// drops the core reference. Nobody else holds a core reference to a channel made by
// myriad_chan_create, so the drain sees every element left.
struct CChan {
  std::atomic<uint32_t> refs{1};
  d::ChanCore* core = nullptr;
  std::size_t elem_size = 0;
  myriad_elem_dtor dtor = nullptr;
  bool recv_only = false;  // timer, ticker, after and context done channels
  std::unique_ptr<unsigned char[]> scratch;  // one element, to drain into (only with dtor)

  void retain() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    if (dtor) {
      bool ok = false;
      while (d::chan_recv(core, scratch.get(), &ok, false) == Errc::ok && ok) dtor(scratch.get());
    }
    d::chan_release(core);
    delete this;
  }
};

PaddedTable<CChan>& chans() {
  static auto* t = new PaddedTable<CChan>();
  return *t;
}

// A channel held for the duration of one call; c == nullptr is the nil channel.
struct ChanRef {
  CChan* c = nullptr;
  ChanRef() = default;
  ChanRef(const ChanRef&) = delete;
  ChanRef& operator=(const ChanRef&) = delete;
  ~ChanRef() {
    if (c) c->release();
  }
  d::ChanCore* core() const noexcept { return c ? c->core : nullptr; }
  std::size_t elem_size() const noexcept { return c ? c->elem_size : 0; }
  // elem may be NULL only for zero-size elements (and the nil channel, whose operations never
  // touch it).
  bool elem_ok(const void* elem) const noexcept { return elem || !c || c->elem_size == 0; }
  bool can_send() const noexcept { return !c || !c->recv_only; }
  void zero(void* elem) const noexcept {
    if (c && elem && c->elem_size) std::memset(elem, 0, c->elem_size);
  }
};

// Takes a reference for the call: the pin closes the window in which a concurrent destroy
// could free the object between the lookup and the increment.
myriad_status acquire_chan(myriad_chan h, ChanRef* out) noexcept {
  if (h.bits == 0) return MYRIAD_OK;  // the nil channel
  CChan* c = chans().pin(h.bits);
  if (!c) return MYRIAD_EBADHANDLE;
  c->retain();
  chans().unpin(h.bits);
  out->c = c;
  return MYRIAD_OK;
}

// ElemOps of C elements: memcpy moves (all function pointers null), natural alignment up to 16
// (slot size == elem_size). Interned per size, never freed (a channel keeps a pointer).
const d::ElemOps* c_elem_ops(std::size_t size) {
  static auto* mu = new std::mutex();
  static auto* ops = new std::unordered_map<std::size_t, std::unique_ptr<d::ElemOps>>();
  std::lock_guard<std::mutex> g(*mu);
  auto& slot = (*ops)[size];
  if (!slot) {
    std::size_t align = size ? (size & (~size + 1)) : 1;
    if (align > 16) align = 16;
    slot.reset(new d::ElemOps{size, align, nullptr, nullptr, nullptr});
  }
  return slot.get();
}

// A handle for an existing core channel (timer, ticker, after, done): takes a core reference.
myriad_status publish_core_chan(d::ChanCore* core, std::size_t elem_size, bool recv_only,
                                myriad_chan* out) {
  out->bits = 0;
  if (!core) return MYRIAD_OK;  // the nil channel
  auto* c = new (std::nothrow) CChan();
  if (!c) return MYRIAD_ENOMEM;
  d::chan_retain(core);
  c->core = core;
  c->elem_size = elem_size;
  c->recv_only = recv_only;
  uint64_t h = chans().insert(c);
  if (!h) {
    c->release();
    return MYRIAD_ENOMEM;
  }
  out->bits = h;
  return MYRIAD_OK;
}

// The element of timer channels is a TimePoint; C sees an int64_t of CLOCK_MONOTONIC ns.
static_assert(sizeof(myriad::TimePoint) == sizeof(int64_t) &&
                  alignof(myriad::TimePoint) == alignof(int64_t) &&
                  std::is_trivially_copyable_v<myriad::TimePoint> &&
                  std::is_same_v<myriad::TimePoint::rep, int64_t> &&
                  std::is_same_v<myriad::TimePoint::period, std::nano>,
              "timer channel elements must be one int64_t of nanoseconds");

myriad::Duration ns_duration(int64_t ns) { return myriad::Duration(ns); }

myriad_status recv_impl(myriad_chan ch, void* elem, bool* ok, bool block) {
  if (ok) *ok = false;
  ChanRef r;
  if (myriad_status st = acquire_chan(ch, &r)) return st;
  if (!r.elem_ok(elem)) return MYRIAD_EINVAL;
  bool got = false;
  Errc e = d::chan_recv(r.core(), elem, &got, block);
  if (e == Errc::ok) {
    if (!got) r.zero(elem);
    if (ok) *ok = got;
  }
  return to_status(e);
}

// The end of a send/recv with a deadline or a context: the core reports a receive on a closed,
// drained channel as channel_closed; the C ABI reports it as recv does (ok, *ok = false, the
// element zeroed).
myriad_status finish_op(const ChanRef& r, void* elem, bool is_send, bool* ok, Errc e, bool got) {
  if (!is_send && (e == Errc::ok || e == Errc::channel_closed)) {
    if (e == Errc::channel_closed) got = false;
    if (!got) r.zero(elem);
    if (ok) *ok = got;
    return MYRIAD_OK;
  }
  return to_status(e);
}

// send/recv giving up at deadline_ns (the core races the operation with a timer).
myriad_status op_until(myriad_chan ch, void* elem, bool is_send, bool* ok, int64_t deadline_ns) {
  if (ok) *ok = false;
  ChanRef r;
  if (myriad_status st = acquire_chan(ch, &r)) return st;
  if (!r.elem_ok(elem) || (is_send && !r.can_send())) return MYRIAD_EINVAL;
  bool got = false;
  Errc e = d::chan_op_until(r.core(), elem, is_send,
                            myriad::TimePoint(myriad::Duration(deadline_ns)), &got);
  return finish_op(r, elem, is_send, ok, e, got);
}

// ---- Time --------------------------------------------------------------------------------------

struct CTimer {
  myriad::Timer timer;
  myriad::Runtime* rt;
  uint64_t rt_bits;
};
struct CTicker {
  myriad::Ticker ticker;
  myriad::Runtime* rt;
  uint64_t rt_bits;
};
PaddedTable<CTimer>& timers() {
  static auto* t = new PaddedTable<CTimer>();
  return *t;
}
PaddedTable<CTicker>& tickers() {
  static auto* t = new PaddedTable<CTicker>();
  return *t;
}

// ---- Sync --------------------------------------------------------------------------------------

PaddedTable<myriad::Mutex>& mutexes() {
  static auto* t = new PaddedTable<myriad::Mutex>();
  return *t;
}
PaddedTable<myriad::RWMutex>& rwmutexes() {
  static auto* t = new PaddedTable<myriad::RWMutex>();
  return *t;
}
PaddedTable<myriad::Cond>& conds() {
  static auto* t = new PaddedTable<myriad::Cond>();
  return *t;
}
PaddedTable<myriad::Once>& onces() {
  static auto* t = new PaddedTable<myriad::Once>();
  return *t;
}
PaddedTable<myriad::Semaphore>& sems() {
  static auto* t = new PaddedTable<myriad::Semaphore>();
  return *t;
}

template <class T>
myriad_status create_plain(PaddedTable<T>& table, uint64_t* bits_out) {
  auto* p = new (std::nothrow) T();
  if (!p) return MYRIAD_ENOMEM;
  return publish_padded(table, p, bits_out);
}

// ---- Contexts ----------------------------------------------------------------------------------

// A context handle: the context and, for with_cancel/with_deadline/with_timeout, its cancel
// function. Calls copy what they need while the handle is pinned, so a context destroyed
// during a blocked call lives on until that call returns.
struct CContext {
  myriad::Context ctx;
  myriad::CancelFunc cancel;  // default-constructed (does nothing) when there is none
  bool cancellable = false;
};

PaddedTable<CContext>& contexts() {
  static auto* t = new PaddedTable<CContext>();
  return *t;
}

// Copies the context behind a handle (a reference for the duration of the call).
myriad_status copy_context(myriad_context h, myriad::Context* out) noexcept {
  CContext* c = contexts().pin(h.bits);
  if (!c) return MYRIAD_EBADHANDLE;
  *out = c->ctx;
  contexts().unpin(h.bits);
  return MYRIAD_OK;
}

myriad_status publish_context(myriad::Context ctx, myriad::CancelFunc cancel, bool cancellable,
                              myriad_context* out) {
  return publish_padded(contexts(), new CContext{std::move(ctx), std::move(cancel), cancellable},
                        &out->bits);
}

// with_deadline / with_timeout: make(runtime or null, parent) gives the child and its cancel.
template <class Make>
myriad_status timed_child(myriad_runtime rt, myriad_context parent, myriad_context* out,
                          Make&& make) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  myriad::Context p;
  if (myriad_status st = copy_context(parent, &p)) return st;
  myriad::Runtime* r = nullptr;
  if (rt.bits) {
    r = runtimes().lookup(rt.bits);
    if (!r) return MYRIAD_EBADHANDLE;
  }
  return guarded([&] {
    auto [ctx, cancel] = make(r, p);
    return publish_context(std::move(ctx), std::move(cancel), true, out);
  });
}

myriad_status op_ctx(myriad_chan ch, void* elem, bool is_send, bool* ok, myriad_context ctx) {
  if (ok) *ok = false;
  myriad::Context c;
  if (myriad_status st = copy_context(ctx, &c)) return st;
  ChanRef r;
  if (myriad_status st = acquire_chan(ch, &r)) return st;
  if (!r.elem_ok(elem) || (is_send && !r.can_send())) return MYRIAD_EINVAL;
  bool got = false;
  Errc e = d::chan_op_ctx(r.core(), elem, is_send, c, &got);
  return finish_op(r, elem, is_send, ok, e, got);
}

// ---- Task dump ---------------------------------------------------------------------------------

constexpr size_t kTaskInfoV1Size = offsetof(myriad_task_info, waited_ns) + sizeof(int64_t);
static_assert(sizeof(myriad_task_info::label) == myriad::kMaxTaskLabel + 1);
static_assert(MYRIAD_TASK_RUNNABLE == static_cast<int>(myriad::TaskState::runnable) &&
              MYRIAD_TASK_RUNNING == static_cast<int>(myriad::TaskState::running) &&
              MYRIAD_TASK_WAITING == static_cast<int>(myriad::TaskState::waiting) &&
              MYRIAD_TASK_DEAD == static_cast<int>(myriad::TaskState::dead) &&
              MYRIAD_TASK_FREE == static_cast<int>(myriad::TaskState::free));
static_assert(MYRIAD_WAIT_NONE == static_cast<int>(myriad::WaitReason::none) &&
              MYRIAD_WAIT_JOIN == static_cast<int>(myriad::WaitReason::join) &&
              MYRIAD_WAIT_WAIT_GROUP == static_cast<int>(myriad::WaitReason::wait_group) &&
              MYRIAD_WAIT_PARK == static_cast<int>(myriad::WaitReason::test_park) &&
              MYRIAD_WAIT_CHAN_SEND == static_cast<int>(myriad::WaitReason::chan_send) &&
              MYRIAD_WAIT_CHAN_RECV == static_cast<int>(myriad::WaitReason::chan_recv) &&
              MYRIAD_WAIT_SELECT == static_cast<int>(myriad::WaitReason::select) &&
              MYRIAD_WAIT_SELECT_NO_CASES ==
                  static_cast<int>(myriad::WaitReason::select_no_cases) &&
              MYRIAD_WAIT_NIL_CHAN == static_cast<int>(myriad::WaitReason::nil_chan) &&
              MYRIAD_WAIT_SLEEP == static_cast<int>(myriad::WaitReason::sleep) &&
              MYRIAD_WAIT_MUTEX == static_cast<int>(myriad::WaitReason::mutex) &&
              MYRIAD_WAIT_RW_READ == static_cast<int>(myriad::WaitReason::rw_read) &&
              MYRIAD_WAIT_RW_WRITE == static_cast<int>(myriad::WaitReason::rw_write) &&
              MYRIAD_WAIT_COND == static_cast<int>(myriad::WaitReason::cond) &&
              MYRIAD_WAIT_SEMAPHORE == static_cast<int>(myriad::WaitReason::semaphore) &&
              MYRIAD_WAIT_ONCE == static_cast<int>(myriad::WaitReason::once) &&
              MYRIAD_WAIT_IO_READ == static_cast<int>(myriad::WaitReason::io_read) &&
              MYRIAD_WAIT_IO_WRITE == static_cast<int>(myriad::WaitReason::io_write));

// ---- File descriptors --------------------------------------------------------------------------

// What a myriad_fd names. `refs` counts the handle and every call in progress (like CChan):
// myriad_fd_close invalidates the handle and closes the Fd at once — calls waiting on it end
// with fd_closed — and the Fd object, which must outlive every call on it, is destroyed by the
// last release. A call therefore pins the handle only long enough to take its reference, so a
// close never waits for blocked calls.
struct CFd {
  std::atomic<uint32_t> refs{1};
  myriad::Fd fd;

  explicit CFd(myriad::Fd f) noexcept : fd(std::move(f)) {}
  void retain() noexcept { refs.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

PaddedTable<CFd>& fds() {
  static auto* t = new PaddedTable<CFd>();
  return *t;
}

struct FdRef {
  CFd* c = nullptr;
  FdRef() = default;
  FdRef(const FdRef&) = delete;
  FdRef& operator=(const FdRef&) = delete;
  ~FdRef() {
    if (c) c->release();
  }
  myriad::Fd* operator->() const noexcept { return &c->fd; }
};

myriad_status acquire_fd(myriad_fd h, FdRef* out) noexcept {
  CFd* c = fds().pin(h.bits);
  if (!c) return MYRIAD_EBADHANDLE;
  c->retain();
  fds().unpin(h.bits);
  out->c = c;
  return MYRIAD_OK;
}

// A new handle for an Fd; on failure the Fd (and its descriptor) is closed.
myriad_status publish_fd(myriad::Fd f, myriad_fd* out) noexcept {
  auto* c = new (std::nothrow) CFd(std::move(f));
  if (!c) return MYRIAD_ENOMEM;  // f's destructor closes the descriptor
  uint64_t h = fds().insert(c);
  if (!h) {
    c->release();
    return MYRIAD_ENOMEM;
  }
  out->bits = h;
  return MYRIAD_OK;
}

// The context of an I/O call: the zero handle is "none" (a default Context never cancels).
myriad_status io_context(myriad_context h, myriad::Context* out) noexcept {
  if (h.bits == 0) return MYRIAD_OK;
  return copy_context(h, out);
}

// One I/O call: the fd and the context held for its duration, then the result's count, errno
// and status written out.
template <class F>
myriad_status fd_io(myriad_fd h, myriad_context ctx, size_t* n_out, int* errno_out, F&& f) {
  if (n_out) *n_out = 0;
  if (errno_out) *errno_out = 0;
  myriad::Context c;
  if (myriad_status st = io_context(ctx, &c)) return st;
  FdRef r;
  if (myriad_status st = acquire_fd(h, &r)) return st;
  myriad::IoResult res = f(r.c->fd, c);
  if (n_out) *n_out = res.n;
  if (errno_out && res.err == Errc::io_error) *errno_out = res.sys_errno;
  return to_status(res.err);
}

myriad_status set_fd_deadline(myriad_fd h, int64_t deadline_ns, bool read, bool write) {
  FdRef r;
  if (myriad_status st = acquire_fd(h, &r)) return st;
  const myriad::TimePoint t{myriad::Duration(deadline_ns)};  // INT64_MAX is TimePoint::max()
  if (read) r->set_read_deadline(t);
  if (write) r->set_write_deadline(t);
  return MYRIAD_OK;
}

static_assert(myriad::TimePoint::max().time_since_epoch().count() == INT64_MAX,
              "INT64_MAX as a deadline must be the C++ API's \"no deadline\"");

}  // namespace

myriad::Runtime* myriad::capi::lookup_runtime(uint64_t bits) noexcept {
  return runtimes().lookup(bits);
}

extern "C" {

uint32_t myriad_abi_version(void) { return MYRIAD_ABI_VERSION; }
const char* myriad_version(void) { return "0.1.0"; }

const char* myriad_strerror(int status) {
  if (status < 0 || status > kLastStatus) return "unknown status";
  return myriad::strerror(static_cast<Errc>(status));
}

void myriad_config_init(myriad_config* config) {
  if (!config) return;
  *config = myriad_config{};
  config->size = sizeof(myriad_config);
  config->stack_size = 64 * 1024;
  config->guard_pages = MYRIAD_GUARD_AUTO;
  config->on_exception = MYRIAD_EXC_LOG;
  config->report_abandoned = 1;
  config->detect_deadlock = 1;
  config->on_deadlock = nullptr;
  config->on_deadlock_user = nullptr;
  const myriad::Config defaults;
  config->max_threads = defaults.max_threads;
  config->poller = MYRIAD_POLLER_AUTO;
  config->blocking_handoff_ns = defaults.blocking_handoff.count();
  config->preempt_after_ns = defaults.preempt_after.count();
  config->on_long_running = nullptr;
  config->on_long_running_user = nullptr;
}

myriad_status myriad_runtime_create(const myriad_config* config, myriad_runtime* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  return guarded([&]() -> myriad_status {
    myriad::Config c;
    if (config) {
      if (config->size < kConfigV1Size) return MYRIAD_EINVAL;
      if (config->guard_pages != MYRIAD_GUARD_AUTO && config->guard_pages != MYRIAD_GUARD_OFF)
        return MYRIAD_EINVAL;
      if (config->on_exception < MYRIAD_EXC_LOG || config->on_exception > MYRIAD_EXC_SILENT)
        return MYRIAD_EINVAL;
      c.procs = config->procs;
      c.host_procs = config->host_procs;
      c.stack_size = config->stack_size;
      c.guard_pages = static_cast<myriad::GuardPages>(config->guard_pages);
      c.on_task_exception = static_cast<myriad::OnTaskException>(config->on_exception);
      c.report_abandoned = config->report_abandoned != 0;
      c.max_stacks = static_cast<std::size_t>(config->max_stacks);
      // Fields appended later are read only when the caller's struct has them.
      if (config->size >= kConfigDetectDeadlockSize)
        c.detect_deadlock = config->detect_deadlock != 0;
      if (config->size >= kConfigOnDeadlockSize && config->on_deadlock) {
        auto fn = config->on_deadlock;
        void* user = config->on_deadlock_user;
        c.on_deadlock = [fn, user](const std::string& report) { fn(report.c_str(), user); };
      }
      if (MYRIAD_CONFIG_HAS(config, max_threads) && config->max_threads != 0)
        c.max_threads = config->max_threads;
      if (MYRIAD_CONFIG_HAS(config, poller)) {
        if (config->poller < MYRIAD_POLLER_AUTO || config->poller > MYRIAD_POLLER_IO_URING)
          return MYRIAD_EINVAL;
        c.poller = static_cast<myriad::PollerKind>(config->poller);
      }
      if (MYRIAD_CONFIG_HAS(config, blocking_handoff_ns)) {
        if (config->blocking_handoff_ns < 0) return MYRIAD_EINVAL;
        if (config->blocking_handoff_ns > 0)
          c.blocking_handoff = std::chrono::nanoseconds(config->blocking_handoff_ns);
      }
      if (MYRIAD_CONFIG_HAS(config, preempt_after_ns)) {
        if (config->preempt_after_ns < 0)
          c.preempt_after = std::chrono::nanoseconds(0);  // never
        else if (config->preempt_after_ns > 0)
          c.preempt_after = std::chrono::nanoseconds(config->preempt_after_ns);
      }
      if (MYRIAD_CONFIG_HAS(config, on_long_running_user) && config->on_long_running) {
        auto fn = config->on_long_running;
        void* user = config->on_long_running_user;
        c.on_long_running = [fn, user](const myriad::LongRunningTask& t) {
          myriad_long_running info;
          std::memset(&info, 0, sizeof info);
          info.size = sizeof info;
          info.task_id = t.task_id;
          info.label = t.label.c_str();
          info.file = t.site.file ? t.site.file : "";
          info.function = t.site.function ? t.site.function : "";
          info.line = t.site.line;
          info.running_for_ns = static_cast<int64_t>(t.running_for.count());
          fn(&info, user);
        };
      }
    }
    auto* r = new myriad::Runtime(std::move(c));
    if (myriad_status st = publish(runtimes(), r, &out->bits)) return st;
    RuntimeList& l = runtime_list();
    std::lock_guard<std::mutex> g(l.mu);
    l.v.push_back(RuntimeEntry{r, out->bits});
    return MYRIAD_OK;
  });
}

myriad_status myriad_runtime_destroy(myriad_runtime rt) {
  myriad::Runtime* r = runtimes().lookup(rt.bits);
  if (!r) return MYRIAD_EBADHANDLE;
  if (myriad::Runtime::current() == r) return MYRIAD_EDEADLOCK;
  // Drain while the handle is still valid: tasks may keep spawning through it until nothing is
  // runnable. Only then is the handle invalidated and the runtime freed.
  myriad_status st = guarded([&] {
    r->shutdown();
    return MYRIAD_OK;
  });
  if (st != MYRIAD_OK) return st;
  r = runtimes().remove(rt.bits);
  if (!r) return MYRIAD_EBADHANDLE;
  {
    RuntimeList& l = runtime_list();
    std::lock_guard<std::mutex> g(l.mu);
    l.v.erase(std::remove_if(l.v.begin(), l.v.end(),
                             [&](const RuntimeEntry& e) { return e.bits == rt.bits; }),
              l.v.end());
  }
  delete r;
  return MYRIAD_OK;
}

myriad_status myriad_runtime_procs(myriad_runtime rt, uint32_t* procs_out) {
  if (!procs_out) return MYRIAD_EINVAL;
  myriad::Runtime* r = runtimes().lookup(rt.bits);
  if (!r) return MYRIAD_EBADHANDLE;
  *procs_out = r->procs();
  return MYRIAD_OK;
}

myriad_status myriad_runtime_stats(myriad_runtime rt, myriad_stats* out) {
  if (!out || out->size < kStatsV1Size) return MYRIAD_EINVAL;
  myriad::Runtime* r = runtimes().lookup(rt.bits);
  if (!r) return MYRIAD_EBADHANDLE;
  myriad::Stats s = r->stats();
  myriad_stats all;
  std::memset(&all, 0, sizeof all);
  all.tasks_spawned = s.tasks_spawned;
  all.tasks_exited = s.tasks_exited;
  all.tasks_failed = s.tasks_failed;
  all.tasks_stolen = s.tasks_stolen;
  all.steal_operations = s.steal_operations;
  all.global_queue_takes = s.global_queue_takes;
  all.global_queue_spills = s.global_queue_spills;
  all.yields = s.yields;
  all.parks = s.parks;
  all.thread_parks = s.thread_parks;
  all.stacks_reserved = s.stacks_reserved;
  all.guarded_stacks = s.guarded_stacks;
  all.timers_fired = s.timers_fired;
  all.preempt_requests = s.preempt_requests;
  all.preemptions = s.preemptions;
  all.blocking_calls = s.blocking_calls;
  all.proc_handoffs = s.proc_handoffs;
  all.threads = s.threads;
  all.netpoll_ready = s.netpoll_ready;
  // An older caller's smaller struct gets the whole fields it has; its size stays as it is.
  constexpr size_t first = offsetof(myriad_stats, tasks_spawned);
  static_assert(first == sizeof(size_t) && (sizeof(myriad_stats) - first) % sizeof(uint64_t) == 0);
  const size_t fields = (std::min(out->size, sizeof(myriad_stats)) - first) / sizeof(uint64_t);
  std::memcpy(reinterpret_cast<unsigned char*>(out) + first,
              reinterpret_cast<const unsigned char*>(&all) + first, fields * sizeof(uint64_t));
  return MYRIAD_OK;
}

myriad_status myriad_runtime_poller(myriad_runtime rt, myriad_poller_kind* kind_out) {
  if (!kind_out) return MYRIAD_EINVAL;
  *kind_out = MYRIAD_POLLER_AUTO;
  myriad::Runtime* r = runtimes().lookup(rt.bits);
  if (!r) return MYRIAD_EBADHANDLE;
  *kind_out = static_cast<myriad_poller_kind>(static_cast<int>(r->poller()));
  return MYRIAD_OK;
}

const char* myriad_poller_name(int kind) {
  if (kind < MYRIAD_POLLER_AUTO || kind > MYRIAD_POLLER_IO_URING) return "?";
  return myriad::to_string(static_cast<myriad::PollerKind>(kind));
}

myriad_status myriad_spawn(myriad_runtime rt, myriad_task_fn fn, void* arg,
                           const myriad_spawn_options* options, myriad_task* handle_out) {
  if (handle_out) handle_out->bits = 0;
  if (!fn) return MYRIAD_EINVAL;
  if (options && options->size < kSpawnOptionsV1Size) return MYRIAD_EINVAL;
  myriad::Runtime* r = runtimes().lookup(rt.bits);
  if (!r) return MYRIAD_EBADHANDLE;
  myriad::SpawnOptions opts;
  myriad::SourceSite site;
  if (options) {
    opts.label = options->label;
    opts.stack_size = options->stack_size;
    if (options->file) site.file = options->file;
    if (options->function) site.function = options->function;
    site.line = options->line;
  }
  CClosure closure{fn, arg};
  myriad::detail::JoinState* js = nullptr;
  Errc e = r->spawn_erased(myriad::detail::closure_ops<CClosure&>(), &closure, opts, site,
                           handle_out ? &js : nullptr);
  if (e != Errc::ok) return to_status(e);
  if (handle_out) {
    uint64_t h = tasks().insert(js);
    if (!h) {
      myriad::JoinHandle(js).detach();
      return MYRIAD_ENOMEM;  // the task runs, detached
    }
    handle_out->bits = h;
  }
  return MYRIAD_OK;
}

myriad_status myriad_join(myriad_task handle) {
  myriad::detail::JoinState* js = tasks().lookup(handle.bits);
  if (!js) return MYRIAD_EBADHANDLE;
  if (myriad::this_task::id() != 0 && myriad::this_task::id() == task_id_of(js))
    return MYRIAD_EDEADLOCK;
  js = tasks().remove(handle.bits);
  if (!js) return MYRIAD_EBADHANDLE;
  myriad::JoinHandle h(js);
  return to_status(h.try_join(nullptr));
}

myriad_status myriad_detach(myriad_task handle) {
  myriad::detail::JoinState* js = tasks().remove(handle.bits);
  if (!js) return MYRIAD_EBADHANDLE;
  myriad::JoinHandle(js).detach();
  return MYRIAD_OK;
}

myriad_status myriad_task_handle_id(myriad_task handle, uint64_t* id_out) {
  if (!id_out) return MYRIAD_EINVAL;
  myriad::detail::JoinState* js = tasks().lookup(handle.bits);
  if (!js) return MYRIAD_EBADHANDLE;
  *id_out = task_id_of(js);
  return MYRIAD_OK;
}

myriad_status myriad_yield(void) {
  if (!myriad::this_task::in_task()) return MYRIAD_ENOTINTASK;
  return guarded([] {
    myriad::this_task::yield();
    return MYRIAD_OK;
  });
}

uint64_t myriad_current_task_id(void) { return myriad::this_task::id(); }

myriad_status myriad_step(myriad_runtime rt, uint64_t budget_ns, int* idle_out) {
  myriad::Runtime* r = runtimes().lookup(rt.bits);
  if (!r) return MYRIAD_EBADHANDLE;
  return guarded([&] {
    myriad::StepResult res = r->step(std::chrono::nanoseconds(budget_ns));
    if (idle_out) *idle_out = res.idle ? 1 : 0;
    return MYRIAD_OK;
  });
}

myriad_status myriad_wait_group_create(myriad_wait_group* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  auto* wg = new (std::nothrow) myriad::WaitGroup();
  if (!wg) return MYRIAD_ENOMEM;
  return publish(wait_groups(), wg, &out->bits);
}

myriad_status myriad_wait_group_destroy(myriad_wait_group wg) {
  myriad::WaitGroup* w = wait_groups().lookup(wg.bits);
  if (!w) return MYRIAD_EBADHANDLE;
  if (w->count() != 0) return MYRIAD_EBUSY;  // someone may be waiting on it
  w = wait_groups().remove(wg.bits);
  if (!w) return MYRIAD_EBADHANDLE;
  delete w;
  return MYRIAD_OK;
}

myriad_status myriad_wait_group_add(myriad_wait_group wg, int64_t delta) {
  myriad::WaitGroup* w = wait_groups().lookup(wg.bits);
  if (!w) return MYRIAD_EBADHANDLE;
  return to_status(w->try_add(delta));
}

myriad_status myriad_wait_group_done(myriad_wait_group wg) {
  return myriad_wait_group_add(wg, -1);
}

myriad_status myriad_wait_group_wait(myriad_wait_group wg) {
  myriad::WaitGroup* w = wait_groups().lookup(wg.bits);
  if (!w) return MYRIAD_EBADHANDLE;
  return guarded([&] {
    w->wait();
    return MYRIAD_OK;
  });
}

// ---- Channels ----------------------------------------------------------------------------------

myriad_status myriad_chan_create(size_t elem_size, size_t capacity, void (*elem_dtor)(void* elem),
                                 myriad_chan* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  if (elem_size > MYRIAD_CHAN_MAX_ELEM_SIZE) return MYRIAD_EINVAL;
  if (elem_size && capacity > MYRIAD_CHAN_MAX_BUFFER_BYTES / elem_size) return MYRIAD_EINVAL;
  return guarded([&]() -> myriad_status {
    std::unique_ptr<CChan> c(new CChan());
    c->elem_size = elem_size;
    c->dtor = elem_dtor;
    if (elem_dtor) c->scratch.reset(new unsigned char[elem_size ? elem_size : 1]);
    Errc e = Errc::ok;
    c->core = d::chan_create(c_elem_ops(elem_size), capacity, &e);
    if (!c->core) return to_status(e);
    uint64_t h = chans().insert(c.get());
    if (!h) {
      c.release()->release();
      return MYRIAD_ENOMEM;
    }
    c.release();
    out->bits = h;
    return MYRIAD_OK;
  });
}

myriad_status myriad_chan_destroy(myriad_chan ch) {
  if (ch.bits == 0) return MYRIAD_OK;  // the nil channel
  CChan* c = chans().remove(ch.bits);
  if (!c) return MYRIAD_EBADHANDLE;
  c->release();  // the handle's reference; calls in progress hold their own
  return MYRIAD_OK;
}

myriad_status myriad_chan_send(myriad_chan ch, const void* elem) {
  ChanRef r;
  if (myriad_status st = acquire_chan(ch, &r)) return st;
  if (!r.elem_ok(elem) || !r.can_send()) return MYRIAD_EINVAL;
  return to_status(d::chan_send(r.core(), const_cast<void*>(elem), true));
}

myriad_status myriad_chan_recv(myriad_chan ch, void* elem, bool* ok) {
  return recv_impl(ch, elem, ok, true);
}

myriad_status myriad_chan_try_send(myriad_chan ch, const void* elem) {
  ChanRef r;
  if (myriad_status st = acquire_chan(ch, &r)) return st;
  if (!r.elem_ok(elem) || !r.can_send()) return MYRIAD_EINVAL;
  return to_status(d::chan_send(r.core(), const_cast<void*>(elem), false));
}

myriad_status myriad_chan_try_recv(myriad_chan ch, void* elem, bool* ok) {
  return recv_impl(ch, elem, ok, false);
}

myriad_status myriad_chan_close(myriad_chan ch) {
  ChanRef r;
  if (myriad_status st = acquire_chan(ch, &r)) return st;
  if (!r.can_send()) return MYRIAD_EINVAL;
  return to_status(d::chan_close(r.core()));
}

myriad_status myriad_chan_len(myriad_chan ch, size_t* len_out) {
  if (!len_out) return MYRIAD_EINVAL;
  *len_out = 0;
  ChanRef r;
  if (myriad_status st = acquire_chan(ch, &r)) return st;
  *len_out = d::chan_len(r.core());
  return MYRIAD_OK;
}

myriad_status myriad_chan_cap(myriad_chan ch, size_t* cap_out) {
  if (!cap_out) return MYRIAD_EINVAL;
  *cap_out = 0;
  ChanRef r;
  if (myriad_status st = acquire_chan(ch, &r)) return st;
  *cap_out = d::chan_cap(r.core());
  return MYRIAD_OK;
}

myriad_status myriad_chan_send_deadline(myriad_chan ch, const void* elem, int64_t deadline_ns) {
  return op_until(ch, const_cast<void*>(elem), true, nullptr, deadline_ns);
}

myriad_status myriad_chan_recv_deadline(myriad_chan ch, void* elem, bool* ok,
                                        int64_t deadline_ns) {
  return op_until(ch, elem, false, ok, deadline_ns);
}

// ---- Select ------------------------------------------------------------------------------------

myriad_status myriad_select(myriad_select_case* cases, size_t n, int block, int* index_out,
                            bool* ok_out) {
  if (!index_out) return MYRIAD_EINVAL;
  *index_out = -1;
  if (ok_out) *ok_out = false;
  if (n && !cases) return MYRIAD_EINVAL;
  if (n > 65536) return MYRIAD_EINVAL;
  constexpr size_t kInline = 8;
  ChanRef inline_refs[kInline];
  myriad::SelectCase inline_cases[kInline];
  std::unique_ptr<ChanRef[]> heap_refs;
  std::unique_ptr<myriad::SelectCase[]> heap_cases;
  ChanRef* refs = inline_refs;
  myriad::SelectCase* sc = inline_cases;
  if (n > kInline) {
    heap_refs.reset(new (std::nothrow) ChanRef[n]);
    heap_cases.reset(new (std::nothrow) myriad::SelectCase[n]);
    if (!heap_refs || !heap_cases) return MYRIAD_ENOMEM;
    refs = heap_refs.get();
    sc = heap_cases.get();
  }
  for (size_t i = 0; i < n; ++i) {
    const myriad_select_case& k = cases[i];
    if (k.dir != MYRIAD_SEND && k.dir != MYRIAD_RECV) return MYRIAD_EINVAL;
    if (myriad_status st = acquire_chan(k.chan, &refs[i])) return st;
    if (!refs[i].elem_ok(k.elem)) return MYRIAD_EINVAL;
    if (k.dir == MYRIAD_SEND && !refs[i].can_send()) return MYRIAD_EINVAL;
    sc[i] = myriad::SelectCase{refs[i].core(), k.elem, k.dir == MYRIAD_SEND};
  }
  myriad::SelectResult res;
  Errc e = myriad::try_select_cases(sc, n, block != 0, &res);
  if (e == Errc::ok || e == Errc::channel_closed) *index_out = res.index;
  if (e == Errc::ok && res.index >= 0 && cases[res.index].dir == MYRIAD_RECV) {
    if (!res.ok) refs[res.index].zero(cases[res.index].elem);
    if (ok_out) *ok_out = res.ok;
  }
  return to_status(e);
}

// ---- Time --------------------------------------------------------------------------------------

myriad_status myriad_sleep_ns(int64_t ns) {
  return guarded([&] {
    myriad::this_task::sleep_for(ns_duration(ns));
    return MYRIAD_OK;
  });
}

int64_t myriad_now_ns(void) { return myriad::Clock::now().time_since_epoch().count(); }

myriad_status myriad_timer_create(myriad_runtime rt, int64_t ns, myriad_timer* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  myriad::Runtime* r = nullptr;
  uint64_t bits = 0;
  if (myriad_status st = resolve_runtime(rt, &r, &bits)) return st;
  return guarded([&] {
    return publish_padded(timers(), new CTimer{myriad::Timer(*r, ns_duration(ns)), r, bits},
                          &out->bits);
  });
}

myriad_status myriad_timer_chan(myriad_timer t, myriad_chan* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  Pin<CTimer> p(timers(), t.bits);
  if (!p) return MYRIAD_EBADHANDLE;
  return publish_core_chan(p->timer.channel().core(), sizeof(int64_t), true, out);
}

myriad_status myriad_timer_stop(myriad_timer t, bool* was_active_out) {
  if (was_active_out) *was_active_out = false;
  Pin<CTimer> p(timers(), t.bits);
  if (!p) return MYRIAD_EBADHANDLE;
  bool was = p->timer.stop();
  if (was_active_out) *was_active_out = was;
  return MYRIAD_OK;
}

myriad_status myriad_timer_reset(myriad_timer t, int64_t ns, bool* was_active_out) {
  if (was_active_out) *was_active_out = false;
  Pin<CTimer> p(timers(), t.bits);
  if (!p) return MYRIAD_EBADHANDLE;
  if (!runtime_alive(p->rt, p->rt_bits)) return MYRIAD_ECLOSED;
  bool was = p->timer.reset(ns_duration(ns));
  if (was_active_out) *was_active_out = was;
  return MYRIAD_OK;
}

myriad_status myriad_timer_destroy(myriad_timer t) {
  return destroy_if_idle(timers(), t.bits, [](CTimer*) { return false; });
}

myriad_status myriad_ticker_create(myriad_runtime rt, int64_t period_ns, myriad_ticker* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  if (period_ns <= 0) return MYRIAD_EINVAL;
  myriad::Runtime* r = nullptr;
  uint64_t bits = 0;
  if (myriad_status st = resolve_runtime(rt, &r, &bits)) return st;
  return guarded([&] {
    return publish_padded(tickers(),
                          new CTicker{myriad::Ticker(*r, ns_duration(period_ns)), r, bits},
                          &out->bits);
  });
}

myriad_status myriad_ticker_chan(myriad_ticker t, myriad_chan* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  Pin<CTicker> p(tickers(), t.bits);
  if (!p) return MYRIAD_EBADHANDLE;
  return publish_core_chan(p->ticker.channel().core(), sizeof(int64_t), true, out);
}

myriad_status myriad_ticker_stop(myriad_ticker t) {
  Pin<CTicker> p(tickers(), t.bits);
  if (!p) return MYRIAD_EBADHANDLE;
  p->ticker.stop();
  return MYRIAD_OK;
}

myriad_status myriad_ticker_reset(myriad_ticker t, int64_t period_ns) {
  Pin<CTicker> p(tickers(), t.bits);
  if (!p) return MYRIAD_EBADHANDLE;
  if (period_ns <= 0) return MYRIAD_EINVAL;
  if (!runtime_alive(p->rt, p->rt_bits)) return MYRIAD_ECLOSED;
  return guarded([&] {
    p->ticker.reset(ns_duration(period_ns));
    return MYRIAD_OK;
  });
}

myriad_status myriad_ticker_destroy(myriad_ticker t) {
  return destroy_if_idle(tickers(), t.bits, [](CTicker*) { return false; });
}

myriad_status myriad_after(myriad_runtime rt, int64_t ns, myriad_chan* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  myriad::Runtime* r = nullptr;
  uint64_t bits = 0;
  if (myriad_status st = resolve_runtime(rt, &r, &bits)) return st;
  return guarded([&] {
    myriad::Chan<myriad::TimePoint> c = myriad::after(*r, ns_duration(ns));
    return publish_core_chan(c.core(), sizeof(int64_t), true, out);
  });
}

myriad_status myriad_after_func(myriad_runtime rt, int64_t ns, myriad_task_fn fn, void* arg,
                                myriad_timer* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  if (!fn) return MYRIAD_EINVAL;
  myriad::Runtime* r = nullptr;
  uint64_t bits = 0;
  if (myriad_status st = resolve_runtime(rt, &r, &bits)) return st;
  return guarded([&] {
    CClosure closure{fn, arg};
    return publish_padded(timers(),
                          new CTimer{myriad::after_func(*r, ns_duration(ns), closure), r, bits},
                          &out->bits);
  });
}

// ---- Sync --------------------------------------------------------------------------------------

myriad_status myriad_mutex_create(myriad_mutex* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  return create_plain(mutexes(), &out->bits);
}

myriad_status myriad_mutex_destroy(myriad_mutex m) {
  return destroy_if_idle(mutexes(), m.bits, [](myriad::Mutex* x) { return x->is_locked(); });
}

myriad_status myriad_mutex_lock(myriad_mutex m) {
  return with_pinned(mutexes(), m.bits, [](myriad::Mutex& x) {
    x.lock();
    return MYRIAD_OK;
  });
}

myriad_status myriad_mutex_trylock(myriad_mutex m) {
  return with_pinned(mutexes(), m.bits, [](myriad::Mutex& x) {
    return x.try_lock() ? MYRIAD_OK : MYRIAD_EWOULDBLOCK;
  });
}

myriad_status myriad_mutex_unlock(myriad_mutex m) {
  return with_pinned(mutexes(), m.bits, [](myriad::Mutex& x) {
    x.unlock();
    return MYRIAD_OK;
  });
}

myriad_status myriad_rwmutex_create(myriad_rwmutex* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  return create_plain(rwmutexes(), &out->bits);
}

myriad_status myriad_rwmutex_destroy(myriad_rwmutex m) {
  return destroy_if_idle(rwmutexes(), m.bits, [](myriad::RWMutex* x) {
    return x->is_write_locked() || x->readers() != 0 || x->writer_waiting();
  });
}

myriad_status myriad_rwmutex_lock(myriad_rwmutex m) {
  return with_pinned(rwmutexes(), m.bits, [](myriad::RWMutex& x) {
    x.lock();
    return MYRIAD_OK;
  });
}

myriad_status myriad_rwmutex_trylock(myriad_rwmutex m) {
  return with_pinned(rwmutexes(), m.bits, [](myriad::RWMutex& x) {
    return x.try_lock() ? MYRIAD_OK : MYRIAD_EWOULDBLOCK;
  });
}

myriad_status myriad_rwmutex_unlock(myriad_rwmutex m) {
  return with_pinned(rwmutexes(), m.bits, [](myriad::RWMutex& x) {
    x.unlock();
    return MYRIAD_OK;
  });
}

myriad_status myriad_rwmutex_rlock(myriad_rwmutex m) {
  return with_pinned(rwmutexes(), m.bits, [](myriad::RWMutex& x) {
    x.rlock();
    return MYRIAD_OK;
  });
}

myriad_status myriad_rwmutex_tryrlock(myriad_rwmutex m) {
  return with_pinned(rwmutexes(), m.bits, [](myriad::RWMutex& x) {
    return x.try_rlock() ? MYRIAD_OK : MYRIAD_EWOULDBLOCK;
  });
}

myriad_status myriad_rwmutex_runlock(myriad_rwmutex m) {
  return with_pinned(rwmutexes(), m.bits, [](myriad::RWMutex& x) {
    x.runlock();
    return MYRIAD_OK;
  });
}

myriad_status myriad_cond_create(myriad_cond* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  return create_plain(conds(), &out->bits);
}

myriad_status myriad_cond_destroy(myriad_cond c) {
  return destroy_if_idle(conds(), c.bits, [](myriad::Cond*) { return false; });
}

myriad_status myriad_cond_wait(myriad_cond c, myriad_mutex m) {
  Pin<myriad::Cond> pc(conds(), c.bits);
  if (!pc) return MYRIAD_EBADHANDLE;
  Pin<myriad::Mutex> pm(mutexes(), m.bits);
  if (!pm) return MYRIAD_EBADHANDLE;
  return guarded([&] {
    pc->wait(*pm.get());
    return MYRIAD_OK;
  });
}

myriad_status myriad_cond_signal(myriad_cond c) {
  return with_pinned(conds(), c.bits, [](myriad::Cond& x) {
    x.signal();
    return MYRIAD_OK;
  });
}

myriad_status myriad_cond_broadcast(myriad_cond c) {
  return with_pinned(conds(), c.bits, [](myriad::Cond& x) {
    x.broadcast();
    return MYRIAD_OK;
  });
}

myriad_status myriad_once_create(myriad_once* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  return create_plain(onces(), &out->bits);
}

myriad_status myriad_once_destroy(myriad_once o) {
  return destroy_if_idle(onces(), o.bits, [](myriad::Once*) { return false; });
}

myriad_status myriad_once_call(myriad_once o, myriad_task_fn fn, void* arg) {
  if (!fn) return MYRIAD_EINVAL;
  Pin<myriad::Once> p(onces(), o.bits);
  if (!p) return MYRIAD_EBADHANDLE;
  return guarded([&] {
    p->call([fn, arg] { fn(arg); });
    return MYRIAD_OK;
  });
}

myriad_status myriad_sem_create(int64_t capacity, myriad_sem* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  if (capacity < 0 || capacity > myriad::Semaphore::kMaxCapacity) return MYRIAD_EINVAL;
  auto* s = new (std::nothrow) myriad::Semaphore(capacity);
  if (!s) return MYRIAD_ENOMEM;
  return publish_padded(sems(), s, &out->bits);
}

myriad_status myriad_sem_destroy(myriad_sem s) {
  return destroy_if_idle(sems(), s.bits,
                         [](myriad::Semaphore* x) { return x->available() != x->capacity(); });
}

myriad_status myriad_sem_acquire(myriad_sem s, int64_t n) {
  Pin<myriad::Semaphore> p(sems(), s.bits);
  if (!p) return MYRIAD_EBADHANDLE;
  return guarded([&] {
    p->acquire(n);
    return MYRIAD_OK;
  });
}

myriad_status myriad_sem_try_acquire(myriad_sem s, int64_t n) {
  Pin<myriad::Semaphore> p(sems(), s.bits);
  if (!p) return MYRIAD_EBADHANDLE;
  if (n < 0 || n > p->capacity()) return MYRIAD_EINVAL;
  return p->try_acquire(n) ? MYRIAD_OK : MYRIAD_EWOULDBLOCK;
}

myriad_status myriad_sem_release(myriad_sem s, int64_t n) {
  Pin<myriad::Semaphore> p(sems(), s.bits);
  if (!p) return MYRIAD_EBADHANDLE;
  return guarded([&] {
    p->release(n);
    return MYRIAD_OK;
  });
}

// ---- Task dump ---------------------------------------------------------------------------------

myriad_status myriad_list_tasks(myriad_runtime rt, myriad_task_info* out, size_t capacity,
                                size_t* count_out) {
  if (!count_out) return MYRIAD_EINVAL;
  *count_out = 0;
  if (capacity && (!out || out->size < kTaskInfoV1Size)) return MYRIAD_EINVAL;
  const size_t stride = capacity ? out->size : 0;
  myriad::Runtime* r = runtimes().lookup(rt.bits);
  if (!r) return MYRIAD_EBADHANDLE;
  return guarded([&] {
    std::vector<myriad::TaskInfo> tasks = myriad::list_tasks(*r);
    *count_out = tasks.size();
    const size_t n = std::min(capacity, tasks.size());
    const size_t written = std::min(stride, sizeof(myriad_task_info));
    for (size_t i = 0; i < n; ++i) {
      const myriad::TaskInfo& t = tasks[i];
      myriad_task_info info;
      std::memset(&info, 0, sizeof info);
      info.size = written;
      info.id = t.id;
      info.parent_id = t.parent_id;
      std::snprintf(info.label, sizeof info.label, "%s", t.label.c_str());
      info.file = t.site.file ? t.site.file : "";
      info.function = t.site.function ? t.site.function : "";
      info.line = t.site.line;
      info.state = static_cast<int32_t>(t.state);
      info.wait_reason = static_cast<int32_t>(t.wait_reason);
      info.waited_ns = static_cast<int64_t>(t.waited.count());
      std::memcpy(reinterpret_cast<unsigned char*>(out) + i * stride, &info, written);
    }
    return MYRIAD_OK;
  });
}

myriad_status myriad_dump_tasks(myriad_runtime rt, char* buf, size_t cap, size_t* len_out) {
  if (len_out) *len_out = 0;
  if (cap && !buf) return MYRIAD_EINVAL;
  myriad::Runtime* r = nullptr;
  if (rt.bits) {
    r = runtimes().lookup(rt.bits);
    if (!r) return MYRIAD_EBADHANDLE;
  }
  return guarded([&] {
    std::string text = r ? myriad::dump_tasks(*r) : myriad::dump_all_tasks();
    if (cap) {
      const size_t n = std::min(cap - 1, text.size());
      std::memcpy(buf, text.data(), n);
      buf[n] = '\0';
    }
    if (len_out) *len_out = text.size();
    return MYRIAD_OK;
  });
}

myriad_status myriad_enable_task_dump_on_signal(int signo) {
  return guarded([&] {
    myriad::enable_task_dump_on_signal(signo);
    return MYRIAD_OK;
  });
}

myriad_status myriad_disable_task_dump_on_signal(void) {
  return guarded([&] {
    myriad::disable_task_dump_on_signal();
    return MYRIAD_OK;
  });
}

const char* myriad_task_state_name(int state) {
  if (state < 0 || state > 255) return "?";
  return myriad::to_string(static_cast<myriad::TaskState>(state));
}

const char* myriad_wait_reason_name(int reason) {
  if (reason < 0 || reason > 255) return "?";
  return myriad::to_string(static_cast<myriad::WaitReason>(reason));
}

// ---- Contexts ----------------------------------------------------------------------------------

myriad_status myriad_context_background(myriad_context* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  return guarded([&] {
    return publish_context(myriad::Context::background(), myriad::CancelFunc(), false, out);
  });
}

myriad_status myriad_context_with_cancel(myriad_context parent, myriad_context* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  myriad::Context p;
  if (myriad_status st = copy_context(parent, &p)) return st;
  return guarded([&] {
    auto [ctx, cancel] = myriad::with_cancel(p);
    return publish_context(std::move(ctx), std::move(cancel), true, out);
  });
}

myriad_status myriad_context_with_deadline_ns(myriad_runtime rt, myriad_context parent,
                                              int64_t deadline_ns, myriad_context* out) {
  const myriad::TimePoint when{myriad::Duration(deadline_ns)};
  return timed_child(rt, parent, out, [&](myriad::Runtime* r, const myriad::Context& p) {
    return r ? myriad::with_deadline(*r, p, when) : myriad::with_deadline(p, when);
  });
}

myriad_status myriad_context_with_timeout_ns(myriad_runtime rt, myriad_context parent, int64_t ns,
                                             myriad_context* out) {
  return timed_child(rt, parent, out, [&](myriad::Runtime* r, const myriad::Context& p) {
    return r ? myriad::with_timeout(*r, p, ns_duration(ns))
             : myriad::with_timeout(p, ns_duration(ns));
  });
}

myriad_status myriad_context_with_value(myriad_context parent, const void* key, void* value,
                                        myriad_context* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  if (!key) return MYRIAD_EINVAL;
  myriad::Context p;
  if (myriad_status st = copy_context(parent, &p)) return st;
  return guarded([&] {
    // No ownership: the C caller's pointer is stored as is, and nothing is freed.
    myriad::Context ctx = myriad::Context::adopt(
        d::ctx_with_value(p.node(), key, value, [](void*) noexcept {}));
    return publish_context(std::move(ctx), myriad::CancelFunc(), false, out);
  });
}

myriad_status myriad_context_destroy(myriad_context ctx) {
  CContext* c = contexts().remove(ctx.bits);
  if (!c) return MYRIAD_EBADHANDLE;
  delete c;  // drops the handle's references; calls in progress hold their own
  return MYRIAD_OK;
}

myriad_status myriad_context_cancel(myriad_context ctx, myriad_status cause) {
  if (static_cast<int>(cause) < 0 || static_cast<int>(cause) > kLastStatus)
    return MYRIAD_EINVAL;
  CContext* c = contexts().pin(ctx.bits);
  if (!c) return MYRIAD_EBADHANDLE;
  myriad::CancelFunc f = c->cancel;
  const bool cancellable = c->cancellable;
  contexts().unpin(ctx.bits);
  if (!cancellable) return MYRIAD_EINVAL;
  return guarded([&] {
    f(myriad::Cause{static_cast<Errc>(cause), std::string()});
    return MYRIAD_OK;
  });
}

myriad_status myriad_context_err(myriad_context ctx, myriad_status* err_out) {
  if (!err_out) return MYRIAD_EINVAL;
  *err_out = MYRIAD_OK;
  myriad::Context c;
  if (myriad_status st = copy_context(ctx, &c)) return st;
  *err_out = to_status(c.err());
  return MYRIAD_OK;
}

myriad_status myriad_context_cause(myriad_context ctx, myriad_status* cause_out) {
  if (!cause_out) return MYRIAD_EINVAL;
  *cause_out = MYRIAD_OK;
  myriad::Context c;
  if (myriad_status st = copy_context(ctx, &c)) return st;
  return guarded([&] {
    *cause_out = to_status(c.cause().code);
    return MYRIAD_OK;
  });
}

myriad_status myriad_context_done(myriad_context ctx, myriad_chan* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  myriad::Context c;
  if (myriad_status st = copy_context(ctx, &c)) return st;
  return guarded([&] { return publish_core_chan(c.done().core(), 0, true, out); });
}

myriad_status myriad_context_deadline(myriad_context ctx, int64_t* deadline_ns_out,
                                      bool* has_deadline_out) {
  if (!deadline_ns_out) return MYRIAD_EINVAL;
  *deadline_ns_out = INT64_MAX;
  if (has_deadline_out) *has_deadline_out = false;
  myriad::Context c;
  if (myriad_status st = copy_context(ctx, &c)) return st;
  if (std::optional<myriad::TimePoint> dl = c.deadline()) {
    *deadline_ns_out = dl->time_since_epoch().count();
    if (has_deadline_out) *has_deadline_out = true;
  }
  return MYRIAD_OK;
}

myriad_status myriad_context_value(myriad_context ctx, const void* key, void** value_out) {
  if (!value_out) return MYRIAD_EINVAL;
  *value_out = nullptr;
  if (!key) return MYRIAD_EINVAL;
  myriad::Context c;
  if (myriad_status st = copy_context(ctx, &c)) return st;
  *value_out = const_cast<void*>(d::ctx_value(c.node(), key));
  return MYRIAD_OK;
}

myriad_status myriad_chan_send_ctx(myriad_chan ch, const void* elem, myriad_context ctx) {
  return op_ctx(ch, const_cast<void*>(elem), true, nullptr, ctx);
}

myriad_status myriad_chan_recv_ctx(myriad_chan ch, void* elem, bool* ok, myriad_context ctx) {
  return op_ctx(ch, elem, false, ok, ctx);
}

myriad_status myriad_sleep_ns_ctx(int64_t ns, myriad_context ctx) {
  myriad::Context c;
  if (myriad_status st = copy_context(ctx, &c)) return st;
  return to_status(myriad::this_task::sleep_for(ns_duration(ns), c));
}

// ---- File descriptors --------------------------------------------------------------------------

myriad_status myriad_fd_adopt(myriad_runtime rt, int fd, myriad_fd* out) {
  if (out) out->bits = 0;
  if (fd < 0) return MYRIAD_EINVAL;
  myriad::Runtime* r = nullptr;
  uint64_t bits = 0;
  myriad_status st = out ? resolve_runtime(rt, &r, &bits) : MYRIAD_EINVAL;
  if (st != MYRIAD_OK) {
    ::close(fd);  // ownership passed in every case
    return st;
  }
  myriad::Fd f;
  if (Errc e = myriad::Fd::adopt(fd, r, &f); e != Errc::ok) return to_status(e);  // closed it
  return publish_fd(std::move(f), out);
}

myriad_status myriad_fd_close(myriad_fd fd) {
  CFd* c = fds().remove(fd.bits);
  if (!c) return MYRIAD_EBADHANDLE;
  c->fd.close();  // ends the waits of calls in progress; they hold their own references
  c->release();
  return MYRIAD_OK;
}

myriad_status myriad_fd_release(myriad_fd fd, int* fd_out) {
  if (!fd_out) return MYRIAD_EINVAL;
  *fd_out = -1;
  // A call in progress holds a reference, taken under a pin; remove_if_idle holds new pins off
  // while it asks, so `refs` cannot grow between the check and the removal.
  CFd* c = nullptr;
  switch (fds().remove_if_idle(
      fd.bits, [](CFd* x) { return x->refs.load(std::memory_order_acquire) != 1; }, &c)) {
    case PaddedTable<CFd>::Removed::bad_handle: return MYRIAD_EBADHANDLE;
    case PaddedTable<CFd>::Removed::busy: return MYRIAD_EBUSY;
    case PaddedTable<CFd>::Removed::ok: break;
  }
  *fd_out = c->fd.release();
  c->release();
  return MYRIAD_OK;
}

myriad_status myriad_fd_native(myriad_fd fd, int* fd_out) {
  if (!fd_out) return MYRIAD_EINVAL;
  *fd_out = -1;
  FdRef r;
  if (myriad_status st = acquire_fd(fd, &r)) return st;
  *fd_out = r->native();
  return MYRIAD_OK;
}

myriad_status myriad_fd_set_read_deadline(myriad_fd fd, int64_t deadline_ns) {
  return set_fd_deadline(fd, deadline_ns, true, false);
}

myriad_status myriad_fd_set_write_deadline(myriad_fd fd, int64_t deadline_ns) {
  return set_fd_deadline(fd, deadline_ns, false, true);
}

myriad_status myriad_fd_set_deadline(myriad_fd fd, int64_t deadline_ns) {
  return set_fd_deadline(fd, deadline_ns, true, true);
}

myriad_status myriad_fd_read(myriad_fd fd, void* buf, size_t len, myriad_context ctx,
                             size_t* n_out, int* errno_out) {
  return fd_io(fd, ctx, n_out, errno_out,
               [&](myriad::Fd& f, const myriad::Context& c) { return f.read(buf, len, c); });
}

myriad_status myriad_fd_readv(myriad_fd fd, const struct iovec* iov, int iovcnt,
                              myriad_context ctx, size_t* n_out, int* errno_out) {
  return fd_io(fd, ctx, n_out, errno_out,
               [&](myriad::Fd& f, const myriad::Context& c) { return f.readv(iov, iovcnt, c); });
}

myriad_status myriad_fd_recv(myriad_fd fd, void* buf, size_t len, int flags, myriad_context ctx,
                             size_t* n_out, int* errno_out) {
  return fd_io(fd, ctx, n_out, errno_out, [&](myriad::Fd& f, const myriad::Context& c) {
    return f.recv(buf, len, flags, c);
  });
}

myriad_status myriad_fd_write(myriad_fd fd, const void* buf, size_t len, myriad_context ctx,
                              size_t* n_out, int* errno_out) {
  return fd_io(fd, ctx, n_out, errno_out,
               [&](myriad::Fd& f, const myriad::Context& c) { return f.write(buf, len, c); });
}

myriad_status myriad_fd_writev(myriad_fd fd, const struct iovec* iov, int iovcnt,
                               myriad_context ctx, size_t* n_out, int* errno_out) {
  return fd_io(fd, ctx, n_out, errno_out,
               [&](myriad::Fd& f, const myriad::Context& c) { return f.writev(iov, iovcnt, c); });
}

myriad_status myriad_fd_send(myriad_fd fd, const void* buf, size_t len, int flags,
                             myriad_context ctx, size_t* n_out, int* errno_out) {
  return fd_io(fd, ctx, n_out, errno_out, [&](myriad::Fd& f, const myriad::Context& c) {
    return f.send(buf, len, flags, c);
  });
}

myriad_status myriad_fd_read_full(myriad_fd fd, void* buf, size_t len, myriad_context ctx,
                                  size_t* n_out, int* errno_out) {
  return fd_io(fd, ctx, n_out, errno_out,
               [&](myriad::Fd& f, const myriad::Context& c) { return f.read_full(buf, len, c); });
}

myriad_status myriad_fd_write_all(myriad_fd fd, const void* buf, size_t len, myriad_context ctx,
                                  size_t* n_out, int* errno_out) {
  return fd_io(fd, ctx, n_out, errno_out,
               [&](myriad::Fd& f, const myriad::Context& c) { return f.write_all(buf, len, c); });
}

myriad_status myriad_fd_accept(myriad_fd fd, myriad_fd* conn_out, struct sockaddr* peer,
                               socklen_t* peer_len, myriad_context ctx, int* errno_out) {
  if (errno_out) *errno_out = 0;
  if (!conn_out) return MYRIAD_EINVAL;
  conn_out->bits = 0;
  myriad::Fd conn;
  myriad_status st = fd_io(fd, ctx, nullptr, errno_out,
                           [&](myriad::Fd& f, const myriad::Context& c) {
                             return f.accept(&conn, peer, peer_len, c);
                           });
  if (st != MYRIAD_OK) return st;
  return publish_fd(std::move(conn), conn_out);
}

myriad_status myriad_fd_connect(myriad_fd fd, const struct sockaddr* addr, socklen_t addr_len,
                                myriad_context ctx, int* errno_out) {
  return fd_io(fd, ctx, nullptr, errno_out, [&](myriad::Fd& f, const myriad::Context& c) {
    return f.connect(addr, addr_len, c);
  });
}

myriad_status myriad_tcp_listen(myriad_runtime rt, const char* host, uint16_t port, int backlog,
                                myriad_fd* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  myriad::Runtime* r = nullptr;
  uint64_t bits = 0;
  if (myriad_status st = resolve_runtime(rt, &r, &bits)) return st;
  return guarded([&] {
    return publish_fd(myriad::tcp_listen(host, port, backlog > 0 ? backlog : 4096, r), out);
  });
}

myriad_status myriad_tcp_connect(myriad_runtime rt, const char* host, uint16_t port,
                                 myriad_context ctx, myriad_fd* out) {
  if (!out) return MYRIAD_EINVAL;
  out->bits = 0;
  myriad::Context c;
  if (myriad_status st = io_context(ctx, &c)) return st;
  myriad::Runtime* r = nullptr;
  uint64_t bits = 0;
  if (myriad_status st = resolve_runtime(rt, &r, &bits)) return st;
  return guarded([&] { return publish_fd(myriad::tcp_connect(host, port, c, r), out); });
}

myriad_status myriad_fd_local_port(myriad_fd fd, uint16_t* port_out) {
  if (!port_out) return MYRIAD_EINVAL;
  *port_out = 0;
  FdRef r;
  if (myriad_status st = acquire_fd(fd, &r)) return st;
  return guarded([&] {
    *port_out = myriad::local_port(r.c->fd);
    return MYRIAD_OK;
  });
}

// ---- Blocking calls, thread locks, preemption --------------------------------------------------

myriad_status myriad_blocking_enter(void) {
  return to_status(myriad::this_task::try_enter_blocking());
}

void myriad_blocking_leave(void) { myriad::this_task::leave_blocking(); }

myriad_status myriad_thread_lock(void) {
  return guarded([] {
    myriad::this_task::lock_to_thread();
    return MYRIAD_OK;
  });
}

void myriad_thread_unlock(void) { myriad::this_task::unlock_from_thread(); }

bool myriad_thread_locked(void) { return myriad::this_task::locked_to_thread(); }

void myriad_preempt_point(void) { myriad::this_task::preempt_point(); }

}  // extern "C"
