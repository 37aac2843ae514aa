// The generated headers compiled together must come from one `convert tflite` run: each names the
// checkpoint's sha256 (E2MICRO_<HEADER>_ID: its first 15 hex digits), and a mix of files from two
// conversions stops the build here instead of running one model with another's settings.
// model_ops.h needs TFLM's headers: main_functions.cc checks it against these.
#ifndef E2MICRO_ONE_MODEL_H_
#define E2MICRO_ONE_MODEL_H_

#include "model_data.h"
#include "model_settings.h"
#include "sample_patch.h"

static_assert(E2MICRO_MODEL_DATA_ID == E2MICRO_MODEL_SETTINGS_ID,
              "model_data.h and model_settings.h come from different conversions: copy all generated files "
              "of one `convert tflite` output");
static_assert(E2MICRO_SAMPLE_PATCH_ID == E2MICRO_MODEL_SETTINGS_ID,
              "sample_patch.h and model_settings.h come from different conversions: copy all generated files "
              "of one `convert tflite` output");

#endif  // E2MICRO_ONE_MODEL_H_
