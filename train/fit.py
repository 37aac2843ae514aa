"""The training loop: AdamW + cosine schedule, best-by-validation-loss checkpoint, resumable, DDP."""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoint import atomic_save, load_weights, model_state, save_checkpoint
from .config import ModelConfig
from .data.loader import batches, plan, prefetch
from .data.pcam import PCamSplit
from .distributed import Dist, setup, teardown
from .model import model_from_config

STATE_FORMAT = "e2micro-train-state"


class TrainingError(RuntimeError):
    """Training cannot go on (diverged, nothing to resume, …)."""


@dataclass
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
    device: str = "auto"
    progress: bool = True


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


def fit(s: FitSettings, resume: bool = False) -> dict | None:
    """Train; returns the best epoch's metrics (None on ranks > 0, which write nothing)."""
    d = setup(s.device)
    try:
        return _fit(s, resume, d)
    finally:
        teardown()


def _fit(s: FitSettings, resume: bool, d: Dist) -> dict | None:
    out, spath, lpath = Path(s.out), state_path(s.out), log_path(s.out)
    state = None
    if resume:
        if not spath.is_file():
            raise TrainingError(f"nothing to resume: {spath} does not exist")
        state = torch.load(spath, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise TrainingError(f"{spath}: not an e2micro training state")
        stored = FitSettings(**state["settings"])
        s = FitSettings(**{**asdict(stored), "data": s.data, "out": s.out, "device": s.device, "progress": s.progress})
    train_split, valid_split = PCamSplit(s.data, "train"), PCamSplit(s.data, "valid")
    num_classes = max(train_split.num_classes, valid_split.num_classes)
    config = (ModelConfig.from_dict(state["config"]) if state else
              ModelConfig(group=s.group, width=s.width, num_classes=num_classes, input_size=s.input_size,
                          activation=s.activation))
    torch.manual_seed(s.seed)
    model = model_from_config(config)
    if state:
        load_weights(model, state["model"])
    model.to(d.device)
    net = model
    if d.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[d.local_rank] if d.device.type == "cuda" else None)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    steps = plan(train_split, s.batch_size, shuffle=True, seed=s.seed, epoch=0, rank=d.rank, world=d.world,
                 drop_last=True).steps
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine(steps * s.epochs, warmup=min(steps, 100)))
    start, best = 0, {"val_loss": float("inf")}
    if state:
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, best = int(state["epoch"]), dict(state["best"])
        if d.main:
            _truncate_log(lpath, start)
            print(f"resuming after epoch {start}/{s.epochs} from {spath}", flush=True)
    elif d.main:
        lpath.unlink(missing_ok=True)

    for epoch in range(start, s.epochs):
        t0 = time.perf_counter()
        net.train()
        loss_sum = correct = n = 0.0
        it = prefetch(batches(train_split, s.batch_size, s.input_size, shuffle=True, augment=True, seed=s.seed,
                              epoch=epoch, rank=d.rank, world=d.world, drop_last=True))
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
        record = {"epoch": epoch + 1, "train_loss": loss_sum / n, "train_acc": correct / n, "val_loss": val_loss,
                  "val_acc": val_acc, "train_images": int(n), "lr": opt.param_groups[0]["lr"], "seconds": round(seconds, 3),
                  "images_per_second": round(n / seconds, 1)}
        improved = val_loss < best["val_loss"]
        record["best"] = improved
        if d.main:
            if improved:
                best = {k: v for k, v in record.items() if k != "best"}
                save_checkpoint(out, model, config, metrics=best, settings=asdict(s))
            atomic_save({"format": STATE_FORMAT, "version": 1, "settings": asdict(s), "config": config.to_dict(),
                         "epoch": epoch + 1, "model": model_state(model), "optimizer": opt.state_dict(),
                         "scheduler": sched.state_dict(), "best": best}, spath)
            with open(lpath, "a") as f:  # after the state: a kill can lose a line, never duplicate one
                f.write(json.dumps(record) + "\n")
            print(f"epoch {epoch + 1}/{s.epochs}: train loss {record['train_loss']:.4f} acc {record['train_acc']:.3f} | "
                  f"val loss {val_loss:.4f} acc {val_acc:.3f}{' *' if improved else ''} | {seconds:.1f}s", flush=True)
        d.barrier()
    return best if d.main else None


def _truncate_log(path: Path, epochs: int) -> None:
    if not path.is_file():
        return
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln)["epoch"] <= epochs]
    path.write_text("".join(ln + "\n" for ln in lines))


def _bar(it, total, desc, show):
    if not show:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc=desc, leave=False, dynamic_ncols=True)
