"""Stage: plain PyTorch → ONNX (opset 17, static batch 1), tensors named after activation points,
checked against PyTorch with onnxruntime."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import onnx
import torch

from calibration.points import INPUT, OUTPUT, Point, activation_points

from .errors import ConversionError

OPSET = 17


def export_onnx(model, path: Path) -> onnx.ModelProto:
    s = model.config.input_size
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, torch.zeros(1, 3, s, s), buf, dynamo=False, opset_version=OPSET,
                          input_names=[INPUT], output_names=[OUTPUT], do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    name_points(proto, activation_points(model))
    onnx.checker.check_model(proto)
    Path(path).write_bytes(proto.SerializeToString())
    return proto


# The ONNX ops that compute each kind of activation point (calibration.points.KINDS), in order:
# the point's tensor is the last one's output.
PRODUCERS = {"input": (), "input_mask": ("Mul",), "conv": ("Conv",), "add": ("Add",), "head_mask": ("Mul",),
             "mean": ("ReduceMean",), "linear": ("Gemm",)}
ACTIVATIONS = {"relu6": ("Clip",), "relu": ("Relu",), "none": ()}


def onnx_ops(p: Point) -> tuple[str, ...]:
    return PRODUCERS[p.kind] + ACTIVATIONS[p.act]


def name_points(proto: onnx.ModelProto, points: list[Point]) -> None:
    """Rename each point's tensor to its key, checking the ops are the ones the model implies."""
    # Not computation: Constant nodes, and the Identity the exporter puts in front of a parameter
    # equal to another one (it stores bit-identical tensors once, e.g. two layers' equal biases).
    params = {t.name for t in proto.graph.initializer}
    nodes = [n for n in proto.graph.node if n.op_type != "Constant"
             and not (n.op_type == "Identity" and n.input[0] in params)]
    expected = [(p, op) for p in points for op in onnx_ops(p)]
    got = [n.op_type for n in nodes]
    if got != [op for _, op in expected]:
        raise ConversionError(f"ONNX graph has ops {sorted(set(got))} in an unexpected order "
                              f"({len(got)} ops, expected {len(expected)})")
    renames = {}
    for (p, op), node in zip(expected, nodes):
        if op == onnx_ops(p)[-1] and p.key not in (OUTPUT,):
            renames[node.output[0]] = p.key
    for node in proto.graph.node:
        node.input[:] = [renames.get(i, i) for i in node.input]
        node.output[:] = [renames.get(o, o) for o in node.output]


def check_onnx(proto: onnx.ModelProto, model, x: np.ndarray) -> float:
    """max |logit difference| between onnxruntime and PyTorch on NCHW float input x."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    out = np.concatenate([sess.run([OUTPUT], {INPUT: x[i:i + 1]})[0] for i in range(len(x))])
    return float(np.abs(out - ref).max())
