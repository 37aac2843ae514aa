"""Flash and RAM of the Cortex-M firmware per model and CPU, and which common boards it fits.

    .venv/bin/python bench/firmware_size.py [CONVERSION_DIR ...]

CONVERSION_DIR: `convert tflite` outputs (default: build/bench/convert/w0.35 and build/bench/convert/w1.0,
those that exist). The TFLM-free parts (model data, sample patch, image provider, responder, platform
hooks, main) are compiled with arm-none-eabi-g++ -Os for Cortex-M4 and Cortex-M7 and measured with
arm-none-eabi-size (firmware/ci_build.py). TFLM itself (interpreter and kernels) is not compiled here,
having no source: the fit verdict adds an assumed allowance for it, stated in the output.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "firmware"))
from common import table, write  # noqa: E402

import ci_build  # noqa: E402

DEFAULT_DIRS = (ROOT / "build/bench/convert/w0.35", ROOT / "build/bench/convert/w1.0")
APP = ("image_provider.o", "result_responder.o", "platform.o", "main.o")
# Assumed, not measured: TFLM's interpreter plus the six kernels this model uses with CMSIS-NN,
# and its own static data. Change here when a real build says otherwise.
TFLM_FLASH, TFLM_RAM = 160 * 1024, 16 * 1024
KIB = 1024
# (board, CPU, flash for code and model, largest contiguous RAM for the tensor arena)
BOARDS = [
    ("Arduino Nano 33 BLE (nRF52840)", "cortex-m4", 1024 * KIB, 256 * KIB),
    ("Raspberry Pi Pico (RP2040)", "cortex-m0+", 2048 * KIB, 256 * KIB),
    ("STM32F746 Discovery / Nucleo-F746ZG", "cortex-m7", 1024 * KIB, 320 * KIB),
    ("Nucleo-H743ZI (STM32H743, AXI SRAM)", "cortex-m7", 2048 * KIB, 512 * KIB),
    ("Arduino Portenta H7 / Giga R1 (STM32H747, M7)", "cortex-m7", 2048 * KIB, 512 * KIB),
    ("Coral Dev Board Micro (RT1176; NAND, SDRAM arena)", "cortex-m7", 128 * 1024 * KIB, 64 * 1024 * KIB),
]


def measure(conversion: Path, work: Path) -> list[dict]:
    src = ci_build.stage(conversion, work / "src")
    free = ci_build.sources(src)["free"]
    arena = ci_build.setting(src, "kTensorArenaSize")
    width = _width(conversion)
    rows = []
    for cpu in ci_build.CPUS:
        objs = {o.name: o for o in ci_build.compile_all(src, cpu, free, work / cpu)}
        sizes = ci_build.section_sizes(list(objs.values()))
        model, _ = ci_build.memory(sizes["model_data.o"])
        sample, _ = ci_build.memory(sizes["sample_patch.o"])
        code = sum(ci_build.memory(sizes[n])[0] for n in APP)
        app_ram = sum(ci_build.memory(sizes[n])[1] for n in APP + ("model_data.o", "sample_patch.o"))
        rows.append({"model": f"{conversion.name} (width {width})", "cpu": cpu, "model_bytes": model,
                     "sample_bytes": sample, "code_bytes": code, "flash": model + sample + code,
                     "arena": arena, "ram": arena + app_ram})
    return rows


def _width(conversion: Path) -> str:
    try:
        return str(json.loads((conversion / "report.json").read_text())["checkpoint"]["width"])
    except (OSError, ValueError, KeyError):
        return "?"


def fits(row: dict, flash: int, ram: int) -> str:
    need_flash, need_ram = row["flash"] + TFLM_FLASH, row["ram"] + TFLM_RAM
    if need_flash > flash:
        return f"no: flash {need_flash / KIB:.0f} > {flash / KIB:.0f} KiB"
    if need_ram > ram:
        return f"no: RAM {need_ram / KIB:.0f} > {ram / KIB:.0f} KiB"
    return "yes"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="*", type=Path, help="`convert tflite` output folders")
    a = p.parse_args(argv)
    dirs = a.dirs or [d for d in DEFAULT_DIRS if d.is_dir()]
    if not dirs:
        print(f"error: no conversion folders given and none of {', '.join(map(str, DEFAULT_DIRS))} exist",
              file=sys.stderr)
        return 1
    try:
        with tempfile.TemporaryDirectory(prefix="e2micro-fwsize-") as tmp:
            rows = [r for i, d in enumerate(dirs) for r in measure(d, Path(tmp) / str(i))]
    except (ci_build.ToolchainMissing, ci_build.BuildFailed, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    sizes = table(["model", "CPU", "model data", "sample patch", "app code", "flash (no TFLM)", "tensor arena",
                   "RAM (no TFLM)"],
                  [[r["model"], r["cpu"], f"{r['model_bytes']:,}", f"{r['sample_bytes']:,}", f"{r['code_bytes']:,}",
                    f"{r['flash']:,}", f"{r['arena']:,}", f"{r['ram']:,}"] for r in rows])
    m7 = [r for r in rows if r["cpu"] == "cortex-m7"]
    boards = table(["board", "flash", "RAM for the arena"] + [r["model"] for r in m7],
                   [[name, f"{flash // KIB:,} KiB", f"{ram // KIB:,} KiB"] + [fits(r, flash, ram) for r in m7]
                    for name, _, flash, ram in BOARDS])
    body = (f"Bytes from `arm-none-eabi-size` on objects built with `-Os -ffunction-sections`. Flash = model "
            f"data + sample patch + app code (image provider, responder, platform hooks, main); RAM = "
            f"kTensorArenaSize + the app's .data/.bss. TFLM's interpreter and kernels are not compiled here "
            f"(no TFLM source in CI).\n\n{sizes}\n\n"
            f"Fit, adding an assumed TFLM allowance of {TFLM_FLASH // KIB} KiB flash and {TFLM_RAM // KIB} KiB RAM "
            f"(not measured); the arena must fit one contiguous RAM region. A board with a camera drops the "
            f"sample patch.\n\n{boards}")
    write("firmware_size", "Firmware flash and RAM per model", body,
          "python bench/firmware_size.py " + " ".join(str(d) for d in dirs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
