"""The hard demo variant: stain-realistic H&E patches whose classes differ only subtly.

Rendered in optical density (Beer–Lambert): haematoxylin and eosin concentration maps times
per-patch stain vectors (Ruifrok & Johnston's H&E vectors, perturbed), then RGB = white ·
exp(−OD). Per patch: stain vectors, stain strengths, white balance, focus blur and noise vary;
stroma has oriented fibres; context holds lymphocytes, red cells and epithelial nuclei of either
kind; about one patch in eight carries an artefact (a fold, an ink blot, or a mostly empty field)
that gives activations heavy tails across images.

As in the easy set and PCam, the label depends only on the centre 32×32 px. Each centre draws an
atypia level a (tumour U(0.4, 1), normal U(0, 0.5)); nucleus count, size, pleomorphism and
darkness grow with a, with per-nucleus scatter and small dark lymphocytes in either class, so
the classes overlap and a small model lands well below 100 %. Every feature is rotation
invariant in distribution. Fully determined by the generator passed in.
"""
from __future__ import annotations

import numpy as np

from .demo import CENTRE, outside_centre
from .pcam import PATCH

# Ruifrok & Johnston (2001) optical-density vectors, RGB
H_VEC = np.array([0.650, 0.704, 0.286])
E_VEC = np.array([0.072, 0.990, 0.105])
ATYPIA = {1: (0.4, 1.0), 0: (0.0, 0.5)}  # overlap 0.4..0.5: some centres are genuinely ambiguous

_GRID = np.mgrid[0:PATCH, 0:PATCH].astype(np.float64)


def _noise(rng, sigma: float, size: int = PATCH) -> np.ndarray:
    """Smooth zero-mean unit-std noise with correlation length ≈ sigma px."""
    from scipy.ndimage import gaussian_filter

    n = gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
    return n / max(float(n.std()), 1e-9)


def _fibres(rng) -> np.ndarray:
    """Oriented stroma fibres: noise stretched along a random direction (any angle)."""
    from scipy.ndimage import gaussian_filter, rotate

    big = int(PATCH * 1.5)
    n = gaussian_filter(rng.standard_normal((big, big)), (rng.uniform(0.8, 1.5), rng.uniform(4.0, 9.0)), mode="wrap")
    n = rotate(n, rng.uniform(0, 180), reshape=False, order=1, mode="wrap")
    o = (big - PATCH) // 2
    n = n[o:o + PATCH, o:o + PATCH]
    return n / max(float(n.std()), 1e-9)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _stain(rng, base: np.ndarray, spread: float) -> np.ndarray:
    return _unit(np.clip(base + rng.normal(0, spread, 3), 0.01, None))


def _blob(rng, cy, cx, radius, elong, edge=1.0):
    """(rows, cols, alpha) of a soft ellipse, alpha in 0..1; None if off the patch."""
    theta = rng.uniform(0, np.pi)
    r = int(np.ceil(radius * elong)) + 2
    y0, y1 = max(0, int(cy) - r), min(PATCH, int(cy) + r + 1)
    x0, x1 = max(0, int(cx) - r), min(PATCH, int(cx) + r + 1)
    if y0 >= y1 or x0 >= x1:
        return None
    dy, dx = _GRID[0, y0:y1, x0:x1] - cy, _GRID[1, y0:y1, x0:x1] - cx
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / (radius * elong)
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / radius
    alpha = np.clip((1.0 - np.sqrt(u**2 + v**2)) * radius / edge, 0, 1)
    return slice(y0, y1), slice(x0, x1), alpha


def _nucleus(conc, rng, cy, cx, radius, elong, density, chromatin):
    """Add one nucleus's haematoxylin to the concentration map, with coarse chromatin texture
    (and a pale centre for vesicular tumour nuclei when chromatin > 0.5)."""
    b = _blob(rng, cy, cx, radius, elong, edge=rng.uniform(0.7, 1.6))
    if b is None:
        return
    rs, cs, alpha = b
    tex = 1.0 + 0.35 * chromatin * rng.standard_normal(alpha.shape)
    if chromatin > 0.5:
        rim = np.clip(alpha * 2, 0, 1) - 0.45 * chromatin * np.clip(alpha * 2 - 1, 0, 1)
        alpha = rim
    conc[0][rs, cs] += alpha * density * np.clip(tex, 0.2, None)


def _epithelium(conc, rng, a: float, where):
    """Epithelial nuclei at atypia a ∈ [0, 1], placed by where(radius) → (cy, cx)."""
    count = int(np.clip(rng.poisson(1.5 + 11.0 * a), 1, 16))
    for _ in range(count):
        radius = max(1.4, rng.normal(2.2 + 2.4 * a, 0.3 + 0.5 * a))  # pleomorphism grows with a
        elong = 1.0 + abs(rng.normal(0, 0.12 + 0.3 * a))
        density = max(0.4, rng.normal(0.9 + 0.6 * a, 0.2))
        cy, cx = where(radius)
        _nucleus(conc, rng, cy, cx, radius, elong, density, chromatin=float(np.clip(a + rng.normal(0, 0.2), 0, 1)))


def _artefact(conc, rng, kind: int):
    if kind == 0:  # tissue fold: a dark band of doubled tissue across the patch
        theta, off = rng.uniform(0, np.pi), rng.uniform(-30, 30)
        d = (_GRID[1] - 47.5) * np.cos(theta) + (_GRID[0] - 47.5) * np.sin(theta) - off
        band = np.clip(1 - np.abs(d) / rng.uniform(5, 14), 0, 1)
        conc[0] += band * rng.uniform(0.6, 1.2)
        conc[1] += band * rng.uniform(0.8, 1.6)
    elif kind == 1:  # ink / dirt blot: very dark, nearly neutral
        b = _blob(rng, *rng.uniform(0, PATCH, 2), rng.uniform(6, 18), rng.uniform(1, 2), edge=3.0)
        if b is not None:
            rs, cs, alpha = b
            conc[2][rs, cs] += alpha * rng.uniform(1.5, 3.0)
    else:  # mostly empty field (fat, lumen, slide background)
        empty = np.clip(_noise(rng, 12) + rng.uniform(0.3, 1.2), 0, 1)
        conc[0] *= 1 - 0.9 * empty
        conc[1] *= 1 - 0.95 * empty


def render_patch(rng: np.random.Generator, label: int) -> np.ndarray:
    """One 96×96×3 uint8 hard-demo patch of the given label."""
    from scipy.ndimage import gaussian_filter

    h_vec, e_vec = _stain(rng, H_VEC, 0.08), _stain(rng, E_VEC, 0.08)
    dark_vec = _unit(np.array([1.0, 1.0, 0.9]) + rng.normal(0, 0.05, 3))  # ink, dirt: nearly neutral
    h_gain, e_gain = rng.lognormal(0, 0.25), rng.lognormal(0, 0.3)
    conc = np.zeros((3, PATCH, PATCH))  # haematoxylin, eosin, neutral dark
    stroma = rng.uniform(0.2, 0.65)
    conc[1] = stroma * np.clip(1 + 0.25 * _noise(rng, 6) + 0.25 * _fibres(rng), 0.05, None)
    conc[0] = rng.uniform(0.03, 0.15) * np.clip(1 + 0.5 * _noise(rng, 3), 0, None)
    gaps = np.clip((_noise(rng, 10) - rng.uniform(0.8, 2.2)) * 1.5, 0, 1)  # fat / lumen
    conc[:2] *= 1 - gaps
    # context: label-independent epithelium of any atypia, lymphocytes, red cells
    for _ in range(rng.integers(0, 3)):
        ca, cy0, cx0 = rng.uniform(0, 1), *outside_centre(rng, 10)
        _epithelium(conc, rng, ca, lambda r: (cy0 + rng.normal(0, 6), cx0 + rng.normal(0, 6)))
    for _ in range(rng.integers(2, 20)):  # stromal fibroblasts: thin, elongated
        _nucleus(conc, rng, *outside_centre(rng, 3), rng.uniform(1.2, 2.0), rng.uniform(1.8, 3.0),
                 rng.uniform(0.6, 1.1), 0.0)
    lymph = rng.integers(0, 10)
    for i in range(lymph):  # small, round, very dark: anywhere, centre included
        cy, cx = rng.uniform(0, PATCH, 2)
        _nucleus(conc, rng, cy, cx, rng.uniform(1.6, 2.4), rng.uniform(1.0, 1.15), rng.uniform(1.3, 1.9), 0.1)
    for _ in range(rng.poisson(2.0)):  # red blood cells, sometimes in small clusters
        cy, cx = rng.uniform(0, PATCH, 2)
        for _ in range(rng.integers(1, 6)):
            b = _blob(rng, cy + rng.normal(0, 4), cx + rng.normal(0, 4), rng.uniform(2.6, 3.6), 1.0)
            if b is not None:
                rs, cs, alpha = b
                conc[1][rs, cs] += alpha * rng.uniform(0.8, 1.4)
    lo, hi = CENTRE
    a = rng.uniform(*ATYPIA[label])
    _epithelium(conc, rng, a, lambda r: tuple(rng.uniform(lo + r * 0.5, hi - r * 0.5, size=2)))
    if rng.random() < 0.125:
        _artefact(conc, rng, int(rng.integers(0, 3)))
    od = (h_gain * conc[0][..., None] * h_vec + e_gain * conc[1][..., None] * e_vec
          + conc[2][..., None] * dark_vec)
    blur = rng.uniform(0, 1.2) if rng.random() < 0.6 else 0.0
    if blur > 0.2:
        od = gaussian_filter(od, (blur, blur, 0))
    white = rng.uniform(225, 255) * (1 + rng.normal(0, 0.025, 3))
    img = white * np.exp(-od)
    img = img * (1 + 0.04 * _noise(rng, 20)[..., None])  # uneven illumination
    img = img + rng.uniform(1.0, 4.0) * rng.standard_t(3, size=img.shape)  # heavy-tailed sensor noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
