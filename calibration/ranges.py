"""Ranges tables: one (min, max) per activation point, the only input int8 quantization needs.

A table is keyed by activation-point names (see `points.py`) and says how it was made. The input
contract is fixed whatever the method: raw pixels 0..255, i.e. int8 scale 1 and zero point −128.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .points import INPUT, Point, activation_points, observing

PIXELS = (0.0, 255.0)
CONTRACT = {INPUT: PIXELS, "input_mask": PIXELS}  # the mask multiplies raw pixels by 0 or 1


@dataclass
class RangesTable:
    method: str
    ranges: dict[str, tuple[float, float]]
    notes: dict = field(default_factory=dict)

    def __post_init__(self):
        fixed = {}
        for k, (lo, hi) in self.ranges.items():
            lo, hi = float(lo), float(hi)
            if not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"range of '{k}' is not finite ({lo}, {hi})")
            # int8 needs 0 exactly representable, and a non-empty range
            lo, hi = min(lo, 0.0), max(hi, 0.0)
            if hi - lo < 1e-6:
                hi = lo + 1e-6
            fixed[k] = (lo, hi)
        self.ranges = {**fixed, **CONTRACT}

    def to_dict(self) -> dict:
        return {"method": self.method, "notes": self.notes,
                "ranges": {k: [lo, hi] for k, (lo, hi) in self.ranges.items()}}


def observe(model, batches, points: list[Point] | None = None) -> tuple[dict[str, tuple[float, float]], int]:
    """({key: global (min, max)}, images seen) over the batches (streaming: nothing stored)."""
    points = points or activation_points(model)
    lo = {p.key: math.inf for p in points}
    hi = {p.key: -math.inf for p in points}

    def record(key, t):
        lo[key] = min(lo[key], float(t.min()))
        hi[key] = max(hi[key], float(t.max()))

    n = 0
    with observing(points, record), torch.no_grad():
        for x in batches:
            record(INPUT, x)
            model(x)
            n += len(x)
    if n == 0:
        raise ValueError("no calibration images")
    return {k: (lo[k], hi[k]) for k in lo}, n


def from_data(model, batches, source: str) -> RangesTable:
    """Ranges measured on real images: min/max over all images and positions."""
    ranges, n = observe(model, batches)
    return RangesTable("data", ranges, {"source": source, "images": n, "rule": "global min/max over the images"})

