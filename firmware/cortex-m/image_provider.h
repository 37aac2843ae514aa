// Where input images come from (the board hook for a camera or a file system).
// The default image_provider.cc serves the sample patch that `convert tflite` baked into
// sample_patch.cc, so a board without a camera still runs end to end and can check itself.
// A board with a camera replaces image_provider.cc, keeping this interface.
#ifndef E2MICRO_IMAGE_PROVIDER_H_
#define E2MICRO_IMAGE_PROVIDER_H_

#include <cstdint>

enum ImageStatus : int {
  kImageOk = 0,
  kImageWrongShape = 1,   // the caller asked for a shape this provider cannot deliver
  kImageUnavailable = 2,  // no frame (camera error, end of files, ...)
};

// What is known about the image just served; printed with the result.
struct ImageInfo {
  const char* source;             // e.g. "sample patch"
  int label;                      // known class index, or -1
  const int8_t* expected_scores;  // int8 outputs the converter computed for it, or nullptr
};

// Fills image_data (int8 NHWC, height x width x channels, raw RGB pixel - 128) and info.
ImageStatus GetImage(int image_width, int image_height, int channels, int8_t* image_data,
                     ImageInfo* info);

#endif  // E2MICRO_IMAGE_PROVIDER_H_
