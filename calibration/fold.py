"""Batch-norm and input-normalisation folding: the first step of data-free quantization.

Each function takes a plain model (`PlainMobileNetV2`) and returns a new one computing the same
function with fewer ops; the input model is left untouched. Folding keeps what the batch norm
knew: the folded conv's output (the pre-activation) is distributed per channel as N(β, γ²), kept
as the unit's `bn_mean` / `bn_std` buffers for the later data-free steps.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from train.plain import ConvBNAct, PlainMobileNetV2

from .symmetry import tie_to_fields


def _fold_unit(unit: ConvBNAct) -> None:
    bn = unit.bn
    if not isinstance(bn, nn.BatchNorm2d):
        return
    conv = unit.conv
    inv = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    w = conv.weight.detach() * inv.view(-1, 1, 1, 1)
    b = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    b = (b - bn.running_mean) * inv + bn.bias.detach()
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    folded.weight.data.copy_(w)
    folded.bias.data.copy_(b)
    unit.conv, unit.bn = folded.to(conv.weight.dtype), nn.Identity()
    unit.register_buffer("bn_mean", bn.bias.detach().clone())
    unit.register_buffer("bn_std", bn.weight.detach().abs().clone())


def fold_batchnorm(model: PlainMobileNetV2) -> PlainMobileNetV2:
    """conv → BN becomes one conv with bias: w·γ/σ, (b − μ)·γ/σ + β."""
    model = copy.deepcopy(model).eval()
    for unit in model.conv_units():
        _fold_unit(unit)
    return model


def fold_normalization(model: PlainMobileNetV2) -> PlainMobileNetV2:
    """(x − mean)/std folded into the stem: W/std and b − Σ W·mean/std.

    Exact only because the stem has no padding (a padded border would see 0, not the mean).
    """
    model = copy.deepcopy(model).eval()
    norm = model.normalize
    if isinstance(norm, nn.Identity):
        return model
    conv = model.stem.conv
    if conv.padding not in (0, (0, 0)):
        raise ValueError("cannot fold input normalisation into a padded stem convolution")
    mean, std = norm.mean.view(-1), norm.std.view(-1)
    w = conv.weight.detach() / std.view(1, -1, 1, 1)
    shift = (w * mean.view(1, -1, 1, 1)).sum(dim=(1, 2, 3))
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros(conv.out_channels, dtype=w.dtype)
    new = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=True)
    new.weight.data.copy_(w)
    new.bias.data.copy_(bias - shift)
    model.stem.conv = new.to(w.dtype)
    model.normalize = nn.Identity()
    return tie_to_fields(model)


def fold_all(model: PlainMobileNetV2) -> PlainMobileNetV2:
    # BN first: the stem's BN scales its weights, normalisation then divides them per input channel.
    return fold_normalization(fold_batchnorm(model))
