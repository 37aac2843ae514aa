// e2micro_batch: the firmware (setup(), Classify(): TFLM with the board's kernels) on many images.
// Reads int8 patches (kInputSize bytes each, raw pixel - 128) from the host file
// e2micro_patches.bin in QEMU's working directory, runs each, and writes kCategoryCount int8 scores
// per patch to e2micro_scores.bin (semihosting). Prints one line per patch with the instructions
// it took when QEMU runs with `-icount shift=0` (otherwise virtual nanoseconds, not instructions).
// Exit code: 0 all patches run; 1 setup() or an inference failed; 2 the input file is bad.
#include <cstdint>
#include <cstdio>

#include "boards/qemu_mps.h"
#include "main_functions.h"
#include "model_settings.h"
#include "platform.h"

namespace {
alignas(16) int8_t image[kInputSize];
int8_t scores[kCategoryCount];

// newlib-nano's printf has no %llu.
void FormatU64(char* out, int size, uint64_t v) {
  const unsigned long high = static_cast<unsigned long>(v / 1000000000u);
  const unsigned long low = static_cast<unsigned long>(v % 1000000000u);
  if (high) {
    std::snprintf(out, size, "%lu%09lu", high, low);
  } else {
    std::snprintf(out, size, "%lu", low);
  }
}
}  // namespace

int main() {
  setup();
  std::FILE* in = std::fopen("e2micro_patches.bin", "rb");
  if (in == nullptr) {
    E2MicroPrint("error: cannot open e2micro_patches.bin in QEMU's working directory\n");
    return 2;
  }
  std::FILE* out = std::fopen("e2micro_scores.bin", "wb");
  if (out == nullptr) {
    E2MicroPrint("error: cannot create e2micro_scores.bin in QEMU's working directory\n");
    return 2;
  }
  int count = 0;
  while (true) {
    const size_t got = std::fread(image, 1, sizeof(image), in);
    if (got == 0) break;
    if (got != sizeof(image)) {
      E2MicroPrintf("error: e2micro_patches.bin ends inside patch %d (%u of %d bytes)\n", count,
                    static_cast<unsigned>(got), kInputSize);
      return 2;
    }
    const uint64_t start = QemuVirtualNanos();
    if (!Classify(image, scores)) return 1;
    const uint64_t took = QemuVirtualNanos() - start;
    if (std::fwrite(scores, 1, sizeof(scores), out) != sizeof(scores)) {
      E2MicroPrint("error: writing e2micro_scores.bin failed\n");
      return 2;
    }
    char text[24];
    FormatU64(text, sizeof(text), took);
    E2MicroPrintf("patch %d: %s instructions\n", count, text);
    ++count;
  }
  std::fclose(out);
  std::fclose(in);
  E2MicroPrintf("batch: %d patches\n", count);
  return count > 0 ? 0 : 2;
}
