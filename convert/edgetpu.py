"""`convert edgetpu`: does the int8 model map to the Edge TPU, op by op; and, where Coral's compiler is
installed, compile it and emit it as a C array for the Dev Board Micro sketch.

The checker applies Coral's documented requirements (coral.ai/docs/edgetpu/models-intro): every
tensor int8/uint8 (int32 only as a bias, or as a constant shape/axis parameter); shapes fixed at
compile time; batch 1; at most the 3 innermost dimensions larger than 1; the op in Coral's table
(with its documented limits). The compiler maps ops in execution order and cuts the graph at the
first op it cannot map: that op and everything after it run on the host CPU.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from e2micro.atomic import scratch_dir, write_atomic
from e2micro.errors import BadInput

from .errors import ConversionError
from .outputs import read_report

# Coral's "supported operations" table, as TFLite builtin names.
EDGETPU_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS", "FULLY_CONNECTED",
    "L2_NORMALIZATION", "LOGISTIC", "LSTM", "UNIDIRECTIONAL_SEQUENCE_LSTM", "MAXIMUM", "MAX_POOL_2D", "MEAN",
    "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "RELU", "RELU6",
    "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX",
    "SPACE_TO_DEPTH", "SPLIT", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "SQUARED_DIFFERENCE", "TANH",
    "TRANSPOSE_CONV",
})
EDGETPU_CUSTOM_OP = "CUSTOM:edgetpu-custom-op"  # what the compiler replaces the mapped ops with
BIAS_INPUTS = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}
# Inputs that are shape/axis/size parameters (int32 vectors), not data.
PARAM_INPUTS = {"MEAN": (1,), "SUM": (1,), "REDUCE_MAX": (1,), "REDUCE_MIN": (1,), "RESHAPE": (1,), "PAD": (1,),
                "EXPAND_DIMS": (1,), "SLICE": (1, 2), "STRIDED_SLICE": (1, 2, 3), "SPLIT": (0,),
                "RESIZE_BILINEAR": (1,), "RESIZE_NEAREST_NEIGHBOR": (1,), "TRANSPOSE": (1,), "TRANSPOSE_CONV": (0,)}
NO_FUSED_ACTIVATION = ("AVERAGE_POOL_2D", "MAX_POOL_2D", "CONCATENATION")
REDUCTIONS = ("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN")
DOCS = "https://coral.ai/docs/edgetpu/models-intro/"


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


# --------------------------------------------------------------------------------------------------
# The command


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
    graph = _load(model)
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
            entry["compiler"], compiled = _compile(model, out_dir, echo)
        except ConversionError as e:
            entry["compiler"], failure = {"found": True, "ok": False, "error": str(e)}, e
    if compiled is not None:
        entry["c_sources"] = _c_sources(compiled, out_dir, firmware, echo)
    elif firmware is not None:
        echo(f"nothing copied to {firmware}: there is no compiled Edge TPU model yet")
    update_report(out_dir, entry)
    echo(f"verdict written to {out_dir / 'report.json'} (key \"edgetpu\")")
    if failure is not None:
        raise failure
    if not verdict.ok:
        raise ConversionError(f"the model does not fully map to the Edge TPU: {verdict.summary()}")
    return entry


def _load(model: Path):
    from .tflite_graph import Graph

    head = model.read_bytes()[:8]
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise BadInput(f"{model}: not a TFLite model (no 'TFL3' flatbuffer identifier)")
    try:
        return Graph.load(model)
    except BadInput:
        raise
    except Exception as e:  # noqa: BLE001 — the flatbuffer reader raises anything on a damaged file
        raise BadInput(f"{model}: a damaged .tflite model ({type(e).__name__}: {e})") from None


def _check_report_folder(out_dir: Path) -> None:
    """The verdict goes into report.json and report.md: only into ones this project wrote (or new ones)."""
    path = out_dir / "report.json"
    if not path.exists():
        if (out_dir / "report.md").exists():
            raise BadInput(f"{out_dir / 'report.md'} was not written by e2micro (no report.json beside it); "
                           "not touched: use --out for another folder")
        return
    try:
        report = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"{path} is not valid JSON ({e}); not touched: use --out for another folder, or re-run "
                       "`convert tflite`") from None
    if read_report(out_dir) is None and not (isinstance(report, dict) and set(report) == {"edgetpu"}):
        raise BadInput(f"{path} was not written by e2micro; not touched: use --out for another folder")


def model_for(target: Path, out: Path | None, echo) -> tuple[Path, Path]:
    if target.is_dir():
        raise BadInput(f"{target} is a directory: give a checkpoint or a .tflite file")
    if not target.exists():
        raise BadInput(f"{target}: no such file")
    if target.suffix == ".tflite":
        out_dir = Path(out) if out is not None else target.parent
        if out_dir.exists() and not out_dir.is_dir():
            raise BadInput(f"--out {out_dir} exists and is not a directory")
        _check_report_folder(out_dir) if out_dir.is_dir() else None
        _load(target)  # a bad file fails before anything is written
        out_dir.mkdir(parents=True, exist_ok=True)
        return target, out_dir
    from .pipeline import ConvertOptions, convert_tflite

    opts = ConvertOptions(target, out)
    out_dir = opts.out_dir()
    model = out_dir / "model_int8.tflite"
    if out_dir.is_dir():
        _check_report_folder(out_dir)
    if model.is_file() and _converted_from(out_dir) == hashlib.sha256(target.read_bytes()).hexdigest():
        echo(f"using {model} (converted from this checkpoint)")
    else:
        echo(f"converting {target} with `convert tflite` into {out_dir}")
        convert_tflite(opts, echo=echo)
    return model, out_dir


def _converted_from(out_dir: Path) -> str | None:
    report = read_report(out_dir)
    return report["checkpoint"]["sha256"] if report else None


def compiler_command(model: Path, out_dir: Path) -> list[str]:
    return ["edgetpu_compiler", "-s", "-o", str(out_dir), str(model)]


def _compile(model: Path, out_dir: Path, echo) -> tuple[dict, Path | None]:
    """Runs edgetpu_compiler into a temporary folder and keeps model_edgetpu.tflite and .log only
    when it succeeded; without the compiler, prints the command to run elsewhere."""
    from .tflite_graph import Graph

    command = " ".join(compiler_command(model, out_dir))
    exe = shutil.which("edgetpu_compiler")
    if exe is None:
        echo(f"edgetpu_compiler not found; run: {command}")
        if (out_dir / "model_edgetpu.tflite").exists():
            echo(f"note: {out_dir / 'model_edgetpu.tflite'} is from an earlier run and was not updated")
        return {"found": False, "command": command}, None
    with scratch_dir("edgetpu", parent=out_dir) as tmp:
        try:
            r = subprocess.run([exe, *compiler_command(model, Path(tmp))[1:]], capture_output=True, text=True,
                               timeout=600)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ConversionError(f"edgetpu_compiler could not run: {e}") from None
        produced, log = Path(tmp) / f"{model.stem}_edgetpu.tflite", Path(tmp) / f"{model.stem}_edgetpu.log"
        text = r.stdout + r.stderr
        if r.returncode != 0 or not produced.is_file():
            last = next((ln.strip() for ln in reversed(text.splitlines()) if ln.strip()), "no output")
            raise ConversionError(f"edgetpu_compiler failed (exit {r.returncode}): {last[:200]}")
        log_text = (log.read_text() if log.is_file() else "") + ("\n" + text if text.strip() else "")
        ops = Counter(op.name for op in Graph(produced.read_bytes()).ops)
        write_atomic(out_dir / "model_edgetpu.tflite", produced.read_bytes())
        write_atomic(out_dir / "model_edgetpu.log", log_text)
    info = {"found": True, "ok": True, "command": command, "file": "model_edgetpu.tflite", "log": "model_edgetpu.log",
            "compiled_ops": dict(sorted(ops.items()))}
    for key, pattern in (("version", r"Edge TPU Compiler version (\S+)"),
                         ("ops_on_edgetpu", r"operations that will run on Edge TPU:\s*(\d+)"),
                         ("ops_on_cpu", r"operations that will run on CPU:\s*(\d+)")):
        m = re.search(pattern, log_text)
        if m:
            info[key] = int(m.group(1)) if key.startswith("ops") else m.group(1)
    echo(f"compiled: {out_dir / 'model_edgetpu.tflite'} and its log {out_dir / 'model_edgetpu.log'}")
    left = {k: v for k, v in ops.items() if k != EDGETPU_CUSTOM_OP}
    if left:
        echo(f"warning: the compiler left ops on the CPU: {', '.join(f'{k}×{v}' for k, v in sorted(left.items()))}")
    return info, out_dir / "model_edgetpu.tflite"


def _c_sources(compiled: Path, out_dir: Path, firmware: Path | None, echo) -> list[str]:
    """model_edgetpu_data.{h,cc}: the compiled model as a 16-byte aligned const array in flash, naming
    the conversion's checkpoint when report.json does (e2micro_coral.cc checks it against model_settings.h)."""
    from . import model_id
    from .c_sources import BANNER, c_array

    sha = _converted_from(out_dir)
    ident = ("", "") if sha is None else (model_id.comment(sha), model_id.macros("model_edgetpu_data.h", sha) + "\n")
    banner = BANNER.replace("convert tflite", "convert edgetpu") + ident[0]
    h = (banner + "#ifndef E2MICRO_MODEL_EDGETPU_DATA_H_\n#define E2MICRO_MODEL_EDGETPU_DATA_H_\n\n" + ident[1] +
         "// The model compiled by edgetpu_compiler: one edgetpu-custom-op.\n"
         "extern const unsigned char g_model_edgetpu_data[];\nextern const unsigned int g_model_edgetpu_data_len;\n\n"
         "#endif  // E2MICRO_MODEL_EDGETPU_DATA_H_\n")
    cc = (banner + '#include "model_edgetpu_data.h"\n\n'
          + c_array("g_model_edgetpu_data", compiled.read_bytes()))
    files = {"model_edgetpu_data.h": h, "model_edgetpu_data.cc": cc}
    for folder in [out_dir] + ([Path(firmware)] if firmware is not None else []):
        for name, text in files.items():
            write_atomic(Path(folder) / name, text)
        echo(f"wrote model_edgetpu_data.h/.cc in {folder}")
    return sorted(files)


def update_report(out_dir: Path, entry: dict) -> None:
    """Sets report.json's "edgetpu" key (creating the file if there is none) and renders report.md
    from it again (`convert.report.render`); each file replaced atomically, report.json last."""
    from .report import dumps, render

    path, md = out_dir / "report.json", out_dir / "report.md"
    _check_report_folder(out_dir)
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
