"""Tensor-arena size, measured with the real TFLM interpreter (not estimated): the smallest arena in
which tflite-micro's Python interpreter allocates the model, found by bisection.

With too small an arena, creating the interpreter (AllocateTensors) raises RuntimeError ("TFLM failed
to allocate tensors"). For some sizes well below the need it instead crashes the process (a kernel's
Prepare uses a tensor the allocator could not give it; seen at 50-60 KB for a 368 KB model), so the
probes run in a child process: a crash counts as "too small" and the search goes on in a new child.

The result equals the "Arena allocation total" that `print_allocations()` reported, which this used
to parse: that total is the tail (persistent) plus the head (planned tensors and scratch) sections,
each a multiple of 16 bytes, and the arena buffer itself is 16-byte aligned (new[]), so nothing less
than the total fits and the total does.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from e2micro.atomic import scratch_dir

from .errors import ConversionError
from .offline import captured_output

# Host-measured bytes are a little above a 32-bit MCU's (64-bit pointers in TFLM's structs); the
# margin covers the scratch buffers optimised kernels (CMSIS-NN) request and reference ones don't.
MARGIN_FRACTION, MARGIN_MIN = 0.10, 16 * 1024
PROBE_ARENA = 64 * 1024 * 1024  # the largest arena tried

# The child: bisects (lo fails, hi works) and prints "try N" before and "ok N"/"fail N" after each
# probe on its own copy of stdout; TFLM's log goes to /dev/null.
_CHILD = r"""
import os, sys
proto = os.fdopen(os.dup(1), "w", buffering=1)
null = os.open(os.devnull, os.O_WRONLY)
os.dup2(null, 1); os.dup2(null, 2)
from tflite_micro.python.tflite_micro import runtime
model = open(sys.argv[1], "rb").read()
lo, hi = int(sys.argv[2]), int(sys.argv[3])
def fits(n):
    proto.write(f"try {n}\n")
    try:
        runtime.Interpreter.from_bytes(model, arena_size=n)
    except RuntimeError:
        proto.write(f"fail {n}\n")
        return False
    proto.write(f"ok {n}\n")
    return True
if sys.argv[4] == "check" and not fits(hi):
    sys.exit(0)
while hi - lo > 1:
    mid = (lo + hi) // 2
    if fits(mid):
        hi = mid
    else:
        lo = mid
"""


def smallest_arena(model: bytes, limit: int = PROBE_ARENA, known_too_small: int = 0) -> int:
    """Smallest arena_size (bytes) for which TFLM allocates `model`, by bisection over
    (known_too_small, limit]."""
    lo, hi, mode = known_too_small, limit, "check"  # the first child first checks that `limit` is enough
    with scratch_dir("e2micro-arena") as work:
        path = Path(work) / "model.tflite"
        path.write_bytes(model)
        for _ in range(64):  # each round ends the search, or narrows it past a probe that crashed
            r = subprocess.run([sys.executable, "-I", "-c", _CHILD, str(path), str(lo), str(hi), mode],
                               capture_output=True, text=True, timeout=600)
            mode, trying = "bisect", None
            for line in r.stdout.splitlines():
                word, n = line.split()
                trying = int(n) if word == "try" else None
                if word == "ok":
                    hi = int(n)
                elif word == "fail":
                    lo = int(n)
            if r.returncode < 0 and trying is not None:
                lo = trying  # the child died on this probe (SIGSEGV): too small
            elif r.returncode != 0 or trying is not None:
                last = (r.stderr.strip().splitlines() or ["no output"])[-1][:200]
                raise ConversionError(f"the TFLM arena search failed (exit {r.returncode}): {last}")
            if lo >= limit:
                raise ConversionError(f"TFLM cannot allocate the model even in a {limit:,}-byte arena")
            if hi - lo <= 1:
                return hi
    raise ConversionError("the TFLM arena search did not converge")


def measure_arena(model: bytes, input_shape, input_dtype=np.int8) -> int:
    """Bytes of arena TFLM needs for `model`: the smallest it allocates in, checked by one invoke."""
    from tflite_micro.python.tflite_micro import runtime

    used = smallest_arena(model)
    try:  # the measured size must be enough on its own to run, not only to allocate
        with captured_output():
            it = runtime.Interpreter.from_bytes(model, arena_size=used)
            it.set_input(np.zeros(input_shape, input_dtype), 0)
            it.invoke()
    except RuntimeError as e:
        raise ConversionError(f"TFLM allocates the model in {used} arena bytes but fails to run with them ({e})") from None
    return used


def with_margin(used: int) -> int:
    return -(-max(int(used * (1 + MARGIN_FRACTION)), used + MARGIN_MIN) // 1024) * 1024
