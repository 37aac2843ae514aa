"""The 8 symmetries of the square patch (rotations by 90° and flips) as training augmentation."""
from __future__ import annotations

import numpy as np


def dihedral(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Apply symmetry codes[i] ∈ 0..7 (k = code % 4 quarter turns, flipped if code ≥ 4) to NCHW x[i]."""
    out = np.empty_like(x)
    for i, code in enumerate(codes):
        img = x[i]
        if code >= 4:
            img = img[:, :, ::-1]
        out[i] = np.rot90(img, int(code) % 4, axes=(1, 2))
    return out
