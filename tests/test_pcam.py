"""The PCam reader on a generated file and on malformed ones; streaming and sharding."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from e2micro.errors import BadInput
from train.data.augment import augment, colour, dihedral, parse
from train.data.loader import batches, plan
from train.data.pcam import PCamFormatError, PCamSplit, split_paths, to_model_input


def _write(root, split="test", n=40, x_shape=None, x_dtype=np.uint8, y=None, x_key="x", y_key="y"):
    xp, yp = split_paths(root, split)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=x_shape or (n, 96, 96, 3)).astype(x_dtype)
    with h5py.File(xp, "w") as f:
        f.create_dataset(x_key, data=x, chunks=(8,) + x.shape[1:] if x.ndim == 4 else None)
    with h5py.File(yp, "w") as f:
        f.create_dataset(y_key, data=(np.arange(n) % 2).astype(np.uint8).reshape(n, 1, 1, 1) if y is None else y)
    return x


def test_reads_pcam_layout(tmp_path):
    x = _write(tmp_path)
    s = PCamSplit(tmp_path, "test")
    assert len(s) == 40 and s.num_classes == 2 and s.chunk_rows == 8
    xs, ys = s.read(8, 16)
    assert np.array_equal(xs, x[8:16]) and list(ys) == [0, 1] * 4 and ys.dtype == np.int64


def test_uint32_labels_are_cast(tmp_path):
    _write(tmp_path, y=(np.arange(40) % 3).astype(np.uint32).reshape(40, 1, 1, 1))
    s = PCamSplit(tmp_path, "test")
    assert s.labels.dtype == np.int64 and s.num_classes == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"x_shape": (40, 96, 96)}, r"expected \(N, 96, 96, 3\)"),
    ({"x_shape": (40, 64, 64, 3)}, r"expected \(N, 96, 96, 3\)"),
    ({"x_dtype": np.float32}, "expected uint8"),
    ({"y": np.zeros((39, 1, 1, 1), np.uint8)}, r"expected \(40, 1, 1, 1\)"),
    ({"y": np.zeros((40, 2), np.uint8)}, r"expected \(40, 1, 1, 1\)"),
    ({"y": np.zeros((40, 1, 1, 1), np.float32)}, "integer labels"),
    ({"x_key": "images"}, "no dataset 'x'"),
    ({"y_key": "labels"}, "no dataset 'y'"),
])
def test_malformed_files_are_refused(tmp_path, kwargs, message):
    _write(tmp_path, **kwargs)
    with pytest.raises(PCamFormatError, match=message):
        PCamSplit(tmp_path, "test")


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(PCamFormatError, match="no such file"):
        PCamSplit(tmp_path, "test")
    _write(tmp_path)
    split_paths(tmp_path, "test")[0].write_bytes(b"not an hdf5 file at all")
    with pytest.raises(PCamFormatError, match="not a readable HDF5"):
        PCamSplit(tmp_path, "test")
    with pytest.raises(PCamFormatError, match="unknown split"):
        PCamSplit(tmp_path, "training")


def test_streaming_reads_blocks_not_the_whole_split(tmp_path, monkeypatch):
    _write(tmp_path, n=200)
    s = PCamSplit(tmp_path, "test")
    reads = []
    orig = s.read
    monkeypatch.setattr(s, "read", lambda a, b: reads.append(b - a) or orig(a, b))
    got = sum(len(y) for _, y in batches(s, 16, 95, shuffle=True, window=2))
    assert got == 200 and max(reads) < 200 and all(r % 8 == 0 or r == 200 % 8 for r in reads)


def test_shards_are_disjoint_and_steps_equal(tmp_path):
    _write(tmp_path, n=200)
    s = PCamSplit(tmp_path, "test")
    plans = [plan(s, 16, shuffle=True, seed=1, epoch=3, rank=r, world=2, drop_last=True) for r in range(2)]
    rows = [set().union(*(range(a, b) for a, b in p.blocks)) for p in plans]
    assert not rows[0] & rows[1] and len(rows[0] | rows[1]) == 200
    assert plans[0].steps == plans[1].steps > 0
    counts = [sum(1 for _ in batches(s, 16, 95, shuffle=True, seed=1, epoch=3, rank=r, world=2, drop_last=True))
              for r in range(2)]
    assert counts[0] == counts[1] == plans[0].steps
    # the order depends on the epoch, and is reproducible
    a = [y.tolist() for _, y in batches(s, 16, 95, shuffle=True, seed=1, epoch=0)]
    b = [y.tolist() for _, y in batches(s, 16, 95, shuffle=True, seed=1, epoch=0)]
    c = [y.tolist() for _, y in batches(s, 16, 95, shuffle=True, seed=1, epoch=1)]
    assert a == b and a != c


def test_crop_and_dihedral_augmentation():
    x = np.arange(2 * 96 * 96 * 3, dtype=np.uint8).reshape(2, 96, 96, 3)
    t = to_model_input(x, 95)
    assert t.shape == (2, 3, 95, 95) and t.dtype == np.float32 and t[0, 0, 0, 0] == x[0, 0, 0, 0]
    imgs = np.random.default_rng(0).random((8, 3, 5, 5)).astype(np.float32)
    out = dihedral(imgs, np.arange(8))
    assert np.array_equal(out[0], imgs[0])
    assert np.array_equal(out[1], np.rot90(imgs[1], 1, axes=(1, 2)))
    assert np.array_equal(out[4], imgs[4][:, :, ::-1])
    # the 8 codes give 8 distinct images of one asymmetric patch
    same = dihedral(np.repeat(imgs[:1], 8, 0), np.arange(8))
    assert len({o.tobytes() for o in same}) == 8


def test_colour_jitter_commutes_with_rotation_and_stays_in_range():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, 3, 9, 9)).astype(np.float32)
    gain, offset = np.array([[1.1, 0.9, 1.0]] * 4, np.float32), np.array([[12, -12, 0]] * 4, np.float32)
    y = colour(x, gain, offset)
    assert y.dtype == np.float32 and y.min() >= 0 and y.max() <= 255
    assert np.array_equal(y[:, 2], x[:, 2]) and not np.array_equal(y[:, 0], x[:, 0])
    assert np.array_equal(colour(np.rot90(x, 1, axes=(2, 3)), gain, offset), np.rot90(y, 1, axes=(2, 3)))
    # the dihedral codes are drawn first, so adding colour leaves the dihedral stream as it was
    a = augment(x, ("dihedral",), np.random.default_rng(1))
    b = augment(x, ("dihedral", "colour"), np.random.default_rng(1))
    assert np.array_equal(a, dihedral(x, np.random.default_rng(1).integers(0, 8, size=4)))
    assert not np.array_equal(a, b) and np.abs(a - b).max() <= 255 * 0.1 + 12 + 1e-3
    assert parse("none") == () and parse("colour+dihedral") == ("dihedral", "colour")
    for bad in ("", "rot45", "dihedral+"):
        with pytest.raises(BadInput, match="--augment"):
            parse(bad)
