"""The probe: a few briefly distilled images (no real image) run once through the model, summarised
per activation. It supplies what batch-norm statistics alone cannot tell:

- how the two branches of a residual add move together (their correlation sets the add's spread;
  the independence the analytic rule assumes underestimates it by up to 25 % in late blocks);
- how far the heavy tails reach (real tissue-like images drive some channels 8–11 std from their
  batch-norm mean; the distilled images, which carry the network's own structure, reach a good part
  of that);
- the spread of the pooled features and logits across images (batch-norm statistics mix it with the
  far larger spread across positions).

Deterministic: a fixed seed and one thread (conv sums run in a thread-dependent order).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .points import activation_points, observing
from .stats import Stats

PER_IMAGE = ("head.mean", "logits")  # kept per image: their spread across images is what the rule needs


@dataclass
class Probe:
    stats: dict[str, Stats]  # per-channel mean and std over images and positions
    extremes: dict[str, tuple[float, float]]  # the lowest and highest value seen
    per_image: dict[str, torch.Tensor]  # PER_IMAGE keys: (images, channels)


def _summary(t: torch.Tensor) -> tuple[Stats, tuple[float, float]]:
    t = t.detach().double()
    dims = (0, 2, 3) if t.dim() == 4 else (0,)
    return Stats(t.mean(dim=dims), t.std(dim=dims)), (float(t.min()), float(t.max()))


def probe(model, count: int = 8, steps: int = 10, seed: int = 0) -> Probe:
    from .distill import distill_images

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    stats, extremes, per_image = {}, {}, {}

    def record(key, t):
        stats[key], extremes[key] = _summary(t)
        if key in PER_IMAGE:
            per_image[key] = t.detach().double()

    try:
        images = distill_images(model, count, steps, seed=seed)
        with observing(activation_points(model), record), torch.no_grad():
            model(images)
    finally:
        torch.set_num_threads(threads)
    return Probe(stats, extremes, per_image)
