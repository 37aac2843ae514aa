"""`convert tflite`: checkpoint → plain PyTorch → (DFQ) → ONNX → TF → float and int8 TFLite → C sources,
with a report. All files are written to a temporary directory that replaces the output directory
only when every stage has succeeded."""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from calibration.dfq import DFQOptions
from train.atomic import write_atomic

from .errors import ConversionError

RANGES = ("bn", "distilled", "data")


@dataclass
class ConvertOptions:
    checkpoint: Path
    out: Path | None = None
    ranges: str = "bn"
    calibration_data: Path | None = None
    calibration_images: int = 256
    parity_data: Path | None = None
    parity_images: int = 16  # keeps a width-1.0 conversion under a minute; tests check whole splits
    firmware: Path | None = None  # also copy the generated C sources into this firmware folder
    dfq: DFQOptions = DFQOptions()
    bn_k: float = 5.0  # ranges "bn": conv outputs mean ± k·std (3 or 4 clipped more on the hard demo)
    distill_images: int = 8  # 8 images × 100 steps: a quarter of 16 × 200 (time: bench/quantization.py)
    distill_steps: int = 100

    def out_dir(self) -> Path:
        return self.out or self.checkpoint.with_name(self.checkpoint.stem + "_tflite")


class Progress:
    def __init__(self, total: int, echo: Callable[[str], None]):
        self.total, self.echo, self.n, self.times = total, echo, 0, {}

    def stage(self, name: str):
        progress = self

        class _Stage:
            def __enter__(self):
                progress.n += 1
                self.t = time.perf_counter()
                progress.echo(f"[{progress.n}/{progress.total}] {name} …")

            def __exit__(self, exc_type, *_):
                dt = time.perf_counter() - self.t
                progress.times[name] = round(dt, 2)
                if exc_type is None:
                    progress.echo(f"      done in {dt:.1f} s")
        return _Stage()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def convert_tflite(opts: ConvertOptions, echo: Callable[[str], None] = print, timings: dict | None = None) -> dict:
    """Run every stage; returns the report. `timings`, if given, receives seconds per stage (kept
    out of the report so that the same checkpoint gives byte-identical files)."""
    out = opts.out_dir().resolve()
    if opts.ranges not in RANGES:
        raise ConversionError(f"unknown ranges method {opts.ranges!r}: use one of {', '.join(RANGES)}")
    if opts.ranges == "data" and opts.calibration_data is None:
        raise ConversionError("--ranges data needs --calibration-data FILE_x.h5 (or a PCam-format directory)")
    if opts.firmware is not None and not opts.firmware.is_dir():
        raise ConversionError(f"--firmware {opts.firmware}: not a directory")
    if out.exists() and not out.is_dir():
        raise ConversionError(f"{out} exists and is not a directory")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise ConversionError(f"cannot write to {out.parent} ({e.strerror or e})") from None
    try:
        progress = Progress(10, echo)
        with tempfile.TemporaryDirectory(prefix="e2micro-convert-") as work:
            report = _run(opts, staging, Path(work), progress)
        if timings is not None:
            timings.update(progress.times)
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if opts.firmware is not None:
        install_firmware_sources(out, opts.firmware)
    return report


FIRMWARE_FILES = ("model_data.h", "model_data.cc", "model_settings.h", "model_ops.h", "sample_patch.h",
                  "sample_patch.cc")


def install_firmware_sources(out: Path, firmware: Path) -> None:
    """Copy the generated sources into a firmware folder, each file atomically."""
    for name in FIRMWARE_FILES:
        write_atomic(firmware / name, (out / name).read_bytes())


def _publish(staging: Path, out: Path) -> None:
    """Swap the finished directory into place; an existing one is replaced only at the end."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
    try:
        os.rename(staging, out)
    except OSError:
        if old is not None:
            os.rename(old, out)  # the previous conversion stays where it was
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _run(opts: ConvertOptions, out: Path, work: Path, progress: Progress) -> dict:
    import torch

    from calibration.dfq import apply_dfq, skipped_steps
    from calibration.fold import fold_all
    from calibration.points import activation_points
    from train.checkpoint import load_model

    from . import c_sources, images, parity
    from .arena import measure_arena, with_margin
    from .offline import captured_output, no_network
    from .onnx_export import check_onnx, export_onnx
    from .ops_check import check_ops, macs
    from .quantize import apply_ranges, int8_tflite, trace_quantization
    from .runtimes import LiteRT, pixels_to_int8
    from .tensor_map import map_tensors
    from .tf_export import calibrated_tflite, float_tflite, onnx_to_tf
    from .tflite_graph import Graph

    torch.manual_seed(0)
    with progress.stage("load checkpoint, export to plain PyTorch, fold batch norm"):
        model, config, ckpt = load_model(opts.checkpoint)
        folded = fold_all(model.export())
        size = config.input_size
        data_dir = images.recorded_data_dir(ckpt)

    with progress.stage("data-free quantization: " + (", ".join(opts.dfq.steps()) or "no steps")):
        plain, history = apply_dfq(folded, opts.dfq)
        points = activation_points(plain)
        dfq_report = {**opts.dfq.to_dict(), "skipped": skipped_steps(folded, opts.dfq),
                      "effect": _dfq_effect(model, folded, history, size)}

    with progress.stage(f"activation ranges ({opts.ranges})"):
        table = _ranges(opts, plain, size)

    with progress.stage("ONNX export, checked with onnxruntime"):
        onnx_path = out / "model.onnx"
        proto = export_onnx(plain, onnx_path)
        probe = images.demo(4, size).x
        onnx_err = check_onnx(proto, plain, probe)
        scale = float(np.abs(parity.torch_logits(plain, probe)).max())
        if not onnx_err <= 1e-4 * max(1.0, scale):
            raise ConversionError(f"ONNX output differs from PyTorch by {onnx_err:.3g}")

    with progress.stage("onnx2tf → TensorFlow (NHWC), float TFLite"), no_network(), captured_output() as log:
        try:
            keras_model, concrete = onnx_to_tf(onnx_path, work)
            flt = float_tflite(keras_model, concrete)
            calibrated = calibrated_tflite(keras_model, concrete, (1, size, size, 3))
        except Exception as e:  # noqa: BLE001 — TF/onnx2tf raise anything; keep one clear line
            raise ConversionError(f"TensorFlow conversion failed: {_last_line(log(), e)}") from None
        (out / "model_float.tflite").write_bytes(flt)

    with progress.stage("int8 TFLite from the ranges table"), captured_output() as log:
        mapping = map_tensors(Graph(calibrated), points)
        try:
            q = int8_tflite(apply_ranges(calibrated, mapping, table), opts.dfq.per_channel)
        except ConversionError:
            raise
        except Exception as e:  # noqa: BLE001
            raise ConversionError(f"TFLite quantization failed: {_last_line(log(), e)}") from None
        graph, fgraph = Graph(q), Graph(flt)
        check_ops(fgraph, "the float model")
        check_ops(graph, "the int8 model")
        trace = trace_quantization(graph, map_tensors(graph, points), table)
        (out / "model_int8.tflite").write_bytes(q)

    with progress.stage("TFLM arena (tflite-micro interpreter)"):
        arena_used = measure_arena(q, (1, size, size, 3))
        arena = with_margin(arena_used)

    with progress.stage("C sources for TFLM"):
        inp, outp = graph.input(), graph.output()
        h, cc = c_sources.model_data(q)
        (out / "model_data.h").write_text(h)
        (out / "model_data.cc").write_text(cc)
        (out / "model_settings.h").write_text(c_sources.model_settings(
            size=size, input_scale=float(inp.scale[0]), input_zero_point=int(inp.zero_point[0]),
            output_scale=float(outp.scale[0]), output_zero_point=int(outp.zero_point[0]),
            class_names=list(config.class_names), arena_bytes=arena, arena_measured=arena_used,
            schema_version=graph.version, group=config.group or "none", width=config.width))
        (out / "model_ops.h").write_text(c_sources.model_ops(graph.histogram()))

    with progress.stage("parity: PyTorch, float TFLite, int8 LiteRT, TFLM, 90° rotations"):
        imgs = _parity_images(opts, data_dir, size)
        figures = parity.measure(model, flt, q, arena, imgs.x, imgs.labels, converted=plain)
        figures["source"] = imgs.source
        x0 = pixels_to_int8(imgs.x[:1])
        h, cc = c_sources.sample_patch(x0, LiteRT(q)(x0)[0], None if imgs.labels is None else imgs.labels[0],
                                       f"first parity image: {imgs.source}")
        (out / "sample_patch.h").write_text(h)
        (out / "sample_patch.cc").write_text(cc)

    with progress.stage("report"):
        report = {
            "checkpoint": {"file": opts.checkpoint.name, "sha256": _sha256(opts.checkpoint),
                           "group": config.group or "none", "width": config.width, "num_classes": config.num_classes,
                           "class_names": list(config.class_names), "metrics": ckpt.get("metrics", {})},
            "versions": _versions(),
            "files": {name: (out / name).stat().st_size for name in sorted(os.listdir(out))},
            "ops": graph.histogram(),
            "macs": macs(graph),
            "arena": {"measured_bytes": arena_used, "tensor_arena_size": arena},
            "input": {"shape": list(inp.shape), "dtype": inp.dtype, "scale": float(inp.scale[0]),
                      "zero_point": int(inp.zero_point[0])},
            "output": {"shape": list(outp.shape), "dtype": outp.dtype, "scale": float(outp.scale[0]),
                       "zero_point": int(outp.zero_point[0])},
            "onnx_vs_torch_max_abs_logit": onnx_err,
            "dfq": dfq_report,
            "ranges": table.to_dict(),
            "quantization": trace,
            "parity": figures,
        }
        from .report import write_report

        write_report(out, report)
    return report


def _ranges(opts: ConvertOptions, plain, size: int):
    from calibration.bn_ranges import bn_ranges
    from calibration.distill import distilled_ranges
    from calibration.ranges import from_data
    from train.data.loader import batches
    from train.data.pcam import open_images

    if opts.ranges == "bn":
        return bn_ranges(plain, opts.bn_k)
    if opts.ranges == "distilled":
        return distilled_ranges(plain, opts.distill_images, opts.distill_steps)
    split = open_images(opts.calibration_data, "valid")
    n = min(opts.calibration_images, len(split))

    def limited():
        seen = 0
        for x, _ in batches(split, 32, size):
            if seen >= n:
                return
            yield x[: n - seen]
            seen += len(x[: n - seen])

    return from_data(plain, limited(), f"{opts.calibration_data} ({n} images)")


def _dfq_effect(model, folded, history, size: int) -> list[dict]:
    """How far each step moves the float logits, on a few built-in demo patches."""
    from . import images, parity

    x = images.demo(8, size).x
    ref = parity.torch_logits(model, x)
    prev, rows = parity.torch_logits(folded, x), []
    scale = float(np.abs(ref).max()) or 1.0
    for step, m in history:
        cur = parity.torch_logits(m, x)
        rows.append({"step": step, "max_abs_logit_change": float(np.abs(cur - prev).max()),
                     "relative_change": float(np.abs(cur - prev).max() / scale),
                     "vs_checkpoint_max_abs_logit": float(np.abs(cur - ref).max())})
        prev = cur
    return rows


def _parity_images(opts: ConvertOptions, data_dir: Path | None, size: int):
    from . import images

    n = opts.parity_images
    if opts.parity_data:
        return images.from_path(opts.parity_data, "test", n, size)
    if data_dir is not None:
        return images.from_path(data_dir, "test", n, size)
    return images.demo(n, size)


def _last_line(text: str, e: Exception) -> str:
    lines = [ln.strip() for ln in (str(e) or text).splitlines() if ln.strip()]
    return (lines[-1] if lines else type(e).__name__)[:200]


def _versions() -> dict:
    from importlib.metadata import version

    names = ("torch", "e2cnn", "onnx", "onnxruntime", "onnx2tf", "tensorflow", "ai-edge-litert", "tflite-micro")
    return {n: version(n) for n in names}
