"""The real firmware builds the firmware benchmarks measure (firmware/qemu_run.py), kept between runs.

One CMake build folder per QEMU board under build/bench/firmware/; each model is a reconfigure of
it (E2MICRO_MODEL_DIR; the Nucleo reconfigures the M7's, E2MICRO_BOARD), so TFLM is compiled once per CPU and CMake's own dependency tracking rebuilds
whatever a change of TFLM tree, flags or model needs. Both bench/firmware_size.py and
bench/firmware_speed.py build through here, so the second one recompiles nothing.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "firmware"))
import ci_build  # noqa: E402
import qemu_run  # noqa: E402

WORK = ROOT / "build" / "bench" / "firmware"
DEFAULT_DIRS = (ROOT / "build/bench/convert/w0.35", ROOT / "build/bench/convert/w1.0")
SHARES = {"nucleo_h743zi": "mps2_an500"}
ERRORS = (ci_build.ToolchainMissing, ci_build.BuildFailed, FileNotFoundError, ValueError)


def conversion_dirs(given: list[Path]) -> list[Path]:
    dirs = given or [d for d in DEFAULT_DIRS if d.is_dir()]
    if not dirs:
        raise FileNotFoundError(f"no conversion folders given and none of {', '.join(map(str, DEFAULT_DIRS))} exist")
    for d in dirs:
        if not (d / "model_ops.h").is_file():
            raise FileNotFoundError(f"{d} is not a `convert tflite` output (no model_ops.h)")
    return dirs


def label(conversion: Path) -> str:
    try:
        ck = json.loads((conversion / "report.json").read_text())["checkpoint"]
        return f"{conversion.name} ({ck.get('group') or 'plain'}, width {ck['width']})"
    except (OSError, ValueError, KeyError):
        return conversion.name


def report(conversion: Path) -> dict:
    return json.loads((conversion / "report.json").read_text())


def build(conversion: Path, board: str) -> qemu_run.Build:
    # One folder per QEMU board, as `convert measure --build-dir build/bench/firmware` lays them out
    # (so it reuses these); the Nucleo reconfigures its CPU twin's.
    return qemu_run.build(conversion, board, WORK / SHARES.get(board, board))


def run(conversion: Path, board: str, b: qemu_run.Build, images: int = 4) -> qemu_run.BatchResult:
    """e2micro_batch on QEMU (-icount shift=0) over the sample patch and `images` built-in demo patches."""
    import numpy as np

    from convert import images as imgs
    from convert.runtimes import pixels_to_int8

    size = ci_build.setting(conversion, "kNumRows")
    sample = ci_build.sample_patch(conversion).reshape(1, size, size, -1)
    x = [pixels_to_int8(imgs.demo(images, size).x)] if images else []
    return qemu_run.run_batch(board, b.elfs["e2micro_batch"], np.concatenate([sample, *x]),
                              classes=ci_build.setting(conversion, "kCategoryCount"))
