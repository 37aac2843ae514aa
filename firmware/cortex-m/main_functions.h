// The sketch's two entry points, as in TFLM's examples: setup() once, then loop() forever.
// Arduino's core calls them itself; main.cc calls them on bare-metal builds.
#ifndef E2MICRO_MAIN_FUNCTIONS_H_
#define E2MICRO_MAIN_FUNCTIONS_H_

// Checks the model against this TFLM build and model_settings.h and allocates the tensors.
// On any mismatch it prints why and leaves loop() doing nothing.
void setup();

// Gets an image, runs one inference and hands the scores to the responder.
void loop();

#endif  // E2MICRO_MAIN_FUNCTIONS_H_
