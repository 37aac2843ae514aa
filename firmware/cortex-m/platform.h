// Board hooks: where text goes and how time is measured. Weak defaults are in platform.cc;
// a board overrides any of them in its own file under boards/. No TFLM headers here, so CI
// compiles this with arm-none-eabi-g++ alone.
#ifndef E2MICRO_PLATFORM_H_
#define E2MICRO_PLATFORM_H_

#include <cstdint>

// Clocks, caches, console. Called first thing in setup(). Default: nothing.
void E2MicroBoardInit();

// Writes text to the console (serial port, semihosting, ...). Default: stdout.
void E2MicroPrint(const char* text);

// A free-running microsecond counter, or 0 on a board without one. Default: 0.
uint32_t E2MicroMicros();

// printf-style wrapper around E2MicroPrint. Integers and strings only: some embedded C
// libraries (newlib-nano) print nothing for %f, so floats are formatted by hand.
void E2MicroPrintf(const char* format, ...) __attribute__((format(printf, 1, 2)));

#endif  // E2MICRO_PLATFORM_H_
