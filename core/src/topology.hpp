// Machine topology through hwloc. Today: how many hardware threads to run procs on.
#pragma once

namespace myriad::detail {

// Processing units hwloc reports (allowed by the process's cpuset); at least 1.
unsigned hardware_threads() noexcept;

}  // namespace myriad::detail
