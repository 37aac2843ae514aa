// Arduino board hooks (any core: mbed, STM32duino, ...): console on Serial, Arduino's micros().
// firmware/arduino/make_sketch.sh copies this into the sketch as arduino_board.cpp.
#include <Arduino.h>

#include "platform.h"

void E2MicroBoardInit() {
  Serial.begin(115200);
  const unsigned long start = millis();
  while (!Serial && millis() - start < 4000) {
  }  // give a USB serial monitor up to 4 s to attach, then run without it
}

void E2MicroPrint(const char* text) { Serial.print(text); }

uint32_t E2MicroMicros() { return static_cast<uint32_t>(micros()); }
