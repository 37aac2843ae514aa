"""PatchCamelyon reader: validates the HDF5 files and streams them in chunk-sized blocks.

Files: camelyonpatch_level_2_split_{split}_{x,y}.h5 with `x` (N, 96, 96, 3) uint8 RGB and `y`
(N, 1, 1, 1) integer labels (uint8 in the release, uint32 in some re-packagings: we cast).
The 7 GB training set is never read whole: callers ask for row ranges.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from e2micro.errors import BadInput

SPLITS = ("train", "valid", "test")
PATCH = 96


class PCamFormatError(BadInput):
    """A PCam file is missing or does not have PCam's layout."""


def split_paths(root: str | Path, split: str) -> tuple[Path, Path]:
    if split not in SPLITS:
        raise PCamFormatError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    root = Path(root)
    stem = f"camelyonpatch_level_2_split_{split}"
    return root / f"{stem}_x.h5", root / f"{stem}_y.h5"


def _open(path: Path, key: str):
    import h5py

    if path.is_dir():
        raise PCamFormatError(f"{path} is a directory, not an HDF5 file")
    if not path.is_file():
        raise PCamFormatError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise PCamFormatError(f"{path}: not a readable HDF5 file ({e.__class__.__name__})") from None
    if key not in f:
        found = sorted(f.keys())
        f.close()
        raise PCamFormatError(f"{path}: no dataset {key!r} (found {found})")
    if not isinstance(f[key], h5py.Dataset):
        kind = type(f[key]).__name__.lower()
        f.close()
        raise PCamFormatError(f"{path}: {key!r} is an HDF5 {kind}, not a dataset")
    return f


class PCamSplit:
    """One split of PCam (or of a file set in PCam's format). Opens lazily, reads row ranges."""

    def __init__(self, root: str | Path, split: str, *, paths: tuple[Path, Path] | None = None,
                 require_labels: bool = True):
        self.root, self.split = Path(root), split
        self.x_path, self.y_path = paths or split_paths(root, split)
        xf = _open(self.x_path, "x")
        try:
            x = xf["x"]
            if x.ndim != 4 or tuple(x.shape[1:]) != (PATCH, PATCH, 3):
                raise PCamFormatError(f"{self.x_path}: x has shape {tuple(x.shape)}, expected (N, 96, 96, 3)")
            if x.dtype != np.uint8:
                raise PCamFormatError(f"{self.x_path}: x has dtype {x.dtype}, expected uint8 RGB")
            self.n = int(x.shape[0])
            self.chunk_rows = int(x.chunks[0]) if x.chunks else 32
        finally:
            xf.close()
        self._x = None
        if self.n == 0:
            raise PCamFormatError(f"{self.x_path}: the split is empty")
        self.labels = None
        if require_labels or self.y_path.is_file():
            self.labels = self._read_labels()

    def _read_labels(self) -> np.ndarray:
        yf = _open(self.y_path, "y")
        try:
            y = yf["y"]
            if y.shape[0] != self.n or int(np.prod(y.shape[1:], dtype=np.int64)) != 1:
                raise PCamFormatError(f"{self.y_path}: y has shape {tuple(y.shape)}, expected ({self.n}, 1, 1, 1)")
            if y.dtype.kind not in "iub":
                raise PCamFormatError(f"{self.y_path}: y has dtype {y.dtype}, expected integer labels")
            labels = np.asarray(y[...]).reshape(-1).astype(np.int64)  # N bytes: small even for train
        finally:
            yf.close()
        if labels.min() < 0:
            raise PCamFormatError(f"{self.y_path}: negative labels")
        return labels

    def __len__(self) -> int:
        return self.n

    @property
    def num_classes(self) -> int:
        """Classes the labels imply (at least 2)."""
        if self.labels is None:
            raise PCamFormatError(f"{self.y_path}: no labels file")
        return max(2, int(self.labels.max()) + 1)

    def check_labels(self, num_classes: int, what: str) -> None:
        """Every label must be a class of `what` (0..num_classes-1)."""
        if self.labels is None:
            raise PCamFormatError(f"{self.y_path}: no labels file")
        top = int(self.labels.max())
        if top >= num_classes:
            bad = int((self.labels >= num_classes).sum())
            raise PCamFormatError(f"{self.y_path}: label {top} ({bad} of {self.n} rows) is not a class of {what} "
                                  f"(0..{num_classes - 1})")

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows [start, stop): uint8 (n, 96, 96, 3) and int64 labels (n,) (None without labels)."""
        if self._x is None:
            import h5py

            self._x = h5py.File(self.x_path, "r")["x"]
        return np.asarray(self._x[start:stop]), None if self.labels is None else self.labels[start:stop]

    def close(self) -> None:
        if self._x is not None:
            self._x.file.close()
            self._x = None

    def __getstate__(self):  # h5py handles do not pickle; workers reopen
        d = dict(self.__dict__)
        d["_x"] = None
        return d


def open_images(path: str | Path, split: str = "test") -> PCamSplit:
    """A PCam-format directory (its `split`) or a single `…_x.h5` file; labels come from the
    matching `…_y.h5` when it exists, and are optional."""
    path = Path(path)
    if path.is_dir():
        return PCamSplit(path, split, require_labels=False)
    if not path.name.endswith("_x.h5"):
        raise PCamFormatError(f"{path}: expected a PCam-format directory or an images file named *_x.h5")
    return PCamSplit(path.parent, split, paths=(path, path.with_name(path.name[:-5] + "_y.h5")),
                     require_labels=False)


def to_model_input(x_uint8: np.ndarray, size: int) -> np.ndarray:
    """NHWC uint8 patches → NCHW float32 raw pixels, centre-cropped to size×size (95 for PCam)."""
    if x_uint8.shape[1] < size:
        raise PCamFormatError(f"patches are {x_uint8.shape[1]} px, the model needs {size}")
    o = (x_uint8.shape[1] - size) // 2  # centred crop (96 → 95 keeps rows/cols 0..94)
    x = x_uint8[:, o:o + size, o:o + size, :]
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)
