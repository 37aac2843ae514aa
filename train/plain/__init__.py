"""The plain-PyTorch MobileNetV2: the conventional twin, what the equivariant model exports to, and
the one format every later stage (batch-norm folding, data-free quantization, ONNX) consumes.
It depends on nothing of the project but `train.config`: `train.nn` and `train.model` build on it,
`calibration/` and `convert/` read it."""
from __future__ import annotations

from .network import (ConvBNAct, InvertedResidual, MaskedMeanHead, MaskMul, Normalize, PlainMobileNetV2, build_plain,
                      check_input, circular_mask)
from .table import KERNEL, ArchSpec, decode

__all__ = ["ConvBNAct", "InvertedResidual", "MaskedMeanHead", "MaskMul", "Normalize", "PlainMobileNetV2", "build_plain",
           "check_input", "circular_mask", "KERNEL", "ArchSpec", "decode"]
