"""What `convert` writes into an output folder, and whether a folder is a previous output of it
(the only kind it replaces as a whole)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from e2micro.errors import BadInput

# The generated firmware sources: the one list of them. `convert tflite --firmware DIR` copies these,
# firmware/ci_build.py stages them; each names its checkpoint (convert/model_id.py). The CMake
# files, make_sketch.sh and firmware/cortex-m/.gitignore cannot import it: tests/test_manifest.py
# checks them against it.
FIRMWARE_FILES = ("model_data.h", "model_data.cc", "model_settings.h", "model_ops.h", "sample_patch.h",
                  "sample_patch.cc")
TFLITE_FILES = ("model.onnx", "model_float.tflite", "model_int8.tflite", *FIRMWARE_FILES, "report.json", "report.md",
                "report_memory.png", "report_ranges.png")  # the plots: convert/plots.py names them
# `convert engine`'s outputs; it copies ENGINE_FIRMWARE_FILES with --firmware DIR, and the CMake
# project's engine back end (-DE2MICRO_BACKEND=engine) requires them beside FIRMWARE_FILES.
ENGINE_FIRMWARE_FILES = ("e2m_model.h", "e2m_model.c")
ENGINE_FILES = (*ENGINE_FIRMWARE_FILES, "engine_report.json", "engine_report.md")
EDGETPU_FILES = ("model_edgetpu.tflite", "model_edgetpu.log", "model_edgetpu_data.h", "model_edgetpu_data.cc")
OWN_FILES = frozenset(TFLITE_FILES + EDGETPU_FILES + ENGINE_FILES)  # what a reconversion may replace


def read_report(folder: Path) -> dict | None:
    """report.json as written by `convert tflite` (a JSON object naming its checkpoint), else None."""
    try:
        report = json.loads((Path(folder) / "report.json").read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    ok = isinstance(report, dict) and isinstance(report.get("checkpoint"), dict) and "sha256" in report["checkpoint"]
    return report if ok else None



def check_report_folder(out_dir: Path) -> None:
    """A later command (`convert edgetpu`) adds to report.json and report.md: only to ones this project
    wrote (or new ones)."""
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

def foreign_entries(folder: Path) -> list[str]:
    """Entries of `folder` that make it not a previous output of `convert tflite` (empty: it is one,
    or it is empty)."""
    names = sorted(os.listdir(folder))
    if not names:
        return []
    foreign = [n for n in names if n not in OWN_FILES or not (Path(folder) / n).is_file()]
    if not foreign and read_report(folder) is None:
        foreign = ["report.json (missing, or not written by convert tflite)"]
    return foreign


def discard_own(old: Path) -> list[str]:
    """Remove a swapped-out previous output: only this tool's files; returns what else was found
    (then the folder is kept, renamed, and nothing in it is lost)."""
    left = []
    for name in sorted(os.listdir(old)):
        p = old / name
        if name in OWN_FILES and p.is_file() and not p.is_symlink():
            p.unlink()
        else:
            left.append(name)
    if not left:
        old.rmdir()
    return left
