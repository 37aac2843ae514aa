"""Shared fixtures: a small demo data set and small trained checkpoints, made once per session."""
from __future__ import annotations

import os
import warnings

import pytest
import torch

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore", message="indexing with dtype torch.uint8")

SMALL = {"train": 512, "valid": 64, "test": 64}


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory):
    from train.data.demo import write_demo

    d = tmp_path_factory.mktemp("demo")
    write_demo(d, seed=0, sizes=SMALL)
    return d


def _train(demo_dir, out, group, width=0.25, epochs=4):
    from train.fit import FitSettings, fit

    fit(FitSettings(str(demo_dir), str(out), group=group, width=width, epochs=epochs, batch_size=32, lr=4e-3,
                    progress=False))
    return out


@pytest.fixture(scope="session")
def c4_checkpoint(demo_dir, tmp_path_factory):
    return _train(demo_dir, tmp_path_factory.mktemp("c4") / "c4.pt", "C4")


@pytest.fixture(scope="session")
def plain_checkpoint(demo_dir, tmp_path_factory):
    return _train(demo_dir, tmp_path_factory.mktemp("plain") / "plain.pt", None)


def _convert(checkpoint, demo_dir, out, **kw):
    from convert.pipeline import ConvertOptions, convert_tflite

    # the default: data-free DFQ and ranges; the report's own parity figures on a few images
    # (tests/test_parity.py checks the whole split)
    opts = ConvertOptions(checkpoint, out, parity_data=demo_dir, parity_images=8, **kw)
    convert_tflite(opts, echo=lambda s: None)
    return out


@pytest.fixture(scope="session")
def converted_c4(c4_checkpoint, demo_dir, tmp_path_factory):
    """`convert tflite` output directory for the small C4 model."""
    return _convert(c4_checkpoint, demo_dir, tmp_path_factory.mktemp("conv_c4") / "c4_tflite")


@pytest.fixture(scope="session")
def converted_plain(plain_checkpoint, demo_dir, tmp_path_factory):
    return _convert(plain_checkpoint, demo_dir, tmp_path_factory.mktemp("conv_plain") / "plain_tflite")


def calibrate_bn(model, batches: int = 3, batch: int = 8, seed: int = 0):
    """Give a random model realistic batch-norm statistics (cumulative averages over smooth images)."""
    from train.nn.equivariance import smooth_input

    model.train()
    for m in model.modules():
        if hasattr(m, "momentum") and hasattr(m, "running_mean"):
            m.momentum = None
    size = model.config.input_size
    with torch.no_grad():
        for i in range(batches):
            model(128 + 40 * smooth_input(batch, 3, size, seed=seed + i, sigma=3.0))
    return model.eval()
