"""Instructions per inference of the real firmware (TFLM + CMSIS-NN) per model and CPU, on QEMU.

    .venv/bin/python bench/firmware_speed.py [CONVERSION_DIR ...] [--images N]

CONVERSION_DIR: `convert tflite` outputs (default: build/bench/convert/w0.35 and build/bench/convert/w1.0,
those that exist). Builds e2micro_batch.elf for QEMU's Cortex-M4 (mps2-an386), M7 (mps2-an500) and
M55 (mps3-an547) (bench/firmware_builds.py) and runs it with `-icount shift=0` on the sample patch and
N built-in demo patches: QEMU's virtual clock then advances 1 ns per executed instruction, which the
firmware reads through SysTick. These are executed instructions, not cycles: QEMU models no pipeline,
caches, wait states or dual issue. MACs come from the conversion report. Writes
bench/results/firmware_speed.md.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write  # noqa: E402
from firmware_builds import ERRORS, build, conversion_dirs, label, report, run  # noqa: E402

import qemu_run  # noqa: E402


def measure(conversion: Path, images: int) -> list[dict]:
    macs = report(conversion)["macs"]["total"]
    rows = []
    for board in qemu_run.QEMU_BOARDS:
        r = run(conversion, board, build(conversion, board), images=images)
        n = r.instructions
        rows.append({"model": label(conversion), "board": board, "cpu": qemu_run.BOARDS[board][0], "macs": macs,
                     "median": statistics.median(n), "min": min(n), "max": max(n), "count": len(n)})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="*", type=Path, help="`convert tflite` output folders")
    p.add_argument("--images", type=int, default=4, help="demo patches besides the sample patch (default 4)")
    a = p.parse_args(argv)
    try:
        dirs = conversion_dirs(a.dirs)
        rows = [r for d in dirs for r in measure(d, a.images)]
    except ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    body = ("Executed instructions per inference (QEMU `-icount shift=0`: 1 ns of virtual time per instruction, "
            "read by the firmware through SysTick; `qemu/clock_check.cc` checks that on a loop of known length). "
            "Not cycles: QEMU has no pipeline, cache or memory timing, so a real Cortex-M7 (dual issue) needs fewer "
            "cycles than instructions and flash wait states add more. Instructions per MAC compare CPUs and models. "
            f"Each row: the sample patch and {a.images} demo patches.\n\n"
            + table(["model", "board", "CPU", "MACs", "instructions (median)", "min", "max", "instructions / MAC"],
                    [[r["model"], r["board"], r["cpu"], f"{r['macs'] / 1e6:.1f} M", f"{r['median'] / 1e6:.2f} M",
                      f"{r['min']:,}", f"{r['max']:,}", f"{r['median'] / r['macs']:.2f}"] for r in rows]))
    write("firmware_speed", "Firmware instructions per inference (real TFLM + CMSIS-NN, QEMU)", body,
          "python bench/firmware_speed.py " + " ".join(str(d) for d in dirs) + f" --images {a.images}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
