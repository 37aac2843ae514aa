"""Data-free int8: ranges rules and DFQ steps on three sets, against the float model (one run).

    .venv/bin/python bench/quantization.py [--limit N] [--reference] [--models NAME ...]

Sets: the easy demo and the hard demo (`train data demo --difficulty hard`), test splits, and real
tissue: bench/tissue.py's 634 tiles of scikit-image's immunohistochemistry photograph. The tissue
tiles only measure: no range rule, k or training run ever saw them.
Models (trained once, cached under build/bench/quantization/models/): C12 width 0.35, 3 epochs, on
the easy demo; the same on the hard demo; and on the hard demo with ReLU instead of ReLU6.
Per model and DFQ variant, the convert pipeline's own stages run once (fold, DFQ, ONNX, onnx2tf,
calibrate-only TFLite); each ranges table is then written into that model and quantized by TF, as
`convert tflite` does, so rows that differ only in ranges share a conversion. int8 logits (LiteRT,
optimised kernels unless --reference; the pipeline's parity stage checks reference kernels and TFLM
against them) are compared with the float checkpoint's. The default `convert tflite` is also timed
end to end. Writes bench/results/quantization.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write  # noqa: E402
from tissue import SOURCE as TISSUE_SOURCE  # noqa: E402
from tissue import ihc_tiles  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "bench" / "quantization"
MODELS = {  # name: (data set, group, activation, rows: the full set or the default-DFQ ones)
    "C12 (hard demo)": ("hard", "C12", "relu6", "all"),
    "C12 (demo)": ("easy", "C12", "relu6", "ranges"),
    "C12 ReLU (hard demo)": ("hard", "C12", "relu", "ranges"),
}


def variants(rows: str):
    """(label, DFQ options, ranges method) per row. "ranges" keeps to the default DFQ (one TF
    conversion per model: the 2-core machine this ran on was shared)."""
    from calibration.dfq import DFQOptions

    none = DFQOptions(equalize=False, absorb=False, bias_correction=False)
    default = DFQOptions()
    out = [
        ("default (data-free)", default, "bn"),
        ("default DFQ, previous bn rule (k=5 everywhere, logits Σ|w|·std)", default, "bn-previous"),
        ("default DFQ, ranges from training images", default, "data"),
    ]
    if rows == "all":
        out += [
            ("default DFQ, distilled ranges", default, "distilled"),
            ("no DFQ step", none, "bn"),
            ("DFQ paper: ReLU6→ReLU + all steps", DFQOptions(relu6="relu"), "bn"),
            ("ReLU6 kept, equalize + absorb below the clip (bounded)", DFQOptions(relu6="bounded"), "bn"),
        ]
    return out


def ensure_data(kind: str) -> Path:
    from train.data.demo import write_demo

    d = WORK / "data" / kind
    if not (d / "camelyonpatch_level_2_split_test_y.h5").is_file():
        write_demo(d, 0, difficulty=kind)
    return d


def ensure_model(name: str) -> Path:
    from train.fit import FitSettings, fit

    kind, group, act, _ = MODELS[name]
    ckpt = WORK / "models" / f"{kind}_{group}_{act}.pt"
    if not ckpt.is_file():
        fit(FitSettings(data=str(ensure_data(kind)), out=str(ckpt), group=group, width=0.35, epochs=3, batch_size=32,
                        lr=4e-3, activation=act, progress=False), force=True)  # no checkpoint: start over
    return ckpt


class Converted:
    """The pipeline's stages up to the calibrate-only TFLite model, for one DFQ variant."""

    def __init__(self, ckpt: Path, dfq):
        import torch

        from calibration.dfq import apply_dfq, skipped_steps
        from calibration.fold import fold_all
        from calibration.points import activation_points
        from convert.offline import captured_output, no_network
        from convert.onnx_export import export_onnx
        from convert.tensor_map import map_tensors
        from convert.tf_export import calibrated_tflite, onnx_to_tf
        from convert.tflite_graph import Graph
        from train.checkpoint import load_model

        torch.manual_seed(0)
        self.model, self.config, _ = load_model(ckpt)
        folded = fold_all(self.model.export())
        self.plain, _ = apply_dfq(folded, dfq)
        skipped = skipped_steps(folded, dfq)
        self.steps = ", ".join(f"{s} (skipped: {skipped[s]})" if s in skipped else s for s in dfq.steps()) or "none"
        with tempfile.TemporaryDirectory() as w:
            export_onnx(self.plain, Path(w) / "m.onnx")
            with no_network(), captured_output():
                keras_model, concrete = onnx_to_tf(Path(w) / "m.onnx", Path(w))
                self.calibrated = calibrated_tflite(keras_model, concrete, (1, 95, 95, 3))
        self.mapping = map_tensors(Graph(self.calibrated), activation_points(self.plain))

    def int8(self, table) -> bytes:
        from convert.offline import captured_output
        from convert.quantize import apply_ranges, int8_tflite

        with captured_output():
            return int8_tflite(apply_ranges(self.calibrated, self.mapping, table))


def ranges_table(conv: Converted, method: str, ckpt: Path, data: Path):
    from calibration.bn_ranges import previous_bn_ranges
    from convert import pipeline
    from train.data.pcam import split_paths

    if method == "bn-previous":
        return previous_bn_ranges(conv.plain)
    opts = pipeline.ConvertOptions(checkpoint=ckpt, ranges=method, calibration_data=split_paths(data, "valid")[0])
    return pipeline.ranges_table(opts, conv.plain, conv.config.input_size)


def compare(q: bytes, x: np.ndarray, ref: np.ndarray, reference: bool) -> tuple[np.ndarray, float, float]:
    """(int8 argmax, top-1 agreement with float, mean |Δlogit| in logits)."""
    from convert.runtimes import LiteRT, pixels_to_int8

    lite = LiteRT(q, reference=reference)
    scale, zp = lite.out["quantization"]
    out = lite(pixels_to_int8(x))
    deq = (out.astype(np.float64) - zp) * scale
    return out.argmax(1), float((out.argmax(1) == ref.argmax(1)).mean()), float(np.abs(deq - ref).mean())


def time_default_conversion(ckpt: Path) -> dict:
    from convert.pipeline import ConvertOptions, convert_tflite

    timings: dict = {}
    t = time.perf_counter()
    convert_tflite(ConvertOptions(checkpoint=ckpt, out=WORK / "runs" / "default_tflite"), echo=lambda s: None,
                   timings=timings)
    return {"total": time.perf_counter() - t, **timings}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="images per set (default: all)")
    ap.add_argument("--reference", action="store_true", help="LiteRT reference kernels (slow) instead of optimised")
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--time", action=argparse.BooleanOptionalAction, default=True,
                    help="also time one default `convert tflite` end to end")
    a = ap.parse_args()
    from convert.images import from_path
    from convert.parity import torch_logits
    from train.data.pcam import to_model_input

    tissue = to_model_input(ihc_tiles()[:a.limit], 95)
    rows, notes = [], []
    for name in a.models:
        ckpt, data = ensure_model(name), ensure_data(MODELS[name][0])
        own = from_path(data, "test", a.limit, 95)
        base = None
        for label, dfq, method in variants(MODELS[name][3]):
            if base is None or base[0] != dfq:
                base = (dfq, Converted(ckpt, dfq))
            conv = base[1]
            ref_own, ref_tis = torch_logits(conv.model, own.x), torch_logits(conv.model, tissue)
            t = time.perf_counter()
            tab = ranges_table(conv, method, ckpt, data)
            dt = time.perf_counter() - t
            q = conv.int8(tab)
            pred, agree, err = compare(q, own.x, ref_own, a.reference)
            _, agree_t, err_t = compare(q, tissue, ref_tis, a.reference)
            acc_f, acc_q = float((ref_own.argmax(1) == own.labels).mean()), float((pred == own.labels).mean())
            rows.append([name, label, conv.steps, f"{method} ({dt:.1f} s)", f"{acc_f:.4f} → {acc_q:.4f}",
                         100 * (acc_q - acc_f), agree, err, agree_t, err_t])
            print(rows[-1], flush=True)
        notes.append(f"{name}: {len(own.x)} test images of {data}")
    t = time_default_conversion(ensure_model("C12 (hard demo)")) if a.time else None
    body = table(["model", "configuration", "DFQ steps", "ranges (time)", "accuracy float → int8", "Δ pt",
                  "top-1 agreement", "mean |Δlogit|", "tissue: top-1 agreement", "tissue: mean |Δlogit|"], rows)
    body += ("\n\nAgreement and |Δlogit| (in logits) are int8 vs the float checkpoint, on each model's own test set and "
             f"on {len(tissue)} real tissue tiles ({TISSUE_SOURCE}; measuring only, never tuned on). "
             + "; ".join(notes) + f". LiteRT {'reference' if a.reference else 'optimised'} kernels. "
             "Ranges: `bn` = the default data-free rule (calibration/bn_ranges.py), `data` = min/max over 256 "
             "images of the model's own validation split (`--ranges data`), `distilled` = `--ranges distilled` "
             "at its defaults; the time is the ranges stage alone.\n\n"
             + (f"Default `convert tflite` of the C12 hard-demo model (width 0.35), end to end: {t['total']:.1f} s; "
                "stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items() if k != "total") + ".\n" if t else ""))
    write("quantization", "Data-free quantization: ranges and DFQ steps on demo, hard demo and real tissue", body,
          "python bench/quantization.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
