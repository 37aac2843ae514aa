"""The engine back end against TFLM: weights, arena, ELF flash/RAM, instructions per inference.

    .venv/bin/python bench/engine.py [--models c12-w0.35,c12-w1.0,plain-w0.35,plain-w1.0] [--images 8]
        [--name engine]

Models are right by construction (seeded init, batch-norm statistics from smooth images, as the
tests make them), converted with `convert tflite`'s defaults into build/bench/engine/<name>/ (reused
when there), then `convert engine`. Per model: bit-exactness of the host build against the
tflite-micro interpreter on --images demo patches and their 90/180/270° rotations; weights and
arena bytes against the dense int8 weights and TFLM's measured arena; instructions per inference on
QEMU's Cortex-M4 (mps2-an386, -icount shift=0, one image) and the deepest stack e2m_invoke reached
there (painted stack); the engine sketch's ELF flash/RAM (M4), and its RAM with that stack;
and which boards each back end fits. TFLM's side is measured too: its real firmware (TFLM + CMSIS-NN,
firmware/cortex-m's CMake, `convert measure`'s build and run) on the same M4 for instructions per
inference, ELF flash and RAM, and the same firmware with TFLM's portable reference kernels
(E2MICRO_TFLM_KERNELS=reference, `convert measure --kernels reference`) for instructions.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from common import table, write  # noqa: E402
from firmware_builds import WORK as FIRMWARE_WORK  # noqa: E402
from firmware_size import BOARDS  # noqa: E402

CACHE = ROOT / "build" / "bench" / "engine"
MODELS = {"c12-w0.35": ("C12", 0.35), "c12-w1.0": ("C12", 1.0), "plain-w0.35": (None, 0.35),
          "plain-w1.0": (None, 1.0), "d4-w0.35": ("D4", 0.35), "c4-w0.35": ("C4", 0.35),
          "d4-w1.0": ("D4", 1.0), "c4-w1.0": ("C4", 1.0),
          "c12-w0.35-mf2": ("C12", 0.35, 2)}  # (group, width[, min_fields]): mf2 is train fit's default model
STACK_ALLOWANCE = 8 * 1024  # per board, for both back ends: the engine's measured stack (≈1.5 KB, the
# table's column: QEMU, painted stack) plus the board's own margin; TFLM's stack is not measured


def conversion(name: str) -> Path:
    """Checkpoint right by construction → `convert tflite` folder (cached)."""
    import torch

    from convert.pipeline import ConvertOptions, convert_tflite
    from train.checkpoint import save_checkpoint
    from train.model import build_model

    from train.model.constructed import set_bn_statistics

    group, width, min_fields = (*MODELS[name], 1)[:3]
    d = CACHE / name
    out = d / "model_tflite"
    if (out / "report.json").is_file():
        return out
    d.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = set_bn_statistics(build_model(group=group, width=width, min_fields=min_fields))
    save_checkpoint(d / "model.pt", model, model.config)
    convert_tflite(ConvertOptions(checkpoint=d / "model.pt", out=out, parity_images=4), echo=lambda s: None)
    return out


def measure(name: str, n_images: int, qemu_images: int) -> dict:
    from convert import images
    from convert.engine import host, qemu
    from convert.engine.command import engine_command
    from convert.runtimes import TFLM, pixels_to_int8

    conv = conversion(name)
    eng = CACHE / name / "engine"
    eng.mkdir(exist_ok=True)
    rep = engine_command(conv / "model_int8.tflite", eng, echo=lambda s: None)
    t = rep["totals"]
    model = (conv / "model_int8.tflite").read_bytes()
    x = host.rotations(pixels_to_int8(images.demo(n_images, 95).x))
    with tempfile.TemporaryDirectory() as tmp:
        exe = host.build(eng, Path(tmp) / "h")
        ref = TFLM(model, 64 << 20)(x)
        got = host.run(exe, x, ref.shape[1])
        m4 = qemu.run(qemu.build(eng, "cortex-m4", Path(tmp) / "m4.elf"), "cortex-m4", x[:qemu_images])
        m4_exact = bool(np.array_equal(m4["scores"], ref[:qemu_images]))
        elf = qemu.build_sketch(conv, eng, "cortex-m4", Path(tmp) / "sketch")
        sk = qemu.size(elf)
    conv_rep = json.loads((conv / "report.json").read_text())
    from convert.qemu_measure import measure_board

    tflm = measure_board(conv, "mps2_an386", FIRMWARE_WORK, conv_rep["macs"]["total"])
    portable = measure_board(conv, "mps2_an386", FIRMWARE_WORK, conv_rep["macs"]["total"], kernels="reference")
    return {"model": name, "bit_exact": f"{int((got == ref).all(axis=1).sum())}/{len(x)}",
            "qemu_exact": f"{int(m4_exact) * qemu_images}/{qemu_images}",
            "weights": t["weights_bytes"], "w8_stored": t["int8_weights_stored_bytes"],
            "w8_dense": t["int8_weights_dense_bytes"], "tflite": t["tflite_bytes"],
            "arena": t["arena_bytes"], "input": t["input_bytes"], "tflm_arena": t["tflm_arena_bytes"],
            "m4_insns": float(np.mean(m4["instructions"])), "macs": conv_rep["macs"]["total"],
            "stack": m4["stack_bytes"],
            "elf_flash": sk["flash"], "elf_ram": sk["ram"], "fallbacks": rep["dense_fallbacks"],
            "tflm_insns": tflm["instructions"], "tflm_flash": tflm["flash"], "tflm_ram": tflm["ram"],
            "ref_insns": portable["instructions"]}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="c12-w0.35,c12-w1.0,plain-w0.35,plain-w1.0",
                    help=f"comma-separated, of {', '.join(MODELS)}")
    ap.add_argument("--images", type=int, default=8, help="demo patches (each also rotated 3 times) checked on the host")
    ap.add_argument("--qemu-images", type=int, default=1)
    ap.add_argument("--name", default="engine", help="results file stem under bench/results/")
    args = ap.parse_args(argv)
    names = args.models.split(",")
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        ap.error(f"unknown model {unknown[0]}: use {', '.join(MODELS)}")
    rows = [measure(m, args.images, args.qemu_images) for m in names]
    kib = lambda v: round(v / 1024, 1)  # noqa: E731
    main_rows = [[r["model"], r["bit_exact"], r["qemu_exact"], kib(r["w8_dense"]), kib(r["w8_stored"]),
                  round(r["w8_stored"] / r["w8_dense"], 3), kib(r["weights"]), kib(r["tflite"]),
                  kib(r["arena"] + r["input"]), kib(r["tflm_arena"]), round((r["arena"] + r["input"]) / r["tflm_arena"], 3),
                  round(r["m4_insns"] / 1e6, 1), round(r["m4_insns"] / r["macs"], 2),
                  round(r["tflm_insns"] / 1e6, 1), round(r["m4_insns"] / r["tflm_insns"], 2),
                  round(r["ref_insns"] / 1e6, 1), round(r["m4_insns"] / r["ref_insns"], 2), kib(r["elf_flash"]), kib(r["elf_ram"]), r["stack"], kib(r["elf_ram"] + r["stack"]), kib(r["tflm_flash"]),
                  kib(r["tflm_ram"]), ", ".join(r["fallbacks"]) or "none"] for r in rows]
    body = table(["model", "host bit-exact vs TFLM", "QEMU M4 bit-exact", "int8 weights dense KiB",
                  "stored KiB", "ratio", "all const data KiB", ".tflite KiB", "engine arena+input KiB",
                  "TFLM arena KiB", "RAM ratio", "M4 M insns/inference", "insns/MAC", "TFLM+CMSIS-NN M4 M insns",
                  "engine / CMSIS-NN", "TFLM reference kernels M4 M insns", "engine / reference",
                  "engine ELF flash KiB", "engine ELF RAM KiB", "engine stack B (measured)",
                  "engine RAM + stack KiB", "TFLM ELF flash KiB", "TFLM ELF RAM KiB",
                  "dense fallbacks"], main_rows)
    fit = []
    for board, _, flash, ram in BOARDS:
        cells = [board]
        for r in rows:
            eng_ok = r["elf_flash"] <= flash and r["elf_ram"] + STACK_ALLOWANCE <= ram
            tflm_ok = r["tflm_flash"] <= flash and r["tflm_ram"] + STACK_ALLOWANCE <= ram
            cells.append(f"engine {'yes' if eng_ok else 'no'} / TFLM {'yes' if tflm_ok else 'no'}")
        fit.append(cells)
    body += ("\n\nGoals: C12 int8 weights ≤ 1/8 of dense (ratio ≤ 0.125); arena + input ≤ 1/4 of TFLM's arena "
             "(RAM ratio ≤ 0.25). Instructions are executed instructions on QEMU (-icount shift=0), not cycles: "
             "the engine's portable C at -O2 (no SIMD) against TFLM with CMSIS-NN's M4 kernels (DSP "
             "extension) and against TFLM's portable reference kernels (the issue's goal: fewer than those).\n\n## Which boards each model fits (engine / TFLM)\n\n"
             f"Engine: the Cortex-M4 sketch's ELF flash, ELF RAM + {STACK_ALLOWANCE // 1024} KiB stack (the same "
             "sizes assumed for the M7 boards). TFLM: its M4 firmware ELF's flash, ELF RAM (the arena "
             f"included) + the same {STACK_ALLOWANCE // 1024} KiB stack.\n\n"
             + table(["board"] + [r["model"] for r in rows], fit))
    write(args.name, "Engine back end vs TFLM", body, "python bench/engine.py " + " ".join(argv or sys.argv[1:]))


if __name__ == "__main__":
    main()
