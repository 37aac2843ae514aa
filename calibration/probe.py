"""The probe: a few briefly distilled images (no real image) run once through the model, summarised
per activation. It supplies what batch-norm statistics alone cannot tell:

- how the two branches of a residual add move together (their correlation sets the add's spread,
  which the independence the analytic rule assumes underestimates);
- how far the heavy tails reach (the distilled images carry the network's own structure and reach a
  good part of what real images reach);
- the spread of the pooled features and logits across images (batch-norm statistics mix it with the
  far larger spread across positions).

Deterministic: a fixed seed and one thread (conv sums run in a thread-dependent order).
Measurements behind these uses: README, Data-free quantization.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from e2micro.threads import one_torch_thread

from .points import activation_points, observing
from .stats import Stats

HEAD_KEYS = ("head.mean", "logits")  # kept per image: their spread across images is what a rule needs
# (batch-norm statistics mix it with the far larger spread across positions)


@dataclass
class Probe:
    stats: dict[str, Stats]  # per-channel mean and std over images and positions
    extremes: dict[str, tuple[float, float]]  # the lowest and highest value seen
    per_image: dict[str, torch.Tensor]  # HEAD_KEYS keys: (images, channels)


def _summary(t: torch.Tensor) -> tuple[Stats, tuple[float, float]]:
    t = t.detach().double()
    dims = (0, 2, 3) if t.dim() == 4 else (0,)
    return Stats(t.mean(dim=dims), t.std(dim=dims)), (float(t.min()), float(t.max()))


def probe(model, count: int = 8, steps: int = 10, seed: int = 0) -> Probe:
    from .distill import distill_images

    stats, extremes, per_image = {}, {}, {}

    def record(key, t):
        stats[key], extremes[key] = _summary(t)
        if key in HEAD_KEYS:
            per_image[key] = t.detach().double()

    with one_torch_thread():
        images = distill_images(model, count, steps, seed=seed)
        with observing(activation_points(model), record), torch.no_grad():
            model(images)
    return Probe(stats, extremes, per_image)
