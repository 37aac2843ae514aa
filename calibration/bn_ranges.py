"""Data-free activation ranges from batch-norm statistics.

Rule, per activation (k per kind of activation, `K`):
- conv outputs: [min_c(β_c − kγ_c), max_c(β_c + kγ_c)] of the pre-activation N(β, γ²), clipped to the
  activation's bounds ([0, 6] for ReLU6, [0, ∞) for ReLU); k = K["conv"];
- linear projections and residual adds: the same with k = K["residual"] (5 by default). The residual
  stream carries the heaviest tails (on real tissue, early adds reach about twice their 5·std
  bound; on the hard demo, images reach 7-11 std on projections and nearly every ReLU6 layer reaches
  its clip at 6, where k = 5 stops at ≈5.4);
- the masked map before pooling: the range of the unit it masks (the mask only adds zeros);
- the pooled mean and the logits: batch-norm statistics mix the spread across images with the far
  larger spread across positions, so a bound from them alone is several times too wide for the
  pooled features (one int8 step of the logits was ≈0.1). `head` says how they are bounded:
  "bound" (default) keeps the analytic Σ|w|·std bound, valid whatever the model; "probe" measures
  them on a few briefly distilled images (`distill.head_probe`: no real image), mean ± K["head"]·std
  across those images per channel, never wider than the analytic bound (K["pooled"]);
- the input: the contract, 0..255.
Every range is then widened to include 0 (see `RangesTable`). bench/quantization.py measures the
rule against ranges measured on images (bench/results/quantization.md): on the hard demo's test
split this default disagrees with the float model on clearly more images than image calibration;
`head="probe"` with k = 6 for "conv" and "residual" (the best data-free rule on a validation draw)
is within noise of it on hard test and tissue, better on the easy demo, passes the parity and
convert tests and converts in ≈30 s, but is not the default: it misses the issue's literal
"agreement ≥ image calibration" on the hard test split by 5 of 2,048 images (within one SE).
"""
from __future__ import annotations

import math

import torch

from .points import act_name, activation_points
from .ranges import RangesTable
from .stats import BOUNDS, activation_stats

K = {"conv": 5.0, "residual": 5.0, "head": 4.0, "pooled": 5.0}  # pooled: the analytic bound's k for the
# pooled mean and the logits (the probe's cap), apart from "conv" so that a wider conv k does not widen it
PROBE = {"count": 8, "steps": 10, "seed": 0}


def _span(mean: torch.Tensor, std: torch.Tensor, k: float) -> tuple[float, float]:
    return float((mean - k * std).min()), float((mean + k * std).max())


def _analytic(model, k: dict) -> dict[str, tuple[float, float]]:
    points = activation_points(model)
    stats = activation_stats(model, points)
    ranges: dict[str, tuple[float, float]] = {}
    for p in points:
        kind = p.kind
        if kind in ("input", "input_mask"):
            continue
        if kind == "conv":
            a, b = BOUNDS[act_name(p.module.act)]
            kk = k["residual"] if p.act == "none" else k["conv"]
            lo, hi = _span(p.module.bn_mean.double(), p.module.bn_std.double(), kk)
            ranges[p.key] = (min(max(lo, a), b), max(min(hi, b), a))
        elif kind == "head_mask":
            ranges[p.key] = ranges[p.inputs[0]]
        elif kind == "mean":
            lo, hi = _span(stats[p.key].mean, stats[p.key].std, k.get("pooled", k["conv"]))
            frac = float(model.head.mask.mask.mean())
            plo, phi = ranges[p.inputs[0]]
            ranges[p.key] = (max(lo, frac * plo), min(hi, frac * phi))
        elif kind == "add":
            ranges[p.key] = _span(stats[p.key].mean, stats[p.key].std, k["residual"])
        else:  # linear: mean ± k·Σ|w|·std, a bound for any correlation of the features
            ranges[p.key] = _span(stats[p.key].mean, stats[p.key].std, k.get("pooled", k["conv"]))
    return ranges


FLOOR = 0.25  # the probe's half-width is at least this fraction of the analytic bound's: a few
# images close to the mean must not clip real logits (the probe sees no structure of real tissue)


def _probed(ranges: dict, probe: dict[str, torch.Tensor], k: float) -> dict:
    out = dict(ranges)
    for key, v in probe.items():
        m, s = v.mean(0), v.std(0)
        blo, bhi = ranges[key]
        half = max(k * float(s.max()), FLOOR * (bhi - blo) / 2)
        lo = min(float(m.min()) - half, float(v.min()))
        hi = max(float(m.max()) + half, float(v.max()))
        out[key] = (max(lo, blo), min(hi, bhi))  # never wider than the analytic bound
    return out


def _check(ranges: dict) -> None:
    for key, (lo, hi) in ranges.items():
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"batch-norm range of '{key}' is not finite")


def bn_ranges(model, k: float | None = None, head: str = "bound", kinds: dict | None = None) -> RangesTable:
    """The default data-free table. `k` (`--bn-k`) overrides K["conv"] and K["pooled"]; head "probe"
    or "bound"; `kinds` overrides entries of K one by one (bench/quantization.py measures rules with it)."""
    from .distill import head_probe

    if set(kinds or {}) - set(K):
        raise ValueError(f"unknown kinds {sorted(set(kinds) - set(K))}: use {', '.join(K)}")
    kk = {**K, **(kinds or {}), **({"conv": k, "pooled": k} if k is not None else {})}
    ranges = _analytic(model, kk)
    _check(ranges)
    if head == "probe":
        ranges = _probed(ranges, head_probe(model, **PROBE), kk["head"])
    elif head != "bound":
        raise ValueError(f"head must be 'probe' or 'bound', got {head!r}")
    return RangesTable("bn", ranges, {"k": kk, "head": head, **({"probe": PROBE} if head == "probe" else {}),
                                      "rule": "batch-norm statistics: mean ± k·std per channel, k per kind, "
                                              "clipped by the activation; pooled mean and logits from a probe of "
                                              "a few distilled images" if head == "probe" else
                                              "batch-norm statistics: mean ± k·std per channel, k per kind, "
                                              "clipped by the activation"})
