"""`train fit` warns when a configuration leaves a stage with a single regular field (no training:
the data folder does not exist, so each run stops at reading it, after the warning)."""
from __future__ import annotations

from typer.testing import CliRunner

from train.cli import app
from train.fit import FitSettings, single_field_stages
from train.config import ModelConfig
from train.model import model_from_config

runner = CliRunner()


def test_single_field_stages_by_channel_count():
    # C12 at width 0.35: stem 32·0.35 and stages 1–3 (16, 24, 32 · 0.35) round up to 12 channels.
    def stages(group, width):
        return single_field_stages(FitSettings(data="", out="", group=group, width=width))

    assert stages("C12", 0.35) == [("stem", 12), ("stage 1", 12), ("stage 2", 12), ("stage 3", 12)]
    assert stages("D4", 0.35) == [("stage 1", 8), ("stage 2", 8)]
    assert stages("C4", 1.0) == [] and stages(None, 0.35) == []
    # The stages named are those the model is built with: stem and blocks 0-5 (stages 1-3) one field each.
    arch = model_from_config(ModelConfig(group="C12", width=0.35)).arch
    assert arch.stem == 12 and [b.cout for b in arch.blocks[:6]] == [12] * 6 and arch.blocks[6].cout == 24


def _fit(tmp_path, *args):
    return runner.invoke(app, ["fit", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "c.pt"),
                               "--no-progress", *args])


def test_fit_warns_for_c12_at_width_035(tmp_path):
    r = _fit(tmp_path, "--group", "C12", "--width", "0.35")
    assert r.exit_code == 1 and "no such file" in r.stdout + r.stderr  # stopped before training
    warning = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert warning == [ln for ln in r.stderr.splitlines() if "single regular field" in ln] and len(warning) == 1
    assert "C12 at width 0.35" in warning[0] and "(12 channels) in stem, stage 1, stage 2, stage 3:" in warning[0]


def test_fit_default_configuration_is_checked(tmp_path):
    # Without flags the check uses the settings fit will use (FitSettings' defaults), not only the flags.
    r = _fit(tmp_path)
    assert r.exit_code == 1
    assert ("single regular field" in r.stderr) == bool(single_field_stages(FitSettings(data="", out="")))


def test_fit_silent_for_c4_width_1_and_the_twin(tmp_path):
    for args in (["--group", "C4", "--width", "1.0"], ["--group", "none", "--width", "0.35"]):
        r = _fit(tmp_path, *args)
        assert r.exit_code == 1 and "no such file" in r.stdout + r.stderr
        assert "single regular field" not in r.stdout + r.stderr and "warning" not in r.stderr
