"""Plain-PyTorch MobileNetV2: the conventional twin, and what the equivariant model exports to.

Everything downstream (batch-norm folding, data-free quantization, ONNX) works on this one
structure. `field_size` records how many consecutive channels form one regular field (|G|, or 1
for the conventional twin) so that per-channel transforms can stay constant on each field.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..config import ModelConfig
from .table import KERNEL, ArchSpec, decode


def circular_mask(size: int) -> torch.Tensor:
    """(size, size) float mask of the disc inscribed in the grid, centred on the middle pixel.

    Distances are measured from the centre pixel, so the mask is exactly symmetric under the
    8 symmetries of the square grid.
    """
    c = (size - 1) / 2
    r = torch.arange(size, dtype=torch.float64) - c
    d2 = r[:, None] ** 2 + r[None, :] ** 2
    return (d2 <= (size / 2) ** 2).to(torch.float32)


class MaskMul(nn.Module):
    """x · mask with a 2-D (S, S) mask (a 4-D constant trips onnx2tf's Mul conversion)."""

    def __init__(self, size: int):
        super().__init__()
        self.register_buffer("mask", circular_mask(size))

    def forward(self, x):
        return x * self.mask


class Normalize(nn.Module):
    """(x − mean) / std per input channel; folded into the stem before conversion."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std


class ConvBNAct(nn.Module):
    """conv → batch norm (Identity once folded) → ReLU6/ReLU (or Identity for linear bottlenecks)."""

    def __init__(self, conv: nn.Conv2d, bn: nn.Module, act: nn.Module):
        super().__init__()
        self.conv, self.bn, self.act = conv, bn, act

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class InvertedResidual(nn.Module):
    def __init__(self, expand: ConvBNAct | None, dw: ConvBNAct, project: ConvBNAct, residual: bool):
        super().__init__()
        self.expand, self.dw, self.project, self.residual = expand, dw, project, residual

    def forward(self, x):
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.dw(y))
        return x + y if self.residual else y


class MaskedMeanHead(nn.Module):
    """(x · mask) → mean over the grid → Linear; exports to MUL, MEAN, FULLY_CONNECTED."""

    def __init__(self, size: int, channels: int, num_classes: int):
        super().__init__()
        self.mask = MaskMul(size)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        return self.fc(self.mask(x).mean(dim=(2, 3)))


class PlainMobileNetV2(nn.Module):
    def __init__(self, config: ModelConfig, field_size: int, stem, blocks, head_conv, head):
        super().__init__()
        self.config, self.field_size = config, field_size
        self.input_mask = MaskMul(config.input_size)
        self.normalize: nn.Module = Normalize(config.mean, config.std)
        self.stem, self.blocks, self.head_conv, self.head = stem, nn.Sequential(*blocks), head_conv, head

    def forward(self, x):
        if not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export():
            check_input(x, self.config)
        x = self.normalize(self.input_mask(x))
        return self.head(self.head_conv(self.blocks(self.stem(x))))

    def export(self) -> "PlainMobileNetV2":
        return copy.deepcopy(self).eval()

    def conv_units(self) -> list[ConvBNAct]:
        """Every ConvBNAct in execution order."""
        return [m for m in self.modules() if isinstance(m, ConvBNAct)]


def check_input(x: torch.Tensor, config: ModelConfig) -> None:
    s = config.input_size
    if x.dim() != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3]:
        raise ValueError(f"expected input [B, 3, {s}, {s}] (NCHW raw pixels 0..255), got {list(x.shape)}")
    if x.shape[2] != s:
        hint = " (even sizes are refused: grids must be odd)" if x.shape[2] % 2 == 0 else ""
        raise ValueError(f"input is {x.shape[2]}×{x.shape[3]} but the model takes {s}×{s}{hint}")


def _unit(cin, cout, k, stride, groups, act: str | None) -> ConvBNAct:
    pad = 0 if stride == 2 else k // 2
    conv = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups, bias=False)
    acts = {"relu6": nn.ReLU6, "relu": nn.ReLU, None: nn.Identity}
    return ConvBNAct(conv, nn.BatchNorm2d(cout), acts[act]())


def build_plain(config: ModelConfig, divisor: int = 8) -> PlainMobileNetV2:
    """The conventional twin: same table, grids, mask, pooling and head, no symmetry constraint."""
    arch: ArchSpec = decode(config.width, divisor, config.input_size)
    act = config.activation
    stem = _unit(3, arch.stem, KERNEL, 2, 1, act)
    blocks = []
    for b in arch.blocks:
        expand = _unit(b.cin, b.hidden, 1, 1, 1, act) if b.hidden != b.cin else None
        dw = _unit(b.hidden, b.hidden, KERNEL, b.stride, b.hidden, act)
        project = _unit(b.hidden, b.cout, 1, 1, 1, None)
        blocks.append(InvertedResidual(expand, dw, project, b.residual))
    head_conv = _unit(arch.blocks[-1].cout, arch.head, 1, 1, 1, act)
    head = MaskedMeanHead(arch.final_size, arch.head, config.num_classes)
    model = PlainMobileNetV2(config, 1, stem, blocks, head_conv, head)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 1 / math.sqrt(m.in_features))
            nn.init.zeros_(m.bias)
    return model
