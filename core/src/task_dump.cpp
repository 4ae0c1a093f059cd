// The task dump: a racy-but-consistent walk over every task slot, grouped text, and the
// signal-triggered dump (a semaphore posted by the handler, a background thread that writes).
#include "myriad/task_dump.hpp"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <mutex>
#include <thread>

#include "myriad/errors.hpp"
#include "myriad/runtime.hpp"
#include "registry.hpp"
#include "scheduler.hpp"
#include "task_impl.hpp"

namespace myriad {
namespace {

using detail::Scheduler;
using detail::Task;

static_assert(kMaxTaskLabel + 1 == detail::kLabelCapacity);
static_assert(std::atomic_ref<uint64_t>::is_always_lock_free &&
              std::atomic_ref<uint32_t>::is_always_lock_free &&
              std::atomic_ref<const char*>::is_always_lock_free &&
              std::atomic_ref<char>::is_always_lock_free);

constexpr std::size_t kShownPerGroup = 10;
// Tries to read one slot consistently before settling for the last read (see read_task).
constexpr int kReadAttempts = 4;

int64_t coarse_now_ns() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

bool live(TaskState s) noexcept {
  return s == TaskState::runnable || s == TaskState::running || s == TaskState::waiting;
}

void acquire_fence() noexcept {
#if MYRIAD_TSAN
  // TSan does not model fences (and GCC warns about them); every access here is atomic, so
  // there is no race for it to report either way.
#else
  std::atomic_thread_fence(std::memory_order_acquire);
#endif
}

// A copy of one task, before the clock turns wait_since into a duration.
struct RawTask {
  uint64_t id, parent_id;
  SourceSite site;
  TaskState state;
  WaitReason reason;
  int64_t since_ns;
  char label[detail::kLabelCapacity];
};

// Copies a task that other threads may be running, parking, ending or replacing meanwhile: the
// reader side of set_identity()'s seqlock (task_impl.hpp). The id read before (acquire) and
// after (past an acquire fence) must match: then every identity field came from that task.
// The state read before and after must match too, and a waiting task must show its reason
// (a woken task clears it): then the wait fields belong to the state shown. Returns false if
// the slot holds no live task (it ended, or a new one is still being spawned into it).
bool read_task(Task* t, RawTask* out) noexcept {
  constexpr auto relaxed = std::memory_order_relaxed;
  for (int attempt = 1;; ++attempt) {
    const uint64_t id = std::atomic_ref<uint64_t>(t->id).load(std::memory_order_acquire);
    if (id == 0) return false;
    TaskState state = t->state.load(std::memory_order_acquire);
    if (!live(state)) return false;
    out->id = id;
    out->parent_id = std::atomic_ref<uint64_t>(t->parent_id).load(relaxed);
    out->site.file = std::atomic_ref<const char*>(t->site.file).load(relaxed);
    out->site.function = std::atomic_ref<const char*>(t->site.function).load(relaxed);
    out->site.line = std::atomic_ref<uint32_t>(t->site.line).load(relaxed);
    std::size_t n = 0;
    for (; n < detail::kLabelCapacity - 1; ++n) {
      const char c = std::atomic_ref<char>(t->label[n]).load(relaxed);
      if (c == '\0') break;
      out->label[n] = c;
    }
    out->label[n] = '\0';
    WaitReason reason = WaitReason::none;
    int64_t since = 0;
    if (state == TaskState::waiting) {
      reason = t->wait_reason;
      since = t->wait_since_ns;
    }
    acquire_fence();
    const TaskState state_after = t->state.load(relaxed);
    const uint64_t id_after = std::atomic_ref<uint64_t>(t->id).load(relaxed);
    const bool last = attempt == kReadAttempts;
    if (id_after != id) {
      if (last) return false;  // recycled again and again: whoever is there is too young
      continue;                // the slot was recycled: read the task that holds it now
    }
    const bool stable =
        state_after == state && !(state == TaskState::waiting && reason == WaitReason::none);
    if (!stable) {
      if (!last) continue;
      // A task switching state faster than a slot can be read: its identity is sound (the id
      // matched); show the latest state, and a waiting one without a reason as running (it was
      // running at some moment of the read).
      if (!live(state_after)) return false;
      state = state_after;
      if (state != TaskState::waiting || reason == WaitReason::none) {
        if (state == TaskState::waiting) state = TaskState::running;
        reason = WaitReason::none;
        since = 0;
      }
    }
    out->state = state;
    out->reason = reason;
    out->since_ns = since;
    return true;
  }
}

}  // namespace

namespace detail {
bool read_task_identity(Task* t, uint64_t* id, std::string* label, SourceSite* site) {
  RawTask r;
  if (!read_task(t, &r)) return false;
  *id = r.id;
  *label = r.label;
  *site = r.site;
  return true;
}
}  // namespace detail

namespace {

std::vector<TaskInfo> snapshot(Scheduler& s) {
  std::vector<RawTask> raw;
  s.for_each_task([&](Task* t) {
    RawTask r;
    if (read_task(t, &r)) raw.push_back(r);
  });
  // Read after the walk: every park whose time was read above happened before this.
  const int64_t now = coarse_now_ns();
  std::vector<TaskInfo> out;
  out.reserve(raw.size());
  for (const RawTask& r : raw) {
    TaskInfo info;
    info.id = r.id;
    info.parent_id = r.parent_id;
    info.label = r.label;
    info.site = r.site;
    info.state = r.state;
    info.wait_reason = r.reason;
    if (r.state == TaskState::waiting)
      info.waited = std::chrono::nanoseconds(std::max<int64_t>(0, now - r.since_ns));
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const TaskInfo& a, const TaskInfo& b) { return a.id < b.id; });
  return out;
}

// ---- text -------------------------------------------------------------------------------------

void appendf(std::string& out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string& out, const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (static_cast<std::size_t>(n) < sizeof buf) {
    out.append(buf, static_cast<std::size_t>(n));
    return;
  }
  std::string big(static_cast<std::size_t>(n) + 1, '\0');
  va_start(ap, fmt);
  std::vsnprintf(big.data(), big.size(), fmt, ap);
  va_end(ap);
  big.resize(static_cast<std::size_t>(n));
  out += big;
}

const char* plural(std::size_t n) { return n == 1 ? "" : "s"; }

std::string format_duration(std::chrono::nanoseconds d) {
  const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  char buf[48];
  if (ms < 1000)
    std::snprintf(buf, sizeof buf, "%lldms", ms);
  else if (ms < 60'000)
    std::snprintf(buf, sizeof buf, "%lld.%llds", ms / 1000, ms % 1000 / 100);
  else if (ms < 3'600'000)
    std::snprintf(buf, sizeof buf, "%lldm%llds", ms / 60'000, ms % 60'000 / 1000);
  else
    std::snprintf(buf, sizeof buf, "%lldh%lldm", ms / 3'600'000, ms % 3'600'000 / 60'000);
  return buf;
}

const char* or_default(const char* s, const char* dflt) { return s && *s ? s : dflt; }

// A group: same creation site (compared by content: one file's name may have several copies),
// same state, same wait reason.
struct GroupKey {
  SourceSite site;
  TaskState state;
  WaitReason reason;
  bool operator<(const GroupKey& o) const {
    if (int c = std::strcmp(or_default(site.file, ""), or_default(o.site.file, ""))) return c < 0;
    if (site.line != o.site.line) return site.line < o.site.line;
    if (int c = std::strcmp(or_default(site.function, ""), or_default(o.site.function, "")))
      return c < 0;
    if (state != o.state) return state < o.state;
    return reason < o.reason;
  }
};

void format_runtime(std::string& out, Scheduler& s, const std::vector<TaskInfo>& tasks) {
  std::size_t running = 0, runnable = 0, waiting = 0;
  std::map<GroupKey, std::vector<const TaskInfo*>> groups;
  for (const TaskInfo& t : tasks) {
    running += t.state == TaskState::running;
    runnable += t.state == TaskState::runnable;
    waiting += t.state == TaskState::waiting;
    groups[GroupKey{t.site, t.state, t.wait_reason}].push_back(&t);  // tasks come sorted by id
  }
  appendf(out, "myriad runtime %p: %u proc%s (%u host), %zu task%s: %zu running, %zu runnable, %zu waiting\n",
          static_cast<const void*>(s.runtime()), s.procs(), plural(s.procs()), s.host_procs(),
          tasks.size(), plural(tasks.size()), running, runnable, waiting);

  std::vector<std::pair<const GroupKey*, const std::vector<const TaskInfo*>*>> order;
  order.reserve(groups.size());
  for (const auto& [key, members] : groups) order.emplace_back(&key, &members);
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.second->size() > b.second->size();
  });
  for (const auto& [key, members] : order) {
    std::string what = to_string(key->state);
    if (key->state == TaskState::waiting) what = std::string("waiting on ") + to_string(key->reason);
    appendf(out, "\n%zu task%s %s, created at %s:%u", members->size(), plural(members->size()),
            what.c_str(), or_default(key->site.file, "?"), key->site.line);
    if (key->site.function && *key->site.function) appendf(out, " in %s", key->site.function);
    out += '\n';
    std::size_t shown = 0;
    for (const TaskInfo* t : *members) {
      if (shown++ == kShownPerGroup) {
        appendf(out, "    ... and %zu more\n", members->size() - kShownPerGroup);
        break;
      }
      appendf(out, "    task %" PRIu64, t->id);
      if (!t->label.empty()) appendf(out, " \"%s\"", t->label.c_str());
      if (t->parent_id)
        appendf(out, ", parent %" PRIu64, t->parent_id);
      else
        out += ", parent none";
      if (t->state == TaskState::waiting)
        appendf(out, ", waiting %s", format_duration(t->waited).c_str());
      out += '\n';
    }
  }
}

// ---- the signal path ----------------------------------------------------------------------

// The handler's only two actions, both async-signal-safe: count the request, post the
// semaphore. Neither object is ever destroyed (a signal may arrive at any time, even during
// static destruction).
sem_t g_dump_sem;
std::atomic<uint32_t> g_dump_requests{0};
static_assert(std::atomic<uint32_t>::is_always_lock_free);

extern "C" void on_dump_signal(int) {
  const int saved_errno = errno;
  g_dump_requests.fetch_add(1, std::memory_order_relaxed);
  sem_post(&g_dump_sem);
  errno = saved_errno;
}

struct SignalDump {
  std::mutex mu;  // serializes enable/disable
  bool sem_ready = false;
  bool enabled = false;
  int signo = 0;
  struct sigaction previous {};
  std::thread thread;
  std::atomic<bool> stop{false};
};

// Leaked on purpose: a joinable std::thread destroyed at exit would call std::terminate.
SignalDump& signal_dump() {
  static SignalDump* d = new SignalDump;
  return *d;
}

void dump_thread_main(SignalDump* d) {
  for (;;) {
    if (sem_wait(&g_dump_sem) != 0) continue;  // EINTR
    // Requests that arrived while the previous dump was written are served by this one.
    if (g_dump_requests.exchange(0, std::memory_order_acq_rel) > 0) write_task_dump(STDERR_FILENO);
    if (d->stop.load(std::memory_order_acquire)) return;
  }
}

void start_dump_thread(SignalDump& d) {
  if (!d.sem_ready) {
    if (sem_init(&g_dump_sem, 0, 0) != 0)
      throw Error(Errc::no_memory, "myriad: task dump: sem_init failed");
    d.sem_ready = true;
  }
  g_dump_requests.store(0, std::memory_order_relaxed);  // nothing left from an earlier enable
  d.stop.store(false, std::memory_order_relaxed);
  // The thread starts with every signal blocked, so process-directed signals (this one
  // included) go to threads that can take them, and a dump is never interrupted.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  try {
    d.thread = std::thread(dump_thread_main, &d);
  } catch (...) {
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    throw;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void stop_dump_thread(SignalDump& d) {
  d.stop.store(true, std::memory_order_release);
  sem_post(&g_dump_sem);
  d.thread.join();
}

}  // namespace

std::vector<TaskInfo> list_tasks(Runtime& rt) { return snapshot(rt.scheduler()); }

std::string dump_tasks(Runtime& rt) {
  Scheduler& s = rt.scheduler();
  std::vector<TaskInfo> tasks = snapshot(s);
  std::string out;
  format_runtime(out, s, tasks);
  return out;
}

std::string dump_all_tasks() {
  std::vector<std::string> sections;
  detail::for_each_scheduler([&](Scheduler* s) {
    std::string section;
    format_runtime(section, *s, snapshot(*s));
    sections.push_back(std::move(section));
    return true;
  });
  std::string out;
  appendf(out, "=== myriad task dump: %zu runtime%s ===\n", sections.size(), plural(sections.size()));
  for (const std::string& section : sections) {
    out += '\n';
    out += section;
  }
  out += "\n=== end of myriad task dump ===\n";
  return out;
}

void write_task_dump(int fd) noexcept {
  std::string text;
  try {
    text = dump_all_tasks();
  } catch (...) {
    text = "myriad: the task dump failed (out of memory)\n";
  }
  const char* p = text.data();
  std::size_t left = text.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void enable_task_dump_on_signal(int signo) {
  if (signo <= 0 || signo >= NSIG || signo == SIGKILL || signo == SIGSTOP || signo == SIGSEGV)
    throw Error(Errc::invalid_argument,
                "myriad: enable_task_dump_on_signal: signal " + std::to_string(signo) +
                    " cannot carry the task dump");
  SignalDump& d = signal_dump();
  std::lock_guard<std::mutex> g(d.mu);
  if (d.enabled && d.signo == signo) return;
  if (!d.enabled) start_dump_thread(d);
  struct sigaction sa {};
  sa.sa_handler = on_dump_signal;
  sigemptyset(&sa.sa_mask);
  // SA_ONSTACK: a runtime thread running a task is on that task's (small) stack; it has an
  // alternate signal stack (stack_guard), which this tiny handler may as well use.
  sa.sa_flags = SA_RESTART | SA_ONSTACK;
  struct sigaction previous {};
  if (sigaction(signo, &sa, &previous) != 0) {
    const int err = errno;
    if (!d.enabled) stop_dump_thread(d);
    throw Error(Errc::invalid_argument, std::string("myriad: enable_task_dump_on_signal: ") +
                                            std::strerror(err));
  }
  if (d.enabled) sigaction(d.signo, &d.previous, nullptr);  // moving to another signal
  d.previous = previous;
  d.signo = signo;
  d.enabled = true;
}

void disable_task_dump_on_signal() {
  SignalDump& d = signal_dump();
  std::lock_guard<std::mutex> g(d.mu);
  if (!d.enabled) return;
  sigaction(d.signo, &d.previous, nullptr);
  d.enabled = false;
  stop_dump_thread(d);
}

}  // namespace myriad
