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
    # C12 at width 0.35 with MobileNetV2's rounding (--min-fields 1): stem 32·0.35 and stages 1–3
    # (16, 24, 32 · 0.35) round up to 12 channels.
    def stages(group, width, min_fields=1):
        return single_field_stages(FitSettings(data="", out="", group=group, width=width, min_fields=min_fields))

    assert stages("C12", 0.35) == [("stem", 12), ("stage 1", 12), ("stage 2", 12), ("stage 3", 12)]
    assert stages("D4", 0.35) == [("stage 1", 8), ("stage 2", 8)]
    assert stages("C4", 1.0) == [] and stages(None, 0.35) == []
    assert stages("C12", 0.35, 2) == [] and stages("D4", 0.35, 2) == []
    # The stages named are those the model is built with: stem and blocks 0-5 (stages 1-3) one field each.
    arch = model_from_config(ModelConfig(group="C12", width=0.35)).arch
    assert arch.stem == 12 and [b.cout for b in arch.blocks[:6]] == [12] * 6 and arch.blocks[6].cout == 24


def test_min_fields_floors_every_stage_and_leaves_wider_ones_alone():
    one = model_from_config(ModelConfig(group="C12", width=0.35)).arch
    two = model_from_config(ModelConfig(group="C12", width=0.35, min_fields=2)).arch
    assert two.stem == 24 and [b.cout for b in two.blocks[:6]] == [24] * 6
    assert [b.hidden for b in two.blocks[1:6]] == [144] * 5  # expansions follow their inputs
    # Stages already at two fields or more are unchanged, and so are the grids.
    assert [b.cout for b in two.blocks[6:]] == [b.cout for b in one.blocks[6:]] and two.head == one.head
    assert [b.in_size for b in two.blocks] == [b.in_size for b in one.blocks]
    assert model_from_config(ModelConfig(group="C4", width=1.0, min_fields=2)).arch == \
        model_from_config(ModelConfig(group="C4", width=1.0)).arch


def _fit(tmp_path, *args):
    return runner.invoke(app, ["fit", "--data", str(tmp_path / "absent"), "--out", str(tmp_path / "c.pt"),
                               "--no-progress", *args])


def test_fit_warns_for_c12_at_width_035_with_one_field(tmp_path):
    r = _fit(tmp_path, "--group", "C12", "--width", "0.35", "--min-fields", "1")
    assert r.exit_code == 1 and "no such file" in r.stdout + r.stderr  # stopped before training
    warning = [ln for ln in r.stderr.splitlines() if ln.startswith("warning:")]
    assert warning == [ln for ln in r.stderr.splitlines() if "single regular field" in ln] and len(warning) == 1
    assert "C12 at width 0.35" in warning[0] and "(12 channels) in stem, stage 1, stage 2, stage 3:" in warning[0]


def test_fit_default_configuration_is_checked(tmp_path):
    # Without flags the check uses the settings fit will use (FitSettings' defaults), not only the flags.
    r = _fit(tmp_path)
    assert r.exit_code == 1
    assert ("single regular field" in r.stderr) == bool(single_field_stages(FitSettings(data="", out="")))


def test_fit_silent_for_c4_width_1_the_twin_and_two_fields(tmp_path):
    for args in (["--group", "C4", "--width", "1.0"], ["--group", "none", "--width", "0.35"],
                 ["--group", "C12", "--width", "0.35", "--min-fields", "2"]):
        r = _fit(tmp_path, *args)
        assert r.exit_code == 1 and "no such file" in r.stdout + r.stderr
        assert "single regular field" not in r.stdout + r.stderr and "warning" not in r.stderr


def test_min_fields_refused_in_one_line(tmp_path):
    for args, says in ((["--group", "none", "--min-fields", "2"], "applies to equivariant groups"),
                       (["--min-fields", "0"], "--min-fields 0"), (["--min-fields", "9"], "--min-fields 9")):
        r = _fit(tmp_path, *args)
        lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
        assert r.exit_code == 1 and len(lines) == 1 and says in lines[0] and "Traceback" not in lines[0], args
        assert not (tmp_path / "c.pt").exists()
