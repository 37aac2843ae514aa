"""The op contract (op_table.OPS): only ops that both TFLM and the Edge TPU run, in shapes both accept."""
from __future__ import annotations

import math

from .errors import ConversionError
from .op_table import OPS
from .tflite_graph import Graph

ALLOWED = tuple(OPS)


def check_ops(graph: Graph, what: str) -> None:
    """Raise naming the first op outside the contract (or a grouped conv, or a >4-D tensor)."""
    for op in graph.ops:
        if op.name not in ALLOWED:
            raise ConversionError(f"{what} contains unsupported op {op.name} (op #{op.index}); "
                                  f"allowed: {', '.join(ALLOWED)}")
        if op.name == "CONV_2D":
            cin = graph.tensors[op.inputs[0]].shape[-1]
            if graph.tensors[op.inputs[1]].shape[-1] != cin:
                raise ConversionError(f"{what} contains a grouped CONV_2D (op #{op.index})")
        for i in op.inputs + op.outputs:
            if i >= 0 and len(graph.tensors[i].shape) > 4:
                raise ConversionError(f"{what} has a {len(graph.tensors[i].shape)}-D tensor at op #{op.index} {op.name}")


def op_macs(graph: Graph, op) -> int:
    """Multiply-accumulates of one op (conv, depthwise, fully connected; one per element for the
    elementwise ADD, MUL and MEAN; 0 for the rest)."""
    t = graph.tensors
    o = t[op.outputs[0]].shape
    if op.name == "CONV_2D":
        _, kh, kw, cin = t[op.inputs[1]].shape
        return int(o[1] * o[2] * o[3] * kh * kw * cin)
    if op.name == "DEPTHWISE_CONV_2D":
        _, kh, kw, _ = t[op.inputs[1]].shape
        return int(o[1] * o[2] * o[3] * kh * kw)
    if op.name == "FULLY_CONNECTED":
        return int(t[op.inputs[1]].shape[0] * t[op.inputs[1]].shape[1])
    if op.name in ("ADD", "MUL", "MEAN"):
        return int(math.prod(t[op.inputs[0]].shape))
    return 0


def macs(graph: Graph) -> dict[str, int]:
    """Multiply-accumulates per op type (those with any), and the total."""
    out: dict[str, int] = {}
    for op in graph.ops:
        if n := op_macs(graph, op):
            out[op.name] = out.get(op.name, 0) + n
    out["total"] = sum(out.values())
    return out
