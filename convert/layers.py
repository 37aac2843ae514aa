"""The per-layer table (what ST Edge AI's `analyze` prints): one row per op of the int8 model.

The arena in use at an op is derived from the graph the way TFLM's memory planner sees it
(tensorflow/lite/micro/micro_allocation_info.cc): a non-constant tensor lives from the op that
writes it (graph inputs: from the start) to the last op that reads it (graph outputs: to the end),
and takes its byte length rounded up to 16 (MicroArenaBufferAlignment). tflite-micro's Python
interpreter exposes no per-op allocation (GetTensor needs kPreserveAllTensors, which turns the
planner's reuse off), so this is computed, not read back. It leaves out what the planner adds
(kernel scratch buffers, and the gaps of its greedy placement) and the persistent tail (TFLM's
structs, quantization parameters), which is why the measured arena is larger than the peak here.
"""
from __future__ import annotations

import math

import numpy as np

from .ops_check import op_macs
from .tflite_graph import Graph, Tensor

ALIGN = 16
METHOD = ("Arena in use: the bytes (each rounded up to 16) of the tensors live while the op runs (its inputs, "
          "its outputs and every tensor written before and read after it), from the int8 graph's tensor "
          "lifetimes as TFLM's memory planner computes them; without kernel scratch buffers and TFLM's "
          "persistent structures. Weight bytes: the op's constant inputs (weights, biases, masks). "
          "Activation bytes: its output tensor. MACs: multiply-accumulates (one per element for ADD, MUL, MEAN).")


def nbytes(t: Tensor) -> int:
    return int(math.prod(t.shape)) * np.dtype(t.dtype).itemsize


def lifetimes(graph: Graph) -> dict[int, tuple[int, int]]:
    """{tensor index: (first op, last op)} for every tensor the planner places (-1: before op 0)."""
    n = len(graph.ops)
    first: dict[int, int] = {i: -1 for i in graph.inputs}
    last: dict[int, int] = {i: -1 for i in graph.inputs}
    for op in graph.ops:
        for i in op.outputs:
            first.setdefault(i, op.index)
            last[i] = op.index
        for i in op.inputs:
            if i >= 0 and not graph.tensors[i].is_constant:
                last[i] = op.index
    for i in graph.outputs:
        first.setdefault(i, n - 1)
        last[i] = n - 1
    return {i: (first[i], last[i]) for i in sorted(first) if nbytes(graph.tensors[i])}


def layer_rows(graph: Graph) -> list[dict]:
    """One row per op, in execution order."""
    life = lifetimes(graph)
    planned = {i: -(-nbytes(graph.tensors[i]) // ALIGN) * ALIGN for i in life}
    rows = []
    for op in graph.ops:
        live = [i for i, (a, b) in life.items() if a <= op.index <= b]
        largest = max(live, key=lambda i: (planned[i], -i))
        out = graph.tensors[op.outputs[0]]
        rows.append({
            "index": op.index,
            "op": op.name,
            "output_shape": list(out.shape),
            "macs": op_macs(graph, op),
            "weight_bytes": sum(nbytes(graph.tensors[i]) for i in op.inputs if i >= 0 and graph.tensors[i].is_constant),
            "activation_bytes": sum(nbytes(graph.tensors[i]) for i in op.outputs),
            "arena_in_use_bytes": sum(planned[i] for i in live),
            "live_tensors": len(live),
            "largest_live_tensor": {"tensor": largest, "bytes": planned[largest]},
        })
    return rows


def weight_ranges(graph: Graph) -> list[dict]:
    """Per depthwise op, the spread of max |w| over its channels (dequantized int8): the five
    numbers of a box plot. One range per tensor must cover the widest channel."""
    rows = []
    for op in graph.ops:
        if op.name != "DEPTHWISE_CONV_2D":
            continue
        w = graph.tensors[op.inputs[1]]
        q = np.abs(w.data.astype(np.float64)).reshape(-1, w.shape[-1]).max(axis=0)
        scale = np.broadcast_to(np.asarray(w.scale, np.float64), q.shape)
        per_channel = q * scale
        rows.append({"index": op.index, "channels": int(q.size),
                     "max_abs": [float(v) for v in np.percentile(per_channel, [0, 25, 50, 75, 100])]})
    return rows
