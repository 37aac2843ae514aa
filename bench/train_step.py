"""Training throughput, equivariant vs conventional MobileNetV2 at the same width (one run).

    .venv/bin/python bench/train_step.py [--width 0.35] [--batch 64] [--steps 6] [--groups C12 C4 D4]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write  # noqa: E402

from train.model import build_model  # noqa: E402


def images_per_second(group, width, batch, steps, warmup=2):
    torch.manual_seed(0)
    model = build_model(group, width).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.rand(batch, 3, 95, 95) * 255, torch.randint(0, 2, (batch,))
    times = []
    for i in range(warmup + steps):
        t = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t)
    return batch / (sorted(times)[len(times) // 2]), sum(p.numel() for p in model.parameters())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--width", type=float, default=0.35)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--groups", nargs="+", default=["C12", "C8", "C4", "D4"])
    a = ap.parse_args()
    base, base_params = images_per_second(None, a.width, a.batch, a.steps)
    rows = [["conventional", base_params, base, 1.0]]
    for g in a.groups:
        ips, params = images_per_second(g, a.width, a.batch, a.steps)
        rows.append([g, params, ips, base / ips])
    body = table(["model", "trainable params", "train images/s (median step)", "slowdown vs conventional"], rows)
    write("train_step", f"Training throughput at width {a.width}, batch {a.batch}, CPU", body,
          "python bench/train_step.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
