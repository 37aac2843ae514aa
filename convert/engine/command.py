"""`convert engine CHECKPOINT|model_int8.tflite [--out DIR] [--firmware DIR]`."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from ..errors import ConversionError
from ..outputs import ENGINE_FILES, ENGINE_FIRMWARE_FILES


def _conversion_report(folder: Path) -> dict:
    try:
        return json.loads((folder / "report.json").read_text())
    except (OSError, ValueError):
        return {}


def detect_group(graph) -> str | None:
    """For a bare .tflite: the largest C_N whose circulant structure the head's 1×1 conv has."""
    from . import storage
    from .plan import build_plan

    conv = build_plan(graph).head.conv
    w2 = conv.w[:, 0, 0, :]
    for n in (16, 12, 8, 4):
        if storage.pointwise(w2, conv.bias, conv.mult, conv.shift, conv.in_off, n).form == "circulant":
            return f"C{n}"
    return None


def engine_command(target: Path, out: Path | None = None, *, firmware: Path | None = None, group: str | None = None,
                   echo: Callable[[str], None] = print) -> dict:
    """Generate the engine's C sources and report next to the int8 model (a checkpoint is
    converted with `convert tflite` first, or its existing conversion reused)."""
    from e2micro.atomic import write_atomic

    from ..targets import model_for
    from ..tflite_graph import Graph
    from .generate import generate
    from .report import build, dumps, markdown

    target = Path(target)
    if firmware is not None and not Path(firmware).is_dir():
        raise ConversionError(f"--firmware {firmware}: not a directory")
    model, out_dir = model_for(target, out, echo)
    raw = model.read_bytes()
    try:
        graph = Graph(raw)
    except Exception as e:  # noqa: BLE001 — the flatbuffer reader raises anything on a bad file
        raise ConversionError(f"{model}: not a readable .tflite model ({type(e).__name__}: {e})") from None
    conv_report = _conversion_report(model.parent)
    ck = conv_report.get("checkpoint", {})
    if group is None:
        group = ck.get("group") if "group" in ck else detect_group(graph)
        if "group" not in ck:
            echo(f"no report.json next to {model.name}: symmetry detected from the weights: {group or 'none'}")
    group = None if str(group).lower() == "none" else group
    labels = ck.get("class_names") or [f"class_{i}" for i in range(graph.output().shape[-1])]
    try:
        engine = generate(graph, group, labels, ck.get("sha256"))
    except ValueError as e:
        raise ConversionError(f"{model}: {e}") from None
    tflm = conv_report.get("arena", {}).get("measured_bytes")
    source = "report.json (tflite-micro interpreter)"
    if tflm is None:
        from ..arena import measure_arena

        tflm, source = measure_arena(raw, (1, *engine.plan.input_shape)), "measured now (tflite-micro interpreter)"
    rep = build(engine, model_name=model.name, model_sha256=hashlib.sha256(raw).hexdigest(), tflite_bytes=len(raw),
                tflm_arena_bytes=int(tflm), tflm_arena_source=source)
    files = {"e2m_model.h": engine.h, "e2m_model.c": engine.c, "engine_report.json": dumps(rep),
             "engine_report.md": markdown(rep)}
    for name, text in files.items():
        write_atomic(out_dir / name, text)
    if firmware is not None:
        for name in ENGINE_FIRMWARE_FILES:
            write_atomic(Path(firmware) / name, files[name])
        echo(f"copied {', '.join(ENGINE_FIRMWARE_FILES)} to {firmware}")
    t = rep["totals"]
    echo(f"wrote {', '.join(ENGINE_FILES)} in {out_dir}")
    echo(f"weights {t['weights_bytes']} bytes (int8 weights {t['weights_vs_dense']} of dense), arena {t['arena_bytes']}"
         f" + input {t['input_bytes']} bytes = {t['ram_vs_tflm']} of TFLM's arena {t['tflm_arena_bytes']}")
    for name in rep["dense_fallbacks"]:
        row = next(r for r in rep["layers"] if r["layer"] == name)
        echo(f"dense: {name} ({row['dense_because']})")
    return rep


def register(app) -> None:
    """Adds `engine` to the `convert` Typer app."""
    import typer

    @app.command("engine")
    def engine(
        target: Path = typer.Argument(..., help="Checkpoint (converted with `convert tflite` first, or reused from "
                                                "<checkpoint>_tflite/) or an int8 .tflite."),
        out: Path = typer.Option(None, "--out", help="Folder for the sources and report (default: the conversion "
                                                     "folder, or the .tflite's folder)."),
        firmware: Path = typer.Option(None, "--firmware", help="Also copy e2m_model.{h,c} here "
                                                               "(e.g. firmware/cortex-m)."),
        group: str = typer.Option(None, "--group", help="Symmetry of the weights (C4, C12, D4, none); default: "
                                                        "the conversion's report.json, else detected."),
    ):
        """Generate C for the int8 model (no interpreter, bit-exact with TFLM): equivariant weights
        stored compressed, blocks streamed row by row; writes e2m_model.{h,c} and engine_report.{json,md}."""
        from e2micro.cli_errors import cli_errors

        with cli_errors("nothing published"):
            engine_command(target, out, firmware=firmware, group=group, echo=typer.echo)
