// setup() and loop() for TensorFlow Lite Micro (needs TFLM's headers and library).
// Laid out like TFLM's person_detection example; every check prints one clear line and stops.
#include "main_functions.h"

#include <cstdint>
#include <cstring>

#include "image_provider.h"
#include "model_data.h"
#include "model_ops.h"
#include "model_settings.h"
#include "one_model.h"
#include "platform.h"
#include "result_responder.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"
#if defined(CORTEX_M_GENERIC)
#include "tensorflow/lite/micro/cortex_m_generic/debug_log_callback.h"
#endif

#ifndef TFLITE_SCHEMA_VERSION  // some TFLM snapshots define it only in a header we do not include
#define TFLITE_SCHEMA_VERSION (3)
#endif

static_assert(E2MICRO_MODEL_OPS_ID == E2MICRO_MODEL_SETTINGS_ID,
              "model_ops.h and model_settings.h come from different conversions: copy all generated files "
              "of one `convert tflite` output");

namespace {

tflite::MicroInterpreter* interpreter = nullptr;
TfLiteTensor* input = nullptr;
TfLiteTensor* output = nullptr;
bool ready = false;

// Tensors live here. 16-byte alignment for CMSIS-NN; the size comes from model_settings.h,
// measured by `convert tflite` with the tflite-micro interpreter, plus a margin.
alignas(16) uint8_t tensor_arena[kTensorArenaSize];

bool SameScale(float a, float b) {
  const float d = a > b ? a - b : b - a;
  return d <= 1e-6f * (a > 0 ? a : -a);
}

// dims must be {1, d1, d2, ...}; prints the tensor's actual shape when it is not.
bool CheckTensor(const TfLiteTensor* t, const char* what, const int* dims, int rank, float scale,
                 int zero_point) {
  bool ok = t != nullptr && t->type == kTfLiteInt8 && t->dims->size == rank;
  for (int i = 0; ok && i < rank; ++i) ok = t->dims->data[i] == dims[i];
  if (!ok) {
    E2MicroPrintf("error: the model's %s tensor is not int8 [", what);
    for (int i = 0; i < rank; ++i) E2MicroPrintf(i ? ", %d" : "%d", dims[i]);
    E2MicroPrint("] as model_settings.h says; it is");
    if (t != nullptr) {
      E2MicroPrintf(" type %d [", static_cast<int>(t->type));
      for (int i = 0; i < t->dims->size; ++i) E2MicroPrintf(i ? ", %d" : "%d", t->dims->data[i]);
      E2MicroPrint("]");
    }
    E2MicroPrint(". Copy the model's own model_settings.h next to model_data.cc.\n");
    return false;
  }
  if (!SameScale(t->params.scale, scale) || t->params.zero_point != zero_point) {
    E2MicroPrintf("error: the model's %s quantization (zero point %d) differs from model_settings.h "
                  "(zero point %d); copy the model's own model_settings.h.\n",
                  what, static_cast<int>(t->params.zero_point), zero_point);
    return false;
  }
  return true;
}

}  // namespace

void setup() {
  tflite::InitializeTarget();  // first: Arduino ports open Serial here at their own baud rate
  E2MicroBoardInit();
#if defined(CORTEX_M_GENERIC)
  RegisterDebugLogCallback(E2MicroPrint);  // TFLM's own messages go to the same console
#endif

  const tflite::Model* model = tflite::GetModel(g_model_data);
  const int version = static_cast<int>(model->version());
  if (version != TFLITE_SCHEMA_VERSION || version != kModelSchemaVersion) {
    E2MicroPrintf("error: model schema version %d, but this TFLM build reads %d and model_settings.h "
                  "says %d; re-run `convert tflite` or update TFLM\n",
                  version, TFLITE_SCHEMA_VERSION, kModelSchemaVersion);
    return;
  }

  static ModelOpResolver resolver;  // exactly the ops the model uses (model_ops.h)
  if (RegisterModelOps(resolver) != kTfLiteOk) {
    E2MicroPrint("error: registering the model's ops failed (model_ops.h does not match this TFLM build)\n");
    return;
  }

  static tflite::MicroInterpreter static_interpreter(model, resolver, tensor_arena, kTensorArenaSize);
  interpreter = &static_interpreter;
  if (interpreter->AllocateTensors() != kTfLiteOk) {
    E2MicroPrintf("error: AllocateTensors() failed: the tensor arena is too small for this model "
                  "(kTensorArenaSize = %d bytes, %lu in use when it failed)\n",
                  kTensorArenaSize, static_cast<unsigned long>(interpreter->arena_used_bytes()));
    E2MicroPrint("       raise kTensorArenaSize in model_settings.h (TFLM builds differ in overhead)\n");
    return;
  }

  static const int kInputDims[4] = {1, kNumRows, kNumCols, kNumChannels};
  static const int kOutputDims[2] = {1, kCategoryCount};
  input = interpreter->input(0);
  output = interpreter->output(0);
  if (!CheckTensor(input, "input", kInputDims, 4, kInputScale, kInputZeroPoint) ||
      !CheckTensor(output, "output", kOutputDims, 2, kOutputScale, kOutputZeroPoint)) {
    return;
  }
  E2MicroPrintf("e2micro: model %u bytes, schema %d, %d ops registered, arena %lu of %d bytes used\n",
                g_model_data_len, version, kModelOpCount,
                static_cast<unsigned long>(interpreter->arena_used_bytes()), kTensorArenaSize);
  ready = true;
}

void loop() {
  if (!ready) return;  // setup() said why

  ImageInfo info = {"?", -1, nullptr};
  const ImageStatus status = GetImage(kNumCols, kNumRows, kNumChannels, input->data.int8, &info);
  if (status != kImageOk) {
    E2MicroPrintf("error: GetImage() failed (status %d)\n", static_cast<int>(status));
    return;
  }
  const uint32_t start = E2MicroMicros();
  if (interpreter->Invoke() != kTfLiteOk) {
    E2MicroPrint("error: Invoke() failed\n");
    return;
  }
  const uint32_t elapsed = E2MicroMicros() - start;
  RespondToResult(output->data.int8, kCategoryCount, elapsed, info);
}

bool Classify(const int8_t* image, int8_t* scores) {
  if (!ready) return false;  // setup() said why
  std::memcpy(input->data.int8, image, kInputSize);
  if (interpreter->Invoke() != kTfLiteOk) {
    E2MicroPrint("error: Invoke() failed\n");
    return false;
  }
  std::memcpy(scores, output->data.int8, kCategoryCount);
  return true;
}
