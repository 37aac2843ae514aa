"""The int8 graph as the engine runs it: a masked stem, inverted-residual blocks, a masked-mean
head; every op's TFLM integer parameters computed here, once, at generation time."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConversionError
from . import quant


@dataclass
class Conv:
    """CONV_2D or DEPTHWISE_CONV_2D (depthwise: w is (kh, kw, C))."""
    name: str  # for the report: op index and role
    op_index: int
    depthwise: bool
    w: np.ndarray  # int8: conv (Cout, kh, kw, Cin), depthwise (kh, kw, C)
    bias: np.ndarray  # int32 (Cout,)
    mult: np.ndarray  # int32 (Cout,)
    shift: np.ndarray  # int32 (Cout,)
    in_off: int
    out_off: int
    act: tuple[int, int]
    stride: int
    pad: int  # top/left padding (TFLM's reference kernels: the rest falls outside the input)
    in_shape: tuple[int, int, int]  # H, W, C
    out_shape: tuple[int, int, int]

    @property
    def kernel(self) -> int:
        return self.w.shape[0] if self.depthwise else self.w.shape[1]


@dataclass
class Add:
    op_index: int
    residual_first: bool  # ADD's input1 is the block input (else the projection)
    in1_off: int
    in2_off: int
    out_off: int
    p: dict
    act: tuple[int, int]


@dataclass
class Mask:
    """MUL by a constant (H, W) mask broadcast over channels."""
    op_index: int
    mask: np.ndarray  # int8 (H, W)
    in_off: int
    mask_off: int
    out_off: int
    mult: int
    shift: int
    act: tuple[int, int]


@dataclass
class Block:
    """[expand 1×1] → depthwise → project 1×1 → [+ input]; the stem can stand in for expand."""
    index: int
    expand: Conv | None
    dw: Conv
    project: Conv
    add: Add | None
    out_tensor: int  # the .tflite tensor this block's output is (for tracing against LiteRT)


@dataclass
class Head:
    conv: Conv
    mask: Mask
    mean_n: int
    mean_in_zp: int
    mean_mult: int
    mean_shift: int
    mean_out_zp: int
    fc_w: np.ndarray  # int8 (K, C)
    fc_bias: np.ndarray
    fc_mult: np.ndarray  # (K,) (per-tensor broadcast)
    fc_shift: np.ndarray
    fc_in_off: int
    fc_w_off: int
    fc_out_off: int
    fc_act: tuple[int, int]
    fc_op: int


@dataclass
class Plan:
    input_shape: tuple[int, int, int]
    input_mask: Mask
    stem: Conv
    blocks: list[Block]
    head: Head
    num_classes: int
    out_scale: float
    out_zero_point: int
    ops: dict = field(default_factory=dict)
    pooled_tensor: int = -1  # MEAN's output

    def trace_tensors(self) -> list[int]:
        """Tensors an E2M_TRACE build reports, in order: each block's output, then the pooled vector."""
        return [b.out_tensor for b in self.blocks] + [self.pooled_tensor]


def _q(t):
    return t.scale, t.zero_point


def _shape3(t) -> tuple[int, int, int]:
    if len(t.shape) != 4 or t.shape[0] != 1:
        raise ConversionError(f"tensor {t.name!r} has shape {t.shape}: the engine needs batch-1 NHWC")
    return tuple(int(v) for v in t.shape[1:])


def _conv(g, op, name: str) -> Conv:
    x, w, b = (g.tensors[i] for i in op.inputs[:3])
    y = g.tensors[op.outputs[0]]
    depthwise = op.name == "DEPTHWISE_CONV_2D"
    o = op.options
    if o.DilationHFactor() != 1 or o.DilationWFactor() != 1:
        raise ConversionError(f"op {op.index} ({op.name}): dilation is not supported by the engine")
    if o.StrideH() != o.StrideW():
        raise ConversionError(f"op {op.index} ({op.name}): unequal strides are not supported by the engine")
    if depthwise and o.DepthMultiplier() not in (1, 0) and w.shape[3] != x.shape[3]:
        raise ConversionError(f"op {op.index}: depth multiplier ≠ 1 is not supported by the engine")
    if x.dtype != "int8" or w.dtype != "int8" or b.dtype != "int32" or y.dtype != "int8":
        raise ConversionError(f"op {op.index} ({op.name}): the engine needs int8 tensors with int32 bias")
    if w.zero_point is not None and np.any(w.zero_point != 0):
        raise ConversionError(f"op {op.index} ({op.name}): asymmetric weights are not supported")
    ish, osh = _shape3(x), _shape3(y)
    k, s = (w.shape[1], int(o.StrideH()))
    if w.shape[1] != w.shape[2]:
        raise ConversionError(f"op {op.index}: non-square kernels are not supported by the engine")
    # padding enum: 0 SAME, 1 VALID (schema Padding); TFLM pads top/left by total // 2
    if o.Padding() == 0:
        total = max((osh[0] - 1) * s + k - ish[0], 0)
        pad = total // 2
    else:
        pad = 0
    cout = osh[2]
    wscale = np.broadcast_to(np.asarray(w.scale, np.float32), (cout,))
    mult, shift = quant.conv_multipliers(x.scale[0], wscale, y.scale[0])
    wd = w.data[0] if depthwise else w.data
    return Conv(name, op.index, depthwise, np.ascontiguousarray(wd), b.data.astype(np.int32).copy(),
                np.array(mult, np.int32), np.array(shift, np.int32), -int(x.zero_point[0]), int(y.zero_point[0]),
                quant.activation_range(op.fused_activation, y.scale[0], int(y.zero_point[0])), s, int(pad), ish, osh)


def _mask(g, op, act_input: int) -> Mask:
    a, c = op.inputs[:2] if op.inputs[0] == act_input else op.inputs[1::-1]
    x, m, y = g.tensors[a], g.tensors[c], g.tensors[op.outputs[0]]
    if not m.is_constant:
        raise ConversionError(f"op {op.index} (MUL): the engine needs a constant mask operand")
    hw = _shape3(x)[:2]
    mask = np.asarray(m.data).reshape(-1)
    if mask.size != hw[0] * hw[1] or (m.shape and m.shape[-1] != 1 and len(m.shape) == 4):
        raise ConversionError(f"op {op.index} (MUL): mask shape {m.shape} is not (H, W) broadcast over channels")
    mult, shift = quant.mul_params(x.scale[0], m.scale[0], y.scale[0])
    return Mask(op.index, mask.reshape(hw).astype(np.int8), -int(x.zero_point[0]), -int(m.zero_point[0]),
                int(y.zero_point[0]), mult, shift,
                quant.activation_range(op.fused_activation, y.scale[0], int(y.zero_point[0])))


def _add(g, op, residual: int) -> Add:
    a, b = (g.tensors[i] for i in op.inputs[:2])
    y = g.tensors[op.outputs[0]]
    if _shape3(a) != _shape3(b):
        raise ConversionError(f"op {op.index} (ADD): broadcasting adds are not supported by the engine")
    return Add(op.index, op.inputs[0] == residual, -int(a.zero_point[0]), -int(b.zero_point[0]), int(y.zero_point[0]),
               quant.add_params(a.scale[0], b.scale[0], y.scale[0]),
               quant.activation_range(op.fused_activation, y.scale[0], int(y.zero_point[0])))


class _Ops:
    def __init__(self, g):
        self.g, self.ops, self.i = g, g.ops, 0

    def peek(self, k: int = 0):
        return self.ops[self.i + k] if self.i + k < len(self.ops) else None

    def take(self, name: str, reads: int | None = None):
        op = self.peek()
        if op is None:
            raise ConversionError(f"the graph ends where the engine expects {name}")
        if op.name != name or (reads is not None and reads not in op.inputs):
            raise ConversionError(f"op {op.index} ({op.name}) where the engine expects {name}: "
                                  "not the MobileNetV2 layout `convert tflite` writes")
        self.i += 1
        return op


def _is_1x1(g, op) -> bool:
    return op is not None and op.name == "CONV_2D" and g.tensors[op.inputs[1]].shape[1:3] == (1, 1)


def build_plan(g) -> Plan:
    """Match the converter's op sequence; anything else is refused with the op named."""
    for op in g.ops:
        if op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "MEAN", "FULLY_CONNECTED"):
            raise ConversionError(f"op {op.index} is {op.name}: the engine runs CONV_2D, DEPTHWISE_CONV_2D, ADD, "
                                  "MUL, MEAN and FULLY_CONNECTED only")
    inp = g.input()
    if inp.dtype != "int8":
        raise ConversionError(f"input is {inp.dtype}: the engine needs an int8 input")
    ops = _Ops(g)
    op = ops.take("MUL", g.inputs[0])
    input_mask = _mask(g, op, g.inputs[0])
    op = ops.take("CONV_2D", op.outputs[0])
    stem = _conv(g, op, "stem")
    cur, blocks = op.outputs[0], []
    while True:
        nxt = ops.peek()
        if nxt is None:
            raise ConversionError("the graph ends without the masked-mean head")
        if _is_1x1(g, nxt) and not (ops.peek(1) is not None and ops.peek(1).name == "DEPTHWISE_CONV_2D"):
            break  # the head's 1×1 conv
        expand = None
        b = len(blocks)
        if _is_1x1(g, nxt):
            op = ops.take("CONV_2D", cur)
            expand = _conv(g, op, f"blocks.{b}.expand")
            src = op.outputs[0]
        else:
            src = cur
        op = ops.take("DEPTHWISE_CONV_2D", src)
        dw = _conv(g, op, f"blocks.{b}.dw")
        op = ops.take("CONV_2D", op.outputs[0])
        project = _conv(g, op, f"blocks.{b}.project")
        out, add = op.outputs[0], None
        nxt = ops.peek()
        if nxt is not None and nxt.name == "ADD" and cur in nxt.inputs and out in nxt.inputs:
            op = ops.take("ADD", out)
            add = _add(g, op, cur)
            out = op.outputs[0]
        blocks.append(Block(b, expand, dw, project, add, out))
        cur = out
    op = ops.take("CONV_2D", cur)
    conv = _conv(g, op, "head.conv")
    mop = ops.take("MUL", op.outputs[0])
    mask = _mask(g, mop, op.outputs[0])
    mean_op = ops.take("MEAN", mop.outputs[0])
    x, y = g.tensors[mean_op.inputs[0]], g.tensors[mean_op.outputs[0]]
    axes = sorted(int(v) for v in np.atleast_1d(g.tensors[mean_op.inputs[1]].data))
    if axes != [1, 2]:
        raise ConversionError(f"op {mean_op.index} (MEAN) over axes {axes}: the engine needs the spatial mean")
    h, w, c = _shape3(x)
    n = h * w
    mm, ms = quant.mean_params(x.scale[0], y.scale[0], n)
    fc_op = ops.take("FULLY_CONNECTED", mean_op.outputs[0])
    fx, fw, fb = (g.tensors[i] for i in fc_op.inputs[:3])
    fy = g.tensors[fc_op.outputs[0]]
    if ops.peek() is not None:
        raise ConversionError(f"op {ops.peek().index} ({ops.peek().name}) after the classifier")
    if fw.data.shape[1] != c:
        raise ConversionError(f"op {fc_op.index}: classifier input {fw.data.shape[1]} ≠ {c} pooled channels")
    k = fw.data.shape[0]
    fm, fs = quant.conv_multipliers(fx.scale[0], np.broadcast_to(np.asarray(fw.scale, np.float32), (k,)),
                                    fy.scale[0])
    head = Head(conv, mask, n, int(x.zero_point[0]), mm, ms, int(y.zero_point[0]), fw.data.copy(),
                fb.data.astype(np.int32).copy(), np.array(fm, np.int32), np.array(fs, np.int32),
                -int(fx.zero_point[0]), -int(fw.zero_point[0]) if fw.zero_point is not None else 0,
                int(fy.zero_point[0]),
                quant.activation_range(fc_op.fused_activation, fy.scale[0], int(fy.zero_point[0])), fc_op.index)
    out = g.output()
    return Plan(_shape3(inp), input_mask, stem, blocks, head, k, float(out.scale[0]), int(out.zero_point[0]),
                g.histogram(), mean_op.outputs[0])
