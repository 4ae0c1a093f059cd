#include "myriad/runtime.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "scheduler.hpp"
#include "topology.hpp"

namespace myriad {
namespace {

// Fills in the defaults and rejects what cannot work, before any thread starts.
Config resolve(Config c) {
  if (c.procs == 0) {
    if (const char* env = std::getenv("MYRIAD_PROCS"); env && *env) {
      char* end = nullptr;
      errno = 0;
      unsigned long v = std::strtoul(env, &end, 10);
      if (errno != 0 || *end != '\0' || v == 0 || v > 4096)
        throw Error(Errc::invalid_argument,
                    std::string("myriad: MYRIAD_PROCS must be a number in 1..4096, got \"") +
                        env + "\"");
      c.procs = static_cast<unsigned>(v);
    } else {
      c.procs = detail::hardware_threads();
    }
  }
  if (c.procs > 4096) throw Error(Errc::invalid_argument, "myriad: Config::procs > 4096");
  if (c.host_procs > c.procs)
    throw Error(Errc::invalid_argument, "myriad: Config::host_procs > procs");
  if (c.stack_size == 0) c.stack_size = 64 * 1024;
  if (c.stack_size > detail::kMaxStackSize)
    throw Error(Errc::invalid_argument, "myriad: Config::stack_size > 1 GiB");
  if (c.stack_size < detail::kMinStackSize) c.stack_size = detail::kMinStackSize;
  c.stack_size = (c.stack_size + detail::kPageSize - 1) & ~(detail::kPageSize - 1);
  if (c.guard_pages != GuardPages::automatic && c.guard_pages != GuardPages::off)
    throw Error(Errc::invalid_argument, "myriad: bad Config::guard_pages");
  if (static_cast<unsigned>(c.on_task_exception) > 2)
    throw Error(Errc::invalid_argument, "myriad: bad Config::on_task_exception");
  return c;
}

}  // namespace

Runtime::Runtime(Config config)
    : sched_(std::make_unique<detail::Scheduler>(this, resolve(std::move(config)))) {}

Runtime::~Runtime() {
  if (current() == this) {
    std::fprintf(stderr, "myriad: ~Runtime called from one of its own tasks; aborting\n");
    std::abort();
  }
  sched_->shutdown();
}

// From a task of another runtime this is allowed: that task's thread simply blocks for the
// drain, like any blocking call.
void Runtime::shutdown() {
  if (current() == this)
    throw Error(Errc::would_deadlock, "myriad: a runtime cannot be shut down from its own task");
  sched_->shutdown();
}

Errc Runtime::spawn_erased(const detail::ClosureOps* ops, void* closure,
                           const SpawnOptions& opts, const SourceSite& site,
                           detail::JoinState** join_out) noexcept {
  return sched_->spawn(ops, closure, opts, site, join_out);
}

StepResult Runtime::step(std::chrono::nanoseconds budget) {
  if (budget.count() < 0) budget = std::chrono::nanoseconds(0);
  return sched_->step(budget, nullptr);
}

StepResult Runtime::run_until(const std::function<bool()>& done) {
  return sched_->step(std::chrono::nanoseconds(0), &done);
}

unsigned Runtime::procs() const noexcept { return sched_->procs(); }
unsigned Runtime::host_procs() const noexcept { return sched_->host_procs(); }
PollerKind Runtime::poller() const noexcept { return sched_->poller_kind(); }
Stats Runtime::stats() const noexcept { return sched_->stats(); }
const Config& Runtime::config() const noexcept { return sched_->config(); }

Runtime* Runtime::current() noexcept {
  detail::Task* t = detail::current_task();
  return t ? t->sched->runtime() : nullptr;
}

}  // namespace myriad
