"""Images for calibration and parity checks: PCam-format files, or the built-in demo patches."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from train.data.pcam import open_images, to_model_input


@dataclass
class Images:
    x: np.ndarray  # NCHW float32 raw pixels
    labels: np.ndarray | None
    source: str


def from_path(path: str | Path, split: str, limit: int | None, size: int) -> Images:
    s = open_images(path, split)
    n = len(s) if not limit else min(limit, len(s))
    x, y = s.read(0, n)
    s.close()
    where = str(path) if not Path(path).is_dir() else f"{path} ({split} split)"
    return Images(to_model_input(x, size), y, f"{where}, first {n} images")


def demo(n: int, size: int) -> Images:
    from train.data.demo import make_split

    x, y = make_split(n, seed=0, split="test")
    return Images(to_model_input(x, size), y.astype(np.int64), f"built-in demo patches (seed 0), {n} images")


def recorded_data_dir(checkpoint: dict) -> tuple[Path | None, str | None]:
    """The data directory the checkpoint was trained on, if it exists here; else why not (None
    when the checkpoint records none). A relative path is not guessed at: it was relative to
    wherever training ran (`train fit` records absolute paths)."""
    d = (checkpoint.get("settings") or {}).get("data")
    if not d:
        return None, None
    if not Path(d).is_absolute():
        return None, f"the checkpoint records its data as the relative path {d!r}"
    if not Path(d).is_dir():
        return None, f"the checkpoint's data directory {d} does not exist here"
    return Path(d), None
