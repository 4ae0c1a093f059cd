// The process-wide list of live runtimes (schedulers), oldest first. Used where something has
// no task to say which runtime it belongs to: a timer made by a foreign thread (the oldest
// runtime), the deadlock check (every runtime must be asleep) and the task dump on a signal.
#pragma once

#include <functional>

namespace myriad::detail {

class Scheduler;

void register_scheduler(Scheduler* s);
void unregister_scheduler(Scheduler* s) noexcept;
// Calls fn for each live scheduler, oldest first, with the registry lock held: fn must not
// create or destroy runtimes. Stops early when fn returns false.
void for_each_scheduler(const std::function<bool(Scheduler*)>& fn);

}  // namespace myriad::detail
