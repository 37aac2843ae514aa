"""Cross-layer range equalization (Nagel et al. 2019, §4.1), with scales shared by each field.

For a pair A → act → B in which A's output feeds only B, scaling A's output channel c by 1/s_c and
B's input channel c by s_c leaves the function unchanged when act is positively homogeneous
(ReLU, identity). s = sqrt(r_A / r_B) makes both weight ranges sqrt(r_A·r_B). Using one s per
regular field (the max range over the field's |G| channels) keeps every layer equivariant: a group
element only permutes a field's channels, and a uniform factor commutes with that.

ReLU6 is not homogeneous (clip at 6 becomes clip at 6/s), so pairs whose first layer ends in
ReLU6 are left alone, unless `relu6_to_relu` first replaces it, as the DFQ paper and AIMET do
(a deliberate change of the float function, measured in the report; the int8 range then clips
those activations instead). Models trained with ReLU (`train fit --activation relu`) need neither.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from train.model.plain import ConvBNAct, PlainMobileNetV2


def chains(model: PlainMobileNetV2) -> list[list[ConvBNAct]]:
    """Runs of units where each one's output feeds only the next: expand → dw → project per block
    (stem → dw → project for the first block when no skip connection reads the stem)."""
    out = []
    for block in model.blocks:
        if block.expand is not None:
            out.append([block.expand, block.dw, block.project])
        elif block is model.blocks[0] and not block.residual:
            out.append([model.stem, block.dw, block.project])
        else:
            out.append([block.dw, block.project])
    return out


def relu6_to_relu(model: PlainMobileNetV2) -> PlainMobileNetV2:
    """ReLU6 → ReLU on every unit whose output channels equalization rescales."""
    model = copy.deepcopy(model)
    for chain in chains(model):
        for unit in chain[:-1]:
            if isinstance(unit.act, nn.ReLU6):
                unit.act = nn.ReLU()
    return model


def _is_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def out_ranges(conv: nn.Conv2d) -> torch.Tensor:
    """max |w| per output channel."""
    return conv.weight.detach().abs().flatten(1).amax(1)


def in_ranges(conv: nn.Conv2d) -> torch.Tensor:
    """max |w| per input channel."""
    w = conv.weight.detach().abs()
    return w.flatten(1).amax(1) if _is_depthwise(conv) else w.transpose(0, 1).flatten(1).amax(1)


def _per_field(r: torch.Tensor, field: int) -> torch.Tensor:
    return r.view(-1, field).amax(1).repeat_interleave(field)


def _scale_pair(a: ConvBNAct, b: ConvBNAct, field: int) -> torch.Tensor:
    ra, rb = _per_field(out_ranges(a.conv), field), _per_field(in_ranges(b.conv), field)
    s = torch.where((ra > 0) & (rb > 0), (ra / rb.clamp_min(1e-30)).sqrt(), torch.ones_like(ra))
    with torch.no_grad():
        a.conv.weight.div_(s.view(-1, 1, 1, 1))
        a.conv.bias.div_(s)
        a.bn_mean.div_(s)
        a.bn_std.div_(s)
        if _is_depthwise(b.conv):
            b.conv.weight.mul_(s.view(-1, 1, 1, 1))
        else:
            b.conv.weight.mul_(s.view(1, -1, 1, 1))
    return s


def homogeneous(unit: ConvBNAct) -> bool:
    """act(x/s) = act(x)/s for s > 0: ReLU and identity, not ReLU6."""
    return isinstance(unit.act, (nn.ReLU, nn.Identity))


def scalable_pairs(model: PlainMobileNetV2) -> list[list[tuple[ConvBNAct, ConvBNAct]]]:
    """Per chain, the consecutive pairs whose first unit's activation commutes with scaling."""
    return [[(a, b) for a, b in zip(c, c[1:]) if homogeneous(a)] for c in chains(model)]


def equalize(model: PlainMobileNetV2, max_iterations: int = 100, tol: float = 1e-6) -> PlainMobileNetV2:
    """Equalize every scalable pair, alternating over a chain's pairs until the scales stop changing."""
    model = copy.deepcopy(model)
    field = model.field_size
    for pairs in scalable_pairs(model):
        for _ in range(max_iterations if pairs else 0):
            worst = max(float((_scale_pair(a, b, field) - 1).abs().max()) for a, b in pairs)
            if worst < tol:
                break
    return model
