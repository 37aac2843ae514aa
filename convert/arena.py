"""Tensor-arena size, measured with the real TFLM interpreter (not estimated)."""
from __future__ import annotations

import re

import numpy as np

from .errors import ConversionError
from .offline import captured_output

# Host-measured bytes are a little above a 32-bit MCU's (64-bit pointers in TFLM's structs); the
# margin covers the scratch buffers optimised kernels (CMSIS-NN) request and reference ones don't.
MARGIN_FRACTION, MARGIN_MIN = 0.10, 16 * 1024
PROBE_ARENA = 64 * 1024 * 1024


def measure_arena(model: bytes, input_shape, input_dtype=np.int8) -> int:
    """Bytes of arena TFLM allocates for `model` (RecordingMicroAllocator total after one invoke)."""
    from tflite_micro.python.tflite_micro import runtime

    with captured_output() as log:
        it = runtime.Interpreter.from_bytes(model, arena_size=PROBE_ARENA)
        it.set_input(np.zeros(input_shape, input_dtype), 0)
        it.invoke()
        it.print_allocations()
        text = log()
    m = re.search(r"Arena allocation total (\d+) bytes", text)
    if not m:
        raise ConversionError("TFLM did not report its arena use")
    used = int(m.group(1))
    try:  # the measured size must be enough on its own
        with captured_output():
            runtime.Interpreter.from_bytes(model, arena_size=used).invoke()
    except RuntimeError as e:
        raise ConversionError(f"TFLM reported {used} arena bytes but fails with them ({e})") from None
    return used


def with_margin(used: int) -> int:
    return -(-max(int(used * (1 + MARGIN_FRACTION)), used + MARGIN_MIN) // 1024) * 1024
