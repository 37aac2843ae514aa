// Vector table and reset handler for the CMake builds (newlib; see boards/*.ld). Arduino cores,
// the coralmicro SDK and picolibc's crt0 (used by the CI checks) bring their own.
#include <cstdint>
#include <cstdlib>

extern "C" {
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;  // from the linker script
void __libc_init_array();
int main();
void Reset_Handler();
void SysTick_Handler();
}

namespace {
void Hang() {
  while (true) {
  }
}
}  // namespace

// A board file that enables the SysTick interrupt defines the strong version (boards/qemu_mps.cc).
extern "C" __attribute__((weak)) void SysTick_Handler() { Hang(); }

// Initial stack pointer, then reset, NMI, HardFault, MemManage, BusFault, UsageFault, 4 reserved,
// SVCall, DebugMonitor, reserved, PendSV, SysTick. Nothing here enables an interrupt.
__attribute__((section(".isr_vector"), used)) void (*const g_vector_table[16])() = {
    reinterpret_cast<void (*)()>(&_estack), Reset_Handler, Hang, Hang, Hang, Hang, Hang, nullptr, nullptr,
    nullptr, nullptr, Hang, Hang, nullptr, Hang, SysTick_Handler,
};

// No loop-to-memcpy rewriting here: .data and .bss are not set up yet.
extern "C" __attribute__((optimize("no-tree-loop-distribute-patterns"))) void Reset_Handler() {
  // Full access to the FPU (CPACR CP10/CP11) before any hard-float code runs.
  *reinterpret_cast<volatile uint32_t*>(0xE000ED88) |= 0xFu << 20;
  __asm volatile("dsb 0xF\n isb 0xF" ::: "memory");
  for (uint32_t *src = &_sidata, *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
  for (uint32_t* dst = &_sbss; dst < &_ebss;) *dst++ = 0;
  __libc_init_array();  // C++ static constructors
  std::exit(main());    // firmware never returns; on QEMU (semihosting) this ends the run
}
