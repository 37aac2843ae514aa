"""Pointwise ReLU6 or ReLU on regular fields (a permutation of channels commutes with both)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from e2cnn.nn import FieldType, GeometricTensor

from ..groups import Group
from .base import CheckedModule

ACTIVATIONS = ("relu6", "relu")


class PointwiseActivation(CheckedModule):
    def __init__(self, in_type: FieldType, group: Group, kind: str = "relu6"):
        super().__init__()
        if kind not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {kind!r}")
        for r in in_type.representations:
            if "pointwise" not in r.supported_nonlinearities:
                raise ValueError(f"{kind} needs fields that allow pointwise non-linearities, got {r.name}")
        self.in_type = self.out_type = in_type
        self.group, self.kind = group, kind

    def forward(self, x: GeometricTensor) -> GeometricTensor:
        # F.relu6 (hardtanh) has a much cheaper backward than torch.clamp.
        y = F.relu6(x.tensor) if self.kind == "relu6" else F.relu(x.tensor)
        return GeometricTensor(y, self.out_type)

    def evaluate_output_shape(self, input_shape):
        return input_shape

    def export(self):
        return torch.nn.ReLU6() if self.kind == "relu6" else torch.nn.ReLU()
