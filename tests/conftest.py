"""Shared fixtures: a small demo data set, checkpoints that are right by construction (no training:
see train/model/constructed.py) and their conversions, made once per session.

Nothing here depends on how an optimisation run turns out, so the suite gives the same verdict on
every machine; the one test that trains (tests/test_training.py) has a wide margin of its own."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SMALL = {"train": 512, "valid": 64, "test": 64}


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    from train.data.demo import write_demo

    d = tmp_path_factory.mktemp("demo")
    write_demo(d, seed=0, sizes=SMALL)
    return d


def _split(demo_dir, split: str, n: int):
    from train.data.loader import batches
    from train.data.pcam import PCamSplit

    return next(batches(PCamSplit(demo_dir, split), n, 95))


@pytest.fixture(scope="session")
def construct(demo_dir):
    """construct(path, group, width=0.25, activation="relu6") → a checkpoint saved with the project's
    own writer, after checking the model is fit to test a conversion with (fails loudly if not)."""
    from train.checkpoint import save_checkpoint
    from train.config import ModelConfig
    from train.model.constructed import constructed_model, degeneracy

    x, y = _split(demo_dir, "train", 128)
    test_x, _ = _split(demo_dir, "test", SMALL["test"])

    def make(path, group, width=0.25, **config):
        cfg = ModelConfig(group=group, width=width, **config)
        model = constructed_model(cfg, x, y, seed=0)
        problems = degeneracy(model, test_x)
        if problems:
            pytest.fail(f"fixture model degenerate ({group or 'conventional'}): " + "; ".join(problems))
        save_checkpoint(path, model, cfg, metrics={"constructed": True})
        return path

    return make


@pytest.fixture(scope="session")
def c4_checkpoint(construct, tmp_path_factory):
    return construct(tmp_path_factory.mktemp("c4") / "c4.pt", "C4")


@pytest.fixture(scope="session")
def plain_checkpoint(construct, tmp_path_factory):
    return construct(tmp_path_factory.mktemp("plain") / "plain.pt", None)


@pytest.fixture(scope="session")
def convert_checkpoint(demo_dir):
    """convert_checkpoint(ckpt, out, **options) → out: the default (data-free) conversion, with the
    report's own parity figures on a few images (tests/test_parity.py checks the whole split)."""
    from convert.pipeline import ConvertOptions, convert_tflite

    def run(checkpoint, out, **kw):
        convert_tflite(ConvertOptions(checkpoint=checkpoint, out=out, parity_data=demo_dir, **{"parity_images": 8, **kw}),
                       echo=lambda s: None)
        return out

    return run


@pytest.fixture(scope="session")
def converted_c4(c4_checkpoint, convert_checkpoint, tmp_path_factory):
    """`convert tflite` output directory for the small C4 model."""
    return convert_checkpoint(c4_checkpoint, tmp_path_factory.mktemp("conv_c4") / "c4_tflite")


@pytest.fixture(scope="session")
def converted_plain(plain_checkpoint, convert_checkpoint, tmp_path_factory):
    return convert_checkpoint(plain_checkpoint, tmp_path_factory.mktemp("conv_plain") / "plain_tflite")
