// Default responder: class scores, label, time and a self-check on the serial console.
#include "result_responder.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "model_settings.h"
#include "platform.h"

namespace {

// "-1.234": fixed point by hand, because printf's %f is missing from some embedded C libraries.
void FormatFixed(char* out, int size, float value, int decimals) {
  long scale = 1;
  for (int i = 0; i < decimals; ++i) scale *= 10;
  const long q = std::lround(std::fabs(value) * static_cast<float>(scale));
  std::snprintf(out, size, "%s%ld.%0*ld", value < 0 && q != 0 ? "-" : "", q / scale, decimals, q % scale);
}

const char* Label(int index) {
  return index >= 0 && index < kCategoryCount ? kCategoryLabels[index] : "unknown";
}

}  // namespace

int RespondToResult(const int8_t* scores, int count, uint32_t inference_us, const ImageInfo& info) {
  float logits[kCategoryCount];
  float max_logit = -1e30f;
  int best = 0;
  for (int i = 0; i < count && i < kCategoryCount; ++i) {
    logits[i] = static_cast<float>(scores[i] - kOutputZeroPoint) * kOutputScale;
    if (logits[i] > max_logit) {
      max_logit = logits[i];
      best = i;
    }
  }
  float total = 0.0f;
  for (int i = 0; i < count && i < kCategoryCount; ++i) total += std::exp(logits[i] - max_logit);

  E2MicroPrintf("image: %s, label %s\n", info.source ? info.source : "?", Label(info.label));
  for (int i = 0; i < count && i < kCategoryCount; ++i) {
    char logit[16], prob[16];
    FormatFixed(logit, sizeof(logit), logits[i], 3);
    FormatFixed(prob, sizeof(prob), std::exp(logits[i] - max_logit) / total, 3);
    E2MicroPrintf("  %-8s logit %7s  p %s  (int8 %d)\n", Label(i), logit, prob, scores[i]);
  }
  E2MicroPrintf("prediction: %s\n", Label(best));
  if (inference_us > 0) {
    E2MicroPrintf("inference: %lu us\n", static_cast<unsigned long>(inference_us));
  } else {
    E2MicroPrint("inference: not timed (no E2MicroMicros() clock on this board)\n");
  }
  if (info.expected_scores != nullptr) {
    int worst = 0;
    for (int i = 0; i < count; ++i) {
      const int d = std::abs(scores[i] - info.expected_scores[i]);
      if (d > worst) worst = d;
    }
    if (worst == 0) {
      E2MicroPrint("check: int8 scores equal the converter's reference\n");
    } else {
      // CMSIS-NN and other optimised kernels may round differently from the reference kernels.
      E2MicroPrintf("check: MISMATCH: int8 scores differ from the converter's reference by up to %d LSB (expected", worst);
      for (int i = 0; i < count; ++i) E2MicroPrintf(" %d", info.expected_scores[i]);
      E2MicroPrint(")\n");
    }
  }
  return best;
}
