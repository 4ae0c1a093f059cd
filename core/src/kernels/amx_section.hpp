// The AMX section rule. Tile registers (8 × 1 KiB) and the tile configuration belong to the OS
// thread, and a user-level context switch saves neither: a task that parked or yielded with live
// tiles would find them clobbered by the next task on its thread, or — after migrating — would
// run tile instructions on a thread that never configured them (#UD / SIGILL). So an AMX section
// (ldtilecfg … tile work … tilerelease) is a leaf critical section: no park, yield, join or
// channel operation inside, ever. The kernel driver brackets a run of blocks with the table's
// begin()/end(), which call these; switch_away aborts with the task's identity when a switch is
// attempted inside. Outside tasks (a foreign thread) the thread cannot switch, so nothing to mark.
// tilerelease at the end also keeps context switches and signal frames of the thread small
// (XSAVE skips released tile state: 77 ns instead of 313 ns, FIELD-NOTES.md).
#pragma once

namespace myriad::kernels::detail {

void amx_section_enter() noexcept;  // after ldtilecfg
void amx_section_leave() noexcept;  // before tilerelease

}  // namespace myriad::kernels::detail
