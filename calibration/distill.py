"""Distilled calibration images (ZeroQ, Cai et al. 2020): the second data-free ranges mode.

Images are optimised so that every unit's pre-activation has, over the batch and the grid, the
per-channel mean and std its batch norm recorded (β, |γ|). Ranges are then measured on them like
on real images. Pixels are parametrised as 255·sigmoid(z), so they stay valid 0..255 values.
"""
from __future__ import annotations

import torch

from .points import activation_points
from .probe import HEAD_KEYS
from .ranges import RangesTable, observe


class _Adam:
    """torch.optim.Adam's single-tensor update (its CPU default), op for op, so the images are the
    same bits. Written out because constructing torch.optim.Adam imports TorchDynamo, which makes a
    `torchinductor_<user>` folder in $TMPDIR: a conversion must leave no scratch behind."""

    def __init__(self, z: torch.Tensor, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.z, self.lr, self.betas, self.eps, self.t = z, lr, betas, eps, 0
        self.m, self.v = torch.zeros_like(z), torch.zeros_like(z)

    @torch.no_grad()
    def step(self) -> None:
        (b1, b2), g = self.betas, self.z.grad
        self.t += 1
        self.m.lerp_(g, 1 - b1)
        self.v.mul_(b2).addcmul_(g, g, value=1 - b2)
        denom = (self.v.sqrt() / (1 - b2 ** self.t) ** 0.5).add_(self.eps)
        self.z.addcdiv_(self.m, denom, value=-self.lr / (1 - b1 ** self.t))
        self.z.grad = None


def distill_images(model, count: int = 8, steps: int = 100, lr: float = 0.1, seed: int = 0) -> torch.Tensor:
    model = model.eval()
    units = [p.module for p in activation_points(model) if p.kind == "conv"]
    captured = {}
    hooks = [u.conv.register_forward_hook(lambda m, a, o, u=u: captured.__setitem__(u, o)) for u in units]
    g = torch.Generator().manual_seed(seed)
    s = model.config.input_size
    mean = torch.tensor(model.config.mean).view(1, 3, 1, 1) / 255
    z = (torch.log(mean / (1 - mean)) + torch.randn(count, 3, s, s, generator=g)).requires_grad_(True)
    opt = _Adam(z, lr)
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        for _ in range(steps):
            captured.clear()
            model(255 * torch.sigmoid(z))
            loss = 0.0
            for u in units:
                o = captured[u]
                m, sd = o.mean(dim=(0, 2, 3)), o.std(dim=(0, 2, 3))
                ref_m, ref_s = u.bn_mean.to(o.dtype), u.bn_std.to(o.dtype)
                scale = ref_s.mean().clamp_min(1e-3)  # layers weigh alike whatever their scale
                loss = loss + (((m - ref_m) / scale) ** 2).mean() + (((sd - ref_s) / scale) ** 2).mean()
            loss.backward()
            opt.step()
    finally:
        for h in hooks:
            h.remove()
        for p in model.parameters():
            p.requires_grad_(True)
    return (255 * torch.sigmoid(z)).detach()


def distilled_ranges(model, count: int = 8, steps: int = 100, seed: int = 0) -> RangesTable:
    """Global min/max over distilled images, except the pooled features and logits: images that match
    per-position statistics barely differ from one another after pooling (measured to them, the
    logits are clipped: README, Data-free quantization), so those two keep the default bn rule's
    ranges."""
    from .bn_ranges import bn_ranges

    images = distill_images(model, count, steps, seed=seed)
    ranges, n = observe(model, [images[i:i + 8] for i in range(0, count, 8)])
    head = bn_ranges(model).ranges
    ranges.update({k: head[k] for k in HEAD_KEYS})
    return RangesTable("distilled", ranges, {"images": n, "steps": steps, "seed": seed,
                                             "rule": "global min/max over images distilled to match batch-norm "
                                                     "statistics (ZeroQ); pooled mean and logits from the bn rule"})
