#!/bin/sh
# For a machine with network and no TFLM tree: clone tflite-micro at the commit this firmware is
# tested with and let TFLM's own Makefile fetch its pinned downloads (CMSIS-NN, CMSIS_6,
# Cortex_DFP, flatbuffers, gemmlowp, ruy, kissfft, pigweed). firmware/cortex-m/cmake/tflm.cmake
# finds the result in build/third_party/tflite-micro by itself. Never run by the tests.
#   firmware/fetch_tflm.sh [DEST]
# Needs git, make, the arm-none-eabi toolchain (`make setup`), and a python3 with numpy and
# Pillow (TFLM's Makefile runs generate_cc_arrays.py while it parses): the project's .venv.
set -eu
COMMIT=90b983c2b3f1480642e040bbd2ddb37b998f3424   # = TFLM_COMMIT in cortex-m/cmake/tflm.cmake
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-$ROOT/build/third_party/tflite-micro}
GCC=$(command -v arm-none-eabi-gcc) || { echo "error: arm-none-eabi-gcc not found: run \`make setup\`" >&2; exit 1; }
[ -x "$ROOT/.venv/bin/python3" ] || { echo "error: $ROOT/.venv missing: run \`make setup\`" >&2; exit 1; }
if [ -e "$DEST" ]; then echo "error: $DEST exists; remove it or pass another DEST" >&2; exit 1; fi
TMP=$DEST.partial
rm -rf "$TMP"
git clone --quiet https://github.com/tensorflow/tflite-micro "$TMP"
git -C "$TMP" checkout --quiet "$COMMIT"
# TARGET_TOOLCHAIN_ROOT: use this toolchain instead of TFLM downloading its own GCC.
PATH="$ROOT/.venv/bin:$PATH" make -s -C "$TMP" -f tensorflow/lite/micro/tools/make/Makefile \
  TARGET=cortex_m_generic TARGET_ARCH=cortex-m55 OPTIMIZED_KERNEL_DIR=cmsis_nn \
  TARGET_TOOLCHAIN_ROOT="$(dirname "$GCC")/" third_party_downloads
mv "$TMP" "$DEST"
echo "TFLM $COMMIT with its downloads in $DEST"
