"""A small synthetic PCam-like set, written in exactly PCam's file layout and format.

Patches look loosely like H&E tissue: pink stroma with low-frequency texture, pale gaps and
purple nuclei. As in PCam, the label depends only on the centre 32×32 px: tumour centres hold
crowded, large, dark, irregular nuclei; normal centres a few small round ones. The border is
context drawn independently of the label, so a model must look at the centre. Every feature is
rotation invariant in distribution, so the label is too. Fully determined by the seed.

`difficulty="hard"` renders `demo_hard.py`'s variant instead (stain and texture variation, subtle
class difference, heavy tails) in the same layout; the easy set is unchanged by it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from e2micro.atomic import atomic_path
from e2micro.errors import BadInput

from .pcam import PATCH, split_paths

CENTRE = (32, 64)  # rows/cols of the label-bearing centre square
DEFAULT_SIZES = {"train": 2048, "valid": 512, "test": 512}
SPLIT_SEEDS = {"train": 0, "valid": 1, "test": 2}
DIFFICULTIES = ("easy", "hard")


def _smooth_noise(rng, size: int, cells: int) -> np.ndarray:
    from scipy.ndimage import zoom

    coarse = rng.standard_normal((cells, cells))
    return zoom(coarse, size / cells, order=3)[:size, :size]


def _draw_nucleus(img, rng, cy, cx, radius, elong, darkness, stain):
    """Soft-edged ellipse of haematoxylin colour blended into img (H, W, 3 float)."""
    theta = rng.uniform(0, np.pi)
    r = int(np.ceil(radius * elong)) + 2
    y0, y1 = max(0, int(cy) - r), min(PATCH, int(cy) + r + 1)
    x0, x1 = max(0, int(cx) - r), min(PATCH, int(cx) + r + 1)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dy, dx = yy - cy, xx - cx
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / (radius * elong)
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / radius
    alpha = np.clip((1.0 - np.sqrt(u**2 + v**2)) * radius, 0, 1)[..., None] * darkness
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - alpha) + stain * alpha


def outside_centre(rng, margin: float) -> tuple[float, float]:
    lo, hi = CENTRE
    while True:
        cy, cx = rng.uniform(0, PATCH, size=2)
        if not (lo - margin < cy < hi + margin and lo - margin < cx < hi + margin):
            return cy, cx


def render_patch(rng: np.random.Generator, label: int) -> np.ndarray:
    """One 96×96×3 uint8 patch of the given label."""
    jitter = rng.uniform(0.88, 1.12, size=3)
    stroma = np.array([236.0, 168.0, 204.0]) * jitter
    haema = np.array([78.0, 46.0, 132.0]) * rng.uniform(0.85, 1.15, size=3)
    tex = _smooth_noise(rng, PATCH, 8)[..., None]
    img = np.clip(stroma + 14.0 * tex * np.array([1.0, 1.6, 1.0]), 0, 255)
    gaps = _smooth_noise(rng, PATCH, 5)
    pale = np.clip((gaps - 1.1) * 2.0, 0, 1)[..., None]  # fat / lumen
    img = img * (1 - pale) + np.array([246.0, 240.0, 244.0]) * pale
    # Context: a label-independent mix of nucleus kinds, kept clear of the centre square.
    for _ in range(rng.integers(8, 36)):
        big = rng.random() < rng.uniform(0.1, 0.6)
        radius = rng.uniform(3.0, 5.0) if big else rng.uniform(1.6, 3.0)
        cy, cx = outside_centre(rng, radius + 1)
        _draw_nucleus(img, rng, cy, cx, radius, rng.uniform(1.0, 1.6 if big else 1.2),
                      rng.uniform(0.6, 0.95), haema)
    lo, hi = CENTRE
    if label == 1:
        count, radii, elong, dark = rng.integers(3, 11), (2.6, 5.0), (1.0, 1.7), (0.7, 1.0)
    else:  # overlaps the tumour ranges a little: some patches are genuinely ambiguous
        count, radii, elong, dark = rng.integers(1, 8), (1.6, 3.6), (1.0, 1.3), (0.5, 0.9)
    for _ in range(count):
        radius = rng.uniform(*radii)
        cy, cx = rng.uniform(lo + radius, hi - radius, size=2)
        _draw_nucleus(img, rng, cy, cx, radius, rng.uniform(*elong), rng.uniform(*dark), haema)
    img = img + rng.normal(0, 3.0, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def make_split(n: int, seed: int, split: str, difficulty: str = "easy") -> tuple[np.ndarray, np.ndarray]:
    if difficulty not in DIFFICULTIES:
        raise BadInput(f"unknown difficulty {difficulty!r}: use one of {', '.join(DIFFICULTIES)}")
    if difficulty == "easy":
        rng, render = np.random.default_rng([seed, SPLIT_SEEDS[split]]), render_patch
    else:
        from .demo_hard import render_patch as render

        rng = np.random.default_rng([seed, SPLIT_SEEDS[split], 1])  # its own stream: no patch shared
    labels = rng.permutation(np.arange(n) % 2).astype(np.uint8)  # balanced, like PCam
    x = np.stack([render(rng, int(lab)) for lab in labels])
    return x, labels


def write_split(root: Path, split: str, x: np.ndarray, y: np.ndarray) -> None:
    """Write both files of a split, each atomically."""
    import h5py

    xp, yp = split_paths(root, split)
    with atomic_path(xp) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("x", data=x, chunks=(min(32, len(x)), PATCH, PATCH, 3))
    with atomic_path(yp) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("y", data=y.reshape(-1, 1, 1, 1), chunks=(min(32, len(y)), 1, 1, 1))


def write_demo(out: str | Path, seed: int = 0, sizes: dict | None = None, difficulty: str = "easy") -> dict:
    """Write the demo train/valid/test splits under `out`; returns {split: rows}."""
    if difficulty not in DIFFICULTIES:
        raise BadInput(f"unknown difficulty {difficulty!r}: use one of {', '.join(DIFFICULTIES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    for split, n in sizes.items():
        if n < 2:
            raise BadInput(f"split {split}: need at least 2 patches, got {n}")
        x, y = make_split(n, seed, split, difficulty)
        write_split(out, split, x, y)
    return sizes
