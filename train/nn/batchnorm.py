"""Batch norm with statistics and affine parameters shared by each regular field's |G| channels.

Same function as e2cnn's InnerBatchNorm, but computed on a free view (B, F, |G|·H, W) of the
contiguous (B, F·|G|, H, W) tensor, so PyTorch's fast 4-D kernels run instead of a 5-D copy.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from e2cnn.nn import FieldType, GeometricTensor

from ..groups import Group
from .base import CheckedModule


class FieldBatchNorm(CheckedModule):
    def __init__(self, in_type: FieldType, group: Group, eps: float = 1e-5, momentum: float | None = 0.1):
        super().__init__()
        for r in in_type.representations:
            if r.name != "regular":
                raise ValueError(f"FieldBatchNorm needs regular fields, got {r.name}")
        self.in_type = self.out_type = in_type
        self.group, self.eps, self.momentum = group, eps, momentum
        n = len(in_type)
        self.weight = torch.nn.Parameter(torch.ones(n))
        self.bias = torch.nn.Parameter(torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))
        self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))

    def forward(self, x: GeometricTensor) -> GeometricTensor:
        t = x.tensor.contiguous()
        b, c, h, w = t.shape
        factor = 0.0
        if self.training:
            self.num_batches_tracked.add_(1)
            # momentum None = cumulative average, as in torch.nn.BatchNorm2d
            factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
        y = F.batch_norm(t.view(b, len(self.in_type), self.group.order * h, w), self.running_mean, self.running_var,
                         self.weight, self.bias, self.training, factor, self.eps)
        return GeometricTensor(y.view(b, c, h, w), self.out_type)

    def evaluate_output_shape(self, input_shape):
        return input_shape

    def export(self) -> torch.nn.BatchNorm2d:
        self.eval()
        g, c = self.group.order, self.in_type.size
        bn = torch.nn.BatchNorm2d(c, self.eps, self.momentum)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(bn, name).data.copy_(getattr(self, name).detach().repeat_interleave(g))
        bn.num_batches_tracked.data.copy_(self.num_batches_tracked)
        return bn.eval()
