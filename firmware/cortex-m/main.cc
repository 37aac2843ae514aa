// Bare-metal entry point (CMake builds). Arduino's core has its own main() and does not use this.
#include "main_functions.h"

int main() {
  setup();
  while (true) {
    loop();
  }
}
