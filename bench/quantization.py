"""What each data-free quantization step buys, equivariant vs conventional (one run).

    .venv/bin/python bench/quantization.py [--data DIR] [--split test] [--checkpoints EQ.pt CONV.pt]

Without --checkpoints it trains the demo's C12 model, the same with ReLU instead of ReLU6, and the
conventional twin (width 0.35) on the demo data (cached under build/bench/quantization/). Every
int8 row is a full `convert tflite` run;
int8 outputs come from LiteRT's default kernels on the whole split. Writes
bench/results/quantization.md and bench/results/quantization_dw_ranges.png.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, table, write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "bench" / "quantization"


def configs(k: float):
    from calibration.dfq import DFQOptions

    none = DFQOptions(equalize=False, absorb=False, bias_correction=False)
    default = DFQOptions()
    paper = DFQOptions(relu6="relu")
    return [
        ("int8, BN ranges, no DFQ step", none, "bn"),
        ("+ bias correction (default: ReLU6 kept)", default, "bn"),
        ("ReLU6→ReLU + equalization", replace(none, relu6="relu", equalize=True), "bn"),
        ("ReLU6→ReLU + equalization + absorption", replace(none, relu6="relu", equalize=True, absorb=True), "bn"),
        ("ReLU6→ReLU + all steps (DFQ paper)", paper, "bn"),
        ("default DFQ, distilled ranges", default, "distilled"),
        ("default DFQ, ranges from real images", default, "data"),
        ("no DFQ step, ranges from real images", none, "data"),
        ("per-tensor weights, no DFQ step", replace(none, per_channel=False), "bn"),
        ("per-tensor weights, default DFQ", replace(default, per_channel=False), "bn"),
        ("per-tensor weights, DFQ paper", replace(paper, per_channel=False), "bn"),
    ]


def ensure_data(data: Path | None) -> Path:
    if data is not None:
        return data
    demo = ROOT / "build" / "demo" / "data"
    if (demo / "camelyonpatch_level_2_split_test_x.h5").is_file():
        return demo
    from train.data.demo import write_demo

    write_demo(WORK / "data")
    return WORK / "data"


def ensure_models(data: Path, given: list[Path] | None) -> list[Path]:
    if given:
        return given
    from train.fit import FitSettings, fit

    out = []
    for name, group, act in (("C12", "C12", "relu6"), ("C12-relu", "C12", "relu"), ("none", "none", "relu6")):
        ckpt = WORK / "models" / f"{name}.pt"
        if not ckpt.is_file():
            fit(FitSettings(str(data), str(ckpt), group=group, width=0.35, epochs=3, batch_size=32, lr=4e-3,
                            activation=act, progress=False), force=True)  # no checkpoint: start over
        out.append(ckpt)
    return out


def evaluate_int8(model_bytes: bytes, x: np.ndarray, ref: np.ndarray, labels: np.ndarray) -> list:
    from convert.runtimes import LiteRT, pixels_to_int8

    lite = LiteRT(model_bytes, reference=False)
    scale, zp = lite.out["quantization"]
    xq = pixels_to_int8(x)
    q = lite(xq)
    err = np.abs((q.astype(np.float64) - zp) * scale - ref)
    lsb = err / scale
    same = np.ones(len(x), bool)
    for k in (1, 2, 3):
        same &= np.all(lite(np.ascontiguousarray(np.rot90(xq, k, axes=(1, 2)))) == q, axis=1)
    return [float((q.argmax(1) == labels).mean()), float((q.argmax(1) == ref.argmax(1)).mean()),
            float(err.mean()), float(lsb.mean()), float(lsb.max()), float(same.mean())]


def plot_ranges(ckpt: Path, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from calibration.equalize import equalize, out_ranges, relu6_to_relu
    from calibration.fold import fold_all
    from train.checkpoint import load_model

    model, config, _ = load_model(ckpt)
    before = fold_all(model.export())
    after = equalize(relu6_to_relu(before))
    fig, axes = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    for ax, m, title in ((axes[0], before, "before equalization"), (axes[1], after, "after equalization")):
        data = [out_ranges(b.dw.conv).numpy() for b in m.blocks]
        ax.boxplot(data, whis=(0, 100))
        ax.set_yscale("log")
        ax.set_ylabel("max |w| per channel")
        ax.set_title(f"{config.group or 'conventional'} width {config.width}: depthwise weight ranges, {title}")
    axes[1].set_xlabel("depthwise layer (block)")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--checkpoints", nargs="+", type=Path)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--k", type=float, default=None, help="bn ranges k (default: the converter's)")
    a = ap.parse_args()
    from convert.images import from_path
    from convert.parity import torch_logits
    from convert.pipeline import ConvertOptions, convert_tflite
    from train.checkpoint import load_model
    from train.data.pcam import split_paths

    data = ensure_data(a.data)
    rows = []
    for ckpt in ensure_models(data, a.checkpoints):
        model, config, _ = load_model(ckpt)
        imgs = from_path(data, a.split, a.limit, config.input_size)
        ref = torch_logits(model, imgs.x)
        name = (config.group or "conventional") + ("" if config.activation == "relu6" else f" ({config.activation})")
        rows.append([name, "float (PyTorch)", float((ref.argmax(1) == imgs.labels).mean()), 1.0, 0.0, 0.0, 0.0, "—"])
        k = a.k if a.k is not None else ConvertOptions(ckpt).bn_k
        for label, dfq, ranges in configs(k):
            out = WORK / "runs" / ckpt.stem / label.replace(" ", "_").replace(",", "").replace("→", "-")
            opts = ConvertOptions(ckpt, out, ranges,
                                  calibration_data=split_paths(data, "valid")[0] if ranges == "data" else None,
                                  parity_data=data, parity_images=2, dfq=dfq, bn_k=k)
            convert_tflite(opts, echo=lambda s: None)
            res = evaluate_int8((out / "model_int8.tflite").read_bytes(), imgs.x, ref, imgs.labels)
            rows.append([name, label, *res])
            print(rows[-1], flush=True)
        if config.group is not None and config.activation == "relu6":
            plot_ranges(ckpt, RESULTS / "quantization_dw_ranges.png")
    body = table(["model", "configuration", "accuracy", "top-1 agreement with float", "mean |Δlogit|",
                  "mean |Δlogit| (LSB)", "max |Δlogit| (LSB)", "rot90 bit-exact rate"], rows)
    body += (f"\n\n{len(imgs.x)} images of {data} ({a.split}). Ranges `bn`: batch-norm statistics, "
             f"mean ± {k}·std. |Δlogit| against the float checkpoint; LSB = that row's int8 output scale (the "
             "data-free logit range is a bound, so its LSB is coarser than a measured one: compare the absolute "
             "column across rows). int8 via LiteRT default kernels. C12 (relu) was trained with ReLU: nothing to "
             "replace, so equalization and absorption run exactly by default and its 'DFQ paper' row is its default."
             "\n\n![depthwise ranges](quantization_dw_ranges.png)\n")
    write("quantization", "Data-free quantization, step by step", body,
          "python bench/quantization.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
