"""Equivariant depthwise convolution that exports to a true depthwise Conv2d (groups == channels).

Each regular field's |G| channels are filtered by the |G| transformed copies of one learned,
band-limited steerable filter. e2cnn builds exactly that bank as an R2Conv from F trivial fields
to F regular fields with groups=F: its filter has shape (F·|G|, 1, k, k). Applying it with
groups = F·|G| to the regular input is equivariant, since channel g sees the filter g·ψ and g
permutes channels and filters alike. e2cnn's own grouped conv instead mixes the |G| channels of a
field (an N×N block), which lands in TFLite as a grouped CONV_2D.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from e2cnn import nn as enn
from e2cnn.nn import FieldType, GeometricTensor

from ..groups import Group
from .base import CheckedModule


def band_limit(r: float) -> float:
    # Frequencies up to 2r on a ring of radius r, no extra offsets: smooth filters whose
    # non-90° rotations interpolate well (≈1 % error at 30°).
    return 2 * r


class EquivariantDepthwiseConv(CheckedModule):
    def __init__(self, in_type: FieldType, group: Group, kernel_size: int = 3, stride: int = 1, padding: int = 1):
        super().__init__()
        for r in in_type.representations:
            if r.name != "regular":
                raise ValueError(f"depthwise convolution needs regular fields, got {r.name}")
        self.in_type = self.out_type = in_type
        self.group = group
        self.stride, self.padding, self.kernel_size = stride, padding, kernel_size
        nfields = len(in_type)
        trivial = FieldType(in_type.gspace, [in_type.gspace.trivial_repr] * nfields)
        self.bank = enn.R2Conv(trivial, in_type, kernel_size, groups=nfields, bias=False,
                               frequencies_cutoff=band_limit, maximum_offset=0)

    def filter(self) -> torch.Tensor:
        """(C, 1, k, k) depthwise filter; cached by e2cnn in eval mode."""
        return self.bank.expand_parameters()[0] if self.training else self.bank.filter

    def forward(self, x: GeometricTensor) -> GeometricTensor:
        y = F.conv2d(x.tensor, self.filter(), None, self.stride, self.padding, 1, self.in_type.size)
        return GeometricTensor(y, self.out_type)

    def evaluate_output_shape(self, input_shape):
        b, c, h, w = input_shape
        f = lambda n: (n + 2 * self.padding - self.kernel_size) // self.stride + 1
        return b, c, f(h), f(w)

    def export(self) -> torch.nn.Conv2d:
        self.eval()
        c = self.in_type.size
        conv = torch.nn.Conv2d(c, c, self.kernel_size, self.stride, self.padding, groups=c, bias=False)
        conv.weight.data.copy_(self.bank.filter.detach())
        return conv
