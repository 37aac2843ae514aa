"""Read-only view of a .tflite flatbuffer: ops in execution order, tensors, quantization."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from e2micro.errors import BadInput


def schema():
    # LiteRT ships the same schema module without importing all of TensorFlow; private: pinned in
    # convert/private_api.py.
    from .private_api import require

    require("schema_py_generated")
    from ai_edge_litert import schema_py_generated as fb

    return fb


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]
    dtype: str
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    min: np.ndarray | None
    max: np.ndarray | None
    data: np.ndarray | None  # constant contents, None for activations
    quantized_dimension: int = 0

    @property
    def is_constant(self) -> bool:
        return self.data is not None


@dataclass
class Op:
    index: int
    name: str  # builtin name, e.g. CONV_2D
    inputs: list[int]
    outputs: list[int]
    fused_activation: str  # NONE, RELU, RELU6, … for ops that have it
    options: object


_DTYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8"}
_NUMPY = {"float32": np.float32, "float16": np.float16, "int32": np.int32, "uint8": np.uint8, "int64": np.int64,
          "int16": np.int16, "int8": np.int8, "bool": np.bool_}


class Graph:
    def __init__(self, model_bytes: bytes):
        fb = schema()
        self.bytes = model_bytes
        m = fb.Model.GetRootAs(model_bytes, 0)
        self.version = m.Version()
        if m.SubgraphsLength() != 1:
            raise BadInput(f"expected one subgraph, found {m.SubgraphsLength()}")
        g = m.Subgraphs(0)
        op_names = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
        act_names = {v: k for k, v in vars(fb.ActivationFunctionType).items() if not k.startswith("_")}
        self.tensors: list[Tensor] = []
        for i in range(g.TensorsLength()):
            t = g.Tensors(i)
            dtype = _DTYPES.get(t.Type(), f"type{t.Type()}")
            q = t.Quantization()
            buf = m.Buffers(t.Buffer())
            data = None
            if buf is not None and buf.DataLength() > 0:
                data = buf.DataAsNumpy().view(_NUMPY[dtype]).reshape(tuple(t.ShapeAsNumpy()) if t.ShapeLength() else ())
            arr = lambda f, n: (f() if q is not None and n() > 0 else None)
            self.tensors.append(Tensor(
                i, t.Name().decode(), tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else (),
                tuple(int(v) for v in t.ShapeSignatureAsNumpy()) if t.ShapeSignatureLength() else (),
                dtype,
                arr(lambda: q.ScaleAsNumpy(), lambda: q.ScaleLength()) if q else None,
                arr(lambda: q.ZeroPointAsNumpy(), lambda: q.ZeroPointLength()) if q else None,
                arr(lambda: q.MinAsNumpy(), lambda: q.MinLength()) if q else None,
                arr(lambda: q.MaxAsNumpy(), lambda: q.MaxLength()) if q else None,
                data, q.QuantizedDimension() if q else 0))
        self.ops: list[Op] = []
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            code = m.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = op_names.get(builtin, f"OP{builtin}")
            if name == "CUSTOM":
                name = f"CUSTOM:{code.CustomCode().decode()}"
            opts, act = _options(fb, op, name), "NONE"
            if opts is not None and hasattr(opts, "FusedActivationFunction"):
                act = act_names[opts.FusedActivationFunction()]
            self.ops.append(Op(i, name, [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else [],
                               [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else [], act, opts))
        self.inputs = [int(v) for v in g.InputsAsNumpy()]
        self.outputs = [int(v) for v in g.OutputsAsNumpy()]

    @classmethod
    def load(cls, path) -> "Graph":
        with open(path, "rb") as f:
            return cls(f.read())

    def histogram(self) -> dict[str, int]:
        return dict(sorted(Counter(op.name for op in self.ops).items()))

    def input(self) -> Tensor:
        return self.tensors[self.inputs[0]]

    def output(self) -> Tensor:
        return self.tensors[self.outputs[0]]


def _options(fb, op, name):
    table = op.BuiltinOptions()
    if table is None:
        return None
    cls = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions", "ADD": "AddOptions",
           "MUL": "MulOptions", "FULLY_CONNECTED": "FullyConnectedOptions", "SUB": "SubOptions",
           "AVERAGE_POOL_2D": "Pool2DOptions", "MAX_POOL_2D": "Pool2DOptions"}.get(name)
    if cls is None:
        return None
    o = getattr(fb, cls)()
    o.Init(table.Bytes, table.Pos)
    return o
