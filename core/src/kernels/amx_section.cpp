#include "kernels/amx_section.hpp"

#include "proc.hpp"

namespace myriad::kernels::detail {

// current_machine() is read once per section: nothing inside may switch, so the thread (and
// its Machine) cannot change between enter and leave.
void amx_section_enter() noexcept {
  if (myriad::detail::Machine* m = myriad::detail::current_machine()) m->amx_section = true;
}

void amx_section_leave() noexcept {
  if (myriad::detail::Machine* m = myriad::detail::current_machine()) m->amx_section = false;
}

}  // namespace myriad::kernels::detail
