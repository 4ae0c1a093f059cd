// What the C ABI's source files share (not exported: libmyriad.so exports only myriad_*).
#pragma once

#include <cstdint>

namespace myriad {
class Runtime;
}

namespace myriad::capi {

// The runtime behind a myriad_runtime handle, or null for one that is not live. Nothing keeps
// it alive afterwards (using a runtime while it is destroyed is a race in the caller).
myriad::Runtime* lookup_runtime(uint64_t bits) noexcept;

}  // namespace myriad::capi
