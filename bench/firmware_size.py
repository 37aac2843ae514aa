"""Flash and RAM of the real firmware (TFLM + CMSIS-NN) per model and CPU, and which common boards it fits.

    .venv/bin/python bench/firmware_size.py [CONVERSION_DIR ...]

CONVERSION_DIR: `convert tflite` outputs (default: build/bench/convert/w0.35 and build/bench/convert/w1.0,
those that exist). Builds e2micro_pcam.elf with firmware/cortex-m's CMake (TFLM compiled for each CPU,
bench/firmware_builds.py) for QEMU's Cortex-M4, M7 and M55 boards and the Nucleo-H743ZI, sizes it with
`arm-none-eabi-size -A`, and runs e2micro_batch on QEMU for the arena the firmware reports in use.
Writes bench/results/firmware_size.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write  # noqa: E402
from firmware_builds import ERRORS, build, conversion_dirs, label, run  # noqa: E402

import ci_build  # noqa: E402
import qemu_run  # noqa: E402

KIB = 1024
# The board whose build stands for each CPU in the fit table (the Nucleo is the real M7 board build).
BUILDS = ("mps2_an386", "mps2_an500", "nucleo_h743zi", "mps3_an547")  # the Nucleo after its QEMU twin (arena)
ARENA_FROM = {"nucleo_h743zi": "mps2_an500"}  # same CPU and TFLM: the arena in use is measured on QEMU
# (board, the build it is judged by, flash for code and model, largest contiguous RAM for data + arena)
BOARDS = [
    ("Arduino Nano 33 BLE (nRF52840, M4)", "mps2_an386", 1024 * KIB, 256 * KIB),
    ("STM32F746 Discovery / Nucleo-F746ZG (M7)", "nucleo_h743zi", 1024 * KIB, 320 * KIB),
    ("Nucleo-H743ZI (STM32H743, AXI SRAM)", "nucleo_h743zi", 2048 * KIB, 512 * KIB),
    ("Arduino Portenta H7 / Giga R1 (STM32H747, M7)", "nucleo_h743zi", 2048 * KIB, 512 * KIB),
    ("Coral Dev Board Micro (RT1176; NAND, SDRAM arena)", "nucleo_h743zi", 128 * 1024 * KIB, 64 * 1024 * KIB),
]


def measure(conversion: Path) -> list[dict]:
    from convert.qemu_measure import sizes

    rows, arena_used = [], {}
    for board in BUILDS:
        common = {"model": label(conversion), "board": board, "cpu": qemu_run.BOARDS[board][0],
                  "arena": ci_build.setting(conversion, "kTensorArenaSize"), "sample": _sample_bytes(conversion),
                  "model_bytes": (conversion / "model_int8.tflite").stat().st_size}
        try:
            b = build(conversion, board)
        except qemu_run.DoesNotFit as e:  # the board's memory map is too small: the linker says by how much;
            twin = next(r for r in rows if r["board"] == ARENA_FROM[board])  # same CPU, code and model
            rows.append({**twin, **common, "overflow": (e.region, e.overflow)})
            continue
        if board not in ARENA_FROM:
            arena_used[board] = run(conversion, board, b, images=0).arena_used
        rows.append({**common, **sizes(qemu_run.elf_sections(b.elfs["e2micro_pcam"])),
                     "arena_used": arena_used[ARENA_FROM.get(board, board)]})
    return rows


def _sample_bytes(conversion: Path) -> int:
    return (ci_build.setting(conversion, "kNumRows") * ci_build.setting(conversion, "kNumCols")
            * ci_build.setting(conversion, "kNumChannels"))


def fits(row: dict, flash: int, ram: int) -> str:
    if row["flash"] > flash:
        return f"no: flash {row['flash'] / KIB:,.0f} > {flash / KIB:,.0f} KiB"
    if row["ram"] > ram:
        return f"no: RAM {row['ram'] / KIB:,.0f} > {ram / KIB:,.0f} KiB"
    return "yes"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="*", type=Path, help="`convert tflite` output folders")
    a = p.parse_args(argv)
    try:
        dirs = conversion_dirs(a.dirs)
        rows = [r for d in dirs for r in measure(d)]
    except ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    sizes = table(["model", "board", "CPU", ".text (code)", ".rodata (model, sample)", ".data", ".bss (arena)",
                   "flash", "RAM", "kTensorArenaSize", "arena in use"],
                  [[r["model"], r["board"] + ("" if "overflow" not in r else
                                              f" (does not link: {r['overflow'][0]} overflowed by {r['overflow'][1]:,} B; "
                                              f"sizes of its {ARENA_FROM[r['board']]} twin)"),
                    r["cpu"], f"{r['text']:,}", f"{r['rodata']:,}", f"{r['data']:,}",
                    f"{r['bss']:,}", f"{r['flash']:,}", f"{r['ram']:,}", f"{r['arena']:,}", f"{r['arena_used']:,}"]
                   for r in rows])
    models = list(dict.fromkeys(r["model"] for r in rows))
    by = {(r["model"], r["board"]): r for r in rows}
    boards = table(["board", "flash", "RAM for data + arena"] + models,
                   [[name, f"{flash // KIB:,} KiB", f"{ram // KIB:,} KiB"] + [fits(by[(m, build_)], flash, ram)
                                                                             for m in models]
                    for name, build_, flash, ram in BOARDS])
    body = (f"`arm-none-eabi-size -A` of `e2micro_pcam.elf` as firmware/cortex-m's CMake builds it: TFLM "
            f"(framework + the model's kernels, CMSIS-NN) compiled for the CPU with TFLM's flags, the app at -Os, "
            f"newlib-nano. Flash = .text (incl. vectors, exidx, init arrays) + .rodata (model "
            f"{rows[0]['model_bytes']:,} B for the first model, sample patch {rows[0]['sample']:,} B, constants) + "
            f".data; RAM = .data + .bss, which holds the tensor arena (kTensorArenaSize = measured + margin); the "
            f"stack (top of RAM; DTCM on the Nucleo) and a 4 KiB heap reserve come on top. \"arena in use\" is "
            f"what the firmware itself reports after AllocateTensors() on QEMU (the Nucleo build: its M7 twin). "
            f"QEMU boards' code memory is 4 MB (M4, M7) and 16 MB DDR (M55).\n\n{sizes}\n\n"
            f"Fit of these measured figures (a board with a camera drops the sample patch; Cortex-M0+ boards "
            f"are not built here):\n\n{boards}")
    write("firmware_size", "Firmware flash and RAM per model (real TFLM + CMSIS-NN builds)", body,
          "python bench/firmware_size.py " + " ".join(str(d) for d in dirs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
