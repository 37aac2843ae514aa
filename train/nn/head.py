"""Invariant head: masked global mean → average over each field's channels → Linear.

The field average makes the logits invariant (a group element only permutes a regular field's
channels), and being linear it folds into the classifier: the export is one Linear whose weights
are tied across each field's channels, after a full-grid MEAN of the masked map.
"""
from __future__ import annotations

import torch
from e2cnn.nn import FieldType, GeometricTensor

from ..groups import Group
from ..plain import MaskedMeanHead, circular_mask
from .base import CheckedModule
from .equivariance import smooth_input


class InvariantHead(CheckedModule):
    def __init__(self, in_type: FieldType, group: Group, size: int, num_classes: int):
        super().__init__()
        self.in_type, self.group, self.size = in_type, group, size
        self.out_type = FieldType(in_type.gspace, [in_type.gspace.trivial_repr] * num_classes)
        self.register_buffer("mask", circular_mask(size))
        self.fc = torch.nn.Linear(len(in_type), num_classes)

    def forward(self, x: GeometricTensor) -> torch.Tensor:
        """Plain logits [B, num_classes] (invariant, so no field type is needed)."""
        t = x.tensor
        pooled = (t * self.mask).sum(dim=(2, 3)) / self.mask.sum()
        pooled = pooled.view(t.shape[0], len(self.in_type), self.group.order).mean(dim=2)
        return self.fc(pooled)

    def evaluate_output_shape(self, input_shape):
        return input_shape[0], self.fc.out_features

    def check_equivariance(self, size: int | None = None, elements=None) -> dict:
        """Invariance: logits of g·x against logits of x."""
        from e2cnn.nn import GeometricTensor as GT

        size = size or self.size
        self.eval()
        x = GT(smooth_input(2, self.in_type.size, size).to(self.fc.weight.dtype), self.in_type)
        with torch.no_grad():
            ref = self(x)
            dt = self.fc.weight.dtype
            return {el: float((self(GT(x.transform(el).tensor.to(dt), x.type)) - ref).abs().max() / ref.abs().max())
                    for el in (elements if elements is not None else self.group.gspace().testing_elements)}

    def export(self) -> MaskedMeanHead:
        self.eval()
        g = self.group.order
        head = MaskedMeanHead(self.size, self.in_type.size, self.fc.out_features)
        # masked mean = full-grid mean · S² / Σmask; field average = tied weights / |G|.
        scale = self.size**2 / float(self.mask.sum())
        head.fc.weight.data.copy_(self.fc.weight.detach().repeat_interleave(g, dim=1) * (scale / g))
        head.fc.bias.data.copy_(self.fc.bias.detach())
        return head
