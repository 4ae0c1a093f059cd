// A test-only AMX emulator for machines whose CPU (or hypervisor) hides AMX: it catches the
// SIGILL of each tile instruction, decodes it from the Intel SDM encodings (not from the
// assembler, so a swapped operand or a wrong encoding in amx.cpp shows up), runs it on a
// per-thread software tile state, and resumes after it. Semantics follow the SDM: TDPBF16PS
// reads denormal inputs as zero, flushes denormal results, adds the odd then the even product
// of each pair; the int8 forms accumulate in wrapping int32. Tile state is per OS thread, as on
// the hardware, so a task that kept tiles across a switch would see another thread's tiles.
#pragma once

namespace amx_emulator {

// True when the CPU runs AMX itself (then nothing is installed).
bool real_amx() noexcept;
// Installs the SIGILL handler (process-wide; idempotent). Call only when !real_amx().
void install() noexcept;
// Whether the calling thread has a tile configuration loaded (ldtilecfg without tilerelease).
bool configured() noexcept;
// Tile instructions emulated so far, all threads.
long instructions() noexcept;

}  // namespace amx_emulator
