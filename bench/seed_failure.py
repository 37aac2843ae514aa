"""Why one seed fails: transplant parts of another seed's initialisation into its run.

    .venv/bin/python bench/seed_failure.py [--group C12] [--width 0.35] [--seeds 0 2]
        [--parts single all] [--train-images 256] [--steps 100] [--lr 8e-3] [--min-fields 1]
        [--name seed_failure]

`bench/data_efficiency.py` found equivariant runs that fail on some seeds and learn on others, on
the same images with the same schedule (C12 at width 0.35: seed 2). A seed sets two things: the
model's initialisation and the order (and augmentation) of the training batches. For two seeds A
and B, each row trains A's run with one part of its initialisation taken from B's, and B's run
with that part taken from A's; the batches stay the run's own. If a part carries the failure, the
failing seed's copy of it makes the other run fail and the other's copy rescues it.

Parts: `all` (the whole initialisation: what remains is the batch order), `single` (the stages
that are a single regular field, `train fit`'s warning: for C12 at 0.35 the stem and stages 1–3),
`stem`, `stage K` (its blocks, K = 1…7), `head` (the head conv, as in `train fit`'s warning), or
any other module name of the model (`blocks.3`). Runs without a transplant are the reference.
Data: the hard demo of `bench/data_efficiency.py` (the first `--train-images` of its `--pool`
images, the same valid/test splits). Schedule and splits as there at its defaults: AdamW + cosine,
about `--steps` steps, best checkpoint by validation loss. Runs are cached under
build/bench/seed_failure/. Writes bench/results/<name>.md.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data_efficiency as de  # noqa: E402
from common import field_floor_tag, table, write  # noqa: E402

WORK = de.ROOT / "build" / "bench" / "seed_failure"


def modules_of(part: str, config) -> list[str]:
    """The model's module names that `part` names (see the module docstring)."""
    from train.groups import parse_group
    from train.plain.table import MOBILENETV2, single_field_stages

    if part == "all":
        return [""]
    if part == "single":
        g = parse_group(config.group)
        names = [n for n, _ in single_field_stages(config.width, g.order, config.input_size, config.min_fields)]
        if not names:
            raise SystemExit(f"error: --parts single: {config.group} at width {config.width} with --min-fields "
                             f"{config.min_fields} has no single-field stage")
        return [m for n in names for m in modules_of(n, config)]
    if part == "stem":
        return ["stem"]
    if part == "head":
        return ["head_conv"]
    if part.startswith("stage"):
        k = part[len("stage"):].strip()
        if not k.isdigit() or not 1 <= int(k) <= len(MOBILENETV2):
            raise SystemExit(f"error: --parts {part!r}: stages are 'stage 1' … 'stage {len(MOBILENETV2)}'")
        k = int(k)
        first = sum(n for _, _, n, _ in MOBILENETV2[:k - 1])
        return [f"blocks.{i}" for i in range(first, first + MOBILENETV2[k - 1][2])]
    return [part]


def transplant(names: list[str], donor_seed: int):
    """`train fit`'s init hook: copy the named modules from a model built with `donor_seed`. torch's
    RNGs are left as they were, so the rest of the run is the run's own."""
    import torch

    from train.model import model_from_config

    def init(model):
        with torch.random.fork_rng():
            torch.manual_seed(donor_seed)
            donor = dict(model_from_config(model.config).named_modules())
        mine = dict(model.named_modules())
        for n in names:
            mine[n].load_state_dict(donor[n].state_dict())
    return init


def run(data: Path, a, seed: int, part: str, donor: int | None) -> dict:
    from e2micro.atomic import write_atomic
    from train import metrics
    from train.checkpoint import load_model
    from train.config import ModelConfig
    from train.fit import FitSettings, fit

    epochs = max(de.MIN_EPOCHS, math.ceil(a.steps * de.BATCH / a.train_images))
    key = (f"{a.group}_w{a.width}_n{a.train_images}_p{a.pool}_s{seed}_lr{a.lr:g}_e{epochs}"
           + field_floor_tag(a.group, a.width, a.min_fields)
           + ("" if donor is None else f"_{part.replace(' ', '')}-from-s{donor}"))
    ckpt, res = WORK / f"{key}.pt", WORK / f"{key}.json"
    if res.is_file():
        return json.loads(res.read_text())
    WORK.mkdir(parents=True, exist_ok=True)
    config = ModelConfig(group=a.group, width=a.width, min_fields=a.min_fields)
    init = None if donor is None else transplant(modules_of(part, config), donor)
    t = time.perf_counter()
    best = fit(FitSettings(data=str(data), out=str(ckpt), group=a.group, width=a.width, epochs=epochs,
                           batch_size=de.BATCH, lr=a.lr, seed=seed, min_fields=a.min_fields, progress=False),
               force=True, init=init)
    model, config, _ = load_model(ckpt)
    logits, labels = de.test_logits(model, config, data, de.torch_device())
    r = {"seed": seed, "part": part if donor is not None else "none", "donor": donor, "best_epoch": best["epoch"],
         "val_acc": best["val_acc"], "test_acc": metrics.accuracy(logits, labels),
         "train_seconds": round(time.perf_counter() - t, 1)}
    write_atomic(res, json.dumps(r, indent=1))
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--group", default="C12")
    ap.add_argument("--width", type=float, default=0.35)
    ap.add_argument("--seeds", nargs=2, type=int, default=[0, 2], metavar=("A", "B"))
    ap.add_argument("--parts", nargs="+", default=["single", "all"])
    ap.add_argument("--train-images", type=int, default=256)
    ap.add_argument("--pool", type=int, default=1024, help="as bench/data_efficiency.py --pool (same images)")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--lr", type=float, default=8e-3)
    ap.add_argument("--min-fields", type=int, default=1, help="train fit --min-fields (default 1: the single-field "
                    "stages whose failure this bench measures)")
    ap.add_argument("--name", default="seed_failure", help="results file stem under bench/results/")
    a = ap.parse_args()
    from e2micro.errors import BadInput
    from train.config import ModelConfig
    from train.model import model_from_config

    try:
        config = ModelConfig(group=a.group, width=a.width, min_fields=a.min_fields)
    except BadInput as e:
        raise SystemExit(f"error: {e}")
    if config.group_spec is None:
        raise SystemExit("error: --group: give an equivariant group (the conventional twin is the reference elsewhere)")
    if a.lr <= 0 or a.steps < 1 or a.train_images < 1:
        raise SystemExit("error: --lr, --steps and --train-images must be positive")
    sa, sb = a.seeds
    if sa == sb:
        raise SystemExit("error: --seeds: give two different seeds")
    known = dict(model_from_config(config).named_modules())
    for part in a.parts:  # refused before anything trains
        missing = [n for n in modules_of(part, config) if n not in known]
        if missing:
            raise SystemExit(f"error: --parts {part!r}: the model has no module {missing[0]!r}")
    data = de.hard_demo([a.train_images], de.VALID, de.TEST, a.pool)[a.train_images]
    rows = [["none", "—", sa, f"{run(data, a, sa, 'none', None)['test_acc']:.3f}"],
            ["none", "—", sb, f"{run(data, a, sb, 'none', None)['test_acc']:.3f}"]]
    for part in a.parts:
        for seed, donor in ((sa, sb), (sb, sa)):
            r = run(data, a, seed, part, donor)
            rows.append([part, ", ".join(modules_of(part, config)) or "(whole model)", f"{seed} ← {donor}",
                         f"{r['test_acc']:.3f}"])
    body = (table(["transplanted part", "modules", "run seed ← init from seed", "test acc"], rows)
            + f"\n\n{a.group} at width {a.width}, {a.train_images} hard-demo training images, lr {a.lr:g}, "
              f"about {a.steps} steps (batch {de.BATCH}), test split of {de.TEST} images (one run each: "
              "SE ≈ 2 pt). "
              "`a ← b`: seed a's run (its batch order and augmentation, and its initialisation outside the part) "
              "with the part's initialisation from seed b.\n")
    write(a.name, "Which part of a seed's initialisation carries a failing run", body,
          "python bench/seed_failure.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
