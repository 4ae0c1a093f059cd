// The C ABI: translation, handle checks and error codes only — the logic lives in core/.
#include "myriad.h"

#include <cstddef>
#include <new>

#include "handle_table.hpp"
#include "myriad/runtime.hpp"
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

myriad_status to_status(Errc e) { return static_cast<myriad_status>(static_cast<int>(e)); }

// Every entry point runs its body through this: no exception crosses the ABI.
template <class F>
myriad_status guarded(F&& f) noexcept {
  try {
    return f();
  } catch (const myriad::Error& e) {
    return to_status(e.code());
  } catch (const std::bad_alloc&) {
    return MYRIAD_ENOMEM;
  } catch (...) {
    return MYRIAD_EINVAL;
  }
}

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
constexpr size_t kSpawnOptionsV1Size =
    offsetof(myriad_spawn_options, function) + sizeof(const char*);

}  // namespace

extern "C" {

uint32_t myriad_abi_version(void) { return MYRIAD_ABI_VERSION; }
const char* myriad_version(void) { return "0.1.0"; }

const char* myriad_strerror(int status) {
  if (status < 0 || status > static_cast<int>(Errc::would_deadlock)) return "unknown status";
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
    }
    return publish(runtimes(), new myriad::Runtime(std::move(c)), &out->bits);
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
  if (!out || out->size < sizeof(myriad_stats)) return MYRIAD_EINVAL;
  myriad::Runtime* r = runtimes().lookup(rt.bits);
  if (!r) return MYRIAD_EBADHANDLE;
  myriad::Stats s = r->stats();
  out->tasks_spawned = s.tasks_spawned;
  out->tasks_exited = s.tasks_exited;
  out->tasks_failed = s.tasks_failed;
  out->tasks_stolen = s.tasks_stolen;
  out->steal_operations = s.steal_operations;
  out->global_queue_takes = s.global_queue_takes;
  out->global_queue_spills = s.global_queue_spills;
  out->yields = s.yields;
  out->parks = s.parks;
  out->thread_parks = s.thread_parks;
  out->stacks_reserved = s.stacks_reserved;
  out->guarded_stacks = s.guarded_stacks;
  return MYRIAD_OK;
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

}  // extern "C"
