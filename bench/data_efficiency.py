"""Data efficiency: equivariant models vs the conventional twin on growing training subsets.

    .venv/bin/python bench/data_efficiency.py [--sizes 256 1024] [--width 0.35] [--seeds 0]
        [--models none C12 C4 C8 D4] [--budget width params] [--reference none]
        [--lrs 1e-3 4e-3 8e-3] [--sweep smallest] [--sweep-seeds all] [--steps 100] [--augment dihedral]
        [--select loss] [--weight-decay 1e-4] [--min-fields 2] [--pcam DIR] [--no-int8]

Data: the hard demo (`train data demo --difficulty hard`, seed 0): one training set of the largest
size, of which each run takes the first N images (nested subsets; the labels are a random
permutation, so every prefix is about balanced), and shared valid/test splits. With `--pcam DIR`
the same runs are repeated on PCam: seeded random training subsets and random valid/test subsets
of `--valid-size`/`--test-size` images (PCam's 32,768-image splits are too slow to evaluate on a CPU).
PCam was not available where this was written: that path has run only on a PCam-format stand-in
(the hard demo's own folder), never on PCam.

Budgets: `width` trains every model at `--width`; `params` picks, for each model, the width (a
multiple of 0.025) whose trainable parameters (sum of numel over parameters with requires_grad)
come closest to those of `--reference` (default: the conventional twin) at `--width`. The
conventional twin cannot shrink below 38,290 parameters at any width: its head conv keeps
MobileNetV2's 1280 channels at widths below 1 (8·1280 weights + 1280 BN pairs + a 1280→2 classifier
= 15,362 at the smallest width) and every other layer stops at 8 channels (`make_divisible`'s
floor), reached at width 0.025; so `--reference C12` at width 0.35 (34,344) gets the twin at
0.025 with 38,290 (+11 %). The results text lists each model's matched width and its deviation.

Schedule: the same for every model: `train fit`'s AdamW + cosine, batch `--batch-size`, and the
number of epochs that gives about `--steps` optimizer steps (so small subsets are not also
under-trained), at least `--min-epochs`. Learning rate: every model is trained at every `--lrs`
value and the run with the best validation accuracy (ties: lower validation loss) is reported;
with `--sweep smallest` (default, for CPU time) only at the smallest size, the larger sizes reusing
the lr chosen there; with `--sweep-seeds first` only for the first of `--seeds`, the other seeds
reusing the lr chosen for it (per data set, budget and model). The test split never chooses anything.
Within a run the checkpoint is `train fit`'s best by `--select` (default: validation loss).
`--augment`, `--select`, `--weight-decay` and `--min-fields` (equivariant models only) are `train
fit`'s, for every run (defaults as there); other values get their own cached runs (`--min-fields`:
only for the models whose architecture it changes). Result files
written before `--min-fields` existed were measured with 1 field at least (their reproduce lines
say `--min-fields 1`).

Per (data, budget, model, size, seed): trainable parameters, the chosen lr, val accuracy, test
accuracy and ROC AUC (float, train/metrics.py), epochs, training time, and "collapsed" where the
model predicts one class for every test image. int8: the checkpoint with the best validation
accuracy of each model is converted with the default `convert tflite` (data-free) and its int8
model evaluated on the whole test split with LiteRT. Trained checkpoints, results and conversions
are cached under build/bench/data_efficiency/: a rerun skips what is done. CUDA is used when present.
Writes bench/results/data_efficiency.md and .png.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, field_floor_tag, table, write  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "bench" / "data_efficiency"
LABEL = {"none": "conventional"}
# The schedule's and the splits' defaults (bench/seed_failure.py trains on the same terms).
BATCH, MIN_EPOCHS, VALID, TEST = 32, 3, 256, 512


def label(group: str) -> str:
    return LABEL.get(group, group)


def trainable_params(group: str, width: float, min_fields: int = 1) -> int:
    from train.config import ModelConfig
    from train.model import model_from_config

    twin = group == "none"
    m = model_from_config(ModelConfig(group=None if twin else group, width=width,
                                      min_fields=1 if twin else min_fields))
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def matched_width(group: str, target: int, cache: dict, min_fields: int = 1) -> tuple[float, int]:
    """The width (a multiple of 0.025, at most 2) whose trainable parameters come closest to `target`.
    Parameters grow with width, so a bisection over the grid finds the crossing."""
    def n(w):
        if (group, w) not in cache:
            cache[(group, w)] = trainable_params(group, w, min_fields)
        return cache[(group, w)]

    grid = [round(0.025 * k, 3) for k in range(1, 81)]
    lo, hi = 0, len(grid) - 1
    while lo < hi:  # first width with at least `target` parameters
        mid = (lo + hi) // 2
        if n(grid[mid]) >= target:
            hi = mid
        else:
            lo = mid + 1
    best = min({max(0, lo - 1), lo}, key=lambda i: abs(n(grid[i]) - target))
    return grid[best], n(grid[best])


# --- data ---------------------------------------------------------------------------------------

def _link_split(src: Path, dst: Path, split: str) -> None:
    from train.data.pcam import split_paths

    for s, d in zip(split_paths(src, split), split_paths(dst, split)):
        if not d.exists():
            d.symlink_to(s.resolve())


def hard_demo(sizes: list[int], valid: int, test: int, pool: int | None) -> dict[int, Path]:
    """{N: a PCam-format folder whose train split is the first N images of the hard demo's (of
    `pool` images: the same pool gives the same subsets)}."""
    from train.data.demo import write_demo, write_split
    from train.data.pcam import PCamSplit, split_paths

    pool = pool or max(sizes)
    if pool < max(sizes):
        raise SystemExit(f"--pool {pool} is smaller than the largest size {max(sizes)}")
    full = WORK / "data" / f"hard_t{pool}_v{valid}_e{test}"
    if not split_paths(full, "test")[1].is_file():  # write_demo writes the test split last
        write_demo(full, 0, sizes={"train": pool, "valid": valid, "test": test}, difficulty="hard")
    out = {}
    for n in sizes:
        d = full / f"n{n}"
        if not split_paths(d, "train")[1].is_file():
            d.mkdir(exist_ok=True)
            s = PCamSplit(full, "train")
            x, y = s.read(0, n)
            s.close()
            write_split(d, "train", x, y.astype(np.uint8))
        for split in ("valid", "test"):
            _link_split(full, d, split)
        out[n] = d
    return out


def _random_rows(src: Path, split: str, n: int, seed: int, dst: Path) -> None:
    import h5py

    from train.data.demo import write_split
    from train.data.pcam import PCamSplit

    s = PCamSplit(src, split)
    if n > len(s):
        raise SystemExit(f"--pcam {src}: the {split} split has {len(s)} images, fewer than {n}")
    idx = np.sort(np.random.default_rng([seed, n]).choice(len(s), n, replace=False))
    with h5py.File(s.x_path, "r") as f:
        x = np.concatenate([f["x"][idx[i:i + 4096]] for i in range(0, n, 4096)])  # sorted fancy reads
    write_split(dst, split, x, s.labels[idx].astype(np.uint8))
    s.close()


def pcam(root: Path, sizes: list[int], valid: int, test: int) -> dict[int, Path]:
    """The same layout from a PCam folder: random (seeded) train subsets and valid/test subsets."""
    from train.data.pcam import split_paths

    import hashlib

    src = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]  # another PCam folder: other subsets
    base = WORK / "data" / f"pcam_{src}_v{valid}_e{test}"
    base.mkdir(parents=True, exist_ok=True)
    for split, n in (("valid", valid), ("test", test)):
        if not split_paths(base, split)[1].is_file():
            _random_rows(root, split, n, 0, base)
    out = {}
    for n in sizes:
        d = base / f"n{n}"
        d.mkdir(exist_ok=True)
        if not split_paths(d, "train")[1].is_file():
            _random_rows(root, "train", n, 0, d)
        for split in ("valid", "test"):
            _link_split(base, d, split)
        out[n] = d
    return out


# --- one run ------------------------------------------------------------------------------------

def run(data: Path, tag: str, group: str, width: float, n: int, seed: int, lr: float, a) -> dict:
    """Train (or reuse) one model and evaluate it on the test split; cached as JSON beside the checkpoint."""
    from e2micro.atomic import write_atomic
    from train import metrics
    from train.checkpoint import load_model
    from train.fit import FitSettings, fit

    epochs = max(a.min_epochs, math.ceil(a.steps * a.batch_size / n))
    key = (f"{tag}_{group}_w{width}_n{n}_s{seed}_lr{lr:g}_e{epochs}_b{a.batch_size}"
           + ("" if a.augment == "dihedral" else f"_aug-{a.augment}")
           + ("" if a.select == "loss" else f"_sel-{a.select}")
           + ("" if a.weight_decay == FitSettings.weight_decay else f"_wd-{a.weight_decay:g}")
           + field_floor_tag(group, width, a.min_fields))
    ckpt, res = WORK / "runs" / f"{key}.pt", WORK / "runs" / f"{key}.json"
    r = json.loads(res.read_text()) if res.is_file() else None
    if r is not None:
        r = {**r, "data": str(rebase(r["data"])), "checkpoint": str(rebase(r["checkpoint"]))}
    if r is not None and r["data"] == str(data):  # another --sizes gives another training set: retrain
        if r["collapsed"] and "bn_train_stats_test_acc" not in r:
            r = {**r, **bn_check(ckpt, data)}
            write_atomic(res, json.dumps(r, indent=1))
        return r
    t = time.perf_counter()
    best = fit(FitSettings(data=str(data), out=str(ckpt), group=None if group == "none" else group, width=width,
                           epochs=epochs, batch_size=a.batch_size, lr=lr, seed=seed, augment=a.augment,
                           select=a.select, weight_decay=a.weight_decay, min_fields=a.min_fields,
                           progress=False), force=True)
    seconds = time.perf_counter() - t
    model, config, _ = load_model(ckpt)
    device = torch_device()
    logits, labels = test_logits(model, config, data, device)
    pred = logits.argmax(1)
    ev = {"accuracy": metrics.accuracy(logits, labels), "roc_auc": metrics.roc_auc(logits, labels)}
    r = {"key": key, "checkpoint": str(ckpt), "data": str(data), "tag": tag, "group": group, "width": width,
         "train_images": n, "seed": seed, "lr": lr, "epochs": epochs, "best_epoch": best["epoch"],
         "params": sum(p.numel() for p in model.parameters() if p.requires_grad),
         "val_acc": best["val_acc"], "val_loss": best["val_loss"], "test_acc": ev["accuracy"],
         "test_auc": ev["roc_auc"], "test_positive_rate": float(pred.mean()),
         "collapsed": bool(len(np.unique(pred)) == 1), "train_seconds": round(seconds, 1), "device": device}
    if r["collapsed"]:
        r.update(bn_check(ckpt, data))
    write_atomic(res, json.dumps(r, indent=1))
    return r


def rebase(path: str) -> Path:
    """A path a cached result recorded, under this checkout's WORK: the cache stays valid when the
    checkout (or a copy of its build folder) moves."""
    _, sep, tail = str(path).rpartition(f"/{WORK.name}/")
    return WORK / tail if sep else Path(path)


def bn_check(ckpt: Path, data: Path) -> dict:
    """Why a model collapsed: the same weights with every batch norm's running statistics
    re-estimated (cumulative average, no augmentation) over its training images. A collapse that
    this undoes comes from running statistics lagging the weights, not from the weights."""
    import torch

    from train import metrics
    from train.checkpoint import load_model
    from train.data.loader import batches
    from train.data.pcam import PCamSplit

    model, config, _ = load_model(ckpt)
    device = torch_device()
    for m in model.modules():  # torch's batch norms and the equivariant FieldBatchNorm alike
        if hasattr(m, "running_var") and hasattr(m, "momentum"):
            m.running_mean.zero_()
            m.running_var.fill_(1.0)
            m.num_batches_tracked.zero_()
            m.momentum = None
    model.train().to(device)
    split = PCamSplit(data, "train")
    with torch.no_grad():
        for x, _ in batches(split, 64, config.input_size):
            model(x.to(device))
    split.close()
    logits, labels = test_logits(model, config, data, device)
    return {"bn_train_stats_test_acc": metrics.accuracy(logits, labels),
            "bn_train_stats_test_auc": metrics.roc_auc(logits, labels)}


def test_logits(model, config, data: Path, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Float logits and labels of the whole test split (as `train eval` computes them)."""
    import torch

    from train.data.loader import batches
    from train.data.pcam import PCamSplit

    split, out, labels = PCamSplit(data, "test"), [], []
    model.eval().to(device)
    with torch.no_grad():
        for x, y in batches(split, 128, config.input_size):
            out.append(model(x.to(device)).cpu().numpy())
            labels.append(y.numpy())
    split.close()
    return np.concatenate(out), np.concatenate(labels)


def torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def int8(r: dict) -> dict:
    """Default (data-free) conversion of one checkpoint; its int8 model on the whole test split."""
    from e2micro.atomic import write_atomic
    from convert.images import from_path
    from convert.pipeline import ConvertOptions, convert_tflite
    from convert.runtimes import LiteRT, pixels_to_int8
    from train import metrics

    out = WORK / "int8" / r["key"]
    res = out.with_suffix(".json")
    if res.is_file() and res.stat().st_mtime > Path(r["checkpoint"]).stat().st_mtime:  # not retrained since
        return json.loads(res.read_text())
    t = time.perf_counter()
    rep = convert_tflite(ConvertOptions(checkpoint=Path(r["checkpoint"]), out=out, parity_data=Path(r["data"])),
                         echo=lambda s: None)
    seconds = time.perf_counter() - t
    lite = LiteRT((out / "model_int8.tflite").read_bytes(), reference=False)
    scale, zp = lite.out["quantization"]
    test = from_path(r["data"], "test", None, 95)
    q = (lite(pixels_to_int8(test.x)).astype(np.float64) - zp) * scale
    p = rep["parity"]
    o = {"key": r["key"], "int8_test_acc": metrics.accuracy(q, test.labels), "int8_test_auc": metrics.roc_auc(q, test.labels),
         "int8_bytes": rep["files"]["model_int8.tflite"], "parity_images": p["images"],
         "parity_argmax_agreement": p["int8_vs_torch_argmax_agreement"], "convert_seconds": round(seconds, 1)}
    write_atomic(res, json.dumps(o, indent=1))
    return o


# --- report -------------------------------------------------------------------------------------

def mean(v):
    return float(np.mean(v)) if v else float("nan")


def plot(rows: list[dict], sizes: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from e2micro.atomic import write_atomic

    tags = sorted({(r["tag"], r["budget"]) for r in rows})
    fig, axes = plt.subplots(len(tags), 2, figsize=(11, 4 * len(tags)), squeeze=False)
    for row_axes, (tag, budget) in zip(axes, tags):
        sel = [r for r in rows if r["tag"] == tag and r["budget"] == budget]
        for ax, metric, name in zip(row_axes, ("test_acc", "test_auc"), ("test accuracy", "test ROC AUC")):
            for g in dict.fromkeys(r["group"] for r in sel):
                pts = [(n, [r[metric] for r in sel if r["group"] == g and r["train_images"] == n],
                        [r for r in sel if r["group"] == g and r["train_images"] == n]) for n in sizes]
                pts = [(n, v, rs) for n, v, rs in pts if v]
                if not pts:
                    continue
                w = pts[0][2][0]["width"]
                line, = ax.plot([n for n, _, _ in pts], [mean(v) for _, v, _ in pts], marker="o",
                                label=f"{label(g)} (w {w}, {pts[0][2][0]['params']:,} params)")
                lo = [mean(v) - min(v) for _, v, _ in pts]
                hi = [max(v) - mean(v) for _, v, _ in pts]
                ax.errorbar([n for n, _, _ in pts], [mean(v) for _, v, _ in pts], yerr=[lo, hi], fmt="none",
                            ecolor=line.get_color(), capsize=3)
                bad = [(n, mean(v)) for n, v, rs in pts if any(r["collapsed"] for r in rs)]
                if bad:
                    ax.scatter(*zip(*bad), marker="x", s=120, color="black", zorder=5)
            ax.set_xscale("log", base=2)
            ax.set_xticks(sizes, [str(n) for n in sizes])
            ax.set_xlabel("training images")
            ax.set_ylabel(name)
            ax.set_title(f"{tag}, {budget}: {name}" + (" (x: collapsed)" if metric == "test_acc" else ""))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90, metadata={"Software": None})  # no version string: same figures, same bytes
    plt.close(fig)
    write_atomic(path, tmp.read_bytes())
    tmp.unlink()


def main():
    from train.fit import SELECT, FitSettings

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", type=int, default=[256, 1024])
    ap.add_argument("--models", nargs="+", default=["none", "C12", "C4", "C8", "D4"])
    ap.add_argument("--width", type=float, default=0.35)
    ap.add_argument("--budget", nargs="+", choices=["width", "params"], default=["width"])
    ap.add_argument("--reference", default="none", help="the model whose parameters `--budget params` matches")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--lrs", nargs="+", type=float, default=[1e-3, 4e-3, 8e-3])
    ap.add_argument("--sweep", choices=["smallest", "all"], default="smallest",
                    help="sweep --lrs at the smallest size only (larger sizes reuse the lr chosen there) or at every size")
    ap.add_argument("--sweep-seeds", choices=["all", "first"], default="all",
                    help="sweep --lrs for every seed, or for the first of --seeds only (the others reuse its lr)")
    ap.add_argument("--steps", type=int, default=100, help="optimizer steps per run (epochs = steps·batch/N)")
    ap.add_argument("--min-epochs", type=int, default=MIN_EPOCHS)
    ap.add_argument("--batch-size", type=int, default=BATCH)
    ap.add_argument("--valid-size", type=int, default=VALID)
    ap.add_argument("--test-size", type=int, default=TEST)
    ap.add_argument("--pool", type=int, help="hard demo training images generated (default: the largest size); "
                    "subsets are its first N, so runs with the same pool share them")
    ap.add_argument("--pcam", type=Path, help="also run on this PCam folder (PCam-format .h5 files)")
    ap.add_argument("--augment", default="dihedral", help="train fit --augment for every run (none: what the "
                    "dihedral augmentation gives the twin; dihedral+colour: views the invariant models can use)")
    ap.add_argument("--select", choices=SELECT, default=SELECT[0],
                    help="train fit --select for every run: which epoch's checkpoint each run keeps")
    ap.add_argument("--weight-decay", type=float, default=FitSettings.weight_decay,
                    help="train fit's AdamW weight decay for every run (default: train fit's)")
    ap.add_argument("--min-fields", type=int, default=FitSettings.min_fields,
                    help="train fit --min-fields for the equivariant models (default: train fit's)")
    ap.add_argument("--int8", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--name", default="data_efficiency", help="results file stem under bench/results/")
    a = ap.parse_args()
    a.started = time.perf_counter()
    from e2micro.errors import BadInput
    from train.data.augment import parse as parse_augment

    try:  # one spelling per setting, so 'colour+dihedral' reuses the 'dihedral+colour' runs
        a.augment = "+".join(parse_augment(a.augment)) or "none"
    except BadInput as e:
        raise SystemExit(f"error: {e}")
    if a.weight_decay < 0:
        raise SystemExit(f"error: --weight-decay {a.weight_decay:g}: must be at least 0")
    try:
        FitSettings(data="", out="", min_fields=a.min_fields)
    except BadInput as e:
        raise SystemExit(f"error: {e}")
    sizes = sorted(a.sizes)

    sets = [("hard demo", hard_demo(sizes, a.valid_size, a.test_size, a.pool))]
    if a.pcam:
        sets.append(("PCam", pcam(a.pcam, sizes, a.valid_size, a.test_size)))
    pcache: dict = {}
    widths = {("width", g): a.width for g in a.models}
    a.matched = {}
    if "params" in a.budget:
        target = trainable_params(a.reference, a.width, a.min_fields)
        a.matched = {g: matched_width(g, target, pcache, a.min_fields) for g in a.models}
        widths.update({("params", g): w for g, (w, _) in a.matched.items()})
    planned = [(name, budget, g, n, seed) for name, _ in sets for n in sizes for budget in a.budget
               for g in a.models for seed in a.seeds]  # smallest size first: a stopped run has it whole
    rows, sweep, picked = [], [], {}
    for name, budget, g, n, seed in planned:
        dirs, tag, w = dict(sets)[name], "pcam" if name == "PCam" else "hard", widths[(budget, g)]
        pick = (name, budget, g, n if a.sweep == "all" else None, a.seeds[0] if a.sweep_seeds == "first" else seed)
        sweeping = (a.sweep == "all" or n == sizes[0]) and (a.sweep_seeds == "all" or seed == a.seeds[0])
        lrs = a.lrs if sweeping else [picked[pick]]
        runs = [run(dirs[n], tag, g, w, n, seed, lr, a) for lr in lrs]
        for r in runs:
            sweep.append({**r, "set": name, "budget": budget})
            print(f"{name} {budget} {label(g)} w{w} N={n} seed {seed} lr {r['lr']:g}: val "
                  f"{r['val_acc']:.3f} test {r['test_acc']:.3f} auc {r['test_auc']:.3f}"
                  f"{' COLLAPSED' if r['collapsed'] else ''} ({r['train_seconds']} s)", flush=True)
        rows.append({**min(runs, key=lambda r: (-r["val_acc"], r["val_loss"])), "set": name, "budget": budget})
        picked.setdefault(pick, rows[-1]["lr"])
        report(a, sets, sizes, rows, sweep, [], planned[len(rows):], a.int8)  # so far, in case it is stopped

    int8_rows = []
    if a.int8:
        for name in dict.fromkeys(r["set"] for r in rows):
            for g in a.models:
                mine = [r for r in rows if r["set"] == name and r["group"] == g]
                if mine:
                    best = min(mine, key=lambda r: (-r["val_acc"], r["val_loss"]))
                    int8_rows.append((best, int8(best)))
                    print(f"int8 {name} {label(g)}: {int8_rows[-1][1]}", flush=True)
    report(a, sets, sizes, rows, sweep, int8_rows, [], False)


def report(a, sets, sizes, rows, sweep, int8_rows, missing, int8_pending):
    body = table(["set", "budget", "model", "width", "trainable params", "train images", "seed", "lr (chosen)",
                  "epochs (best)", "val acc", "test acc", "test ROC AUC", "test: predicted tumour", "train s", "device"],
                 [[r["set"], r["budget"], label(r["group"]), r["width"], f"{r['params']:,}", r["train_images"], r["seed"],
                   f"{r['lr']:g}", f"{r['epochs']} ({r['best_epoch']})", f"{r['val_acc']:.3f}",
                   f"{r['test_acc']:.3f}" + (f" **collapsed** ({r['bn_train_stats_test_acc']:.3f} with BN statistics "
                                             "re-estimated)" if r["collapsed"] else ""), f"{r['test_auc']:.3f}",
                   f"{r['test_positive_rate']:.2f}", r["train_seconds"], r["device"]] for r in rows])
    # Mean over seeds, and the difference to the conventional twin trained on the same images.
    summary = []
    for name, budget in dict.fromkeys((r["set"], r["budget"]) for r in rows):
        for n in sizes:
            ref = {r["seed"]: r["test_acc"] for r in rows if r["set"] == name and r["budget"] == budget
                   and r["group"] == "none" and r["train_images"] == n}
            for g in a.models:
                v = [r for r in rows if r["set"] == name and r["budget"] == budget and r["group"] == g
                     and r["train_images"] == n]
                if v:
                    accs = [r["test_acc"] for r in v]
                    acc = mean(accs)
                    # Same seed, same training images: the per-seed differences pair the runs.
                    paired = [100 * (r["test_acc"] - ref[r["seed"]]) for r in v if r["seed"] in ref]
                    summary.append([name, budget, label(g), v[0]["width"], f"{v[0]['params']:,}", n, len(v),
                                    f"{100 * acc:.1f}", f"{100 * min(accs):.1f}–{100 * max(accs):.1f}",
                                    f"{mean([r['test_auc'] for r in v]):.3f}",
                                    f"{100 * acc - 100 * mean(list(ref.values())):+.1f}" if ref and g != "none" else "",
                                    " / ".join(f"{d:+.1f}" for d in paired) if g != "none" else "",
                                    sum(r["collapsed"] for r in v)])
    body += "\n\n## Mean over seeds, and the difference to the conventional twin\n\n" + table(
        ["set", "budget", "model", "width", "trainable params", "train images", "seeds", "test acc % (mean)",
         "test acc % (min–max)", "test ROC AUC (mean)", "Δ acc vs conventional (pt, means)",
         "Δ per seed (pt, same seed)", "collapsed runs"], summary)
    body += "\n\n## Learning-rate sweep (every run; the row with the best val acc is reported above)\n\n" + table(
        ["set", "budget", "model", "width", "train images", "seed", "lr", "val acc", "val loss", "test acc", "collapsed"],
        [[r["set"], r["budget"], label(r["group"]), r["width"], r["train_images"], r["seed"], f"{r['lr']:g}",
          f"{r['val_acc']:.3f}", f"{r['val_loss']:.4f}", f"{r['test_acc']:.3f}", "yes" if r["collapsed"] else ""]
         for r in sweep])
    if int8_rows:
        body += "\n\n## int8 (default data-free `convert tflite`) of each model's best checkpoint (by val acc)\n\n" + table(
            ["set", "model", "width", "train images", "lr", "test acc float", "test acc int8", "test AUC float",
             "test AUC int8", "int8 bytes", "convert s"],
            [[r["set"], label(r["group"]), r["width"], r["train_images"], f"{r['lr']:g}", f"{r['test_acc']:.3f}",
              f"{q['int8_test_acc']:.3f}", f"{r['test_auc']:.3f}", f"{q['int8_test_auc']:.3f}", f"{q['int8_bytes']:,}",
              q["convert_seconds"]] for r, q in int8_rows])
    devices = sorted({r["device"] for r in rows})
    body += (f"\n\nData: {', '.join(f'{n}: {next(iter(d.values())).parent.relative_to(ROOT)}' for n, d in sets)}; valid "
             f"{a.valid_size} and test {a.test_size} images per set; training subsets are the first N images "
             "(hard demo) or seeded random ones (PCam). Schedule for every model: AdamW + cosine (`train fit`), batch "
             f"{a.batch_size}, epochs = max({a.min_epochs}, ⌈{a.steps} steps · {a.batch_size} / N⌉), weight decay "
             f"{a.weight_decay:g}; every stage of the equivariant models at least {a.min_fields} regular "
             f"field{'s' if a.min_fields > 1 else ''} (`--min-fields`); lr swept over {', '.join(f'{v:g}' for v in a.lrs)} for every model alike, chosen by val acc "
             + ("at every size" if a.sweep == "all" else f"at N = {sizes[0]} and reused at the larger sizes")
             + (f", for seed {a.seeds[0]} only (the other seeds reuse its lr). " if a.sweep_seeds == "first" and len(a.seeds) > 1
                else ", for every seed. ")
             + "\"collapsed\": one class predicted for every test image; in brackets, the test accuracy of the same "
               "weights with every batch norm's running statistics re-estimated on the run's training images "
               "(a collapse this undoes comes from the statistics lagging the weights in a short run). "
             + (f"Budget `params`: widths (multiples of 0.025) matched to {label(a.reference)} at width {a.width} "
                f"({trainable_params(a.reference, a.width, a.min_fields):,} trainable parameters): "
                + ", ".join(f"{label(g)} {w} ({p:,}, {100 * (p / trainable_params(a.reference, a.width, a.min_fields) - 1):+.0f} %)"
                            for g, (w, p) in a.matched.items()) + ". " if "params" in a.budget else "")
             + f"Device: {', '.join(devices)}. PCam: {'measured' if a.pcam else 'not measured in this run (no --pcam)'}. "
             f"Wall time of this invocation so far: {time.perf_counter() - a.started:.0f} s (runs and conversions cached "
             f"by an earlier invocation are reused, not redone; the runs' own training time, summed: "
             f"{sum({r['key']: r['train_seconds'] for r in sweep}.values()):.0f} s).\n\n"
             f"![plot]({a.name}.png)\n")
    if missing:
        body += ("\n\n**Incomplete: these planned rows (set/budget/model/train images/seed) were not run:** "
                 + "; ".join(f"{s}/{b}/{label(g)}/{n}/{seed}" for s, b, g, n, seed in missing) + ".\n")
    if int8_pending:
        body += "\n\n**Incomplete: the int8 figures were not measured (the run stopped before them).**\n"
    plot(rows, sizes, RESULTS / f"{a.name}.png")
    write(a.name, "Data efficiency: equivariant models vs the conventional twin by training-set size", body,
          "python bench/data_efficiency.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
