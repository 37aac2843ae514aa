// setup() and loop() for the e2micro engine (generated e2m_model.{h,c}: no TFLM, no interpreter):
// the same image provider, responder and board hooks as the TFLM sketch in ../cortex-m. Build it in
// place of main_functions.cc (see firmware/README.md, "The engine back end").
#include <cstdint>

#include "main_functions.h"
#include "image_provider.h"
#include "model_settings.h"
#include "platform.h"
#include "result_responder.h"
#include "sample_patch.h"
#include "e2m_model.h"

static_assert(E2M_INPUT_BYTES == kInputSize, "e2m_model.h and model_settings.h describe different models");
static_assert(E2M_OUTPUT_BYTES == kCategoryCount, "e2m_model.h and model_settings.h describe different models");
// Each generated header names its conversion (convert/model_id.py); e2m_model.h does when it was
// generated from a `convert tflite` output (not from a bare .tflite).
static_assert(E2MICRO_SAMPLE_PATCH_ID == E2MICRO_MODEL_SETTINGS_ID,
              "sample_patch.h and model_settings.h come from different conversions: copy all generated files "
              "of one `convert tflite` output");
#ifdef E2MICRO_E2M_MODEL_ID
static_assert(E2MICRO_E2M_MODEL_ID == E2MICRO_MODEL_SETTINGS_ID,
              "e2m_model.h and model_settings.h come from different conversions: run `convert engine` on the "
              "conversion whose model_settings.h you build with");
#endif

namespace {
alignas(16) uint8_t arena[E2M_ARENA_BYTES];
alignas(16) int8_t input[E2M_INPUT_BYTES];
int8_t scores[E2M_OUTPUT_BYTES];
}  // namespace

void setup() {
  E2MicroBoardInit();
  E2MicroPrintf("e2micro engine: weights %u bytes, arena %u bytes, input %u bytes\n",
                static_cast<unsigned>(E2M_WEIGHTS_BYTES), static_cast<unsigned>(E2M_ARENA_BYTES),
                static_cast<unsigned>(E2M_INPUT_BYTES));
}

void loop() {
  ImageInfo info = {"?", -1, nullptr};
  const ImageStatus status = GetImage(kNumCols, kNumRows, kNumChannels, input, &info);
  if (status != kImageOk) {
    E2MicroPrintf("error: GetImage() failed (status %d)\n", static_cast<int>(status));
    return;
  }
  const uint32_t start = E2MicroMicros();
  const int rc = e2m_invoke(input, scores, arena);
  if (rc != 0) {
    E2MicroPrintf("error: e2m_invoke() returned %d\n", rc);
    return;
  }
  RespondToResult(scores, kCategoryCount, E2MicroMicros() - start, info);
}
