"""`train fit` / `train eval` end to end on the small demo set: log, checkpoint, resume, DDP."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from typer.testing import CliRunner

from train.checkpoint import load_model
from train.cli import app

runner = CliRunner()
ARGS = ["--width", "0.25", "--batch-size", "32", "--lr", "4e-3", "--no-progress"]


def test_fit_writes_checkpoint_and_log(c4_checkpoint):
    log = c4_checkpoint.with_name("c4.metrics.jsonl")
    records = [json.loads(ln) for ln in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3, 4]
    assert all({"train_loss", "val_loss", "val_acc", "lr", "images_per_second"} <= r.keys() for r in records)
    model, config, ckpt = load_model(c4_checkpoint)
    best = min(records, key=lambda r: r["val_loss"])
    assert ckpt["metrics"]["epoch"] == best["epoch"] and config.group == "C4"
    assert c4_checkpoint.with_name("c4.last.pt").is_file()


def test_eval_json_and_rotation_invariance(c4_checkpoint, demo_dir):
    r = runner.invoke(app, ["eval", str(c4_checkpoint), "--data", str(demo_dir), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output.strip().splitlines()[-1])
    assert res["images"] == 64
    assert res["rot90_class_change_rate"] == 0.0
    assert 0 <= res["accuracy"] <= 1 and 0 <= res["roc_auc"] <= 1 and res["nll"] > 0
    assert 0 <= res["softmax_change_30deg"] < 0.2


def test_conventional_twin_trains(plain_checkpoint, demo_dir):
    model, config, _ = load_model(plain_checkpoint)
    assert config.group is None
    r = runner.invoke(app, ["eval", str(plain_checkpoint), "--data", str(demo_dir), "--json", "--limit", "32"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output.strip().splitlines()[-1])["images"] == 32


def test_fit_errors_are_one_line(tmp_path, demo_dir):
    r = runner.invoke(app, ["fit", "--data", str(tmp_path), "--out", str(tmp_path / "x.pt")] + ARGS)
    assert r.exit_code == 1 and "no such file" in r.output and len(r.output.strip().splitlines()) == 1
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
