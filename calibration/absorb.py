"""High-bias absorption (Nagel et al. 2019, §4.2), shift shared per field.

A ReLU unit whose pre-activation is N(β, γ²) per channel almost never sees values below
c = max(0, β − kγ): subtracting c before the ReLU and adding W·c to the next layer's bias leaves
the function unchanged wherever x ≥ c, and shrinks the activation range by c. Only into layers
that see every input position (1×1 convs, unpadded convs): a padded border would not carry c.
β and γ are shared per field (FieldBatchNorm), and equalization scales per field, so c is too.
With `clip_k` (the ReLU6-preserving form, see equalize.py), ReLU6 units absorb on the fields whose
bound β + kγ stays below 6: there ReLU6(x − c) + c = ReLU6(x) for every x the bound admits.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from train.plain import PlainMobileNetV2

from .equalize import is_depthwise, scalable_pairs
from .symmetry import tie_to_fields


def _unpadded(conv: nn.Conv2d) -> bool:
    return conv.kernel_size in (1, (1, 1)) or conv.padding in (0, (0, 0))


def absorb_high_biases(model: PlainMobileNetV2, k: float = 3.0, clip_k: float | None = None) -> PlainMobileNetV2:
    model = copy.deepcopy(model)
    for pairs in scalable_pairs(model, clip_k):
        for a, b in pairs:
            if not isinstance(a.act, (nn.ReLU, nn.ReLU6)) or not _unpadded(b.conv):
                continue  # only after a ReLU (or a bounded ReLU6); a padded border would not carry c
            c = (a.bn_mean - k * a.bn_std).clamp_min(0).to(a.conv.bias.dtype)
            if isinstance(a.act, nn.ReLU6):
                c = torch.where(a.eligible, c, torch.zeros_like(c))
            with torch.no_grad():
                a.conv.bias.sub_(c)
                a.bn_mean.sub_(c)
                w = b.conv.weight
                shift = w.sum(dim=(1, 2, 3)) * c if is_depthwise(b.conv) else w.sum(dim=(2, 3)) @ c
                b.conv.bias.add_(shift)
    for u in model.conv_units():
        u.__dict__.pop("eligible", None)
    return tie_to_fields(model)
