// What happens with a result: the default prints it to the console. A board that drives an
// LED or a display replaces result_responder.cc, keeping this interface.
#ifndef E2MICRO_RESULT_RESPONDER_H_
#define E2MICRO_RESULT_RESPONDER_H_

#include <cstdint>

#include "image_provider.h"

// Prints each class's dequantized logit and softmax probability, the predicted label, the
// inference time (0 = the board has no clock) and, when the image comes with expected scores,
// whether the model reproduced them. Returns the predicted class index.
int RespondToResult(const int8_t* scores, int count, uint32_t inference_us, const ImageInfo& info);

#endif  // E2MICRO_RESULT_RESPONDER_H_
