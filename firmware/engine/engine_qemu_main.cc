// The engine sketch on QEMU (semihosting): setup(), one loop(), exit so the run ends.
#include "main_functions.h"

int main() {
  setup();
  loop();
  return 0;
}
