// Runs the TFLM-free firmware parts on an emulated Cortex-M (QEMU, semihosting): the generated
// model and sample arrays, the image provider and the responder. Exit code 0 = every check passed.
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "image_provider.h"
#include "model_data.h"
#include "model_settings.h"
#include "one_model.h"
#include "platform.h"
#include "result_responder.h"
#include "sample_patch.h"

namespace {

int failures = 0;

void Check(bool ok, const char* what) {
  E2MicroPrintf("%s: %s\n", ok ? "ok" : "FAILED", what);
  if (!ok) ++failures;
}

uint32_t Read32(const unsigned char* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24; }

// The flatbuffer's root table, field 0 (Model.version).
uint32_t SchemaVersion(const unsigned char* model) {
  const unsigned char* table = model + Read32(model);
  const unsigned char* vtable = table - static_cast<int32_t>(Read32(table));
  const unsigned offset = vtable[4] | vtable[5] << 8;
  return offset ? Read32(table + offset) : 0;
}

alignas(16) int8_t image[kInputSize];

}  // namespace

int main() {
  E2MicroBoardInit();
  E2MicroPrintf("model_data: %u bytes at 0x%08lx\n", g_model_data_len,
                static_cast<unsigned long>(reinterpret_cast<uintptr_t>(g_model_data)));
  Check(reinterpret_cast<uintptr_t>(g_model_data) % 16 == 0, "g_model_data is 16-byte aligned");
  Check(std::memcmp(g_model_data + 4, "TFL3", 4) == 0, "g_model_data holds a .tflite flatbuffer (TFL3)");
  Check(SchemaVersion(g_model_data) == static_cast<uint32_t>(kModelSchemaVersion),
        "schema version in model_data.cc equals kModelSchemaVersion");

  ImageInfo info = {nullptr, -2, nullptr};
  Check(GetImage(kNumCols, kNumRows, kNumChannels, image, &info) == kImageOk, "GetImage() serves the sample patch");
  Check(std::memcmp(image, g_sample_patch, kInputSize) == 0, "the image equals g_sample_patch");
  Check(info.label == kSamplePatchLabel && info.expected_scores != nullptr, "ImageInfo carries label and expected scores");
  Check(GetImage(kNumCols + 1, kNumRows, kNumChannels, image, &info) == kImageWrongShape,
        "GetImage() refuses a shape other than model_settings.h's");

  int8_t scores[kCategoryCount];
  std::memcpy(scores, kSamplePatchExpected, sizeof(scores));
  int best = 0;
  for (int i = 1; i < kCategoryCount; ++i) best = scores[i] > scores[best] ? i : best;
  E2MicroPrint("--- responder, expected scores ---\n");
  Check(RespondToResult(scores, kCategoryCount, 1234, info) == best, "responder predicts the arg-max class");
  scores[0] = static_cast<int8_t>(scores[0] == 127 ? 126 : scores[0] + 1);
  E2MicroPrint("--- responder, scores off by one ---\n");
  RespondToResult(scores, kCategoryCount, 0, info);

  E2MicroPrintf("host_check: %s\n", failures == 0 ? "all checks passed" : "FAILED");
  return failures == 0 ? 0 : 1;
}
