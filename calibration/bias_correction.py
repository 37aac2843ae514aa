"""Analytic bias correction (Nagel et al. 2019, §4.2, data-free variant).

int8 weights W_q = W + ε shift each output by ε·E[x]. E[x] comes from the batch-norm statistics
(`stats.py`: clipped normals through ReLU/ReLU6, sums through residual adds), and ε from simulating
the converter's weight quantization (symmetric int8, narrow range, per output channel or per
tensor), so b ← b − ε·E[x] cancels the expected error. This changes the float function on purpose.
The stem is left alone: its input is the image, whose statistics the model does not carry.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from train.plain import PlainMobileNetV2

from .equalize import is_depthwise
from .points import activation_points
from .stats import activation_stats
from .symmetry import tie_to_fields


def quantization_error(w: torch.Tensor, per_channel: bool = True) -> torch.Tensor:
    """ε = dequant(quant(w)) − w for TFLite's symmetric int8 weights (range ±127)."""
    w = w.detach().double()
    amax = w.abs().flatten(1).amax(1).view(-1, *[1] * (w.dim() - 1)) if per_channel else w.abs().max()
    scale = (amax / 127).clamp_min(1e-30)
    return torch.round(w / scale).clamp(-127, 127) * scale - w


def correct_bias(model: PlainMobileNetV2, per_channel: bool = True) -> PlainMobileNetV2:
    model = copy.deepcopy(model)
    points = activation_points(model)
    stats = activation_stats(model, points)
    with torch.no_grad():
        for p in points:
            if p.conv is None or p.inputs[0] not in stats:
                continue
            conv, mean_in = p.conv, stats[p.inputs[0]].mean
            eps = quantization_error(conv.weight, per_channel)
            if isinstance(conv, nn.Linear):
                shift = eps @ mean_in
            elif is_depthwise(conv):
                shift = eps.sum(dim=(1, 2, 3)) * mean_in
            else:
                shift = eps.sum(dim=(2, 3)) @ mean_in
            conv.bias.sub_(shift.to(conv.bias.dtype))
    return tie_to_fields(model)
