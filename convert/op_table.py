"""The op contract, in one table: every TFLite op a converted model may contain.

For each op: the TFLM `MicroMutableOpResolver` call that registers it (model_ops.h), and how the
tensor map ties its output to the model's activations (`kinds`: the kinds of activation point,
calibration.points.KINDS, it may produce; `alias`: its output is its input, as for the PADs onnx2tf inserts). Anything else
fails the op check (ops_check.py) before any other stage looks at the graph. All of them are in
the Edge TPU's op table (edgetpu.rules.EDGETPU_OPS; a test holds the two side by side), and the
README's op list is this table (a test checks that too).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Op:
    resolver: str
    kinds: tuple[str, ...] = ()  # activation point kinds the output may be
    alias: bool = False  # output aliases the input (same scale, same values)


OPS: dict[str, Op] = {
    "CONV_2D": Op("AddConv2D", kinds=("conv",)),
    "DEPTHWISE_CONV_2D": Op("AddDepthwiseConv2D", kinds=("conv",)),
    "ADD": Op("AddAdd", kinds=("add",)),
    "MUL": Op("AddMul", kinds=("input_mask", "head_mask")),
    "MEAN": Op("AddMean", kinds=("mean",)),
    "FULLY_CONNECTED": Op("AddFullyConnected", kinds=("linear",)),
    "PAD": Op("AddPad", alias=True),
    "RESHAPE": Op("AddReshape", alias=True),
}
