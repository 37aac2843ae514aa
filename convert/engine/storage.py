"""Which structure each layer's int8 weights have, checked exactly, and the arrays stored for it.

- 1×1 conv between C_N regular fields: block-circulant, row a of each N×N block = row 0 shifted
  right by a (np.roll(row0, a): the direction measured on the converter's output);
- depthwise / stem: channel j·N/4 + r of each field = base r rotated j times (np.rot90 on the
  kernel's (ky, kx) plane), i.e. the rot90 orbit;
- classifier: tied across each field's N channels;
- requantisation (bias, multiplier, shift): tied per field when equal, else per channel.
Any layer where a check fails is stored dense and the reason is recorded."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Stored:
    form: str  # circulant, rot90 orbit, tied, dense
    w: np.ndarray  # int8, in the layout the runtime reads
    n: int = 0  # field size used (0: dense)
    qtie: int = 1  # requantisation parameters shared by qtie channels
    bias: np.ndarray | None = None
    mult: np.ndarray | None = None
    shift: np.ndarray | None = None
    perm: np.ndarray | None = None  # orbit: (4, k*k) source taps
    reason: str = ""  # why dense (when a structure was tried)
    dense_bytes: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def weight_bytes(self) -> int:
        return int(self.w.size)

    @property
    def param_bytes(self) -> int:
        """Requantisation parameters (the index tables are shared: counted once per model)."""
        return sum(int(a.size * a.itemsize) for a in (self.bias, self.mult, self.shift) if a is not None)

    @property
    def bytes(self) -> int:
        return self.weight_bytes + self.param_bytes


def rot90_perm(k: int) -> np.ndarray:
    """perm[j][tap]: the base tap that rotation j (np.rot90(·, j)) reads at `tap`."""
    idx = np.arange(k * k).reshape(k, k)
    return np.stack([np.rot90(idx, j).reshape(-1) for j in range(4)]).astype(np.uint8)


def tie_params(bias, mult, shift, n: int, orbit: bool = False) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Requantisation parameters per field if equal over every field's n channels (qtie = n); for
    an orbit layer, per (field, base filter) if they repeat with the orbit's period q = n/4
    (qtie = -q: channel c reads entry (c / n)·q + c mod q); else per channel (qtie = 1)."""
    c = len(bias)
    if n > 1 and c % n == 0:
        arrays = [np.asarray(a).reshape(-1, n) for a in (bias, mult, shift)]
        if all((a == a[:, :1]).all() for a in arrays):
            return n, *(a[:, 0].copy() for a in arrays)
        if orbit:
            q = n // 4
            per = [a.reshape(-1, 4, q) for a in arrays]
            if all((a == a[:, :1]).all() for a in per):
                return -q, *(a[:, 0].reshape(-1).copy() for a in per)
    return 1, np.asarray(bias).copy(), np.asarray(mult).copy(), np.asarray(shift).copy()


def _finish(s: Stored, bias, mult, shift, n: int) -> Stored:
    s.qtie, b, m, sh = tie_params(bias, mult, shift, n, orbit=s.form == "rot90 orbit")
    s.bias, s.mult, s.shift = b.astype(np.int32), m.astype(np.int32), sh.astype(np.int8)
    return s


def group_table(group: str) -> np.ndarray:
    """T[a][b] = index of g_a⁻¹·g_b in e2cnn's element order (the regular representation's basis):
    an equivariant 1×1 conv between regular fields has W[F·n+a][G·n+b] = c[F][G][T[a][b]]."""
    from train.groups import parse_group

    g = parse_group(group).gspace().fibergroup
    e = list(g.elements)
    return np.array([[e.index(g.combine(g.inverse(a), b)) for b in e] for a in e], np.uint8)


def pointwise(w2: np.ndarray, bias, mult, shift, in_off: int, n: int, table: np.ndarray | None = None) -> Stored:
    """w2: (Cout, Cin) int8. The input offset is folded into the bias (exact: no padding). With a
    group table (D_N) the blocks follow it; without, they are circulant (C_N, T[a][b] = b − a mod n)."""
    cout, cin = w2.shape
    folded = np.asarray(bias, np.int64) + in_off * w2.astype(np.int64).sum(axis=1)
    if np.abs(folded).max(initial=0) >= 2 ** 31:
        raise ValueError("bias with the folded input offset overflows int32")
    dense = Stored("dense", np.ascontiguousarray(w2), dense_bytes=w2.size)
    if n <= 1:
        return _finish(dense, folded, mult, shift, 0)
    if cout % n or cin % n:
        dense.reason = f"channels {cout}×{cin} are not whole fields of {n}"
        return _finish(dense, folded, mult, shift, n)
    blocks = w2.reshape(cout // n, n, cin // n, n).transpose(0, 2, 1, 3)  # F, G, a, b
    row0 = blocks[:, :, 0, :]
    if table is None:
        expect = np.stack([np.roll(row0, a, axis=-1) for a in range(n)], axis=2)
        what = "block-circulant"
    else:
        expect = row0[:, :, table]  # (F, G, a, b) = row0[F, G, T[a][b]]
        what = "the group table"
    bad = np.argwhere(expect != blocks)
    if len(bad):
        f, g, a, b = bad[0]
        dense.reason = (f"not {what}: output {f * n + a}, input {g * n + b} breaks it ({len(bad)} weights)")
        return _finish(dense, folded, mult, shift, n)
    s = Stored("circulant" if table is None else "group table", np.ascontiguousarray(row0.reshape(-1)), n=n,
               perm=None if table is None else table.reshape(-1), dense_bytes=w2.size)
    return _finish(s, folded, mult, shift, n)


def _orbit(wc: np.ndarray, n: int):
    """wc: (C, k, k, …) filters per channel. Returns (bases (C/n·q, k, k, …), None) or (None, reason)."""
    c = wc.shape[0]
    if n < 4 or n % 4 or c % n:
        return None, (f"field size {n} has no 90° rotations" if n < 4 or n % 4 else f"{c} channels are not whole fields")
    q = n // 4
    f = wc.reshape(c // n, 4, q, *wc.shape[1:])
    base = f[:, 0]
    for j in range(1, 4):
        rot = np.rot90(base, j, axes=(2, 3))
        diff = np.argwhere(rot != f[:, j])
        if len(diff):
            fi, r = diff[0][:2]
            return None, f"channel {fi * n + j * q + r} is not channel {fi * n + r} rotated {90 * j}°"
    return base.reshape(-1, *wc.shape[1:]), None


def depthwise(w: np.ndarray, bias, mult, shift, n: int) -> Stored:
    """w: (k, k, C) int8 (TFLite layout)."""
    k = w.shape[0]
    dense = Stored("dense", np.ascontiguousarray(w.reshape(k * k, -1)), dense_bytes=w.size)
    if n <= 1:
        return _finish(dense, bias, mult, shift, 0)
    base, why = _orbit(np.moveaxis(w, 2, 0), n)
    if base is None:
        dense.reason = why
        return _finish(dense, bias, mult, shift, n)
    q = n // 4
    # layout [field][tap][r]: the runtime's inner loop runs over r, contiguous
    stored = base.reshape(-1, q, k * k).transpose(0, 2, 1)
    s = Stored("rot90 orbit", np.ascontiguousarray(stored.reshape(-1)), n=n, perm=rot90_perm(k), dense_bytes=w.size)
    return _finish(s, bias, mult, shift, n)


def stem(w: np.ndarray, bias, mult, shift, n: int) -> Stored:
    """w: (Cout, k, k, Cin) int8."""
    cout, k, _, cin = w.shape
    dense = Stored("dense", np.ascontiguousarray(w.reshape(-1)), dense_bytes=w.size)
    if n <= 1:
        return _finish(dense, bias, mult, shift, 0)
    base, why = _orbit(w, n)
    if base is None:
        dense.reason = why
        return _finish(dense, bias, mult, shift, n)
    s = Stored("rot90 orbit", np.ascontiguousarray(base.reshape(-1)), n=n, perm=rot90_perm(k), dense_bytes=w.size)
    return _finish(s, bias, mult, shift, n)


def classifier(w: np.ndarray, n: int) -> Stored:
    """w: (K, C) int8, tied per field when every field's n weights are equal."""
    kk, c = w.shape
    dense = Stored("dense", np.ascontiguousarray(w), dense_bytes=w.size)
    if n <= 1:
        return dense
    if c % n:
        dense.reason = f"{c} inputs are not whole fields of {n}"
        return dense
    f = w.reshape(kk, c // n, n)
    bad = np.argwhere(f != f[:, :, :1])
    if len(bad):
        dense.reason = f"class {bad[0][0]}: input {bad[0][1] * n + bad[0][2]} differs from its field's first"
        return dense
    return Stored("tied", np.ascontiguousarray(f[:, :, 0]), n=n, dense_bytes=w.size)
