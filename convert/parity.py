"""Parity figures: float TFLite vs PyTorch, int8 (LiteRT reference kernels) vs PyTorch, TFLM vs
LiteRT, and bit-exact invariance of the int8 outputs under 90° input rotations."""
from __future__ import annotations

import numpy as np
import torch

from .runtimes import TFLM, LiteRT, pixels_to_int8


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[i:i + 16])).numpy() for i in range(0, len(x), 16)])


def rotations(x_int8: np.ndarray):
    """The int8 NHWC input rotated by 90°, 180°, 270° about the centre pixel."""
    return [np.ascontiguousarray(np.rot90(x_int8, k, axes=(1, 2))) for k in (1, 2, 3)]


def measure(model, float_tflite: bytes, int8_tflite: bytes, arena: int, x: np.ndarray,
            labels: np.ndarray | None = None, converted=None) -> dict:
    """All figures on images x (NCHW raw pixels). `model` is the PyTorch reference (the checkpoint's
    model); `converted` the plain model actually exported (after DFQ), which the float .tflite must
    reproduce exactly."""
    ref = torch_logits(model, x)
    conv_ref = ref if converted is None else torch_logits(converted, x)
    flt = LiteRT(float_tflite)(np.ascontiguousarray(x.transpose(0, 2, 3, 1)))
    lite = LiteRT(int8_tflite)
    micro = TFLM(int8_tflite, arena)
    scale, zp = lite.out["quantization"]
    xq = pixels_to_int8(x)
    q_lite, q_micro = lite(xq), micro(xq)
    deq = (q_lite.astype(np.float64) - zp) * scale
    lsb = np.abs(deq - ref) / scale
    rot_lite = [lite(xr) for xr in rotations(xq)]
    rot_micro = [micro(xr) for xr in rotations(xq)]
    exact = lambda base, rots: np.all([np.all(r == base, axis=1) for r in rots], axis=0)
    out = {
        "images": int(len(x)),
        "float_vs_torch_max_abs_logit": float(np.abs(flt - conv_ref).max()),
        "dfq_float_vs_torch_max_abs_logit": float(np.abs(conv_ref - ref).max()),
        "dfq_float_vs_torch_argmax_agreement": float((conv_ref.argmax(1) == ref.argmax(1)).mean()),
        "int8_vs_torch_argmax_agreement": float((q_lite.argmax(1) == ref.argmax(1)).mean()),
        "int8_vs_torch_max_abs_logit_lsb": float(lsb.max()),
        "int8_vs_torch_mean_abs_logit_lsb": float(lsb.mean()),
        "output_scale": float(scale),
        "tflm_vs_litert_max_lsb": int(np.abs(q_micro.astype(np.int32) - q_lite.astype(np.int32)).max()),
        "tflm_vs_litert_identical_rate": float(np.all(q_micro == q_lite, axis=1).mean()),
        "rot90_bitexact_rate_litert": float(exact(q_lite, rot_lite).mean()),
        "rot90_bitexact_rate_tflm": float(exact(q_micro, rot_micro).mean()),
    }
    if labels is not None:
        out["accuracy_torch"] = float((ref.argmax(1) == labels).mean())
        out["accuracy_float_tflite"] = float((flt.argmax(1) == labels).mean())
        out["accuracy_int8"] = float((q_lite.argmax(1) == labels).mean())
    return out


def held_ranges(model, x: np.ndarray, points) -> dict[str, list[float]]:
    """{activation key: [min, max]} the converted float model produces on images x: the values its
    int8 tensors have to hold (for the report; the ranges themselves never see an image)."""
    from calibration.points import INPUT, observing

    seen: dict[str, list[float]] = {INPUT: [float(x.min()), float(x.max())]}

    def record(key, t):
        lo, hi = float(t.min()), float(t.max())
        old = seen.get(key, [lo, hi])
        seen[key] = [min(old[0], lo), max(old[1], hi)]

    with observing(points, record), torch.no_grad():
        for i in range(0, len(x), 16):
            model(torch.from_numpy(x[i:i + 16]))
    return seen
