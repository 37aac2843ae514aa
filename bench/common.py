"""Helpers for the benchmark scripts: markdown tables printed and written under bench/results/."""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

from e2micro.atomic import write_atomic

RESULTS = Path(__file__).resolve().parent / "results"


def field_floor_tag(group: str | None, width: float, min_fields: int) -> str:
    """`_mf{k}` for a cached run's name where `min_fields` changes the model's architecture, else
    "": names from before the option existed stay those of the same models, and a cached model
    with another architecture is never reused."""
    from train.config import DEFAULT_INPUT_SIZE as S
    from train.groups import parse_group
    from train.plain.table import decode

    g = parse_group(group)
    changed = g is not None and decode(width, g.order, S, min_fields) != decode(width, g.order, S, 1)
    return f"_mf{min_fields}" if changed else ""


def table(headers: list[str], rows: list[list]) -> str:
    fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(fmt(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def write(name: str, title: str, body: str, command: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    text = (f"# {title}\n\nMeasured {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()}, "
            f"{os.cpu_count()} CPUs, one run (figures are ratios within this run; the machine is shared).\n"
            f"Reproduce: `{command}`\n\n{body}\n")
    write_atomic(path, text)
    print(text)
    return path
