// QEMU's mps2-an500 machine (a Cortex-M7): console and exit code through semihosting (newlib's
// librdimon), so the full firmware, TFLM included, runs on a PC:
//   qemu-system-arm -M mps2-an500 -nographic -semihosting -kernel e2micro_pcam.elf
#include "platform.h"

extern "C" void initialise_monitor_handles();

void E2MicroBoardInit() {
  static bool done = false;
  if (!done) initialise_monitor_handles();  // opens stdin/stdout/stderr on the host
  done = true;
}
