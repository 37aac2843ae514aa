"""Coral's documented requirements (coral.ai/docs/edgetpu/models-intro), as tables: every tensor
int8/uint8 (int32 only as a bias, or as a constant shape/axis parameter); shapes fixed at compile
time; batch 1; at most the 3 innermost dimensions larger than 1; the op in Coral's table (with its
documented limits). The compiler maps ops in execution order and cuts the graph at the first op it
cannot map: that op and everything after it run on the host CPU.
"""
from __future__ import annotations

# Coral's "supported operations" table, as TFLite builtin names.
EDGETPU_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS", "FULLY_CONNECTED",
    "L2_NORMALIZATION", "LOGISTIC", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "MAXIMUM", "MAX_POOL_2D", "MEAN",
    "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6",
    "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX",
    "SPACE_TO_DEPTH", "SPLIT", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "SQUARED_DIFFERENCE", "TANH",
    "TRANSPOSE_CONV",
})
EDGETPU_CUSTOM_OP = "CUSTOM:edgetpu-custom-op"  # what the compiler replaces the mapped ops with
BIAS_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}
# Inputs that are shape/axis/size parameters (int32 vectors), not data.
PARAM_INPUTS = {"MEAN": (1,), "SUM": (1,), "REDUCE_MAX": (1,), "REDUCE_MIN": (1,), "RESHAPE": (1,), "PAD": (1,),
                "EXPAND_DIMS": (1,), "SLICE": (1, 2), "STRIDED_SLICE": (1, 2, 3), "SPLIT": (0,),
                "RESIZE_BILINEAR": (1,), "RESIZE_NEAREST_NEIGHBOR": (1,), "TRANSPOSE": (1,), "TRANSPOSE_CONV": (0,)}
NO_FUSED_ACTIVATION = ("AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION")
REDUCTIONS = ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN")
DOCS = "https://coral.ai/docs/edgetpu/models-intro/"
