"""Pointwise ReLU6 on regular fields (a permutation of channels commutes with it)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from e2cnn.nn import FieldType, GeometricTensor

from ..groups import Group
from .base import CheckedModule


class ReLU6(CheckedModule):
    def __init__(self, in_type: FieldType, group: Group):
        super().__init__()
        for r in in_type.representations:
            if "pointwise" not in r.supported_nonlinearities:
                raise ValueError(f"ReLU6 needs fields that allow pointwise non-linearities, got {r.name}")
        self.in_type = self.out_type = in_type
        self.group = group

    def forward(self, x: GeometricTensor) -> GeometricTensor:
        # F.relu6 (hardtanh) has a much cheaper backward than torch.clamp.
        return GeometricTensor(F.relu6(x.tensor), self.out_type)

    def evaluate_output_shape(self, input_shape):
        return input_shape

    def export(self):
        return torch.nn.ReLU6()
