"""Equivariant conv → batch norm (statistics shared per field) → ReLU6/ReLU unit."""
from __future__ import annotations

from e2cnn import nn as enn
from e2cnn.nn import FieldType, GeometricTensor

from ..groups import Group
from ..plain import ConvBNAct
from .base import CheckedModule
from .batchnorm import FieldBatchNorm
from .depthwise import EquivariantDepthwiseConv, band_limit
from .activation import PointwiseActivation


def r2conv(in_type: FieldType, out_type: FieldType, kernel_size: int, stride: int) -> enn.R2Conv:
    pad = 0 if stride == 2 else kernel_size // 2
    return enn.R2Conv(in_type, out_type, kernel_size, padding=pad, stride=stride, bias=False,
                      frequencies_cutoff=band_limit, maximum_offset=0)


class EquivariantConvBNAct(CheckedModule):
    def __init__(self, conv, group: Group, act: str | None):
        super().__init__()
        self.group = group
        self.conv = conv
        self.in_type, self.out_type = conv.in_type, conv.out_type
        self.bn = FieldBatchNorm(self.out_type, group)
        self.act = PointwiseActivation(self.out_type, group, act) if act else None

    @classmethod
    def dense(cls, in_type, out_type, group, kernel_size=1, stride=1, act: str | None = "relu6"):
        return cls(r2conv(in_type, out_type, kernel_size, stride), group, act)

    @classmethod
    def depthwise(cls, in_type, group, stride=1, act: str | None = "relu6", kernel_size=3):
        pad = 0 if stride == 2 else kernel_size // 2
        return cls(EquivariantDepthwiseConv(in_type, group, kernel_size, stride, pad), group, act)

    def forward(self, x: GeometricTensor) -> GeometricTensor:
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x

    def evaluate_output_shape(self, input_shape):
        return self.conv.evaluate_output_shape(input_shape)

    def export(self) -> ConvBNAct:
        import torch

        self.eval()
        act = self.act.export() if self.act is not None else torch.nn.Identity()
        return ConvBNAct(self.conv.export(), self.bn.export(), act)
