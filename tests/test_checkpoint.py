"""Checkpoint round trip, safe loading, and clear errors for bad files."""
from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from train.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from train.cli import app
from train.config import ModelConfig
from train.model import model_from_config


@pytest.fixture
def saved(tmp_path):
    config = ModelConfig(group="C4", width=0.25)
    torch.manual_seed(0)
    model = model_from_config(config)
    model.eval()  # e2cnn caches filters as buffers in eval mode: they must not be stored
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, config, metrics={"val_loss": 0.5})
    return path, model, config


def test_round_trip(saved):
    path, model, config = saved
    loaded, cfg, ckpt = load_model(path)
    assert cfg == config and ckpt["metrics"]["val_loss"] == 0.5 and "torch" in ckpt["versions"]
    x = torch.rand(2, 3, 95, 95) * 255
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    # loadable by plain torch with weights_only=True: no code runs from the file
    raw = torch.load(path, weights_only=True)
    assert not any(k.endswith(".filter") for k in raw["state_dict"])


def test_conventional_round_trip(tmp_path):
    config = ModelConfig(group=None, width=0.25)
    model = model_from_config(config).eval()
    save_checkpoint(tmp_path / "p.pt", model, config)
    loaded, cfg, _ = load_model(tmp_path / "p.pt")
    assert cfg.group is None
    x = torch.rand(1, 3, 95, 95) * 255
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_missing_and_corrupt(tmp_path, saved):
    path, _, _ = saved
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_model(tmp_path / "nope.pt")
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_model(bad)
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable"):
        load_model(truncated)


def test_foreign_and_inconsistent(tmp_path, saved):
    path, model, _ = saved
    foreign = tmp_path / "foreign.pt"
    torch.save(model.state_dict(), foreign)
    with pytest.raises(CheckpointError, match="not an e2micro checkpoint"):
        load_model(foreign)
    ckpt = read_checkpoint(path)
    ckpt["config"]["width"] = 0.5
    torch.save(ckpt, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(tmp_path / "mismatch.pt")
    ckpt = read_checkpoint(path)
    ckpt["config"]["input_size"] = 96
    torch.save(ckpt, tmp_path / "even.pt")
    with pytest.raises(CheckpointError, match="even"):
        load_model(tmp_path / "even.pt")
    ckpt = read_checkpoint(path)
    name = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][name][0] = float("nan")
    torch.save(ckpt, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="NaN"):
        load_model(tmp_path / "nan.pt")
    # pickled code is refused, never executed
    torch.save({"format": "e2micro-checkpoint", "payload": ModelConfig()}, tmp_path / "code.pt")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_model(tmp_path / "code.pt")


def test_cli_reports_one_line(tmp_path, demo_dir):
    bad = tmp_path / "bad.pt"
    bad.write_text("hello")
    r = CliRunner().invoke(app, ["eval", str(bad), "--data", str(demo_dir)])
    assert r.exit_code == 1
    assert r.output.strip().startswith("error:") and len(r.output.strip().splitlines()) == 1
