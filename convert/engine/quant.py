"""TFLM's Prepare-time integer parameters, computed exactly as TFLM computes them (float32 scales
widened to double, std::frexp, round half away from zero): any difference would change outputs."""
from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def _round_away(v: float) -> int:
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


def quantize_multiplier(d: float) -> tuple[int, int]:
    """tflite::QuantizeMultiplier (double rounding build): (int32 significand, shift)."""
    if d == 0.0:
        return 0, 0
    q, shift = math.frexp(d)
    q_fixed = _round_away(q * (1 << 31))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    return int(q_fixed), int(shift)


def f32(v) -> float:
    """A tensor's float32 scale as TFLM holds it, widened to double."""
    return float(np.float32(v))


def conv_multipliers(in_scale, w_scales, out_scale) -> tuple[list[int], list[int]]:
    """PopulateConvolutionQuantizationParams / fully-connected per channel: in·w / out in double."""
    ms, ss = [], []
    for w in np.atleast_1d(w_scales):
        m, s = quantize_multiplier(f32(in_scale) * f32(w) / f32(out_scale))
        ms.append(m)
        ss.append(s)
    return ms, ss


def _quantize_f32(scale, zero_point: int, f: float) -> int:
    tmp = np.float32(f) / np.float32(scale)  # float32 division, as in kernel_util.cc's Quantize
    return int(zero_point) + _round_away(float(tmp))


def activation_range(act: str, scale, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for an int8 output."""
    if act == "NONE":
        return INT8_MIN, INT8_MAX
    if act == "RELU":
        return max(INT8_MIN, _quantize_f32(scale, zero_point, 0.0)), INT8_MAX
    if act == "RELU6":
        return (max(INT8_MIN, _quantize_f32(scale, zero_point, 0.0)),
                min(INT8_MAX, _quantize_f32(scale, zero_point, 6.0)))
    if act == "RELU_N1_TO_1":
        return (max(INT8_MIN, _quantize_f32(scale, zero_point, -1.0)),
                min(INT8_MAX, _quantize_f32(scale, zero_point, 1.0)))
    raise ValueError(f"fused activation {act} is not supported by the engine")


def add_params(s1, s2, so) -> dict:
    """CalculateOpDataAdd (int8): left shift 20, input multipliers relative to twice the larger scale."""
    twice_max = 2 * f32(max(np.float32(s1), np.float32(s2)))
    m1, sh1 = quantize_multiplier(f32(s1) / twice_max)
    m2, sh2 = quantize_multiplier(f32(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << 20) * f32(so)))
    for sh in (sh1, sh2, sho):
        if sh > 0:
            raise ValueError("ADD multiplier ≥ 1: not a valid int8 ADD")
    return {"left_shift": 20, "m1": m1, "s1": sh1, "m2": m2, "s2": sh2, "mo": mo, "so": sho}


def mul_params(s1, s2, so) -> tuple[int, int]:
    return quantize_multiplier(f32(s1) * f32(s2) / f32(so))


def mean_params(s_in, s_out, n: int) -> tuple[int, int]:
    """reduce_common.cc + QuantizedMeanOrSum: the multiplier with 1/n folded in, as TFLM does."""
    m, s = quantize_multiplier(f32(s_in) / f32(s_out))
    shift = min(n.bit_length() - 1, 32, 31 + s)
    return int(((m << shift) // n) if shift >= 0 else ((m >> -shift) // n)), s - shift
