// Checks the instruction count the QEMU boards report (boards/qemu_mps.cc): times a loop of exactly
// 2 * kIterations + 1 instructions (ldr; then subs, bne per iteration) three times. Under
// `qemu-system-arm -icount shift=0` each line must print that number plus the few instructions
// of the clock reads themselves. No TFLM needed.
#include <cstdint>

#include "boards/qemu_mps.h"
#include "platform.h"

constexpr unsigned long kIterations = 10000000;

int main() {
  E2MicroBoardInit();
  for (int i = 0; i < 3; ++i) {
    const uint64_t start = QemuVirtualNanos();
    __asm volatile("ldr r0, =10000000\n1: subs r0, r0, #1\n bne 1b\n" ::: "r0", "cc");
    const uint64_t took = QemuVirtualNanos() - start;
    E2MicroPrintf("loop of %lu instructions: %lu\n", 2 * kIterations + 1, static_cast<unsigned long>(took));
  }
  return 0;
}
