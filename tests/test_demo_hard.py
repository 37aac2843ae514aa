"""The hard demo variant: PCam's layout, deterministic, balanced, label in the centre but subtler
than the easy set's; the easy set is untouched by it."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from typer.testing import CliRunner

from train.cli import app
from train.data.demo import make_split, write_demo
from train.data.pcam import PCamSplit

SIZES = {"train": 8, "valid": 4, "test": 6}


def _digest(root):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.iterdir())}


def test_layout_balance_and_determinism(tmp_path):
    write_demo(tmp_path / "a", seed=3, sizes=SIZES, difficulty="hard")
    write_demo(tmp_path / "b", seed=3, sizes=SIZES, difficulty="hard")
    write_demo(tmp_path / "c", seed=4, sizes=SIZES, difficulty="hard")
    write_demo(tmp_path / "easy", seed=3, sizes=SIZES)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
    assert set(_digest(tmp_path / "a").values()).isdisjoint(_digest(tmp_path / "easy").values())
    for split, n in SIZES.items():
        s = PCamSplit(tmp_path / "a", split)
        x, y = s.read(0, len(s))
        assert x.shape == (n, 96, 96, 3) and x.dtype == np.uint8 and y.shape == (n,)
        assert int(y.sum()) == n // 2  # exactly balanced, like make_split promises
    assert not list((tmp_path / "a").glob("*.tmp"))


def test_easy_is_the_default_and_unchanged():
    x, y = make_split(6, seed=0, split="test")
    xe, ye = make_split(6, seed=0, split="test", difficulty="easy")
    xh, _ = make_split(6, seed=0, split="test", difficulty="hard")
    assert np.array_equal(x, xe) and np.array_equal(y, ye) and not np.array_equal(x, xh)


def _dark_fraction(x, region):
    lum = x.astype(np.float32).mean(-1)
    return np.array([(img[region] < 130).mean() for img in lum])


def _separability(f, y):  # best single-threshold accuracy, either direction
    return max(max(((f > t) == y).mean(), ((f <= t) == y).mean()) for t in np.unique(f))


@pytest.fixture(scope="module")
def both():
    return make_split(300, 0, "valid"), make_split(300, 0, "valid", difficulty="hard")


def test_label_in_the_centre_and_subtler_than_easy(both):
    (xe, ye), (xh, yh) = both
    centre = (slice(32, 64), slice(32, 64))
    border = np.ones((96, 96), bool)
    border[24:72, 24:72] = False
    hard_centre = _separability(_dark_fraction(xh, centre), yh)
    assert 0.6 < hard_centre < _separability(_dark_fraction(xe, centre), ye) - 0.05
    assert _separability(_dark_fraction(xh, border), yh) < 0.62


def test_heavier_tails_and_stain_variation(both):
    """Per-image colour spread (stain variation) and extreme-pixel fraction exceed the easy set's."""
    (xe, _), (xh, _) = both
    spread = lambda x: float(x.reshape(len(x), -1, 3).mean(1).std(0).mean())
    extreme = lambda x: float((x.astype(np.float32).mean(-1) < 60).mean())
    assert spread(xh) > 1.2 * spread(xe)
    assert extreme(xh) > 2 * extreme(xe)


def test_cli_refuses_an_unknown_difficulty(tmp_path):
    r = CliRunner().invoke(app, ["data", "demo", "--out", str(tmp_path / "d"), "--difficulty", "extreme"])
    assert r.exit_code == 1 and "unknown difficulty" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "d").exists()
    r = CliRunner().invoke(app, ["data", "demo", "--out", str(tmp_path / "h"), "--difficulty", "hard",
                                 "--train", "4", "--valid", "2", "--test", "2"])
    assert r.exit_code == 0 and "hard demo data" in r.output
    assert len(PCamSplit(tmp_path / "h", "train")) == 4
