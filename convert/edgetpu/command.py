"""`convert edgetpu CHECKPOINT|model_int8.tflite [--out DIR] [--firmware DIR]`: the verdict (check.py)
printed and stored under report.json's "edgetpu" key, the compiler run (compiler.py) where it is
installed, and the compiled model's C sources (sources.py)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

from e2micro.atomic import write_atomic
from e2micro.errors import BadInput

from ..errors import ConversionError
from ..outputs import check_report_folder
from ..targets import load_model, model_for
from .check import check, table_lines
from .compiler import compile_model
from .rules import DOCS, EDGETPU_CUSTOM_OP
from .sources import write_sources


def edgetpu_command(target: Path, out: Path | None = None, *, firmware: Path | None = None,
                    echo: Callable[[str], None] = print) -> dict:
    """Check (and, with edgetpu_compiler on PATH, compile) a checkpoint's int8 model or a .tflite.

    A checkpoint is converted with `convert tflite`'s defaults into <stem>_tflite/ (or --out), unless that folder
    already holds a conversion of this very checkpoint (same sha256 in its report.json). The verdict
    goes into the folder's report.json under "edgetpu" (and a section of report.md); the command
    raises ConversionError (exit 1 in the CLI) when any op does not map or the compiler fails."""
    target = Path(target)
    if firmware is not None and not Path(firmware).is_dir():
        raise BadInput(f"--firmware {firmware}: not a directory")
    model, out_dir = model_for(target, out, echo)
    graph = load_model(model)
    verdict = check(graph)
    echo(f"Edge TPU check of {model} (requirements: {DOCS})")
    for line in table_lines(verdict):
        echo(line)
    echo(verdict.summary())
    entry = {"model": model.name, "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(), **verdict.to_dict()}
    compiled = model if any(op.name == EDGETPU_CUSTOM_OP for op in graph.ops) else None
    failure = None
    if compiled is not None:
        entry["compiler"] = {"found": None, "note": f"{model.name} is already compiled for the Edge TPU"}
    elif verdict.ok:
        try:
            entry["compiler"], compiled = compile_model(model, out_dir, echo)
        except ConversionError as e:
            entry["compiler"], failure = {"found": True, "ok": False, "error": str(e)}, e
    if compiled is not None:
        entry["c_sources"] = write_sources(compiled, out_dir, firmware, echo)
    elif firmware is not None:
        echo(f"nothing copied to {firmware}: there is no compiled Edge TPU model yet")
    update_report(out_dir, entry)
    echo(f"verdict written to {out_dir / 'report.json'} (key \"edgetpu\")")
    if failure is not None:
        raise failure
    if not verdict.ok:
        raise ConversionError(f"the model does not fully map to the Edge TPU: {verdict.summary()}")
    return entry


def update_report(out_dir: Path, entry: dict) -> None:
    """Sets report.json's "edgetpu" key (creating the file if there is none) and renders report.md
    from it again (`convert.report.render`); each file replaced atomically, report.json last."""
    from ..report import dumps, render

    path, md = out_dir / "report.json", out_dir / "report.md"
    check_report_folder(out_dir)
    report = json.loads(path.read_text()) if path.exists() else {}
    report["edgetpu"] = entry
    text = dumps(report)
    write_atomic(md, render(json.loads(text)))
    write_atomic(path, text)


def register(app) -> None:
    """Adds `edgetpu` to the `convert` Typer app."""
    import typer

    @app.command("edgetpu")
    def edgetpu(
        target: Path = typer.Argument(..., help="Checkpoint (converted with `convert tflite` first, or reused "
                                                "from <checkpoint>_tflite/) or an int8 .tflite."),
        out: Path = typer.Option(None, "--out", help="Conversion folder (default: <checkpoint>_tflite, or the "
                                                     ".tflite's folder)."),
        firmware: Path = typer.Option(None, "--firmware", help="Also copy model_edgetpu_data.{h,cc} here "
                                                               "(e.g. firmware/coral/dev_board_micro)."),
    ):
        """Check the int8 model against the Edge TPU's requirements op by op; compile it when
        edgetpu_compiler is installed."""
        from e2micro.cli_errors import cli_errors

        with cli_errors("stopped; report.json and the compiled files are each either old or new"):
            edgetpu_command(target, out, firmware=firmware, echo=typer.echo)
