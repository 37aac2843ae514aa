/* The engine on an emulated Cortex-M (QEMU, semihosting): reads int8 images from in.bin in QEMU's
 * working directory, prints each image's int8 scores and the instructions e2m_invoke took.
 * Counting: run QEMU with -icount shift=0 (one instruction per virtual nanosecond); SysTick counts
 * the CPU clock, and a loop of known length calibrates ticks to instructions.
 * Stack: before the first call the PAINT bytes below main's stack pointer (less a margin for
 * paint()'s own frame) are filled with a pattern; after the last, the deepest byte no longer
 * holding it is how deep e2m_invoke (and the SysTick interrupt's frame) reached. */
#include <stdint.h>
#include <stdio.h>

#include "e2m_model.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

static uint32_t arena_words[(E2M_ARENA_BYTES + 3) / 4];
static int8_t image[E2M_INPUT_BYTES];
static volatile uint32_t wraps;

void arm_systick_isr(void); /* picolibc's weak vector-table entry */
void arm_systick_isr(void) { ++wraps; }

static uint64_t ticks(void) {
  uint32_t w, v;
  do {
    w = wraps;
    v = SYST_CVR;
  } while (w != wraps);
  return (uint64_t)w * 0x1000000u + (0xFFFFFFu - v);
}

#define PAINT 16384u  /* within the 64 KB stack the link gives (__stack_size) */
#define MARGIN 256u   /* paint()'s and stack_depth()'s own frames sit in here */

static uint8_t *stack_pointer(void) {
  uint8_t *sp;
  __asm volatile("mov %0, sp" : "=r"(sp));
  return sp;
}

static void __attribute__((noinline)) paint(volatile uint8_t *top) {
  uint32_t i;
  for (i = MARGIN; i < PAINT; ++i) top[-(int32_t)i] = 0xA5u;
}

static uint32_t __attribute__((noinline)) stack_depth(volatile const uint8_t *top) {
  uint32_t i;
  for (i = PAINT - 1u; i >= MARGIN; --i) /* from the bottom up: the first changed byte */
    if (top[-(int32_t)i] != 0xA5u) return i;
  return MARGIN; /* no deeper than the unpainted margin */
}

static void spin(uint32_t n) { /* 2 instructions per iteration */
  __asm volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n));
}

int main(void) {
  FILE *in = fopen("in.bin", "rb");
  int8_t out[E2M_OUTPUT_BYTES];
  uint64_t t0, cal;
  long n = 0;
  int i;
  if (in == NULL) {
    printf("error: cannot open in.bin\n");
    return 2;
  }
  SYST_RVR = 0xFFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 7u; /* CPU clock, interrupt on wrap, enabled */
  spin(1000u);    /* past the first reload */
  t0 = ticks();
  spin(5000000u);
  cal = ticks() - t0;
  printf("calibration %lu ticks per 10000000 instructions\n", (unsigned long)cal);
  printf("arena %u bytes\n", (unsigned)E2M_ARENA_BYTES);
  uint8_t *top = stack_pointer();
  paint(top);
  while (fread(image, 1, sizeof image, in) == sizeof image) {
    uint64_t dt;
    int rc;
    t0 = ticks();
    rc = e2m_invoke(image, out, (uint8_t *)arena_words);
    dt = ticks() - t0;
    if (rc != 0) {
      printf("error: e2m_invoke returned %d\n", rc);
      return 1;
    }
    printf("image %ld scores", n);
    for (i = 0; i < E2M_OUTPUT_BYTES; ++i) printf(" %d", out[i]);
    printf(" ticks %lu\n", (unsigned long)dt);
    ++n;
  }
  fclose(in);
  printf("stack %lu bytes deep at most\n", (unsigned long)stack_depth(top));
  printf("done %ld images\n", n);
  return 0;
}
