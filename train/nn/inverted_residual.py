"""Equivariant inverted-residual block: 1×1 expand → depthwise 3×3 → 1×1 linear projection (+ skip)."""
from __future__ import annotations

from e2cnn.nn import FieldType, GeometricTensor

from ..groups import Group
from ..plain import InvertedResidual
from .base import CheckedModule
from .conv_bn_act import EquivariantConvBNAct


def regular(gspace, channels: int, group: Group) -> FieldType:
    if channels % group.order:
        raise ValueError(f"{channels} channels is not a whole number of {group.name} regular fields")
    return FieldType(gspace, [gspace.regular_repr] * (channels // group.order))


class EquivariantInvertedResidual(CheckedModule):
    def __init__(self, in_type: FieldType, hidden: int, cout: int, stride: int, group: Group,
                 activation: str = "relu6"):
        super().__init__()
        gs = in_type.gspace
        self.group = group
        hidden_type, out_type = regular(gs, hidden, group), regular(gs, cout, group)
        self.in_type, self.out_type = in_type, out_type
        self.expand = (EquivariantConvBNAct.dense(in_type, hidden_type, group, act=activation)
                       if hidden != in_type.size else None)
        self.dw = EquivariantConvBNAct.depthwise(hidden_type, group, stride, act=activation)
        self.project = EquivariantConvBNAct.dense(hidden_type, out_type, group, act=None)
        self.residual = stride == 1 and in_type == out_type

    def forward(self, x: GeometricTensor) -> GeometricTensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.dw(y))
        return x + y if self.residual else y

    def evaluate_output_shape(self, input_shape):
        return self.project.evaluate_output_shape(self.dw.evaluate_output_shape(input_shape))

    def export(self) -> InvertedResidual:
        self.eval()
        expand = self.expand.export() if self.expand is not None else None
        return InvertedResidual(expand, self.dw.export(), self.project.export(), self.residual)
