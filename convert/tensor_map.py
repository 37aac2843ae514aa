"""Map TFLite tensors to the model's activation points.

TFLite tensor names are fused TF op names and indices change between the float and int8 files,
so names are not used. Instead the graph is walked in execution order from the input: each op's
activation inputs are already mapped, which leaves exactly one activation point of the matching
kind that reads them; weighted ops must also carry that point's weights (within half an int8
step when quantized) and its fused activation. PAD and RESHAPE outputs alias their input.
"""
from __future__ import annotations

import numpy as np

from calibration.points import INPUT, Point

from .errors import ConversionError
from .op_table import OPS
from .tflite_graph import Graph

KINDS = {name: op.kinds for name, op in OPS.items() if op.kinds}
ALIASES = tuple(name for name, op in OPS.items() if op.alias)
ACT = {"relu6": "RELU6", "relu": "RELU", "none": "NONE"}


def _torch_layout(op_name: str, w):
    w = w.detach().cpu().numpy()
    if op_name == "CONV_2D":
        return w.transpose(0, 2, 3, 1)  # OIHW → OHWI
    if op_name == "DEPTHWISE_CONV_2D":
        return w.transpose(1, 2, 3, 0)  # C1HW → 1HWC
    return w  # Linear: (out, in) as FULLY_CONNECTED


def _dequantized(graph: Graph, idx: int) -> tuple[np.ndarray, np.ndarray]:
    """(weights as float, tolerance per element)."""
    t = graph.tensors[idx]
    if t.dtype == "float32":
        return t.data.astype(np.float64), np.full(t.data.shape, 1e-6 * max(1.0, float(np.abs(t.data).max())))
    scale, zp = t.scale.astype(np.float64), t.zero_point.astype(np.float64)
    shape = [1] * t.data.ndim
    if scale.size > 1:
        shape[t.quantized_dimension] = -1
    s = scale.reshape(shape)
    # half a step, plus float32 rounding of the scale (ties land exactly on the half step)
    return (t.data.astype(np.float64) - zp.reshape(shape)) * s, np.broadcast_to(0.501 * s, t.data.shape)


def _weights_match(graph: Graph, op, point: Point) -> bool:
    if point.conv is None or len(op.inputs) < 2:
        return False
    want = _torch_layout(op.name, point.conv.weight)
    got, tol = _dequantized(graph, op.inputs[1])
    return got.shape == want.shape and bool(np.all(np.abs(got - want) <= tol))


def map_tensors(graph: Graph, points: list[Point]) -> dict[str, list[int]]:
    """{point key: [TFLite tensor indices]} for every activation point; raises if any op is unmapped."""
    key_of = {graph.inputs[0]: INPUT}
    result: dict[str, list[int]] = {INPUT: [graph.inputs[0]]}
    for op in graph.ops:
        acts = [i for i in op.inputs if i >= 0 and not graph.tensors[i].is_constant]
        in_keys = [key_of.get(i) for i in acts]
        if None in in_keys:
            raise ConversionError(f"TFLite op #{op.index} {op.name} reads a tensor that no model activation produces")
        if op.name in ALIASES:
            key_of[op.outputs[0]] = in_keys[0]
            result[in_keys[0]].append(op.outputs[0])
            continue
        kinds = KINDS.get(op.name)
        if kinds is None:
            raise ConversionError(f"TFLite op #{op.index} {op.name} has no counterpart in the model")
        found = [p for p in points if p.kind in kinds and sorted(p.inputs) == sorted(in_keys)]
        weighted = any(k in ("conv", "linear") for k in kinds)
        if weighted:
            found = [p for p in found if _weights_match(graph, op, p)]
        if len(found) != 1:
            raise ConversionError(f"TFLite op #{op.index} {op.name} matches {len(found)} model activations")
        p = found[0]
        if weighted and op.fused_activation != ACT[p.act]:
            raise ConversionError(f"TFLite op #{op.index} {op.name} fuses {op.fused_activation}, the model has {p.act}")
        if p.key in result:
            raise ConversionError(f"activation '{p.key}' is produced twice in the TFLite graph")
        key_of[op.outputs[0]] = p.key
        result[p.key] = [op.outputs[0]]
    missing = [p.key for p in points if p.key not in result]
    if missing:
        raise ConversionError(f"activations missing from the TFLite graph: {', '.join(missing[:5])}")
    return result
