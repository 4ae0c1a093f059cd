#include "topology.hpp"

#include <hwloc.h>

#include <thread>

namespace myriad::detail {

unsigned hardware_threads() noexcept {
  static const unsigned cached = [] {
    hwloc_topology_t topo;
    int n = -1;
    if (hwloc_topology_init(&topo) == 0) {
      if (hwloc_topology_load(topo) == 0) n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
      hwloc_topology_destroy(topo);
    }
    if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
    return n > 0 ? static_cast<unsigned>(n) : 1u;
  }();
  return cached;
}

}  // namespace myriad::detail
