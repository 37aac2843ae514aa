"""Keep per-channel parameters exactly constant on each regular field.

An equivariant bias on a regular field is one value for all |G| channels. Steps that compute a
bias from sums over weights (input-normalisation folding, bias absorption, bias correction) sum
a field's channels in different orders, so float32 rounding leaves ~1e-7 differences: enough to
flip an int32 bias's rounding now and then and break bit-exact rotation invariance. Projecting
back onto field-constant values (the mean, in float64) removes them.
"""
from __future__ import annotations

import torch

from train.plain import PlainMobileNetV2


def tie(t: torch.Tensor, field: int) -> torch.Tensor:
    return t.double().view(-1, field).mean(1).repeat_interleave(field).to(t.dtype)


def tie_to_fields(model: PlainMobileNetV2) -> PlainMobileNetV2:
    """In place; returns the model. No-op for the conventional twin (field size 1)."""
    field = model.field_size
    if field == 1:
        return model
    with torch.no_grad():
        for unit in model.conv_units():
            if unit.conv.bias is not None:
                unit.conv.bias.copy_(tie(unit.conv.bias, field))
            for name in ("bn_mean", "bn_std"):
                if hasattr(unit, name):
                    getattr(unit, name).copy_(tie(getattr(unit, name), field))
    return model
