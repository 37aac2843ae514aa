"""`train fit` / `train eval` end to end on the small demo set: log, checkpoint, resume, DDP."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from train.checkpoint import load_model
from train.cli import app

runner = CliRunner()
ARGS = ["--width", "0.25", "--batch-size", "32", "--lr", "4e-3", "--no-progress"]


def _expected_eval(checkpoint, demo_dir):
    """What `train eval` must report, computed here without train.evaluate / train.metrics."""
    from train.data.loader import batches
    from train.data.pcam import PCamSplit

    model, _, _ = load_model(checkpoint)
    x, y = next(batches(PCamSplit(demo_dir, "test"), 1000, 95))
    with torch.no_grad():
        logits = model(x).double()
        turned = [model(torch.rot90(x, k, dims=(2, 3))).argmax(1) for k in (1, 2, 3)]
    score = torch.softmax(logits, 1)[:, 1]
    pos, neg = score[y == 1], score[y == 0]
    auc = float(((pos[:, None] > neg[None, :]).double() + 0.5 * (pos[:, None] == neg[None, :]).double()).mean())
    changed = torch.stack([t != logits.argmax(1) for t in turned], 1).double().mean()
    return {"images": len(y), "accuracy": float((logits.argmax(1) == y).double().mean()), "roc_auc": auc,
            "nll": float(torch.nn.functional.cross_entropy(logits, y)), "rot90_class_change_rate": float(changed)}


def _eval_json(checkpoint, demo_dir) -> dict:
    r = runner.invoke(app, ["eval", str(checkpoint), "--data", str(demo_dir), "--json"])
    assert r.exit_code == 0, r.output
    return json.loads(r.output.strip().splitlines()[-1])


def test_eval_json_reports_the_model_s_own_figures(c4_checkpoint, plain_checkpoint, demo_dir):
    """Every figure equals an independent computation, for an invariant and a non-invariant model."""
    for ckpt in (c4_checkpoint, plain_checkpoint):
        got, want = _eval_json(ckpt, demo_dir), _expected_eval(ckpt, demo_dir)
        for key, value in want.items():
            assert got[key] == pytest.approx(value, abs=1e-6), (ckpt.name, key)
        assert got["softmax_change_30deg"] > 0  # an interpolated rotation is never exact
    assert _expected_eval(c4_checkpoint, demo_dir)["rot90_class_change_rate"] == 0.0
    # the conventional model's classes do change: the rate can tell the two apart
    assert _expected_eval(plain_checkpoint, demo_dir)["rot90_class_change_rate"] > 0.0


def test_fit_errors_are_one_line(tmp_path, demo_dir):
    r = runner.invoke(app, ["fit", "--data", str(tmp_path), "--out", str(tmp_path / "x.pt")] + ARGS)
    errors = [ln for ln in r.output.strip().splitlines() if not ln.startswith("warning:")]  # C12 w0.25: one field
    assert r.exit_code == 1 and "no such file" in r.output and len(errors) == 1
    r = runner.invoke(app, ["fit", "--data", str(demo_dir), "--out", str(tmp_path / "x.pt"), "--resume"] + ARGS)
    assert r.exit_code == 1 and "nothing to resume" in r.output
    r = runner.invoke(app, ["fit", "--data", str(demo_dir), "--out", str(tmp_path / "x.pt"), "--group", "C5"] + ARGS)
    assert r.exit_code == 1 and "multiple of 4" in r.output
    assert not (tmp_path / "x.pt").exists()


def _cmd(demo_dir, out, epochs, *extra):
    return [sys.executable, "-m", "train.cli", "fit", "--data", str(demo_dir), "--out", str(out), "--group", "C4",
            "--epochs", str(epochs), *ARGS, *extra]


def test_resume_after_kill_matches_uninterrupted_run(tmp_path, demo_dir):
    straight = tmp_path / "straight" / "m.pt"
    subprocess.run(_cmd(demo_dir, straight, 3), check=True, capture_output=True)
    killed = tmp_path / "killed" / "m.pt"
    proc = subprocess.Popen(_cmd(demo_dir, killed, 3), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:  # kill it as soon as the first epoch is reported
        if line.startswith("epoch 1/3"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = torch.load(killed.with_name("m.last.pt"), weights_only=True)
    assert state["epoch"] in (1, 2)  # at most one epoch lost
    assert not list(killed.parent.glob(".*.tmp"))
    subprocess.run(_cmd(demo_dir, killed, 3, "--resume"), check=True, capture_output=True)
    a = torch.load(straight.with_name("m.last.pt"), weights_only=True)
    b = torch.load(killed.with_name("m.last.pt"), weights_only=True)
    assert a["epoch"] == b["epoch"] == 3
    for k in a["model"]:
        assert torch.allclose(a["model"][k].float(), b["model"][k].float(), atol=1e-6), k
    epochs = [json.loads(ln)["epoch"] for ln in killed.with_name("m.metrics.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3]


def test_ddp_two_processes_gloo(tmp_path, demo_dir):
    out = tmp_path / "ddp.pt"
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([str(torchrun), "--nproc_per_node", "2", "--master_port", str(29500 + os.getpid() % 1000),
                        "-m", "train.cli", "fit", "--data", str(demo_dir), "--out", str(out), "--group", "C4",
                        "--epochs", "1", *ARGS], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("best epoch") == 1  # only rank 0 reports and writes
    record = json.loads(out.with_name("ddp.metrics.jsonl").read_text().splitlines()[0])
    # each rank saw its own half of the 512 training rows: 8 steps of 32 per rank, 512 images in all
    assert record["train_images"] == 512
    model, _, _ = load_model(out)
    assert model.check_equivariance()[1] < 1e-4


def test_augment_reaches_the_training_batches(tmp_path, demo_dir, monkeypatch):
    """--augment sets what the training loop asks of the batch reader; a bad value is one line."""
    import train.fit as fit_module

    seen = []

    def spy(*args, **kwargs):  # stop at the first training batch: only the flag matters here
        seen.append(kwargs["augment"])
        raise KeyboardInterrupt

    monkeypatch.setattr(fit_module, "batches", spy)
    for flags in (["--augment", "none"], ["--augment", "colour+dihedral"], []):  # [] is the default
        runner.invoke(app, ["fit", "--data", str(demo_dir), "--out", str(tmp_path / f"{len(seen)}.pt"), "--group", "C4",
                            *flags, *ARGS])
    assert seen == [(), ("dihedral", "colour"), ("dihedral",)]
    r = runner.invoke(app, ["fit", "--data", str(demo_dir), "--out", str(tmp_path / "x.pt"), "--group", "C4",
                            "--augment", "rot45", *ARGS])
    # C4 at width 0.25 would warn of a single-field stage: the bad value is refused before that
    assert r.exit_code == 1 and "--augment 'rot45'" in r.output and len(r.output.strip().splitlines()) == 1
    assert not list(tmp_path.glob("x*"))


def test_resume_refuses_a_changed_augment_flag():
    from e2micro.errors import BadInput
    from train.fit import FitSettings, resumed_settings

    stored = FitSettings(data="d", out="o.pt", augment="dihedral+colour")
    with pytest.raises(BadInput, match="--augment none \\(the run has dihedral\\+colour\\)"):
        resumed_settings(stored, FitSettings(data="d", out="o.pt"), {"augment": "none"}, 1)
    assert resumed_settings(stored, stored, {"augment": "colour+dihedral"}, 1)[0].augment == "dihedral+colour"


def test_resume_refuses_a_changed_min_fields_and_keeps_the_stored_one():
    from e2micro.errors import BadInput
    from train.fit import FitSettings, resumed_settings

    stored = FitSettings(data="d", out="o.pt", min_fields=1)  # e.g. a run from before the option
    with pytest.raises(BadInput, match="--min-fields 2 \\(the run has 1\\)"):
        resumed_settings(stored, FitSettings(data="d", out="o.pt"), {"min_fields": 2}, 1)
    assert resumed_settings(stored, FitSettings(data="d", out="o.pt"), {}, 1)[0].min_fields == 1


def test_a_state_from_before_min_fields_resumes_with_one_field(tmp_path, demo_dir):
    from e2micro.errors import BadInput
    from train.checkpoint import load_model
    from train.fit import FitSettings, fit, state_path

    out = tmp_path / "m.pt"
    s = FitSettings(data=str(demo_dir), out=str(out), group="C4", width=0.25, epochs=1, batch_size=64,
                    min_fields=1, progress=False)
    fit(s)
    state = torch.load(state_path(out), weights_only=True)
    del state["settings"]["min_fields"], state["config"]["min_fields"]  # as written before the key existed
    torch.save(state, state_path(out))
    with pytest.raises(BadInput, match="--min-fields 2 \\(the run has 1\\)"):
        fit(FitSettings(data=str(demo_dir), out=str(out), epochs=2, progress=False), resume=True,
            given={"epochs": 2, "min_fields": 2})
    fit(FitSettings(data=str(demo_dir), out=str(out), epochs=2, progress=False), resume=True, given={"epochs": 2})
    model, config, _ = load_model(out)
    assert config.min_fields == 1 and model.arch.blocks[0].cout == 4  # C4 w0.25 stage 1: one field
    assert torch.load(state_path(out), weights_only=True)["settings"]["min_fields"] == 1


def test_the_twin_stores_no_field_floor():
    from train.fit import FitSettings

    for group in (None, "none"):
        assert FitSettings(data="", out="", group=group).min_fields == 1
    assert FitSettings(data="", out="", group="C12").min_fields == 2


def test_select_keeps_the_lowest_loss_or_the_most_accurate_epoch(tmp_path, demo_dir):
    from train.fit import better

    # an over-confident run: its loss is lowest at the untrained epoch 1
    records = [{"val_loss": 0.69, "val_acc": 0.50}, {"val_loss": 0.95, "val_acc": 0.78},
               {"val_loss": 0.90, "val_acc": 0.78}, {"val_loss": 0.80, "val_acc": 0.70}]

    def kept(select):
        best, epoch = {"val_loss": float("inf")}, None
        for i, r in enumerate(records):
            if better(r, best, select):
                best, epoch = r, i + 1
        return epoch

    assert kept("loss") == 1 and kept("accuracy") == 3  # ties in accuracy go to the lower loss
    r = runner.invoke(app, ["fit", "--data", str(demo_dir), "--out", str(tmp_path / "x.pt"), "--group", "C4",
                            "--select", "auc", *ARGS])
    assert r.exit_code == 1 and "--select 'auc'" in r.output and len(r.output.strip().splitlines()) == 1
    assert not list(tmp_path.glob("x*"))


def test_init_hook_sees_the_seeded_model_before_the_first_batch(tmp_path, demo_dir, monkeypatch):
    """fit(init=…) (bench/seed_failure.py) runs once on the model as seeded, before any batch is read."""
    import train.fit as fit_module
    from train.config import ModelConfig
    from train.fit import FitSettings, fit
    from train.model import model_from_config

    events = []

    def spy(*args, **kwargs):
        events.append("batches")
        raise KeyboardInterrupt

    def init(model):
        torch.manual_seed(3)
        seeded = model_from_config(ModelConfig(group="C4", width=0.25, min_fields=FitSettings.min_fields))
        events.append(all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                             seeded.state_dict().values())))

    monkeypatch.setattr(fit_module, "batches", spy)
    with pytest.raises(KeyboardInterrupt):
        fit(FitSettings(data=str(demo_dir), out=str(tmp_path / "m.pt"), group="C4", width=0.25, seed=3,
                        progress=False), init=init)
    assert events == [True, "batches"]
