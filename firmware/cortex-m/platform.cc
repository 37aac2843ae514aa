// Weak default board hooks (see platform.h). A board file defines the strong versions.
#include "platform.h"

#include <cstdarg>
#include <cstdio>

__attribute__((weak)) void E2MicroBoardInit() {}

__attribute__((weak)) void E2MicroPrint(const char* text) {
  std::fputs(text, stdout);
  std::fflush(stdout);
}

__attribute__((weak)) uint32_t E2MicroMicros() { return 0; }

void E2MicroPrintf(const char* format, ...) {
  char line[256];  // longer lines are cut, never overrun
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof(line), format, args);
  va_end(args);
  E2MicroPrint(line);
}
