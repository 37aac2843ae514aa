"""`convert measure OUT`: the real firmware (TFLM + CMSIS-NN, or with `--kernels reference` TFLM's
portable reference kernels) of a conversion, built and run on QEMU.

For each emulated board it builds firmware/cortex-m's CMake targets with the conversion's sources
(firmware/qemu_run.py; TFLM compiled once per CPU into --build-dir and reused while its inputs are
unchanged), runs e2micro_batch on the sample patch under `-icount shift=0` and adds to report.json,
under "firmware": executed instructions per inference and per MAC, the arena TFLM reports in use,
and the ELF's flash and RAM (`arm-none-eabi-size -A`). report.md is rendered again from report.json.
Executed instructions are not cycles: QEMU models no pipeline, caches or wait states.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Callable

from e2micro.errors import BadInput, ConversionError, MissingTool

FIRMWARE = Path(__file__).resolve().parents[1] / "firmware"
NOTE = ("executed instructions (QEMU -icount shift=0: 1 ns of virtual time per instruction, read through "
        "SysTick), not cycles: QEMU models no pipeline, caches or flash wait states")
KERNELS = {"cmsis_nn": "TFLM + CMSIS-NN", "reference": "TFLM reference kernels"}  # E2MICRO_TFLM_KERNELS
# ELF sections that sit in flash as code (vectors, unwind tables, init arrays with it)
CODE = (".isr_vector", ".text", ".ARM.exidx", ".ARM.extab", ".preinit_array", ".init_array", ".fini_array")


def firmware_modules():
    """firmware/ci_build.py and firmware/qemu_run.py (scripts beside the CMake project, not a package)."""
    if str(FIRMWARE) not in sys.path:
        sys.path.insert(0, str(FIRMWARE))
    import ci_build
    import qemu_run

    return ci_build, qemu_run


def default_build_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "e2micro" / "firmware"


def sizes(sections: dict[str, int]) -> dict[str, int]:
    """Flash = code + .rodata (the model, the sample patch) + .data; RAM = .data + .bss (the arena)."""
    text = sum(v for k, v in sections.items() if k in CODE)
    ro, data, bss = (sections.get(k, 0) for k in (".rodata", ".data", ".bss"))
    return {"text": text, "rodata": ro, "data": data, "bss": bss, "flash": text + ro + data, "ram": data + bss}


def board_folder(build_dir: Path, board: str, kernels: str = "cmsis_nn") -> Path:
    """One CMake folder per board and kernel set, so neither rebuilds the other's TFLM."""
    return build_dir / (board if kernels == "cmsis_nn" else f"{board}_{kernels}")


def measure_board(conversion: Path, board: str, build_dir: Path, macs: int, kernels: str = "cmsis_nn") -> dict:
    ci_build, qemu_run = firmware_modules()
    import numpy as np

    b = qemu_run.build(conversion, board, board_folder(build_dir, board, kernels), {"E2MICRO_TFLM_KERNELS": kernels})
    size = ci_build.setting(conversion, "kNumRows")
    patch = ci_build.sample_patch(conversion).reshape(1, size, ci_build.setting(conversion, "kNumCols"), -1)
    r = qemu_run.run_batch(board, b.elfs["e2micro_batch"], np.asarray(patch),
                           classes=ci_build.setting(conversion, "kCategoryCount"))
    n = r.instructions[0]
    return {"board": board, "cpu": qemu_run.BOARDS[board][0], "kernels": kernels, "instructions": n,
            "instructions_per_mac": round(n / macs, 3) if macs else None, "arena_used": r.arena_used,
            "tensor_arena_size": ci_build.setting(conversion, "kTensorArenaSize"),
            **sizes(qemu_run.elf_sections(b.elfs["e2micro_pcam"]))}


def measure_command(folder: Path, boards: list[str] | None = None, build_dir: Path | None = None,
                    echo: Callable[[str], None] = print, kernels: str = "cmsis_nn") -> dict:
    from e2micro.atomic import write_atomic

    from .report import dumps, render

    ci_build, qemu_run = firmware_modules()
    folder = Path(folder)
    path = folder / "report.json"
    try:
        report = json.loads(path.read_text())
        macs = int(report["macs"]["total"])
    except (OSError, ValueError, KeyError, TypeError):
        raise BadInput(f"{folder}: not a `convert tflite` output (no readable report.json)") from None
    boards = boards or list(qemu_run.QEMU_BOARDS)
    unknown = [b for b in boards if b not in qemu_run.QEMU_BOARDS]
    if unknown:
        raise BadInput(f"--board {unknown[0]}: use one of {', '.join(qemu_run.QEMU_BOARDS)}")
    if kernels not in KERNELS:
        raise BadInput(f"--kernels {kernels}: use one of {', '.join(KERNELS)}")
    build_dir = Path(build_dir) if build_dir is not None else default_build_dir()
    rows = []
    for board in boards:
        echo(f"{board}: building ({KERNELS[kernels]}, compiled once per CPU into "
             f"{board_folder(build_dir, board, kernels)}) and running on QEMU")
        try:
            rows.append(measure_board(folder, board, build_dir, macs, kernels))
        except ci_build.ToolchainMissing as e:
            raise MissingTool(str(e)) from None
        except (ci_build.BuildFailed, FileNotFoundError, ValueError) as e:
            raise ConversionError(f"{board}: {e}") from None
        r = rows[-1]
        echo(f"{board} ({r['cpu']}): {r['instructions']:,} instructions per inference "
             f"({r['instructions_per_mac']} per MAC), arena {r['arena_used']:,} B in use, "
             f"flash {r['flash']:,} B, RAM {r['ram']:,} B")
    report["firmware"] = {"note": NOTE, "macs": macs, "kernels": kernels, "boards": rows}
    text = dumps(report)  # report.md first, report.json last: the JSON is the record
    write_atomic(folder / "report.md", render(json.loads(text)))
    write_atomic(path, text)
    return report["firmware"]


def register(app) -> None:
    """Adds `measure` to the `convert` Typer app."""
    import typer

    @app.command("measure")
    def measure(
        folder: Path = typer.Argument(..., help="A `convert tflite` output folder."),
        board: list[str] = typer.Option(None, "--board", help="QEMU board (repeatable): mps2_an386 (Cortex-M4), "
                                                              "mps2_an500 (M7), mps3_an547 (M55); default all."),
        build_dir: Path = typer.Option(None, "--build-dir", help="CMake build folders, one per board, kept "
                                                                 "between runs (default ~/.cache/e2micro/firmware)."),
        kernels: str = typer.Option("cmsis_nn", "--kernels", help="cmsis_nn (TFLM's CMSIS-NN kernels, what the "
                                                                   "firmware ships) or reference (its portable ones)."),
    ):
        """Build the TFLM firmware for emulated Cortex-M4/M7/M55, run it on QEMU and add instructions per
        inference, arena in use, flash and RAM to report.json and report.md."""
        from e2micro.cli_errors import cli_errors

        with cli_errors("report.json and report.md are each either old or new"):
            measure_command(folder, board or None, build_dir, echo=typer.echo, kernels=kernels)
