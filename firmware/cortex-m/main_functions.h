// The sketch's two entry points, as in TFLM's examples: setup() once, then loop() forever.
// Arduino's core calls them itself; main.cc calls them on bare-metal builds.
#ifndef E2MICRO_MAIN_FUNCTIONS_H_
#define E2MICRO_MAIN_FUNCTIONS_H_

#include <cstdint>

// Checks the model against this TFLM build and model_settings.h and allocates the tensors.
// On any mismatch it prints why and leaves loop() doing nothing.
void setup();

// Gets an image, runs one inference and hands the scores to the responder.
void loop();

// One inference on image (int8 NHWC, kInputSize bytes, raw pixel - 128): scores gets the
// kCategoryCount int8 outputs. False (and a printed reason) when setup() failed or Invoke() did.
// For programs that feed images themselves (qemu/batch_main.cc).
bool Classify(const int8_t* image, int8_t* scores);

#endif  // E2MICRO_MAIN_FUNCTIONS_H_
