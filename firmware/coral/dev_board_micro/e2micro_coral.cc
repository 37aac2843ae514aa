// e2micro on the Coral Dev Board Micro (i.MX RT1176 + Edge TPU), coralmicro SDK, FreeRTOS.
// The model is the edgetpu_compiler output as a C array (model_edgetpu_data.cc, written by
// `convert edgetpu ... --firmware firmware/coral/dev_board_micro`): one edgetpu-custom-op, which
// TFLM hands to the Edge TPU. The image provider (the sample patch), the responder and
// model_settings.h are firmware/cortex-m's, so the output matches the Cortex-M sketch's.
#include <cstdio>

#include "libs/base/led.h"
#include "libs/base/timer.h"
#include "libs/tensorflow/utils.h"
#include "libs/tpu/edgetpu_manager.h"
#include "libs/tpu/edgetpu_op.h"
#include "third_party/freertos_kernel/include/FreeRTOS.h"
#include "third_party/freertos_kernel/include/task.h"
#include "third_party/tflite-micro/tensorflow/lite/micro/micro_error_reporter.h"
#include "third_party/tflite-micro/tensorflow/lite/micro/micro_interpreter.h"
#include "third_party/tflite-micro/tensorflow/lite/micro/micro_mutable_op_resolver.h"

#include "image_provider.h"
#include "model_edgetpu_data.h"
#include "model_settings.h"
#include "one_model.h"  // firmware/cortex-m's generated headers come from one conversion
#include "platform.h"
#include "result_responder.h"

#ifndef TFLITE_SCHEMA_VERSION  // older TFLM snapshots define it in a header not included here
#define TFLITE_SCHEMA_VERSION (3)
#endif

#ifdef E2MICRO_MODEL_EDGETPU_DATA_ID  // absent when `convert edgetpu` was given a bare .tflite
static_assert(E2MICRO_MODEL_EDGETPU_DATA_ID == E2MICRO_MODEL_SETTINGS_ID,
              "model_edgetpu_data.h and firmware/cortex-m's model_settings.h come from different conversions: run "
              "`convert edgetpu` on the checkpoint whose sources are in firmware/cortex-m");
#endif

// The board's microsecond timer for the responder (platform.h's default has no clock).
uint32_t E2MicroMicros() { return static_cast<uint32_t>(coralmicro::TimerMicros()); }

namespace coralmicro {
namespace {

// kTensorArenaSize was measured for the CPU model; the compiled one needs less (its tensors
// live on the Edge TPU), so this is ample. 64 MB of SDRAM leave room.
STATIC_TENSOR_ARENA_IN_SDRAM(tensor_arena, kTensorArenaSize);

bool InputMatches(const TfLiteTensor* t) {
  return t->type == kTfLiteInt8 && t->dims->size == 4 && t->dims->data[0] == 1 && t->dims->data[1] == kNumRows &&
         t->dims->data[2] == kNumCols && t->dims->data[3] == kNumChannels;
}

void Main() {
  printf("e2micro on the Coral Dev Board Micro: model_edgetpu_data.cc, %u bytes\r\n", g_model_edgetpu_data_len);
  LedSet(Led::kStatus, true);

  // The Edge TPU stays powered while this context lives.
  auto tpu_context = EdgeTpuManager::GetSingleton()->OpenDevice();
  if (!tpu_context) {
    printf("error: could not open the Edge TPU\r\n");
    return;
  }
  const tflite::Model* model = tflite::GetModel(g_model_edgetpu_data);
  if (model->version() != TFLITE_SCHEMA_VERSION) {
    printf("error: model schema version %d, this TFLM reads %d\r\n", static_cast<int>(model->version()),
           TFLITE_SCHEMA_VERSION);
    return;
  }
  tflite::MicroErrorReporter error_reporter;
  tflite::MicroMutableOpResolver<1> resolver;  // everything mapped: the one custom op
  resolver.AddCustom(kCustomOp, RegisterCustomOp());
  tflite::MicroInterpreter interpreter(model, resolver, tensor_arena, kTensorArenaSize, &error_reporter);
  if (interpreter.AllocateTensors() != kTfLiteOk) {
    printf("error: AllocateTensors() failed (kTensorArenaSize = %d bytes; was the whole model compiled for "
           "the Edge TPU? see model_edgetpu.log)\r\n", kTensorArenaSize);
    return;
  }
  TfLiteTensor* input = interpreter.input(0);
  TfLiteTensor* output = interpreter.output(0);
  if (!InputMatches(input) || output->type != kTfLiteInt8) {
    printf("error: the compiled model's input is not int8 [1, %d, %d, %d] as model_settings.h says\r\n",
           kNumRows, kNumCols, kNumChannels);
    return;
  }
  printf("arena: %u of %d bytes used\r\n", static_cast<unsigned>(interpreter.arena_used_bytes()), kTensorArenaSize);

  while (true) {
    ImageInfo info = {"?", -1, nullptr};
    if (GetImage(kNumCols, kNumRows, kNumChannels, input->data.int8, &info) != kImageOk) {
      printf("error: GetImage() failed\r\n");
    } else {
      const uint64_t start = TimerMicros();
      if (interpreter.Invoke() != kTfLiteOk) {
        printf("error: Invoke() failed\r\n");
      } else {
        RespondToResult(output->data.int8, kCategoryCount, static_cast<uint32_t>(TimerMicros() - start), info);
      }
    }
    vTaskDelay(pdMS_TO_TICKS(1000));
  }
}

}  // namespace
}  // namespace coralmicro

extern "C" void app_main(void* param) {
  (void)param;
  coralmicro::Main();
  vTaskSuspend(nullptr);
}
