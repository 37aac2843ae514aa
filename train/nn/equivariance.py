"""Equivariance checks shared by every module: rotate/flip the input, compare with the output.

Grid symmetries (multiples of 90°, and flips for D_N) must hold to float precision. Other
rotations are interpolated (e2cnn's order-2 spline), so they are compared on a smooth input
and inside a central disc, away from the border that rotation moves out of the grid.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..groups import Group, is_grid_symmetry


def smooth_input(batch: int, channels: int, size: int, seed: int = 0, sigma: float = 2.0) -> torch.Tensor:
    """Gaussian-blurred noise: band-limited enough that interpolated rotations are meaningful."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch * channels, 1, size, size, generator=g)
    r = int(3 * sigma)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    x = F.conv2d(F.pad(x, (r, r, r, r), mode="reflect"), k.view(1, 1, 1, -1))
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    x = x / x.std()
    return x.view(batch, channels, size, size)


def central_disc(size: int, fraction: float) -> torch.Tensor:
    c = (size - 1) / 2
    r = torch.arange(size, dtype=torch.float32) - c
    return (r[:, None] ** 2 + r[None, :] ** 2) <= (fraction * size / 2) ** 2


def relative_error(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor | None = None) -> float:
    """max |a − b| / max |b| (over `region` of the last two dims when given)."""
    if region is not None:
        a, b = a[..., region], b[..., region]
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def check_module(module, group: Group, size: int, elements=None, batch: int = 2, seed: int = 0,
                 disc: float = 0.6) -> dict:
    """{element: relative error} of `module(g·x)` against `g·module(x)` for e2cnn modules.

    `module` maps an e2cnn GeometricTensor to one. Grid symmetries are compared everywhere,
    other rotations inside a central disc of `disc` × the grid radius.
    """
    from e2cnn.nn import GeometricTensor

    was_training = module.training
    module.eval()
    dtype = next((p.dtype for p in module.parameters()), torch.float32)
    x = GeometricTensor(smooth_input(batch, module.in_type.size, size, seed).to(dtype), module.in_type)
    errors = {}
    with torch.no_grad():
        y = module(x)
        for el in elements if elements is not None else list(group.gspace().testing_elements):
            # e2cnn's transform returns float32 whatever the input; keep the module's dtype.
            a = module(GeometricTensor(x.transform(el).tensor.to(dtype), x.type)).tensor
            b = y.transform(el).tensor.to(dtype)
            region = None if is_grid_symmetry(group, el) else central_disc(b.shape[-1], disc)
            errors[el] = relative_error(a, b, region)
    module.train(was_training)
    return errors


def rotate_images(x: torch.Tensor, degrees: float, flip: bool = False) -> torch.Tensor:
    """Rotate NCHW images about the centre pixel (exact for multiples of 90°, spline otherwise)."""
    if flip:
        x = torch.flip(x, dims=(-1,))
    q = degrees / 90
    if abs(q - round(q)) < 1e-9:
        return torch.rot90(x, int(round(q)) % 4, dims=(-2, -1))
    from scipy.ndimage import rotate

    out = rotate(x.detach().cpu().numpy(), degrees, axes=(-2, -1), reshape=False, order=2, mode="constant")
    return torch.from_numpy(out).to(x.dtype)


def element_transform(group: Group, element) -> tuple[int, float]:
    """(flip, degrees) for rotating an input image by a group element."""
    from ..groups import element_angle

    flip, angle = element_angle(group, element)
    return flip, math.degrees(angle)
