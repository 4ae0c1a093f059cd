// What the C ABI's source files share (not exported: libmyriad.so exports only myriad_*).
#pragma once

#include <cstdint>
#include <new>

#include "myriad.h"
#include "myriad/errors.hpp"

namespace myriad {
class Runtime;
}

namespace myriad::capi {

// The runtime behind a myriad_runtime handle, or null for one that is not live. Nothing keeps
// it alive afterwards (using a runtime while it is destroyed is a race in the caller).
myriad::Runtime* lookup_runtime(uint64_t bits) noexcept;

// C status codes are the C++ error codes' values (checked by static_asserts in myriad_capi.cpp).
inline myriad_status to_status(myriad::Errc e) noexcept {
  return static_cast<myriad_status>(static_cast<int>(e));
}

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

}  // namespace myriad::capi
