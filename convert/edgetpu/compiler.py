"""Coral's edgetpu_compiler: the command line, a run into a scratch folder (its outputs published only
when it succeeded), and the facts its log gives."""
from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

from e2micro.atomic import scratch_dir, write_atomic

from ..errors import ConversionError
from .rules import EDGETPU_CUSTOM_OP

LOG_FACTS = (("version", r"Edge TPU Compiler version (\S+)"),
             ("ops_on_edgetpu", r"operations that will run on Edge TPU:\s*(\d+)"),
             ("ops_on_cpu", r"operations that will run on CPU:\s*(\d+)"))


def compiler_command(model: Path, out_dir: Path) -> list[str]:
    return ["edgetpu_compiler", "-s", "-o", str(out_dir), str(model)]


def parse_log(log_text: str) -> dict:
    """The compiler's version and its op counts (Edge TPU / CPU), those the log states."""
    info = {}
    for key, pattern in LOG_FACTS:
        m = re.search(pattern, log_text)
        if m:
            info[key] = int(m.group(1)) if key.startswith("ops") else m.group(1)
    return info


def compile_model(model: Path, out_dir: Path, echo) -> tuple[dict, Path | None]:
    """Runs edgetpu_compiler into a temporary folder and keeps model_edgetpu.tflite and .log only
    when it succeeded; without the compiler, prints the command to run elsewhere."""
    from ..tflite_graph import Graph

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
            "compiled_ops": dict(sorted(ops.items())), **parse_log(log_text)}
    echo(f"compiled: {out_dir / 'model_edgetpu.tflite'} and its log {out_dir / 'model_edgetpu.log'}")
    left = {k: v for k, v in ops.items() if k != EDGETPU_CUSTOM_OP}
    if left:
        echo(f"warning: the compiler left ops on the CPU: {', '.join(f'{k}×{v}' for k, v in sorted(left.items()))}")
    return info, out_dir / "model_edgetpu.tflite"
