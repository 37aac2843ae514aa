"""The per-op verdict: does each op of an int8 model meet the Edge TPU's requirements (rules.py), and
where would the compiler cut the graph."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .rules import BIAS_INPUTS, DOCS, EDGETPU_CUSTOM_OP, EDGETPU_OPS, NO_FUSED_ACTIVATION, PARAM_INPUTS, REDUCTIONS


@dataclass
class Row:
    index: int
    op: str
    maps: bool
    reasons: list[str] = field(default_factory=list)


@dataclass
class Verdict:
    rows: list[Row]

    @property
    def ok(self) -> bool:
        return all(r.maps for r in self.rows)

    @property
    def cut_at(self) -> int | None:
        """Index of the first op the compiler cannot map (where it cuts the graph), None if all map."""
        return next((r.index for r in self.rows if not r.maps), None)

    def summary(self) -> str:
        n, k = len(self.rows), self.cut_at
        if k is None:
            return f"all {n} ops map to the Edge TPU"
        where = ("nothing runs on the Edge TPU" if k == 0 else f"ops 0..{k - 1} run on the Edge TPU")
        row = self.rows[k]
        return f"op #{k} {row.op} does not map ({row.reasons[0]}): {where}, ops {k}..{n - 1} on the CPU"

    def to_dict(self) -> dict:
        return {"ok": self.ok, "ops": len(self.rows), "cut_at": self.cut_at, "summary": self.summary(),
                "requirements": DOCS, "rows": [asdict(r) for r in self.rows]}


def check(graph) -> Verdict:
    """Per-op verdict for a `convert.tflite_graph.Graph`, in execution order."""
    return Verdict([_check_op(graph, op) for op in graph.ops])


def _check_op(graph, op) -> Row:
    if op.name == EDGETPU_CUSTOM_OP:  # an already compiled model: this op is the Edge TPU
        return Row(op.index, op.name, True)
    reasons = [] if op.name in EDGETPU_OPS else [f"{op.name} is not in the Edge TPU's op table"]
    bias, params = BIAS_INPUTS.get(op.name), PARAM_INPUTS.get(op.name, ())
    for slot, ti in enumerate(op.inputs):
        if ti >= 0:
            reasons += _check_tensor(graph.tensors[ti], bias=slot == bias, param=slot in params)
    for ti in op.outputs:
        reasons += _check_tensor(graph.tensors[ti], bias=False, param=False)
    reasons += _op_limits(graph, op)
    return Row(op.index, op.name, not reasons, list(dict.fromkeys(reasons)))  # keep order, drop repeats


def _check_tensor(t, *, bias: bool, param: bool) -> list[str]:
    out = []
    if t.dtype not in ("int8", "uint8") and not (t.dtype == "int32" and (bias or (param and t.is_constant))):
        out.append(f"tensor '{t.name}' is {t.dtype}")
    if any(d < 0 for d in t.shape_signature):
        out.append(f"tensor '{t.name}' has a dynamic shape {list(t.shape_signature)}")
    if t.is_constant or param or bias:  # weights and parameters follow their own layout
        return out
    if len(t.shape) >= 2 and t.shape[0] != 1:
        out.append(f"tensor '{t.name}' has batch {t.shape[0]}, not 1")
    if len(t.shape) > 3 and any(d > 1 for d in t.shape[:-3]):
        out.append(f"tensor '{t.name}' {list(t.shape)} has a dimension > 1 outside the innermost 3")
    return out


def _op_limits(graph, op) -> list[str]:
    """The per-op limits in Coral's table that this project's ops can run into."""
    out, o = [], op.options
    if op.name in NO_FUSED_ACTIVATION and op.fused_activation != "NONE":
        out.append(f"{op.name} with a fused {op.fused_activation} (the Edge TPU takes none here)")
    if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D") and o is not None and hasattr(o, "DilationHFactor"):
        if o.DilationHFactor() != o.DilationWFactor():
            out.append(f"dilation {o.DilationHFactor()}×{o.DilationWFactor()} differs between y and x")
    if op.name in REDUCTIONS and len(op.inputs) > 1:
        data, axis = graph.tensors[op.inputs[0]], graph.tensors[op.inputs[1]]
        rank = len(data.shape)
        axes = {int(a) % rank for a in axis.data.reshape(-1)} if axis.is_constant and rank else set()
        if 0 in axes and rank > 1:
            out.append(f"{op.name} reduces the batch dimension")
        if rank - 1 in axes and rank > 1 and data.shape[-1] % 4:
            out.append(f"{op.name} over channels needs a multiple of 4 channels, not {data.shape[-1]}")
    if op.name == "SOFTMAX":
        t = graph.tensors[op.inputs[0]]
        if sum(d > 1 for d in t.shape) > 1 or math.prod(t.shape) > 16000:
            out.append(f"SOFTMAX needs a 1-D input of at most 16,000 elements, not {list(t.shape)}")
    if op.name == "FULLY_CONNECTED" and sum(d > 1 for d in graph.tensors[op.outputs[0]].shape) > 1:
        out.append("FULLY_CONNECTED output must be one-dimensional")
    if op.name == "PAD" and len(op.inputs) > 1 and graph.tensors[op.inputs[1]].is_constant:
        if graph.tensors[op.inputs[1]].data.reshape(-1, 2)[0].any():
            out.append("PAD pads the batch dimension")
    return out


def table_lines(verdict: Verdict) -> list[str]:
    """Op-by-op table: 'yes' maps, 'no' does not, 'cpu' would map but follows the cut."""
    cut = verdict.cut_at
    lines = [f"{'#':>4}  {'op':<26} {'Edge TPU':<9} why not"]
    for r in verdict.rows:
        status = "no" if not r.maps else ("cpu" if cut is not None and r.index > cut else "yes")
        lines.append(f"{r.index:>4}  {r.op:<26} {status:<9} {'; '.join(r.reasons)}".rstrip())
    return lines
