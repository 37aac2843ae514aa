"""Activation points of a plain model: the tensors that get an int8 range.

One ordered list, derived from the model's structure, names every activation the way the ranges
table, the ONNX graph and the report name it ("stem", "blocks.3.dw", "blocks.3.add", "logits", …).
Each point has a kind (what computes it; convert/onnx_export.py maps kinds to the ONNX ops that
produce them) and says how to observe it in PyTorch with hooks.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from train.plain import ConvBNAct, PlainMobileNetV2

INPUT = "image"
OUTPUT = "logits"


# What computes a point: the image; the circular mask on the raw pixels; a conv (+ folded BN,
# + activation) unit; a residual add; the mask on the head's features; their spatial mean; the
# classifier.
KINDS = ("input", "input_mask", "conv", "add", "head_mask", "mean", "linear")


@dataclass
class Point:
    key: str
    kind: str  # one of KINDS
    module: nn.Module | None = None  # hooked module (output, or input with `pre`)
    pre: bool = False
    conv: nn.Conv2d | nn.Linear | None = None  # weighted op feeding it, if any
    act: str = "none"  # activation fused into it: relu6, relu or none
    inputs: tuple[str, ...] = field(default=())  # keys of the points it reads


def act_name(act: nn.Module) -> str:
    if isinstance(act, nn.ReLU6):
        return "relu6"
    if isinstance(act, nn.ReLU):
        return "relu"
    if isinstance(act, nn.Identity):
        return "none"
    raise ValueError(f"unsupported activation {type(act).__name__}")


def _unit_point(key: str, unit: ConvBNAct, src: str) -> Point:
    if not isinstance(unit.bn, nn.Identity):
        raise ValueError("activation points need a model with batch norms folded")
    act = act_name(unit.act)
    return Point(key, "conv", unit, conv=unit.conv, act=act, inputs=(src,))


def activation_points(model: PlainMobileNetV2) -> list[Point]:
    """Every activation of a folded plain model, in execution order (the input first)."""
    if not isinstance(model.normalize, nn.Identity):
        raise ValueError("activation points need the input normalisation folded into the stem")
    pts = [Point(INPUT, "input")]
    pts.append(Point("input_mask", "input_mask", model.input_mask, inputs=(INPUT,)))
    pts.append(_unit_point("stem", model.stem, "input_mask"))
    src = "stem"
    for i, block in enumerate(model.blocks):
        k = f"blocks.{i}"
        x = src
        if block.expand is not None:
            pts.append(_unit_point(f"{k}.expand", block.expand, src))
            src = f"{k}.expand"
        pts.append(_unit_point(f"{k}.dw", block.dw, src))
        pts.append(_unit_point(f"{k}.project", block.project, f"{k}.dw"))
        src = f"{k}.project"
        if block.residual:
            pts.append(Point(f"{k}.add", "add", block, inputs=(x, src)))
            src = f"{k}.add"
    pts.append(_unit_point("head_conv", model.head_conv, src))
    pts.append(Point("head.mask", "head_mask", model.head.mask, inputs=("head_conv",)))
    pts.append(Point("head.mean", "mean", model.head.fc, pre=True, inputs=("head.mask",)))
    pts.append(Point(OUTPUT, "linear", model.head.fc, conv=model.head.fc, inputs=("head.mean",)))
    return pts


@contextlib.contextmanager
def observing(points: list[Point], record: Callable[[str, torch.Tensor], None]):
    """While open, every forward pass calls record(key, activation) for each hooked point."""
    hooks = []
    for p in points:
        if p.module is None:
            continue
        if p.pre:
            hooks.append(p.module.register_forward_pre_hook(lambda m, a, k=p.key: record(k, a[0])))
        else:
            hooks.append(p.module.register_forward_hook(lambda m, a, o, k=p.key: record(k, o)))
    try:
        yield
    finally:
        for h in hooks:
            h.remove()

