"""Training augmentation: the 8 symmetries of the square patch, and stain-like colour jitter.

A D4 model's output is unchanged by all 8 dihedral codes and a C_N model's (N a multiple of 4) by
the quarter turns, so for them the dihedral augmentation adds few or no new views (C_N gains only
the flips). Colour jitter adds views for every model and commutes with rotations, so it cannot cost
equivariance.
"""
from __future__ import annotations

import numpy as np

from e2micro.errors import BadInput

KINDS = ("dihedral", "colour")  # the order they are applied (and their random numbers drawn) in
COLOUR_GAIN = 0.1  # per image and RGB channel: pixels × U(1 ± gain) + U(± offset), clipped to 0..255
COLOUR_OFFSET = 12.0


def parse(spec: str) -> tuple[str, ...]:
    """'none', or kinds joined by '+' ('dihedral+colour') → the kinds, in KINDS order."""
    names = [] if spec == "none" else [n.strip() for n in str(spec).split("+")]
    unknown = [n for n in names if n not in KINDS]
    if unknown:  # '' and 'dihedral+' leave an empty name, which is unknown too
        raise BadInput(f"--augment {spec!r}: use none, or any of {', '.join(KINDS)} joined by '+'")
    return tuple(k for k in KINDS if k in names)


def dihedral(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Apply symmetry codes[i] ∈ 0..7 (k = code % 4 quarter turns, flipped if code ≥ 4) to NCHW x[i]."""
    out = np.empty_like(x)
    for i, code in enumerate(codes):
        img = x[i]
        if code >= 4:
            img = img[:, :, ::-1]
        out[i] = np.rot90(img, int(code) % 4, axes=(1, 2))
    return out


def colour(x: np.ndarray, gain: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """NCHW raw pixels × gain[N, C] + offset[N, C], clipped to 0..255 (stain and scanner variation)."""
    return np.clip(x * gain[:, :, None, None] + offset[:, :, None, None], 0, 255).astype(x.dtype)


def augment(x: np.ndarray, kinds: tuple[str, ...], rng: np.random.Generator) -> np.ndarray:
    if "dihedral" in kinds:
        x = dihedral(x, rng.integers(0, 8, size=len(x)))
    if "colour" in kinds:
        shape = (len(x), x.shape[1])
        x = colour(x, rng.uniform(1 - COLOUR_GAIN, 1 + COLOUR_GAIN, shape).astype(np.float32),
                   rng.uniform(-COLOUR_OFFSET, COLOUR_OFFSET, shape).astype(np.float32))
    return x
