"""Per-channel distributions of every activation, from batch-norm statistics alone.

Each folded unit's pre-activation is N(bn_mean, bn_std²) per channel. Through ReLU/ReLU6 it becomes
a clipped normal (exact moments below); residual adds sum means and variances (branches taken as
independent); the masked mean keeps the mean and, conservatively, the full per-position spread
(as if every position moved together); the classifier propagates the mean linearly and the spread
as Σ|w|·std, the bound that holds whatever the correlation between features (assuming them
independent underestimates logit ranges several-fold: pooled features move together).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .points import Point, act_name, activation_points

BOUNDS = {"relu6": (0.0, 6.0), "relu": (0.0, math.inf), "none": (-math.inf, math.inf)}


@dataclass
class Stats:
    mean: torch.Tensor  # per channel, float64
    std: torch.Tensor


def _phi(x):
    return torch.exp(-0.5 * x**2) / math.sqrt(2 * math.pi)


def _Phi(x):
    return 0.5 * (1 + torch.erf(x / math.sqrt(2)))


def clipped_normal(mu: torch.Tensor, sigma: torch.Tensor, lo: float, hi: float) -> Stats:
    """Mean and std of clip(N(mu, sigma²), lo, hi), per element."""
    mu, sigma = mu.double(), sigma.double().clamp_min(1e-12)
    a, b = (lo - mu) / sigma, (hi - mu) / sigma
    Pa, Pb, pa, pb = _Phi(a), _Phi(b), _phi(a), _phi(b)
    inside = Pb - Pa
    lo_t = lo * Pa if math.isfinite(lo) else torch.zeros_like(mu)
    hi_t = hi * (1 - Pb) if math.isfinite(hi) else torch.zeros_like(mu)
    m1 = lo_t + hi_t + mu * inside + sigma * (pa - pb)
    lo2 = lo**2 * Pa if math.isfinite(lo) else torch.zeros_like(mu)
    hi2 = hi**2 * (1 - Pb) if math.isfinite(hi) else torch.zeros_like(mu)
    apa = torch.where(torch.isfinite(a), a * pa, torch.zeros_like(a))
    bpb = torch.where(torch.isfinite(b), b * pb, torch.zeros_like(b))
    m2 = lo2 + hi2 + (mu**2 + sigma**2) * inside + 2 * mu * sigma * (pa - pb) + sigma**2 * (apa - bpb)
    return Stats(m1, (m2 - m1**2).clamp_min(0).sqrt())


def unit_stats(unit) -> tuple[Stats, Stats]:
    """(pre-activation N(β, γ²), post-activation clipped normal) of a folded ConvBNAct."""
    if not hasattr(unit, "bn_mean"):
        raise ValueError("data-free statistics need a model folded by calibration.fold (no bn_mean found)")
    pre = Stats(unit.bn_mean.double(), unit.bn_std.double())
    lo, hi = BOUNDS[act_name(unit.act)]
    return pre, clipped_normal(pre.mean, pre.std, lo, hi)


def activation_stats(model, points: list[Point] | None = None) -> dict[str, Stats]:
    """{point key: per-channel Stats} for every activation except the input."""
    points = points or activation_points(model)
    out: dict[str, Stats] = {}
    for p in points:
        kind = p.kind
        if kind in ("input", "input_mask"):
            continue
        if kind == "conv":
            out[p.key] = unit_stats(p.module)[1]
        elif kind == "add":
            a, b = (out[k] for k in p.inputs)
            out[p.key] = Stats(a.mean + b.mean, (a.std**2 + b.std**2).sqrt())
        elif kind == "head_mask":
            out[p.key] = out[p.inputs[0]]  # inside the disc; outside it is exactly 0
        elif kind == "mean":
            m = float(model.head.mask.mask.mean())
            s = out[p.inputs[0]]
            out[p.key] = Stats(s.mean * m, s.std * m)
        elif kind == "linear":
            w, b = p.conv.weight.detach().double(), p.conv.bias.detach().double()
            s = out[p.inputs[0]]
            out[p.key] = Stats(w @ s.mean + b, w.abs() @ s.std)
        else:
            raise ValueError(f"no statistics rule for activation '{p.key}' ({kind})")
    return out
