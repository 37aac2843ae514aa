"""The built-in demo set: PCam's format, deterministic, label carried by the centre only."""
from __future__ import annotations

import hashlib

import h5py
import numpy as np

from train.data.demo import make_split, write_demo
from train.data.pcam import PCamSplit, split_paths


def _digest(root):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def test_format_matches_pcam(demo_dir):
    for split in ("train", "valid", "test"):
        xp, yp = split_paths(demo_dir, split)
        with h5py.File(xp) as f:
            assert f["x"].dtype == np.uint8 and f["x"].shape[1:] == (96, 96, 3) and f["x"].chunks[1:] == (96, 96, 3)
        with h5py.File(yp) as f:
            assert f["y"].shape[1:] == (1, 1, 1)
        s = PCamSplit(demo_dir, split)
        assert abs(s.labels.mean() - 0.5) < 0.05


def test_deterministic_from_seed(tmp_path):
    sizes = {"train": 8, "valid": 4, "test": 4}
    write_demo(tmp_path / "a", seed=3, sizes=sizes)
    write_demo(tmp_path / "b", seed=3, sizes=sizes)
    write_demo(tmp_path / "c", seed=4, sizes=sizes)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
    assert not list((tmp_path / "a").glob("*.tmp"))


def _dark_fraction(x, region):
    lum = x.astype(np.float32).mean(-1)
    return np.array([(img[region] < 130).mean() for img in lum])


def test_label_lives_in_the_centre():
    x, y = make_split(400, seed=0, split="valid")
    centre = (slice(32, 64), slice(32, 64))
    border = np.ones((96, 96), bool)
    border[24:72, 24:72] = False
    def separability(f):  # best single-threshold accuracy
        return max(((f > t) == y).mean() for t in np.unique(f))
    assert separability(_dark_fraction(x, centre)) > 0.8
    assert separability(_dark_fraction(x, border)) < 0.62
