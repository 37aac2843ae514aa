"""`convert tflite`: checkpoint → plain PyTorch → (DFQ) → ONNX → TF → float and int8 TFLite → C sources,
with a report. Every input is checked before the first stage; all files are written to a staging
folder that is swapped in (`e2micro.atomic.publish_dir`) only when every stage has succeeded, and
only over a previous output of this tool (`convert.outputs`)."""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from calibration.dfq import DFQOptions
from e2micro import interrupts
from e2micro.atomic import publish_dir, publish_files, scratch_dir, staging_dir, write_atomic
from e2micro.errors import BadInput
from e2micro.threads import one_torch_thread

from .outputs import FIRMWARE_FILES, OWN_FILES, discard_own, foreign_entries

RANGES = ("bn", "distilled", "data")


@dataclass(kw_only=True)
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
    bn_k: float | None = None  # ranges "bn": k for ReLU/ReLU6 outputs and the head's bound; None: bn_ranges.K
    distill_images: int = 8  # 8 images × 100 steps: a quarter of 16 × 200 (time: bench/quantization.py)
    distill_steps: int = 100
    force: bool = False  # write into a folder that is not a previous output (replacing only our files)

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
                    interrupts.check()  # a library may have swallowed Ctrl-C during the stage
                    progress.echo(f"      done in {dt:.1f} s")
        return _Stage()


def convert_tflite(opts: ConvertOptions, echo: Callable[[str], None] = print, timings: dict | None = None) -> dict:
    """Run every stage; returns the report. `timings`, if given, receives seconds per stage (kept
    out of the report so that the same checkpoint gives byte-identical files)."""
    out = opts.out_dir().resolve()
    replace_whole, parity_dir = validate(opts, out, echo)
    staging = staging_dir(out)
    try:
        progress = Progress(10, echo)
        with scratch_dir("e2micro-convert") as work, one_torch_thread():
            report = _run(opts, staging, Path(work), progress, parity_dir)
        if timings is not None:
            timings.update(progress.times)
        interrupts.check()
        if replace_whole:
            kept: list[str] = []
            publish_dir(staging, out, discard=lambda old: kept.extend(_discard(old, out)))
            for note in kept:
                echo(note)
        else:
            produced = set(os.listdir(staging))
            publish_files(staging, out, last=("report.json",))
            for name in sorted(OWN_FILES - produced):  # e.g. an Edge TPU model of the previous conversion
                if (out / name).is_file():
                    (out / name).unlink()
    except BaseException as e:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(e, KeyboardInterrupt):
            e.kept = f"nothing published; {out} is as it was"
        raise
    if opts.firmware is not None:
        install_firmware_sources(out, opts.firmware)
    return report


def validate(opts: ConvertOptions, out: Path, echo: Callable[[str], None] = print) -> tuple[bool, Path | None]:
    """Every input and option, before anything slow. Returns whether `out` is replaced as a whole
    (absent, empty or a previous output) rather than written into file by file (--force), and the
    checkpoint's own data folder for the parity figures when --parity-data is not given."""
    from train.checkpoint import read_checkpoint
    from train.config import ModelConfig
    from train.data.pcam import PCamFormatError, open_images

    from .images import recorded_data_dir

    if opts.ranges not in RANGES:
        raise BadInput(f"unknown ranges method {opts.ranges!r}: use one of {', '.join(RANGES)}")
    if opts.ranges == "data" and opts.calibration_data is None:
        raise BadInput("--ranges data needs --calibration-data FILE_x.h5 (or a PCam-format directory)")
    if opts.ranges != "data" and opts.calibration_data is not None:
        raise BadInput(f"--calibration-data is used only with --ranges data (the {opts.ranges} ranges use no images)")
    if opts.ranges != "bn" and opts.bn_k is not None:
        raise BadInput(f"--bn-k is used only with --ranges bn (the {opts.ranges} ranges measure images)")
    if opts.bn_k is not None and not (0 < opts.bn_k < float("inf")):
        raise BadInput(f"--bn-k {opts.bn_k}: use a positive number of standard deviations")
    if opts.firmware is not None and not opts.firmware.is_dir():
        raise BadInput(f"--firmware {opts.firmware}: not a directory")
    ckpt = read_checkpoint(opts.checkpoint)
    try:
        ModelConfig.from_dict(ckpt["config"])
    except (TypeError, ValueError) as e:
        raise BadInput(f"{opts.checkpoint}: bad architecture config ({e})") from None
    for flag, path, split in (("--calibration-data", opts.calibration_data, "valid"),
                              ("--parity-data", opts.parity_data, "test")):
        if path is not None:
            open_images(path, split).close()  # shapes and dtypes, without reading the images
    parity_dir = None
    if opts.parity_data is None:
        parity_dir, note = recorded_data_dir(ckpt)
        if parity_dir is not None:
            try:
                open_images(parity_dir, "test").close()
            except PCamFormatError as e:
                parity_dir, note = None, f"its test split is not usable ({e})"
        if note:
            echo(f"note: parity figures on the built-in demo patches: {note}; give --parity-data for others")
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} exists and is not a directory")
    if not out.exists() or not foreign_entries(out):
        return True, parity_dir
    foreign = foreign_entries(out)
    if not opts.force:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise BadInput(f"--out {out} holds files convert did not write ({shown}): choose another --out, or "
                       "add --force to write into it (replacing only convert's own files)")
    if opts.checkpoint.resolve().parent == out and opts.checkpoint.name in OWN_FILES:
        raise BadInput(f"--out {out}: the checkpoint's own name {opts.checkpoint.name} is an output file")
    return False, parity_dir


def _discard(old: Path, out: Path) -> list[str]:
    left = discard_own(old)
    if not left:
        return []
    kept = out.with_name(f"{out.name}.previous-{os.getpid()}")
    os.rename(old, kept)
    return [f"note: {len(left)} file(s) appeared in {out} during the conversion; they are in {kept}"]


def install_firmware_sources(out: Path, firmware: Path) -> None:
    """Copy the generated sources into a firmware folder, each file atomically."""
    for name in FIRMWARE_FILES:
        write_atomic(firmware / name, (out / name).read_bytes())


def _run(opts: ConvertOptions, out: Path, work: Path, progress: Progress, data_dir: Path | None) -> dict:
    """The stages (convert/stages.py), in order, each timed and named in the progress output."""
    import torch

    from . import stages
    from .offline import captured_output, no_network

    torch.manual_seed(0)
    with progress.stage("load checkpoint, export to plain PyTorch, fold batch norm"):
        m = stages.load(opts.checkpoint)
    with progress.stage("data-free quantization: " + (", ".join(opts.dfq.steps()) or "no steps")):
        d = stages.data_free_quantization(m, opts.dfq)
    with progress.stage(f"activation ranges ({opts.ranges})"):
        table = ranges_table(opts, d.plain, m.size)
    with progress.stage("ONNX export, checked with onnxruntime"):
        onnx = stages.onnx_export(d.plain, out, m.size)
    with progress.stage("onnx2tf → TensorFlow (NHWC), float TFLite"), no_network(), captured_output() as log:
        flt = stages.tensorflow(onnx, out, work, m.size, log)
    with progress.stage("int8 TFLite from the ranges table"), captured_output() as log:
        q = stages.int8(flt, d, table, opts.dfq.per_channel, out, log)
    with progress.stage("TFLM arena (tflite-micro interpreter)"):
        arena = stages.arena(q, m.size)
    with progress.stage("C sources for TFLM"):
        stages.tflm_sources(q, arena, m, out)
    with progress.stage("parity: PyTorch, float TFLite, int8 LiteRT, TFLM, 90° rotations"):
        par = stages.parity_check(m, d, flt, q, arena, _parity_images(opts, data_dir, m.size), out)
    with progress.stage("report"):
        return stages.report(opts.checkpoint, m, d, onnx, table, q, arena, par, out)


def ranges_table(opts: ConvertOptions, plain, size: int):
    """The activation ranges table the options ask for (bn, distilled or data)."""
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


def _parity_images(opts: ConvertOptions, data_dir: Path | None, size: int):
    from . import images

    n = opts.parity_images
    if opts.parity_data:
        return images.from_path(opts.parity_data, "test", n, size)
    if data_dir is not None:
        return images.from_path(data_dir, "test", n, size)
    return images.demo(n, size)
