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

ReLU6-preserving form (`clip_k`): a ReLU6 unit whose pre-activation N(β, γ²) stays below the clip
(β + k·γ ≤ 6 on every channel of a field) acts as a ReLU there, so its field may be scaled as long
as the scaled bound stays below 6 too (s ≥ (β + kγ)/6): the function changes only for values
beyond k standard deviations. Fields that reach the clip keep s = 1.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from train.plain import ConvBNAct, PlainMobileNetV2


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


def is_depthwise(conv: nn.Conv2d) -> bool:
    return conv.groups > 1 and conv.groups == conv.in_channels == conv.out_channels


def out_ranges(conv: nn.Conv2d) -> torch.Tensor:
    """max |w| per output channel."""
    return conv.weight.detach().abs().flatten(1).amax(1)


def in_ranges(conv: nn.Conv2d) -> torch.Tensor:
    """max |w| per input channel."""
    w = conv.weight.detach().abs()
    return w.flatten(1).amax(1) if is_depthwise(conv) else w.transpose(0, 1).flatten(1).amax(1)


def _per_field(r: torch.Tensor, field: int) -> torch.Tensor:
    return r.view(-1, field).amax(1).repeat_interleave(field)


def below_clip(unit: ConvBNAct, field: int, k: float) -> torch.Tensor:
    """Per channel: True where the whole field's batch-norm bound β + kγ stays below ReLU6's 6."""
    top = (unit.bn_mean + k * unit.bn_std).double()
    return _per_field(top, field) <= 6.0


def _scale_pair(a: ConvBNAct, b: ConvBNAct, field: int, clip_k: float | None = None) -> torch.Tensor:
    ra, rb = _per_field(out_ranges(a.conv), field), _per_field(in_ranges(b.conv), field)
    s = torch.where((ra > 0) & (rb > 0), (ra / rb.clamp_min(1e-30)).sqrt(), torch.ones_like(ra))
    if isinstance(a.act, nn.ReLU6):  # only pairs admitted by scalable_pairs(clip_k): keep β/s + kγ/s ≤ 6
        top = _per_field((a.bn_mean + clip_k * a.bn_std).to(s.dtype), field)
        s = torch.where(a.eligible, torch.maximum(s, top / 6.0), torch.ones_like(s))
    with torch.no_grad():
        a.conv.weight.div_(s.view(-1, 1, 1, 1))
        a.conv.bias.div_(s)
        a.bn_mean.div_(s)
        a.bn_std.div_(s)
        if is_depthwise(b.conv):
            b.conv.weight.mul_(s.view(-1, 1, 1, 1))
        else:
            b.conv.weight.mul_(s.view(1, -1, 1, 1))
    return s


def homogeneous(unit: ConvBNAct) -> bool:
    """act(x/s) = act(x)/s for s > 0: ReLU and identity, not ReLU6."""
    return isinstance(unit.act, (nn.ReLU, nn.Identity))


def scalable_pairs(model: PlainMobileNetV2, clip_k: float | None = None) -> list[list[tuple[ConvBNAct, ConvBNAct]]]:
    """Per chain, the consecutive pairs whose first unit's activation commutes with scaling; with
    clip_k, also ReLU6 units with at least one field below the clip (their `eligible` mask is set)."""
    out = []
    for c in chains(model):
        pairs = []
        for a, b in zip(c, c[1:]):
            if homogeneous(a):
                pairs.append((a, b))
            elif clip_k is not None and isinstance(a.act, nn.ReLU6):
                a.eligible = below_clip(a, model.field_size, clip_k)
                if bool(a.eligible.any()):
                    pairs.append((a, b))
        out.append(pairs)
    return out


def equalize(model: PlainMobileNetV2, max_iterations: int = 100, tol: float = 1e-6,
             clip_k: float | None = None) -> PlainMobileNetV2:
    """Equalize every scalable pair, alternating over a chain's pairs until the scales stop changing."""
    model = copy.deepcopy(model)
    field = model.field_size
    for pairs in scalable_pairs(model, clip_k):
        for _ in range(max_iterations if pairs else 0):
            worst = max(float((_scale_pair(a, b, field, clip_k) - 1).abs().max()) for a, b in pairs)
            if worst < tol:
                break
    for u in model.conv_units():
        u.__dict__.pop("eligible", None)
    return model
