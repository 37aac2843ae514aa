"""The stages of `convert tflite`, one function each, in the order convert/pipeline.py runs them.

Each takes what the stages before it returned, writes its files into the staging folder `out` (if
it has any) and returns a typed result; none reads another stage's files back.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ConversionError


@dataclass(frozen=True)
class Loaded:
    model: object          # the checkpoint's model (equivariant or conventional), eval mode
    config: object         # its train.config.ModelConfig
    checkpoint: dict       # the checkpoint's other contents (metrics, …)
    folded: object         # plain PyTorch, batch norm folded
    sha256: str            # of the checkpoint file: report.json's and every generated source's model id

    @property
    def size(self) -> int:
        return self.config.input_size


@dataclass(frozen=True)
class DataFree:
    plain: object          # after the DFQ steps: the float model every later stage converts
    points: list           # its activation points (calibration.points)
    report: dict           # report.json's "dfq"


@dataclass(frozen=True)
class Onnx:
    path: Path
    max_abs_logit_error: float  # onnxruntime vs PyTorch


@dataclass(frozen=True)
class Float:
    tflite: bytes          # float .tflite
    calibrated: bytes      # TF's first quantization stage: float with min/max slots


@dataclass(frozen=True)
class Int8:
    tflite: bytes
    graph: object          # convert.tflite_graph.Graph of it
    trace: list            # per activation: range → scale/zero point, checked


@dataclass(frozen=True)
class Arena:
    measured: int          # smallest arena the tflite-micro interpreter allocates in
    size: int              # kTensorArenaSize: measured + margin


@dataclass(frozen=True)
class Parity:
    figures: dict          # report.json's "parity"
    observed: dict         # report.json's "observed_ranges"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load(checkpoint: Path) -> Loaded:
    """Checkpoint → its model, exported to plain PyTorch with batch norm folded."""
    from calibration.fold import fold_all
    from train.checkpoint import load_model

    digest = sha256(checkpoint)
    model, config, ckpt = load_model(checkpoint)
    return Loaded(model, config, ckpt, fold_all(model.export()), digest)


def data_free_quantization(m: Loaded, dfq) -> DataFree:
    from calibration.dfq import apply_dfq, skipped_steps
    from calibration.points import activation_points

    plain, history = apply_dfq(m.folded, dfq)
    report = {**dfq.to_dict(), "skipped": skipped_steps(m.folded, dfq),
              "effect": dfq_effect(m.model, m.folded, history, m.size)}
    return DataFree(plain, activation_points(plain), report)


def dfq_effect(model, folded, history, size: int) -> list[dict]:
    """How far each step moves the float logits, on a few built-in demo patches."""
    from . import images, parity

    x = images.demo(8, size).x
    ref = parity.torch_logits(model, x)
    prev, rows = parity.torch_logits(folded, x), []
    scale = float(np.abs(ref).max()) or 1.0
    for step, mod in history:
        cur = parity.torch_logits(mod, x)
        rows.append({"step": step, "max_abs_logit_change": float(np.abs(cur - prev).max()),
                     "relative_change": float(np.abs(cur - prev).max() / scale),
                     "vs_checkpoint_max_abs_logit": float(np.abs(cur - ref).max())})
        prev = cur
    return rows


def onnx_export(plain, out: Path, size: int) -> Onnx:
    """model.onnx, checked against PyTorch with onnxruntime on a few demo patches."""
    from . import images, parity
    from .onnx_export import check_onnx, export_onnx

    path = out / "model.onnx"
    proto = export_onnx(plain, path)
    probe = images.demo(4, size).x
    err = check_onnx(proto, plain, probe)
    scale = float(np.abs(parity.torch_logits(plain, probe)).max())
    if not err <= 1e-4 * max(1.0, scale):
        raise ConversionError(f"ONNX output differs from PyTorch by {err:.3g}")
    return Onnx(path, err)


def tensorflow(onnx: Onnx, out: Path, work: Path, size: int, log: Callable[[], str]) -> Float:
    """onnx2tf → TF (NHWC) → model_float.tflite, and the calibrate-only model for the int8 stage."""
    from .tf_export import calibrated_tflite, converter_errors, float_tflite, onnx_to_tf

    try:
        keras_model, concrete = onnx_to_tf(onnx.path, work)
        flt = float_tflite(keras_model, concrete)
        calibrated = calibrated_tflite(keras_model, concrete, (1, size, size, 3))
    except Exception as e:  # noqa: BLE001 — TF's own conversion failure is one line; anything else is a bug
        if not isinstance(e, converter_errors()):
            raise
        raise ConversionError(f"TensorFlow conversion failed: {last_line(log(), e)}") from None
    (out / "model_float.tflite").write_bytes(flt)
    return Float(flt, calibrated)


def int8(f: Float, d: DataFree, table, per_channel: bool, out: Path, log: Callable[[], str]) -> Int8:
    """model_int8.tflite: the ranges table written into the calibrated model, then TF's quantizer."""
    from .ops_check import check_ops
    from .quantize import apply_ranges, int8_tflite, trace_quantization
    from .tensor_map import map_tensors
    from .tf_export import converter_errors
    from .tflite_graph import Graph

    check_ops(Graph(f.calibrated), "the float model")  # before the map, so an op outside the contract is named as such
    mapping = map_tensors(Graph(f.calibrated), d.points)
    try:
        q = int8_tflite(apply_ranges(f.calibrated, mapping, table), per_channel)
    except Exception as e:  # noqa: BLE001
        if not isinstance(e, converter_errors()):
            raise
        raise ConversionError(f"TFLite quantization failed: {last_line(log(), e)}") from None
    graph = Graph(q)
    check_ops(Graph(f.tflite), "the float model")
    check_ops(graph, "the int8 model")
    trace = trace_quantization(graph, map_tensors(graph, d.points), table)
    (out / "model_int8.tflite").write_bytes(q)
    return Int8(q, graph, trace)


def arena(q: Int8, size: int) -> Arena:
    from .arena import measure_arena, with_margin

    measured = measure_arena(q.tflite, (1, size, size, 3))
    return Arena(measured, with_margin(measured))


def tflm_sources(q: Int8, a: Arena, m: Loaded, out: Path) -> None:
    """model_data.{h,cc}, model_settings.h, model_ops.h (sample_patch.* come with the parity stage)."""
    from . import c_sources

    inp, outp, sha = q.graph.input(), q.graph.output(), m.sha256
    h, cc = c_sources.model_data(q.tflite, sha256=sha)
    (out / "model_data.h").write_text(h)
    (out / "model_data.cc").write_text(cc)
    (out / "model_settings.h").write_text(c_sources.model_settings(
        size=m.size, input_scale=float(inp.scale[0]), input_zero_point=int(inp.zero_point[0]),
        output_scale=float(outp.scale[0]), output_zero_point=int(outp.zero_point[0]),
        class_names=list(m.config.class_names), arena_bytes=a.size, arena_measured=a.measured,
        schema_version=q.graph.version, group=m.config.group or "none", width=m.config.width, sha256=sha))
    (out / "model_ops.h").write_text(c_sources.model_ops(q.graph.histogram(), sha256=sha))


def parity_check(m: Loaded, d: DataFree, f: Float, q: Int8, a: Arena, imgs, out: Path) -> Parity:
    """PyTorch, float TFLite, int8 LiteRT and TFLM on the parity images and their rotations; the
    first image becomes sample_patch.{h,cc} with the int8 model's scores as the firmware's check."""
    from . import c_sources, parity
    from .runtimes import LiteRT, pixels_to_int8

    figures = parity.measure(m.model, f.tflite, q.tflite, a.size, imgs.x, imgs.labels, converted=d.plain)
    figures["source"] = imgs.source
    observed = {"source": imgs.source, "images": len(imgs.x), "ranges": parity.held_ranges(d.plain, imgs.x, d.points)}
    x0 = pixels_to_int8(imgs.x[:1])
    h, cc = c_sources.sample_patch(x0, LiteRT(q.tflite)(x0)[0], None if imgs.labels is None else imgs.labels[0],
                                   f"first parity image: {imgs.source}", sha256=m.sha256)
    (out / "sample_patch.h").write_text(h)
    (out / "sample_patch.cc").write_text(cc)
    return Parity(figures, observed)


def report(checkpoint: Path, m: Loaded, d: DataFree, o: Onnx, table, q: Int8, a: Arena, p: Parity, out: Path) -> dict:
    """report.json, its plots and report.md (convert/report.py renders them)."""
    from .layers import METHOD as LAYERS_METHOD
    from .layers import layer_rows, weight_ranges
    from .ops_check import macs
    from .report import write_report

    inp, outp, c = q.graph.input(), q.graph.output(), m.config
    r = {
        "checkpoint": {"file": checkpoint.name, "sha256": m.sha256, "group": c.group or "none", "width": c.width,
                       "min_fields": c.min_fields, "num_classes": c.num_classes, "class_names": list(c.class_names),
                       "metrics": m.checkpoint.get("metrics", {})},
        "versions": versions(),
        "ops": q.graph.histogram(),
        "macs": macs(q.graph),
        "layers": {"method": LAYERS_METHOD, "rows": layer_rows(q.graph)},
        "depthwise_weight_ranges": weight_ranges(q.graph),
        "observed_ranges": p.observed,
        "arena": {"measured_bytes": a.measured, "tensor_arena_size": a.size},
        "input": {"shape": list(inp.shape), "dtype": inp.dtype, "scale": float(inp.scale[0]),
                  "zero_point": int(inp.zero_point[0])},
        "output": {"shape": list(outp.shape), "dtype": outp.dtype, "scale": float(outp.scale[0]),
                   "zero_point": int(outp.zero_point[0])},
        "onnx_vs_torch_max_abs_logit": o.max_abs_logit_error,
        "dfq": d.report,
        "ranges": table.to_dict(),
        "quantization": q.trace,
        "parity": p.figures,
    }
    write_report(out, r)
    return r


def last_line(text: str, e: Exception) -> str:
    lines = [ln.strip() for ln in (str(e) or text).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(e).__name__)[:200]


def versions() -> dict:
    from importlib.metadata import version

    names = ("torch", "e2cnn", "onnx", "onnxruntime", "onnx2tf", "tensorflow", "ai-edge-litert", "tflite-micro")
    return {n: version(n) for n in names}
