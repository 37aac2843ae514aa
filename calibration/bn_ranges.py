"""Data-free activation ranges from batch-norm statistics.

Rule, per activation (k = `k`, default 5: real activations have heavier tails than a normal;
bench/quantization.py measured 3–8 and 5 kept the int8 model closest to the float one):
- conv outputs: [min_c(β_c − kγ_c), max_c(β_c + kγ_c)] of the pre-activation N(β, γ²), clipped to the
  activation's bounds ([0, 6] for ReLU6, [0, ∞) for ReLU);
- residual adds: mean ± k·std of the sum, per channel (`stats.py`), min and max over channels;
- the masked map before pooling: the range of the unit it masks (the mask only adds zeros);
- the pooled mean: mean ± k·std of `stats.py`'s pooled statistics, inside [0, mask fraction × the
  pooled unit's upper bound];
- logits: mean ± k·Σ|w|·std through the classifier (a bound for any correlation of the features);
- the input: the contract, 0..255.
Every range is then widened to include 0 (see `RangesTable`).
"""
from __future__ import annotations

import math

import torch

from .points import INPUT, act_name, activation_points
from .ranges import RangesTable
from .stats import BOUNDS, activation_stats


def _span(mean: torch.Tensor, std: torch.Tensor, k: float) -> tuple[float, float]:
    return float((mean - k * std).min()), float((mean + k * std).max())


def bn_ranges(model, k: float = 5.0) -> RangesTable:
    points = activation_points(model)
    stats = activation_stats(model, points)
    ranges: dict[str, tuple[float, float]] = {}
    for p in points:
        kind = p.onnx_ops[0] if p.onnx_ops else None
        if p.key in (INPUT, "input_mask"):
            continue
        if kind == "Conv":
            lo, hi = _span(p.module.bn_mean.double(), p.module.bn_std.double(), k)
            a, b = BOUNDS[act_name(p.module.act)]
            ranges[p.key] = (min(max(lo, a), b), max(min(hi, b), a))
        elif p.key == "head.mask":
            ranges[p.key] = ranges[p.inputs[0]]
        elif kind == "ReduceMean":
            lo, hi = _span(stats[p.key].mean, stats[p.key].std, k)
            frac = float(model.head.mask.mask.mean())
            plo, phi = ranges[p.inputs[0]]
            ranges[p.key] = (max(lo, frac * plo), min(hi, frac * phi))
        else:  # Add, Gemm
            ranges[p.key] = _span(stats[p.key].mean, stats[p.key].std, k)
    for key, (lo, hi) in ranges.items():
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"batch-norm range of '{key}' is not finite")
    return RangesTable("bn", ranges, {"k": k, "rule": "batch-norm statistics: mean ± k·std per channel, "
                                                      "clipped by the activation, min/max over channels"})
