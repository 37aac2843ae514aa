// QEMU board clock (boards/qemu_mps.cc): nanoseconds of QEMU's virtual clock. Under
// `qemu-system-arm -icount shift=0` one executed instruction is exactly 1 ns, so differences of
// this clock count instructions (resolution: one SysTick tick, 40 ns at 25 MHz).
#ifndef E2MICRO_BOARDS_QEMU_MPS_H_
#define E2MICRO_BOARDS_QEMU_MPS_H_

#include <cstdint>

uint64_t QemuVirtualNanos();

#endif  // E2MICRO_BOARDS_QEMU_MPS_H_
