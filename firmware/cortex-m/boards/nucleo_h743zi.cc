// NUCLEO-H743ZI / -H743ZI2 board hooks, at register level so they need neither HAL nor TFLM:
// console on USART3 (PD8/PD9, the ST-LINK virtual COM port, 115200 8N1), caches on, and the DWT
// cycle counter as the microsecond clock. The core stays at its reset clock, the 64 MHz HSI;
// for 480 MHz add STM32CubeH7's SystemClock_Config() and define E2MICRO_CPU_HZ and
// E2MICRO_UART_CLOCK_HZ (USART3's kernel clock, PCLK1) to match.
#include <cstdint>

#include "platform.h"

#ifndef E2MICRO_CPU_HZ
#define E2MICRO_CPU_HZ 64000000u  // HSI after reset
#endif
#ifndef E2MICRO_UART_CLOCK_HZ
#define E2MICRO_UART_CLOCK_HZ 64000000u  // PCLK1 after reset: the HSI, undivided
#endif
#ifndef E2MICRO_BAUD
#define E2MICRO_BAUD 115200u
#endif

namespace {

volatile uint32_t& Reg(uint32_t address) { return *reinterpret_cast<volatile uint32_t*>(address); }

// STM32H743 reference manual (RM0433) and the Cortex-M7 system control space.
constexpr uint32_t kRccAhb4Enr = 0x580244E0, kRccApb1LEnr = 0x580244E8;
constexpr uint32_t kGpioDModer = 0x58020C00, kGpioDAfrh = 0x58020C24;
constexpr uint32_t kUsart3Cr1 = 0x40004800, kUsart3Brr = 0x4000480C, kUsart3Isr = 0x4000481C,
                   kUsart3Tdr = 0x40004828;
constexpr uint32_t kScbCcr = 0xE000ED14, kScbCcsidr = 0xE000ED80, kScbCsselr = 0xE000ED84,
                   kScbIciallu = 0xE000EF50, kScbDcisw = 0xE000EF60;
constexpr uint32_t kDemcr = 0xE000EDFC, kDwtCtrl = 0xE0001000, kDwtCyccnt = 0xE0001004, kDwtLar = 0xE0001FB0;

bool console_ready = false;

void Barrier() { __asm volatile("dsb 0xF\n isb 0xF" ::: "memory"); }

// The CMSIS SCB_EnableICache/SCB_EnableDCache sequences: invalidate, then enable. TFLM runs
// several times faster from cached flash and AXI SRAM.
void EnableCaches() {
  Barrier();
  Reg(kScbIciallu) = 0;
  Barrier();
  Reg(kScbCcr) |= 1u << 17;
  Barrier();
  Reg(kScbCsselr) = 0;
  Barrier();
  const uint32_t ccsidr = Reg(kScbCcsidr);
  for (uint32_t set = (ccsidr >> 13) & 0x7FFFu;; --set) {
    for (uint32_t way = (ccsidr >> 3) & 0x3FFu;; --way) {
      Reg(kScbDcisw) = (set << 5) | (way << 30);
      if (way == 0) break;
    }
    if (set == 0) break;
  }
  Barrier();
  Reg(kScbCcr) |= 1u << 16;
  Barrier();
}

void InitConsole() {
  Reg(kRccAhb4Enr) |= 1u << 3;    // GPIOD
  Reg(kRccApb1LEnr) |= 1u << 18;  // USART3
  const uint32_t readback = Reg(kRccApb1LEnr);  // the clock must run before the peripheral is touched
  (void)readback;
  Reg(kGpioDModer) = (Reg(kGpioDModer) & ~(0xFu << 16)) | (0xAu << 16);  // PD8, PD9: alternate
  Reg(kGpioDAfrh) = (Reg(kGpioDAfrh) & ~0xFFu) | 0x77u;                  // AF7 = USART3
  Reg(kUsart3Cr1) = 0;
  Reg(kUsart3Brr) = (E2MICRO_UART_CLOCK_HZ + E2MICRO_BAUD / 2) / E2MICRO_BAUD;
  Reg(kUsart3Cr1) = (1u << 3) | (1u << 0);  // TE, UE
  console_ready = true;
}

void UartPut(char c) {
  while ((Reg(kUsart3Isr) & (1u << 7)) == 0) {
  }  // TXE: room in the transmit register
  Reg(kUsart3Tdr) = static_cast<uint8_t>(c);
}

}  // namespace

// Straight to the UART, so this works with any C library (newlib, picolibc).
void E2MicroPrint(const char* text) {
  if (!console_ready) InitConsole();  // printing before setup() still works
  for (; *text != '\0'; ++text) {
    if (*text == '\n') UartPut('\r');
    UartPut(*text);
  }
}

void E2MicroBoardInit() {
  EnableCaches();
  if (!console_ready) InitConsole();
  Reg(kDemcr) |= 1u << 24;  // TRCENA: enables the DWT
  Reg(kDwtLar) = 0xC5ACCE55;
  Reg(kDwtCyccnt) = 0;
  Reg(kDwtCtrl) |= 1u;
}

// Cycles accumulate in 64 bits, so the 32-bit counter's wrap (every 67 s at 64 MHz) is harmless
// as long as the clock is read at least that often.
uint32_t E2MicroMicros() {
  static uint32_t last = 0;
  static uint64_t cycles = 0;
  const uint32_t now = Reg(kDwtCyccnt);
  cycles += now - last;
  last = now;
  return static_cast<uint32_t>(cycles / (E2MICRO_CPU_HZ / 1000000u));
}
