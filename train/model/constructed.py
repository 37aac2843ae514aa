"""Models that are right by construction: no optimisation, so no training run's luck.

A seeded initialisation, batch-norm statistics measured on given images, and a closed-form
classifier (each class's direction is its mean pooled feature minus the overall mean, biases set
so that the median image lies on the decision boundary). Float reductions differ across CPUs and
thread counts, so the same seed can take another optimisation path on another machine and collapse
to a constant model; none of that touches these steps. Tests and benchmarks of conversion,
quantization and firmware use them; `degeneracy` says whether one is fit for that.
"""
from __future__ import annotations

import torch

from ..config import ModelConfig
from ..nn.equivariance import smooth_input
from . import model_from_config


def smooth_pixels(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    """Smooth pixel-like images around mid-grey (band-limited noise, std 40)."""
    return 128 + 40 * smooth_input(batch, 3, size, seed=seed, sigma=3.0)


def set_bn_statistics(model: torch.nn.Module, images: torch.Tensor | None = None, batch: int = 8) -> torch.nn.Module:
    """Running statistics = cumulative averages of the batch statistics over `images` (default: three
    batches of smooth pixels). Returns the model in eval mode."""
    if images is None:
        images = torch.cat([smooth_pixels(batch, model.config.input_size, seed=i) for i in range(3)])
    model.train()
    for m in model.modules():
        if hasattr(m, "momentum") and hasattr(m, "running_mean"):
            m.momentum = None  # cumulative average over all the batches
            m.num_batches_tracked.zero_()
    with torch.no_grad():
        for i in range(0, len(images), batch):
            model(images[i:i + batch])
    return model.eval()


def _pooled(model: torch.nn.Module, images: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """What the classifier reads, in float64."""
    seen = []
    hook = model.head.fc.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach().double()))
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch):
                model(images[i:i + batch])
    finally:
        hook.remove()
    return torch.cat(seen)


def set_classifier(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, spread: float = 2.0) -> None:
    """Nearest-class-mean directions, scaled so the logit differences spread by about `spread` (std)
    over `images`; biases put the median image on every class boundary. Every class must occur."""
    f = _pooled(model, images)
    classes = model.head.fc.out_features
    counts = torch.bincount(labels.long(), minlength=classes)
    if len(counts) > classes or int(counts.min()) == 0:
        raise ValueError(f"every one of the {classes} classes needs images, got counts {counts.tolist()}")
    centre = f.mean(0)
    w = torch.stack([f[labels == c].mean(0) - centre for c in range(classes)])
    z = (f - centre) @ w.T
    s = spread / float((z - z.mean(1, keepdim=True)).std().clamp_min(1e-12))
    w = w * s
    b = -(centre @ w.T) - (z * s).median(0).values
    with torch.no_grad():
        model.head.fc.weight.copy_(w.to(model.head.fc.weight.dtype))
        model.head.fc.bias.copy_(b.to(model.head.fc.bias.dtype))


def constructed_model(config: ModelConfig, images: torch.Tensor, labels: torch.Tensor, seed: int = 0):
    """A non-degenerate model of `config`: seeded weights, statistics and classifier from the images."""
    torch.manual_seed(seed)
    model = model_from_config(config)
    set_bn_statistics(model, images)
    set_classifier(model, images, labels)
    return model.eval()


def degeneracy(model: torch.nn.Module, images: torch.Tensor, min_std: float = 0.1) -> list[str]:
    """Reasons the model is unfit for checking a conversion on `images` (empty if fit): logits that
    barely vary, a class never predicted, or a conventional model that is rot90-invariant anyway."""
    with torch.no_grad():
        logits = torch.cat([model(images[i:i + 16]) for i in range(0, len(images), 16)]).double()
    problems = []
    diff = logits - logits.mean(1, keepdim=True)
    if float(diff.std(0).min()) < min_std:
        problems.append(f"logits barely vary across images (std {diff.std(0).tolist()})")
    predicted = set(logits.argmax(1).tolist())
    if len(predicted) < logits.shape[1]:
        problems.append(f"only classes {sorted(predicted)} are predicted")
    if model.config.group is None:
        with torch.no_grad():
            rotated = torch.cat([model(torch.rot90(images[i:i + 16], 1, dims=(2, 3)))
                                 for i in range(0, len(images), 16)]).double()
        change = float((rotated - logits).abs().max())
        if change < 1e-3 * float(logits.max() - logits.min()):
            problems.append(f"the conventional model is rot90-invariant in float (max change {change:.2e})")
    return problems
