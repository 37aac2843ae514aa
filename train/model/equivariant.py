"""Equivariant MobileNetV2 (e2cnn, regular fields of C_N or D_N) with an invariant head."""
from __future__ import annotations

import torch
from e2cnn.nn import FieldType, GeometricTensor

from ..config import ModelConfig
from ..nn.conv_bn_act import EquivariantConvBNAct
from ..nn.equivariance import relative_error, rotate_images, element_transform, smooth_input
from ..nn.head import InvariantHead
from ..nn.inverted_residual import EquivariantInvertedResidual, regular
from ..plain import MaskMul, Normalize, PlainMobileNetV2, check_input
from ..plain.table import KERNEL, decode


class EquivariantMobileNetV2(torch.nn.Module):
    """Input: float32 NCHW [B, 3, S, S] raw pixels 0..255. Output: logits [B, num_classes]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        group = config.group_spec
        if group is None:
            raise ValueError("EquivariantMobileNetV2 needs a group; use build_model(group=None) for the twin")
        self.config, self.group = config, group
        gs = group.gspace()
        arch = decode(config.width, group.order, config.input_size, config.min_fields)
        self.arch = arch
        self.input_mask = MaskMul(config.input_size)
        self.normalize = Normalize(config.mean, config.std)
        # RGB channels are three scalar (trivial) fields: rotating an image moves pixels only.
        self.in_type = FieldType(gs, [gs.trivial_repr] * 3)
        act = config.activation
        self.stem = EquivariantConvBNAct.dense(self.in_type, regular(gs, arch.stem, group), group, KERNEL, 2, act)
        t = self.stem.out_type
        blocks = []
        for b in arch.blocks:
            blocks.append(EquivariantInvertedResidual(t, b.hidden, b.cout, b.stride, group, act))
            t = blocks[-1].out_type
        self.blocks = torch.nn.ModuleList(blocks)
        self.head_conv = EquivariantConvBNAct.dense(t, regular(gs, arch.head, group), group, act=act)
        self.head = InvariantHead(self.head_conv.out_type, group, arch.final_size, config.num_classes)

    def features(self, x: torch.Tensor) -> GeometricTensor:
        check_input(x, self.config)
        h = GeometricTensor(self.normalize(self.input_mask(x)), self.in_type)
        h = self.stem(h)
        for block in self.blocks:
            h = block(h)
        return self.head_conv(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def export(self) -> PlainMobileNetV2:
        """A plain-PyTorch copy (no e2cnn class inside) computing the same function, in eval mode."""
        self.eval()
        plain = PlainMobileNetV2(self.config, self.group.order, self.stem.export(),
                                 [b.export() for b in self.blocks], self.head_conv.export(), self.head.export())
        return plain.to(next(self.parameters()).dtype).eval()

    def check_equivariance(self, elements=None, batch: int = 2, seed: int = 0) -> dict:
        """{element: relative logit error} for rotated/flipped smooth inputs (invariance of the logits)."""
        was = self.training
        self.eval()
        s = self.config.input_size
        dtype = next(self.parameters()).dtype
        x = (128 + 40 * smooth_input(batch, 3, s, seed, sigma=3.0)).to(dtype)
        x = x * self.input_mask.mask
        errors = {}
        with torch.no_grad():
            ref = self(x)
            for el in elements if elements is not None else self.group.gspace().testing_elements:
                flip, deg = element_transform(self.group, el)
                errors[el] = relative_error(self(rotate_images(x, deg, bool(flip))), ref)
        self.train(was)
        return errors
