// QEMU's Arm MPS boards (mps2-an386 = Cortex-M4, mps2-an500 = Cortex-M7, mps3-an547 = Cortex-M55):
// console, host files and exit code through semihosting (newlib's librdimon), and a clock from
// SysTick, which QEMU drives from its virtual clock. Run with `-icount shift=0` and that clock
// advances exactly 1 ns per executed instruction, so it counts instructions (not cycles: QEMU
// models no pipeline, caches or wait states). QEMU's semihosting clock follows the host instead.
//   qemu-system-arm -M mps2-an500 -nographic -semihosting -icount shift=0 -kernel e2micro_pcam.elf
#include "boards/qemu_mps.h"

#include <cstdint>

#include "platform.h"

#ifndef E2MICRO_SYSTICK_HZ
#define E2MICRO_SYSTICK_HZ 25000000u  // QEMU's mps2 SYSCLK; the AN547 build sets 32 MHz
#endif

extern "C" void initialise_monitor_handles();

namespace {

volatile uint32_t& Reg(uint32_t address) { return *reinterpret_cast<volatile uint32_t*>(address); }
constexpr uint32_t kSystCsr = 0xE000E010, kSystRvr = 0xE000E014, kSystCvr = 0xE000E018;
constexpr uint32_t kReload = 0xFFFFFFu;  // 24-bit down counter; each wrap is counted by the interrupt
volatile uint32_t wraps = 0;
bool clock_started = false;

void StartClock() {
  Reg(kSystRvr) = kReload;
  Reg(kSystCvr) = 0;
  Reg(kSystCsr) = 0x7;  // processor clock, interrupt on wrap, enable
  while (Reg(kSystCvr) == 0) {
  }  // the write above cleared the counter; it loads kReload on the first tick, without a wrap
  clock_started = true;
}

}  // namespace

extern "C" void SysTick_Handler() { wraps = wraps + 1; }

void E2MicroBoardInit() {
  static bool done = false;
  if (!done) {
    initialise_monitor_handles();  // opens stdin/stdout/stderr on the host
    StartClock();
  }
  done = true;
}

uint64_t QemuVirtualNanos() {
  if (!clock_started) StartClock();
  uint32_t before, value;
  do {  // re-read when the wrap interrupt came in between
    before = wraps;
    value = Reg(kSystCvr);
  } while (before != wraps);
  const uint64_t ticks = static_cast<uint64_t>(before) * (kReload + 1u) + (kReload - value);
  return ticks * 1000000000ull / E2MICRO_SYSTICK_HZ;
}

uint32_t E2MicroMicros() { return static_cast<uint32_t>(QemuVirtualNanos() / 1000u); }
