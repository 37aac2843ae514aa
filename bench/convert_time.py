"""Conversion time, sizes, arena and parity of the demo model at widths 0.35 and 1.0 (one run).

    .venv/bin/python bench/convert_time.py [--widths 0.35 1.0] [--data DIR]

Trains the demo's C12 model at each width if not cached (build/bench/convert/models/), converts it
with the default (data-free) settings into build/bench/convert/w<width>/ (bench/firmware_size.py
reads those), and times each stage. Writes bench/results/convert_time.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import field_floor_tag, table, write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "bench" / "convert"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", nargs="+", type=float, default=[0.35, 1.0])
    ap.add_argument("--data", type=Path)
    a = ap.parse_args()
    from quantization import ensure_data

    from convert.pipeline import ConvertOptions, convert_tflite
    from train.fit import FitSettings, fit

    data = a.data or ensure_data("easy")
    rows, par = [], []
    for w in a.widths:
        ckpt = WORK / "models" / f"c12_w{w}{field_floor_tag('C12', w, FitSettings.min_fields)}.pt"
        if not ckpt.is_file():
            fit(FitSettings(data=str(data), out=str(ckpt), group="C12", width=w, epochs=3, batch_size=32, lr=4e-3,
                            progress=False), force=True)  # no checkpoint: start over
        times: dict = {}
        t0 = time.perf_counter()
        r = convert_tflite(ConvertOptions(checkpoint=ckpt, out=WORK / f"w{w}", parity_data=data, parity_images=16),
                           echo=lambda s: None, timings=times)
        total = time.perf_counter() - t0
        parity = next(v for k, v in times.items() if k.startswith("parity"))
        tf = next(v for k, v in times.items() if k.startswith("onnx2tf"))
        rows.append([w, f"{total - parity:.1f}", f"{tf:.1f}", f"{parity:.1f}", r["files"]["model_int8.tflite"],
                     r["files"]["model_float.tflite"], r["arena"]["measured_bytes"], r["arena"]["tensor_arena_size"],
                     f"{r['macs']['total'] / 1e6:.1f}"])
        p = r["parity"]
        par.append([w, p["images"], f"{p['float_vs_torch_max_abs_logit']:.1e}", f"{p['int8_vs_torch_argmax_agreement']:.3f}",
                    f"{p['int8_vs_torch_mean_abs_logit_lsb']:.2f}", f"{p['int8_vs_torch_max_abs_logit_lsb']:.1f}",
                    p["tflm_vs_litert_max_lsb"], p["rot90_bitexact_rate_litert"], p["rot90_bitexact_rate_tflm"],
                    f"{p.get('accuracy_torch', float('nan')):.3f} / {p.get('accuracy_int8', float('nan')):.3f}"])
        print(rows[-1], par[-1], flush=True)
    body = (table(["width", "conversion s (without parity)", "of which onnx2tf + TF s", "parity s", "int8 bytes",
                   "float bytes", "TFLM arena measured", "kTensorArenaSize", "M MACs"], rows)
            + "\n\n" + table(["width", "parity images", "float TFLite vs graph", "int8 argmax agreement",
                              "int8 mean |Δ| LSB", "int8 max |Δ| LSB", "TFLM vs LiteRT max LSB",
                              "rot90 exact LiteRT", "rot90 exact TFLM", "accuracy float / int8"], par)
            + f"\n\nC12 models (`train fit`'s default --min-fields {FitSettings.min_fields}) trained 3 epochs on the "
              f"demo data ({data}); default conversion (full DFQ, "
              "batch-norm ranges); parity on the first 16 demo test images (the default), LiteRT reference kernels and TFLM.\n")
    write("convert_time", "convert tflite: time, sizes, arena and parity by width", body,
          "python bench/convert_time.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
