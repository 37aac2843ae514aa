"""Data-free int8: ranges rules and DFQ steps on three sets, against the float model (one run).

    .venv/bin/python bench/quantization.py [--limit N] [--reference] [--models NAME ...]

Sets: the easy demo and the hard demo (`train data demo --difficulty hard`, here with a 2,048-image
test split so that a difference of a few images can be told from noise), and real tissue:
bench/tissue.py's 634 tiles of scikit-image's immunohistochemistry photograph. The tissue tiles only
measure: no range rule, k or training run ever saw them; the validation split is where a choice
between rules would be made. Every row is compared with the image-calibrated one on the same images
(disagreement counts with binomial and paired standard errors, |Δlogit| ratios).
Models (trained once, cached under build/bench/quantization/models/): C12 width 0.35 (`train fit`'s
default --min-fields, in the cached file's name when not 1), 3 epochs, on
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
from common import field_floor_tag, table, write  # noqa: E402
from tissue import SOURCE as TISSUE_SOURCE  # noqa: E402
from tissue import ihc_tiles  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "bench" / "quantization"
MODELS = {  # name: (data set, group, activation, rows: the full set or the default-DFQ ones)
    "C12 (hard demo)": ("hard", "C12", "relu6", "all"),
    "C12 (demo)": ("easy", "C12", "relu6", "ranges"),
    "C12 ReLU (hard demo)": ("hard", "C12", "relu", "ranges"),
}


# Data-free rules measured against image calibration: (bn_ranges probe mode, K overrides), the K that
# set a row apart spelled out so that a change of the default K does not change it. The default was
# chosen by bench/range_rules.py on validation draws over a pool of models; the tissue tiles and the
# test splits never choose anything.
RULES = {
    "bn": (None, {}),  # the default, whatever it is (calibration/bn_ranges.py)
    "bn, residual k=6": ("tails", {"conv": 6.0, "residual": 6.0}),
    "bn k=6, probe head": ("head", {"conv": 6.0, "residual": 6.0}),  # the previous default
    "bn k=5, no probe": ("none", {"conv": 5.0, "residual": 5.0}),  # the default before the bench
}


def variants(rows: str):
    """(label, DFQ options, ranges method) per row. "ranges" keeps to the default DFQ (one TF
    conversion per model: the 2-core machine this ran on was shared)."""
    from calibration.dfq import DFQOptions

    none = DFQOptions(equalize=False, absorb=False, bias_correction=False)
    default = DFQOptions()
    out = [("default DFQ, ranges from training images", default, "data"),  # first: the others are compared to it
           ("default (data-free)", default, "bn"),
           ("default DFQ, the default rule with k=6 on projections and adds", default, "bn, residual k=6"),
           ("default DFQ, previous default: k=6, only pooled mean and logits probed", default, "bn k=6, probe head"),
           ("default DFQ, the rule before that: k=5, no probe", default, "bn k=5, no probe")]
    if rows == "all":
        out += [
            ("default DFQ, distilled ranges", default, "distilled"),
            ("no DFQ step", none, "bn"),
            ("DFQ paper: ReLU6→ReLU + all steps", DFQOptions(relu6="relu"), "bn"),
            ("ReLU6 kept, equalize + absorb below the clip (bounded)", DFQOptions(relu6="bounded"), "bn"),
        ]
    return out


TEST_IMAGES = 2048  # one image is 0.05 pt of it: at the demo's 512, a 2-image difference looked like a result


def ensure_data(kind: str) -> Path:
    """The demo set of that difficulty with a larger test split (train and valid as `train data demo`
    writes them: each split has its own random stream, so the test size changes no training image)."""
    from train.data.demo import write_demo

    d = WORK / "data" / f"{kind}-test{TEST_IMAGES}"
    if not (d / "camelyonpatch_level_2_split_test_y.h5").is_file():
        write_demo(d, 0, sizes={"test": TEST_IMAGES}, difficulty=kind)
    return d


def validation_draw(kind: str, seed: int = 1, n: int = TEST_IMAGES) -> Path:
    """Another draw of the validation distribution (seed ≥ 1: no image shared with seed 0's splits),
    by default as large as the test split: the 512-image validation split holds ~20 disagreements, too
    few to choose a rule on. Choices between rules are made on seed 1, never on test or tissue."""
    from train.data.demo import make_split, write_split

    d = WORK / "data" / f"{kind}-valid-seed{seed}-{n}"
    if not (d / "camelyonpatch_level_2_split_valid_y.h5").is_file():
        d.mkdir(parents=True, exist_ok=True)
        write_split(d, "valid", *make_split(n, seed, "valid", kind))
    return d


def ensure_model(name: str) -> Path:
    kind, group, act, _ = MODELS[name]
    return trained(kind, group, act)


def trained(kind: str, group: str | None, act: str, seed: int = 0) -> Path:
    """The benches' demo model (width 0.35, 3 epochs, `train fit`'s default --min-fields), trained
    once and cached by its settings under build/bench/quantization/models/."""
    from train.fit import FitSettings, fit

    width = 0.35
    stem = f"{kind}_{group or 'twin'}_{act}" + (f"_seed{seed}" if seed else "")
    ckpt = WORK / "models" / f"{stem}{field_floor_tag(group, width, FitSettings.min_fields)}.pt"
    if not ckpt.is_file():
        fit(FitSettings(data=str(ensure_data(kind)), out=str(ckpt), group=group, width=width, epochs=3, batch_size=32,
                        lr=4e-3, activation=act, seed=seed, progress=False), force=True)  # no checkpoint: start over
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
    from calibration.bn_ranges import bn_ranges
    from convert import pipeline
    from train.data.pcam import split_paths

    if method in RULES and method != "bn":
        probe, kinds = RULES[method]
        return bn_ranges(conv.plain, probe=probe, kinds=kinds)  # "bn" itself: the pipeline's own, below
    opts = pipeline.ConvertOptions(checkpoint=ckpt, ranges=method, calibration_data=split_paths(data, "valid")[0])
    return pipeline.ranges_table(opts, conv.plain, conv.config.input_size)


def int8_logits(q: bytes, x: np.ndarray, reference: bool) -> np.ndarray:
    from convert.runtimes import LiteRT, pixels_to_int8

    lite = LiteRT(q, reference=reference)
    scale, zp = lite.out["quantization"]
    return (lite(pixels_to_int8(x)).astype(np.float64) - zp) * scale


def agreement(deq: np.ndarray, ref: np.ndarray, base: np.ndarray | None) -> list:
    """[top-1 agreement, disagreeing images ± binomial SE, paired difference to the `base` row's
    disagreements ± √(discordant) (McNemar: the images are the same), mean |Δlogit|, its ratio to
    base's]. `base` is the image-calibrated row's int8 logits."""
    ok, n = deq.argmax(1) == ref.argmax(1), len(ref)
    p, err = float(ok.mean()), float(np.abs(deq - ref).mean())
    row = [p, f"{n - ok.sum()} ± {np.sqrt(n * p * (1 - p)):.1f}"]
    if base is None:
        return row + ["—", err, "—"]
    bok = base.argmax(1) == ref.argmax(1)
    worse, better = int((bok & ~ok).sum()), int((~bok & ok).sum())
    return row + [f"{worse - better:+d} ± {np.sqrt(worse + better):.1f}", err, err / float(np.abs(base - ref).mean())]


def accuracy(deq: np.ndarray, ref: np.ndarray, labels: np.ndarray) -> list:
    """[float → int8 accuracy, Δ pt ± paired SE (√ of the images whose correctness flipped)]."""
    f, q = ref.argmax(1) == labels, deq.argmax(1) == labels
    n, flips = len(labels), int((f != q).sum())
    return [f"{f.mean():.4f} → {q.mean():.4f}", f"{100 * (q.mean() - f.mean()):+.2f} ± {100 * np.sqrt(flips) / n:.2f}"]


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
    from calibration.dfq import DFQOptions

    rows, notes, best = [], [], {}
    for name in a.models:
        ckpt, data = ensure_model(name), ensure_data(MODELS[name][0])
        own = from_path(data, "test", a.limit, 95)
        valid = from_path(validation_draw(MODELS[name][0]), "valid", a.limit, 95)
        base, ref, calibrated, free = None, None, None, {}
        for label, dfq, method in variants(MODELS[name][3]):
            if base is None or base[0] != dfq:
                base = (dfq, Converted(ckpt, dfq))
            conv = base[1]
            if ref is None:  # the float checkpoint: the same for every row of this model
                ref = [torch_logits(conv.model, s) for s in (own.x, tissue, valid.x)]
            t = time.perf_counter()
            tab = ranges_table(conv, method, ckpt, data)
            dt = time.perf_counter() - t
            q = conv.int8(tab)
            deq = [int8_logits(q, s, a.reference) for s in (own.x, tissue, valid.x)]
            calibrated = calibrated or deq  # the first row: ranges from images
            first = deq is calibrated
            valid_ok = deq[2].argmax(1) == ref[2].argmax(1)
            rows.append([name, label, conv.steps, f"{method} ({dt:.1f} s)", int((~valid_ok).sum()),
                         float(np.abs(deq[2] - ref[2]).mean()),
                         *accuracy(deq[0], ref[0], own.labels),
                         *agreement(deq[0], ref[0], None if first else calibrated[0]),
                         *agreement(deq[1], ref[1], None if first else calibrated[1])])
            if method in RULES and dfq == DFQOptions():
                free[method] = rows[-1][5]
            print(rows[-1], flush=True)
        best[name] = min(free, key=free.get)
        notes.append(f"{name}: {len(own.x)} test images of {data.relative_to(ROOT)}, {len(valid.x)} of the validation draw")
    t = time_default_conversion(ensure_model("C12 (hard demo)")) if a.time else None
    cols = ["agreement", "disagreeing ± SE", "vs data ± SE", "mean |Δlogit|", "× data"]
    body = table(["model", "configuration", "DFQ steps", "ranges (time)", "valid′: disagreeing", "valid′: mean |Δlogit|",
                  "accuracy float → int8", "Δ pt ± SE", *(f"test: {c}" for c in cols), *(f"tissue: {c}" for c in cols)],
                 rows)
    body += ("\n\nAgreement, disagreeing images and |Δlogit| (in logits) are int8 vs the float checkpoint, on "
             f"each model's own test set and on {len(tissue)} real tissue tiles ({TISSUE_SOURCE}; measuring only, "
             "never tuned on). " + "; ".join(notes) + f". LiteRT {'reference' if a.reference else 'optimised'} "
             "kernels. Ranges: `data` = min/max over 256 images of the model's own validation split (`--ranges "
             "data`, the reference every other row is compared with), `bn` = the default data-free rule "
             "(calibration/bn_ranges.py: k·std, adds' spread and tails from the probe), the other `bn …` rows = its "
             "`probe` mode and K overrides, "
             "`distilled` = `--ranges distilled` at its defaults; the time is the ranges stage alone.\n\n"
             "Reading the errors: `disagreeing ± SE` is ± √(n·p·(1−p)) under a binomial model; `vs data` is this row's "
             "disagreements minus the image-calibrated row's on the same images, ± √(images where exactly one of "
             "the two disagrees) (McNemar): a difference within about 2 SE is not a difference. `Δ pt ± SE`: the "
             "accuracy change, ± √(images whose correctness flipped)/n. The tissue tiles overlap (stride 32 or 16 "
             "on 96-px tiles) and half are mirror images, so they are not independent: their SE is a lower bound. "
             "`valid′` is a second draw of the validation distribution (seed 1, as many images as the test "
             "split; `validation_draw`): the only set a choice between rules is made on. Lowest valid′ |Δlogit| "
             "among the `bn` rules with the default DFQ (one model each; the default is chosen over a pool "
             "of ten, bench/range_rules.py): " + "; ".join(f"{m}: `{r}`" for m, r in best.items())
             + ".\n\n"
             + (f"Default `convert tflite` of the C12 hard-demo model (width 0.35), end to end: {t['total']:.1f} s; "
                "stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in t.items() if k != "total") + ".\n" if t else ""))
    write("quantization", "Data-free quantization: ranges and DFQ steps on demo, hard demo and real tissue", body,
          "python bench/quantization.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
