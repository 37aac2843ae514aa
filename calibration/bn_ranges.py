"""Data-free activation ranges from batch-norm statistics and the probe (no real image is read).

Rule, per activation (k per kind of activation, `K`), with probe="tails" (the default):
- conv outputs: [min_c(β_c − kγ_c), max_c(β_c + kγ_c)] of the pre-activation N(β, γ²), clipped to the
  activation's bounds ([0, 6] for ReLU6, [0, ∞) for ReLU); k = K["conv"] for ReLU/ReLU6 units,
  K["residual"] for the linear projections;
- residual adds: mean ± K["residual"]·std per channel as measured on the probe images, because the
  two branches are correlated (batch-norm statistics only give each branch's own spread);
- then every conv output and add is widened to cover what the probe images themselves reached:
  the tails are heavy, and clipping a rare large value is a systematic error that survives pooling,
  where rounding noise mostly averages out;
- the masked map before pooling: the range of the unit it masks (the mask only adds zeros);
- the pooled mean: the analytic bound, mean ± K["pooled"]·std of the unmasked units, capped by the
  masked map's analytic range times the disc's share of the grid. Its int8 step is tiny either way,
  so it is never narrowed to the probe (narrowing it clipped real features);
- the logits: mean ± K["head"]·std across the probe images per class, never narrower than FLOOR of
  the analytic Σ|w|·std bound's width and never wider than that bound (several times too wide alone);
- the input: the contract, 0..255.
Every range is then widened to include 0 (see `RangesTable`). probe="head" uses the probe only for
the pooled mean and logits, with the adds from independent branches and no tails (with
kinds={"residual": 6} it is the previous default); probe="none" is the analytic rule alone (the
logits and pooled mean at their bounds).

Why this rule: bench/range_rules.py compared fixed candidate rules on each model's validation draw
(never a test split or the tissue tiles) over a pool of ten models; this one had the lowest
geometric mean of mean |Δlogit| relative to image calibration (`--held-out` checks it on the same
models' test splits: close to image calibration, not better). Figures and the exploratory
measurements behind the probe's uses: README (Data-free quantization), bench/results/range_rules.md
and bench/results/quantization.md.
"""
from __future__ import annotations

import math

import torch

from .points import act_name, activation_points
from .ranges import RangesTable
from .stats import BOUNDS, activation_stats

K = {"conv": 6.0, "residual": 5.0, "head": 4.0, "pooled": 5.0}  # pooled: the analytic bound's k for the
# pooled mean and the logits, apart from "conv" so that a wider conv k does not widen them
PROBE = {"count": 8, "steps": 10, "seed": 0}
PROBE_MODES = ("tails", "head", "none")
FLOOR = 0.25  # the logits' probed half-width is at least this fraction of the analytic bound's: a few
# distilled images close to the mean must not clip real logits (the probe sees no structure of real tissue)


def _span(mean: torch.Tensor, std: torch.Tensor, k: float) -> tuple[float, float]:
    return float((mean - k * std).min()), float((mean + k * std).max())


def analytic_ranges(model, k: dict, add_stats: dict | None = None) -> dict[str, tuple[float, float]]:
    """The batch-norm rule; `add_stats` ({add key: Stats}) replaces the independent-branch statistics
    of residual adds."""
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
            lo, hi = _span(stats[p.key].mean, stats[p.key].std, k["pooled"])
            frac = float(model.head.mask.mask.mean())
            plo, phi = ranges[p.inputs[0]]
            ranges[p.key] = (max(lo, frac * plo), min(hi, frac * phi))
        elif kind == "add":
            s = (add_stats or {}).get(p.key, stats[p.key])
            ranges[p.key] = _span(s.mean, s.std, k["residual"])
        else:  # linear: mean ± k·Σ|w|·std, a bound for any correlation of the features
            ranges[p.key] = _span(stats[p.key].mean, stats[p.key].std, k["pooled"])
    return ranges


def covering(ranges: dict, extremes: dict, keys) -> dict:
    """Each range widened to what the probe images reached (the activation's own bounds hold already:
    the probe ran the float model)."""
    out = dict(ranges)
    for key in keys:
        (lo, hi), (plo, phi) = ranges[key], extremes[key]
        out[key] = (min(lo, plo), max(hi, phi))
    return out


def probed_head(ranges: dict, per_image: dict[str, torch.Tensor], k: float, keys) -> dict:
    out = dict(ranges)
    for key in keys:
        v = per_image[key]
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


RULES = {
    "tails": "batch-norm statistics: mean ± k·std per channel, k per kind, clipped by the activation; residual "
             "adds' spread measured on a probe of a few distilled images; every conv output and add covers "
             "what the probe reached; logits from the probe's spread across images",
    "head": "batch-norm statistics: mean ± k·std per channel, k per kind, clipped by the activation; pooled mean "
            "and logits from a probe of a few distilled images",
    "none": "batch-norm statistics: mean ± k·std per channel, k per kind, clipped by the activation",
}


def bn_ranges(model, k: float | None = None, probe: str = "tails", kinds: dict | None = None) -> RangesTable:
    """The default data-free table. `k` (`--bn-k`) overrides K["conv"] and K["pooled"]; `probe` one of
    PROBE_MODES (see above); `kinds` overrides entries of K one by one (bench/quantization.py measures
    rules with it)."""
    from .probe import probe as run_probe

    if set(kinds or {}) - set(K):
        raise ValueError(f"unknown kinds {sorted(set(kinds) - set(K))}: use {', '.join(K)}")
    if probe not in PROBE_MODES:
        raise ValueError(f"probe must be one of {PROBE_MODES}, got {probe!r}")
    kk = {**K, **(kinds or {}), **({"conv": k, "pooled": k} if k is not None else {})}
    seen = run_probe(model, **PROBE) if probe != "none" else None
    points = activation_points(model)
    if probe == "tails":
        adds = {p.key: seen.stats[p.key] for p in points if p.kind == "add"}
        ranges = analytic_ranges(model, kk, adds)
        _check(ranges)
        ranges = covering(ranges, seen.extremes, [p.key for p in points if p.kind in ("conv", "add")])
        ranges.update({p.key: ranges[p.inputs[0]] for p in points if p.kind == "head_mask"})
        ranges = probed_head(ranges, seen.per_image, kk["head"], ["logits"])
    else:
        ranges = analytic_ranges(model, kk)
        _check(ranges)
        if probe == "head":
            ranges = probed_head(ranges, seen.per_image, kk["head"], ["head.mean", "logits"])
    return RangesTable("bn", ranges, {"k": kk, "probe": probe, **({"probe_images": dict(PROBE)} if seen else {}),
                                      "rule": RULES[probe]})
