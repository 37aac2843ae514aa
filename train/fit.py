"""The training loop: AdamW + cosine schedule, best checkpoint by --select (default: validation loss),
resumable, DDP."""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from e2micro.atomic import write_atomic
from e2micro.errors import BadInput, E2microError

from .checkpoint import atomic_save, load_weights, model_state, safe_load, save_checkpoint
from .groups import parse_group
from .config import ModelConfig, check_min_fields
from .data.augment import parse as parse_augment
from .data.loader import batches, plan, prefetch
from .data.pcam import PCamSplit
from .distributed import Dist, setup, teardown
from .model import model_from_config

STATE_FORMAT = "e2micro-train-state"


class TrainingError(E2microError):
    """Training cannot go on (diverged, nothing to resume, …)."""


SELECT = ("loss", "accuracy")  # FitSettings.select


@dataclass(kw_only=True)
class FitSettings:
    data: str
    out: str
    group: str | None = "C12"
    width: float = 0.35
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    input_size: int = 95
    activation: str = "relu6"
    # Regular fields every stage has at least (equivariant models; the twin ignores it): with 1, C12
    # at width 0.35 has single-field early stages and some seeds fail (README, data efficiency).
    min_fields: int = 2
    device: str = "auto"
    progress: bool = True
    num_classes: int = 2  # PCam is binary; labels outside 0..num_classes-1 are refused
    augment: str = "dihedral"  # train/data/augment.py: none, dihedral, colour, dihedral+colour
    # Which epoch's checkpoint is kept: lowest validation loss, or highest validation accuracy (ties:
    # lower loss). On a few hundred images an over-confident model's loss can be lowest at epoch 1.
    select: str = "loss"

    def __post_init__(self):  # a bad --augment / --select is refused before anything is read or written
        parse_augment(self.augment)
        if self.select not in SELECT:
            raise BadInput(f"--select {self.select!r}: use {' or '.join(SELECT)}")
        check_min_fields(self.min_fields, "--min-fields")
        if parse_group(self.group) is None:  # the twin has no fields: its settings say what its model has
            self.min_fields = 1


# What a resumed run takes from its stored state; a differing flag is refused (epochs may grow).
RESUME_FIXED = ("group", "width", "batch_size", "lr", "weight_decay", "seed", "activation", "num_classes",
                "input_size", "augment", "select", "min_fields")


def better(record: dict, best: dict, select: str) -> bool:
    """Whether this epoch's validation figures beat the kept checkpoint's (`select`: FitSettings)."""
    if select == "accuracy" and record["val_acc"] != best.get("val_acc", -1.0):
        return record["val_acc"] > best.get("val_acc", -1.0)
    return record["val_loss"] < best["val_loss"]


def single_field_stages(s: FitSettings) -> list[tuple[str, int]]:
    """(stage, channels) of the stages this run's model has as a single regular field (none for the
    conventional twin): weight sharing leaves them few distinct filters."""
    from .plain.table import single_field_stages as stages

    g = parse_group(s.group)
    return [] if g is None else stages(s.width, g.order, s.input_size, s.min_fields)


def state_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".last" + (out.suffix or ".pt"))


def log_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".metrics.jsonl")


def cosine(total_steps: int, warmup: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    return factor


def _evaluate_loss(model, split, s: FitSettings, d: Dist) -> tuple[float, float]:
    """Validation (loss, accuracy), each rank on its share, summed over ranks."""
    model.eval()
    loss_sum = correct = n = 0.0
    with torch.no_grad():
        for x, y in batches(split, s.batch_size, s.input_size, rank=d.rank, world=d.world):
            x, y = x.to(d.device), y.to(d.device)
            logits = model(x)
            loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += float((logits.argmax(1) == y).sum())
            n += len(y)
    loss_sum, correct, n = d.sum([loss_sum, correct, n])
    return loss_sum / n, correct / n


def fit(s: FitSettings, resume: bool = False, given: dict | None = None, force: bool = False,
        init=None) -> dict | None:
    """Train; returns the best epoch's metrics (None on ranks > 0, which write nothing).

    `given`: the settings the user set explicitly; with `resume` they must agree with the stored
    run's (a larger `epochs` extends it). Without `resume`, an earlier run's files at `s.out` are
    replaced only with `force`. `init(model)`, if given, runs on a new run's freshly seeded model
    before training (bench/seed_failure.py transplants parts of another seed's initialisation)."""
    check_out(s.out, resume, force)
    d = setup(s.device)
    try:
        return _fit(s, resume, d, given if given is not None else {}, init)
    finally:
        teardown()


def check_out(out: str | Path, resume: bool, force: bool) -> None:
    """Before anything slow: --out must be a file name in a writable folder, and not silently
    overwrite an earlier run."""
    out = Path(out)
    if out.is_dir():
        raise BadInput(f"--out {out} is a directory: give the checkpoint's file name (e.g. {out / 'ckpt.pt'})")
    parent = out.parent if str(out.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise BadInput(f"--out {out}: {parent} is not a directory")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise BadInput(f"--out {out}: cannot write in {probe}")
    if not resume and not force:
        earlier = [p for p in (out, state_path(out), log_path(out)) if p.exists()]
        if earlier:
            raise BadInput(f"{earlier[0]} exists (an earlier run): --resume continues it, --force starts over "
                           "and replaces its checkpoint, state and log")


def resumed_settings(stored: FitSettings, s: FitSettings, given: dict, done: int) -> tuple[FitSettings, list[str]]:
    """The stored run's settings with this invocation's data/out/device/progress; refuses flags
    that contradict the stored run, except a larger --epochs (returned notes say what changed)."""
    def norm(k, v):
        if k == "group":
            g = parse_group(v)
            return g.name if g else None
        if k == "augment":
            return parse_augment(v)
        return float(v) if k in ("width", "lr", "weight_decay") else v

    conflicts = [f"--{k.replace('_', '-')} {given[k]} (the run has {getattr(stored, k)})" for k in RESUME_FIXED
                 if k in given and norm(k, given[k]) != norm(k, getattr(stored, k))]
    if conflicts:
        raise BadInput("--resume continues the stored run with its own settings; these differ: "
                       + ", ".join(conflicts) + ". Drop them, or start a new run with --force")
    epochs, notes = stored.epochs, []
    if "epochs" in given and given["epochs"] != stored.epochs:
        if given["epochs"] < max(done, 1):
            raise BadInput(f"--epochs {given['epochs']}: the run being resumed has already done {done} epochs")
        epochs = given["epochs"]
        notes.append(f"extending the run from {stored.epochs} to {epochs} epochs (the cosine schedule is "
                     f"recomputed for {epochs} epochs from here on)")
    return replace(stored, data=s.data, out=s.out, device=s.device, progress=s.progress, epochs=epochs), notes


def _fit(s: FitSettings, resume: bool, d: Dist, given: dict, init=None) -> dict | None:
    out, spath = Path(s.out), state_path(s.out)
    saved = {"state": None, "best": None}  # what is on disk, for an interrupted run's last line
    try:
        return _train(s, resume, d, given, saved, init)
    except KeyboardInterrupt as e:
        e.kept = _kept(out, spath, saved, s.epochs)
        raise


def _train(s: FitSettings, resume: bool, d: Dist, given: dict, saved: dict, init=None) -> dict | None:
    out, spath, lpath = Path(s.out), state_path(s.out), log_path(s.out)
    s = replace(s, data=str(Path(s.data).resolve()))  # conversion finds the data again from anywhere
    state = None
    if resume:
        if not spath.is_file():
            raise TrainingError(f"nothing to resume: {spath} does not exist")
        state = safe_load(spath, "e2micro training state")
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise TrainingError(f"{spath}: not an e2micro training state")
        try:
            # States saved before min_fields existed were all trained with 1 field at least.
            stored = FitSettings(**{"min_fields": 1, **state["settings"]})
        except (TypeError, KeyError) as e:
            raise TrainingError(f"{spath}: training state without usable settings ({e})") from None
        s, notes = resumed_settings(stored, s, given, int(state.get("epoch", 0)))
        saved.update(state=int(state.get("epoch", 0)), best=(state.get("best") or {}).get("epoch"), epochs=s.epochs)
        if d.main:
            for note in notes:
                print(note, flush=True)
    else:
        parse_group(s.group)  # a bad group fails here, not after reading the data
    train_split, valid_split = PCamSplit(s.data, "train"), PCamSplit(s.data, "valid")
    for split in (train_split, valid_split):
        split.check_labels(s.num_classes, f"--num-classes {s.num_classes}"
                           + (" (PCam is binary; give --num-classes for more classes)" if s.num_classes == 2 else ""))
    config = (ModelConfig.from_dict(state["config"]) if state else
              ModelConfig(group=s.group, width=s.width, num_classes=s.num_classes, input_size=s.input_size,
                          activation=s.activation, min_fields=s.min_fields))
    torch.manual_seed(s.seed)
    model = model_from_config(config)
    if state:
        load_weights(model, state["model"])
    elif init is not None:
        init(model)
    model.to(d.device)
    net = model
    if d.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[d.local_rank] if d.device.type == "cuda" else None)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    steps = plan(train_split, s.batch_size, shuffle=True, seed=s.seed, epoch=0, rank=d.rank, world=d.world,
                 drop_last=True).steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine(steps * s.epochs, warmup=min(steps, 100)))
    start, best, records = 0, {"val_loss": float("inf")}, []
    if state:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, best = int(state["epoch"]), dict(state["best"])
        records = list(state.get("log", []))
        if d.main:
            if "log" in state:
                _rewrite_log(lpath, records)
            else:  # a state written before the log was kept in it
                _truncate_log(lpath, start)
            print(f"resuming after epoch {start}/{s.epochs} from {spath}", flush=True)
    elif d.main:
        lpath.unlink(missing_ok=True)

    for epoch in range(start, s.epochs):
        record = _epoch(net, model, opt, sched, train_split, valid_split, s, d, epoch, steps)
        improved = better(record, best, s.select)
        record["best"] = improved
        if d.main:
            if improved:
                best = {k: v for k, v in record.items() if k != "best"}
                save_checkpoint(out, model, config, metrics=best, settings=asdict(s))
                saved["best"] = epoch + 1
            records.append(record)
            # The log is written from the state (which holds every line), so a kill between the two
            # is repaired on --resume: they always agree afterwards.
            atomic_save({"format": STATE_FORMAT, "version": 1, "settings": asdict(s), "config": config.to_dict(),
                         "epoch": epoch + 1, "model": model_state(model), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "best": best, "log": records}, spath)
            saved["state"] = epoch + 1
            _rewrite_log(lpath, records)
            print(f"epoch {epoch + 1}/{s.epochs}: train loss {record['train_loss']:.4f} acc "
                  f"{record['train_acc']:.3f} | val loss {record['val_loss']:.4f} acc {record['val_acc']:.3f}"
                  f"{' *' if improved else ''} | {record['seconds']:.1f}s", flush=True)
        d.barrier()
    return best if d.main else None


def _kept(out: Path, spath: Path, saved: dict, epochs: int) -> str:
    """What an interrupted run leaves, for the CLI's last line."""
    epochs = saved.get("epochs", epochs)
    if saved["state"] is None:
        return f"no epoch finished, nothing saved ({out} not written)"
    best = f"{out} (best epoch {saved['best']})" if saved["best"] else f"{out}"
    return (f"kept {best} and the training state {spath} after epoch {saved['state']}/{epochs}; "
            "continue with the same command and --resume")


def _epoch(net, model, opt, sched, train_split, valid_split, s: FitSettings, d: Dist, epoch: int, steps: int) -> dict:
    t0 = time.perf_counter()
    net.train()
    loss_sum = correct = n = 0.0
    it = prefetch(batches(train_split, s.batch_size, s.input_size, shuffle=True, augment=parse_augment(s.augment),
                          seed=s.seed, epoch=epoch, rank=d.rank, world=d.world, drop_last=True))
    bar = _bar(it, steps, f"epoch {epoch + 1}/{s.epochs}", s.progress and d.main)
    for x, y in bar:
        x, y = x.to(d.device, non_blocking=True), y.to(d.device, non_blocking=True)
        loss = F.cross_entropy(logits := net(x), y)
        if not torch.isfinite(loss):
            raise TrainingError(f"training diverged in epoch {epoch + 1} (loss {float(loss)}); try a lower --lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_sum += loss.item() * len(y)
        correct += float((logits.argmax(1) == y).sum())
        n += len(y)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{loss_sum / n:.4f}", acc=f"{correct / n:.3f}")
    loss_sum, correct, n = d.sum([loss_sum, correct, n])
    val_loss, val_acc = _evaluate_loss(model, valid_split, s, d)
    seconds = time.perf_counter() - t0
    return {"epoch": epoch + 1, "train_loss": loss_sum / n, "train_acc": correct / n, "val_loss": val_loss,
            "val_acc": val_acc, "train_images": int(n), "lr": opt.param_groups[0]["lr"], "seconds": round(seconds, 3),
            "images_per_second": round(n / seconds, 1)}


def _rewrite_log(path: Path, records: list[dict]) -> None:
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in records))


def _truncate_log(path: Path, epochs: int) -> None:
    if not path.is_file():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["epoch"] <= epochs]
    write_atomic(path, "".join(ln + "\n" for ln in lines))


def _bar(it, total, desc, show):
    if not show:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc=desc, leave=False, dynamic_ncols=True)
