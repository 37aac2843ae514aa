"""Bad input and faults (issue 10): no user file lost, publishing atomic, leftovers cleaned, signals
stop a run, one clear line instead of a traceback, no silent wrong result. README's reliability
table lists these cases."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from convert.cli import app as convert_app
from e2micro import atomic, interrupts
from train.checkpoint import CheckpointError, load_model, read_checkpoint
from train.cli import app as train_app
from train.data.demo import make_split, write_demo, write_split
from train.data.pcam import split_paths

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
FIT = ["--group", "C4", "--width", "0.25", "--batch-size", "32", "--no-progress"]


def one_line_error(r, code: int = 1) -> str:
    """The result failed with exactly one 'error:' line on stderr and no traceback (besides any
    one-line warnings, such as `train fit`'s about single-field stages at FIT's width)."""
    assert r.exit_code == code, (r.exit_code, r.output)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "Traceback" not in r.output
    return lines[0]


def train_cli(*args):
    return CliRunner().invoke(train_app, list(map(str, args)))


def convert_cli(*args):
    return CliRunner().invoke(convert_app, list(map(str, args)))


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    write_demo(d, seed=0, sizes={"train": 64, "valid": 32, "test": 32})
    return d


def _data_with(tmp_path, name, *, labels=None, x_group=False):
    """A PCam-format folder whose labels are `labels` or whose `x` is an HDF5 group."""
    d = tmp_path / name
    d.mkdir()
    for split in ("train", "valid", "test"):
        x, y = make_split(32, seed=0, split=split)
        write_split(d, split, x, y if labels is None else np.full(32, labels, np.uint8))
        if x_group:
            with h5py.File(split_paths(d, split)[0], "w") as f:
                f.create_group("x").create_dataset("pixels", data=x)
    return d


# --------------------------------------------------------------------------------------------------
# 1. Data loss: --out is replaced only if it is a previous output of this tool


def test_out_holding_foreign_files_is_refused(c4_checkpoint, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("years of work")
    line = one_line_error(convert_cli("tflite", c4_checkpoint, "--out", out))
    assert "holds files convert did not write (thesis.txt)" in line and "--force" in line
    assert [p.name for p in out.iterdir()] == ["thesis.txt"] and (out / "thesis.txt").read_text() == "years of work"
    assert hidden(tmp_path) == []


def test_out_dot_next_to_the_checkpoint_is_refused(c4_checkpoint, tmp_path, monkeypatch):
    ckpt = Path(shutil.copy(c4_checkpoint, tmp_path / "c4.pt"))
    before = ckpt.read_bytes()
    monkeypatch.chdir(tmp_path)
    line = one_line_error(convert_cli("tflite", "c4.pt", "--out", "."))
    assert "c4.pt" in line and ckpt.read_bytes() == before and hidden(tmp_path) == []


# --------------------------------------------------------------------------------------------------
# 2, 3. Atomic publishing (the one helper), permissions, leftovers of killed writers


def test_publish_swaps_folders_in_one_step_with_normal_modes(tmp_path):
    old_mask = os.umask(0o022)
    try:
        target = tmp_path / "out"
        first = atomic.staging_dir(target)
        assert first.stat().st_mode & 0o777 == 0o755  # not mkdtemp's 0700
        atomic.write_atomic(first / "a.txt", "old")
        assert (first / "a.txt").stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
        atomic.publish_dir(first, target)
        second = atomic.staging_dir(target)
        (second / "a.txt").write_text("new")
        discarded = []
        atomic.publish_dir(second, target, discard=lambda old: discarded.append((old / "a.txt").read_text())
                           or shutil.rmtree(old))
        assert (target / "a.txt").read_text() == "new" and discarded == ["old"]  # swapped, then discarded
        assert hidden(tmp_path) == []  # the swapped-out version is gone too
        x, y = tmp_path / "x", tmp_path / "y"
        x.mkdir()
        y.mkdir()
        (x / "in_x").touch()
        assert atomic._exchange(x, y) and (y / "in_x").exists()  # this file system exchanges (RENAME_EXCHANGE)
        secret = tmp_path / "secret"
        secret.write_text("x")
        secret.chmod(0o600)
        atomic.write_atomic(secret, "y")
        assert secret.stat().st_mode & 0o777 == 0o600 and secret.read_text() == "y"  # a replaced file keeps its mode
    finally:
        os.umask(old_mask)


def test_fallback_publish_and_recovery_after_a_kill(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "v").write_text("1")
    staging = atomic.staging_dir(target)
    (staging / "v").write_text("2")
    old = atomic._publish_by_renames(staging, target)  # where RENAME_EXCHANGE is not available
    assert (target / "v").read_text() == "2" and (old / "v").read_text() == "1"
    shutil.rmtree(old)
    # a kill between the fallback's two renames: the previous version aside under a dead PID, no target
    aside = tmp_path / f".out.old-{dead_pid()}-0123abcd.tmp"
    target.rename(aside)
    atomic.staging_dir(target)  # the next run puts it back before anything else
    assert (target / "v").read_text() == "2" and not aside.exists()


def test_stale_temps_of_dead_writers_are_removed(tmp_path):
    dead = dead_pid()
    target = tmp_path / "out"
    stale = [tmp_path / f".out.staging-{dead}-00aa11bb.tmp", tmp_path / f".ckpt.pt.write-{dead}-00aa11bb.tmp",
             tmp_path / f".e2micro-convert.work-{dead}-00aa11bb.tmp"]
    live = tmp_path / ".out.staging-1-00aa11bb.tmp"  # PID 1 runs: not ours to remove
    for p in (stale[0], stale[2], live):
        p.mkdir()
        (p / "model.onnx").write_text("partial")
    stale[1].write_text("partial")
    atomic.staging_dir(target)
    atomic.write_atomic(tmp_path / "ckpt.pt", "x")
    with atomic.scratch_dir("e2micro-convert", parent=tmp_path):
        pass
    assert not any(p.exists() for p in stale) and live.is_dir()


def test_a_swapped_out_output_loses_only_converts_files(tmp_path):
    from convert.pipeline import _discard

    out, old = tmp_path / "out", tmp_path / ".out.staging-1-00aa11bb.tmp"
    out.mkdir()
    old.mkdir()
    (old / "model_int8.tflite").write_text("old model")
    (old / "added_meanwhile.txt").write_text("someone's")
    notes = _discard(old, out)
    kept = tmp_path / f"out.previous-{os.getpid()}"
    assert notes and str(kept) in notes[0] and not old.exists()
    assert os.listdir(kept) == ["added_meanwhile.txt"]


def test_racing_publishers_leave_one_complete_output(tmp_path):
    target = tmp_path / "out"
    a, b = atomic.staging_dir(target), atomic.staging_dir(target)
    (a / "who").write_text("a")
    (b / "who").write_text("b")
    atomic.publish_dir(a, target)
    atomic.publish_dir(b, target)
    assert (target / "who").read_text() == "b" and hidden(tmp_path) == []


def test_failed_publish_names_the_folder(tmp_path):
    target = tmp_path / "out"
    staging = atomic.staging_dir(target)
    shutil.rmtree(staging)
    with pytest.raises(atomic.WriteError, match=str(target)):
        atomic.publish_dir(staging, target)


# --------------------------------------------------------------------------------------------------
# 3, 4. Signals: SIGINT and SIGTERM stop the run, clean up, exit 130/143, and cannot be swallowed


def test_a_swallowed_interrupt_is_raised_again():
    before = signal.getsignal(signal.SIGINT)
    with interrupts.handled():
        try:  # what onnx2tf's bare `except:` blocks do to a Ctrl-C
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except:  # noqa: E722
            pass
        with pytest.raises(interrupts.Interrupted) as e:
            interrupts.check()
    assert e.value.exit_code == 130
    interrupts.check()  # outside: nothing pending
    assert signal.getsignal(signal.SIGINT) is before


def _wait_for(proc, prefix: str, seen: list[str], timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(prefix):
            return
        assert time.monotonic() < end, seen
    raise AssertionError(f"never printed {prefix!r}: {seen}")


def test_ctrl_c_during_onnx2tf_publishes_nothing(c4_checkpoint, converted_c4, demo_dir, tmp_path):
    out = Path(shutil.copytree(converted_c4, tmp_path / "c4_tflite"))  # a previous output stays as it was
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "convert", "tflite", str(c4_checkpoint), "--out", str(out),
                             "--parity-data", str(demo_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**ENV, "TMPDIR": str(tmp)}, cwd=tmp_path)
    seen: list[str] = []
    _wait_for(proc, "[5/10] onnx2tf", seen)
    time.sleep(3)  # inside onnx2tf
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, (seen, err[-2000:])
    assert "interrupted (SIGINT): nothing published" in err and "Traceback" not in err
    assert not any(ln.startswith("[6/10]") for ln in seen)
    for name in os.listdir(converted_c4):
        assert (out / name).read_bytes() == (converted_c4 / name).read_bytes(), name
    assert hidden(tmp_path) == [] and os.listdir(tmp) == []  # no staging, no scratch folder


def test_sigterm_and_sigint_during_fit_keep_and_say_what_was_saved(tiny_data, tmp_path):
    out = tmp_path / "m.pt"
    cmd = [sys.executable, "-m", "train.cli", "fit", "--data", str(tiny_data), "--out", str(out), *FIT]
    proc = subprocess.Popen(cmd + ["--epochs", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=ENV)
    seen: list[str] = []
    _wait_for(proc, "epoch 1/2", seen)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 143, err[-2000:]
    assert f"interrupted (SIGTERM): kept {out} (best epoch 1) and the training state" in err
    assert "after epoch 1/2" in err and "--resume" in err and "Traceback" not in err
    assert hidden(tmp_path) == []
    log = out.with_name("m.metrics.jsonl")
    assert [json.loads(ln)["epoch"] for ln in log.read_text().splitlines()] == [1]
    # 6. --resume refuses flags that contradict the stored run
    line = one_line_error(train_cli("fit", "--data", tiny_data, "--out", out, "--resume", "--lr", "0.1", "--group",
                                    "C8", "--no-progress"))
    assert "--lr 0.1 (the run has 0.002)" in line and "--group C8 (the run has C4)" in line
    # 9. a kill between the state and its log line: the next --resume writes the log from the state
    log.write_text("")
    proc = subprocess.Popen(cmd + ["--epochs", "3", "--resume"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)
    seen = []
    _wait_for(proc, "resuming after epoch 1/3", seen)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert any("extending the run from 2 to 3 epochs" in ln for ln in seen), seen
    assert "interrupted (SIGINT): kept" in err and "after epoch 1/3" in err
    assert [json.loads(ln)["epoch"] for ln in log.read_text().splitlines()] == [1]
    assert hidden(tmp_path) == []


# --------------------------------------------------------------------------------------------------
# 5. One line instead of a traceback


def test_eval_labels_outside_the_models_classes(c4_checkpoint, tmp_path):
    data = _data_with(tmp_path, "three", labels=2)
    line = one_line_error(train_cli("eval", c4_checkpoint, "--data", data, "--no-invariance"))
    assert "label 2" in line and "(0..1)" in line


@pytest.mark.parametrize("command", ["fit", "eval", "calibration", "parity"])
def test_h5_whose_x_is_a_group(command, c4_checkpoint, tmp_path):
    data = _data_with(tmp_path, "grouped", x_group=True)
    x_file = split_paths(data, "valid")[0]
    r = {"fit": lambda: train_cli("fit", "--data", data, "--out", tmp_path / "m.pt", *FIT),
         "eval": lambda: train_cli("eval", c4_checkpoint, "--data", data),
         "calibration": lambda: convert_cli("tflite", c4_checkpoint, "--out", tmp_path / "o", "--ranges", "data",
                                            "--calibration-data", x_file),
         "parity": lambda: convert_cli("tflite", c4_checkpoint, "--out", tmp_path / "o", "--parity-data", data)}[command]()
    assert "'x' is an HDF5 group, not a dataset" in one_line_error(r)
    assert "[1/10]" not in r.output  # 10. checked before the first stage
    assert not (tmp_path / "o").exists() and not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("device, message", [("foo", "--device 'foo': use auto, cpu or cuda"),
                                             ("cuda", "CUDA is not available here")])
def test_bad_device(device, message, tiny_data, tmp_path):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda is valid here")
    line = one_line_error(train_cli("fit", "--data", tiny_data, "--out", tmp_path / "m.pt", "--device", device, *FIT))
    assert message in line and not list(tmp_path.iterdir())


class _Code:
    def __reduce__(self):  # harmless, but code: a checkpoint never refers to a function
        return (os.getcwd, ())


@pytest.mark.parametrize("content, message", [
    ("random", "not a readable e2micro training state"),
    ("code", "it holds code, a reference to posix.getcwd"),
    ("truncated", "truncated or corrupt"),
])
def test_resume_from_a_bad_state_file(content, message, c4_checkpoint, tiny_data, tmp_path):
    out = tmp_path / "m.pt"
    state = out.with_name("m.last.pt")
    if content == "random":
        state.write_bytes(np.random.default_rng(0).bytes(4096))
    elif content == "code":
        torch.save({"format": "e2micro-train-state", "payload": _Code()}, state)
    else:
        state.write_bytes(c4_checkpoint.read_bytes()[:5000])
    line = one_line_error(train_cli("fit", "--data", tiny_data, "--out", out, "--resume", "--no-progress"))
    assert message in line and str(state) in line
    assert "weights_only" not in line and "safe_globals" not in line  # never advice to turn the safety off


@pytest.mark.parametrize("report", ["[1, 2]", '{"experiment": "mine"}', "not json"])
def test_edgetpu_never_rewrites_a_foreign_report(report, converted_c4, tmp_path):
    folder = tmp_path / "theirs"
    folder.mkdir()
    shutil.copy(converted_c4 / "model_int8.tflite", folder)
    (folder / "report.json").write_text(report)
    line = one_line_error(convert_cli("edgetpu", folder / "model_int8.tflite"))
    assert "report.json" in line and "not touched" in line
    assert (folder / "report.json").read_text() == report and sorted(os.listdir(folder)) == ["model_int8.tflite",
                                                                                             "report.json"]


def test_edgetpu_on_a_text_file(tmp_path):
    text = tmp_path / "model.tflite"
    text.write_text("hello, not a model\n")
    assert "not a TFLite model (no 'TFL3'" in one_line_error(convert_cli("edgetpu", text))
    assert sorted(os.listdir(tmp_path)) == ["model.tflite"]


def test_a_bug_keeps_its_traceback(c4_checkpoint, tmp_path, monkeypatch):
    import convert.pipeline

    def broken(*a, **k):
        raise KeyError("a bug")

    monkeypatch.setattr(convert.pipeline, "_run", broken)
    r = convert_cli("tflite", c4_checkpoint, "--out", tmp_path / "o")
    assert r.exit_code == 70 and "Traceback" in r.stderr and "KeyError" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: this is a bug in e2micro")
    assert not (tmp_path / "o").exists() and hidden(tmp_path) == []
    monkeypatch.setattr("e2micro.cli_errors.DEBUG", False)  # restored afterwards
    with pytest.raises(KeyError):  # --debug re-raises everything
        CliRunner().invoke(convert_app, ["--debug", "tflite", str(c4_checkpoint), "--out", str(tmp_path / "o")],
                           catch_exceptions=False)


# --------------------------------------------------------------------------------------------------
# 6. No silent wrong result


@pytest.mark.parametrize("label", [2, 255])
def test_fit_refuses_labels_beyond_the_classes(label, tmp_path):
    data = _data_with(tmp_path, "labels", labels=label)
    line = one_line_error(train_cli("fit", "--data", data, "--out", tmp_path / "m.pt", *FIT))
    assert f"label {label}" in line and "--num-classes" in line and not (tmp_path / "m.pt").exists()


def test_calibration_data_needs_ranges_data(c4_checkpoint, demo_dir, tmp_path):
    line = one_line_error(convert_cli("tflite", c4_checkpoint, "--out", tmp_path / "o", "--calibration-data", demo_dir))
    assert "--calibration-data is used only with --ranges data" in line


@pytest.mark.parametrize("ranges", ["distilled", "data"])
def test_bn_k_needs_ranges_bn(c4_checkpoint, demo_dir, tmp_path, ranges):
    data = ["--calibration-data", demo_dir] if ranges == "data" else []
    line = one_line_error(convert_cli("tflite", c4_checkpoint, "--out", tmp_path / "o", "--ranges", ranges,
                                      *data, "--bn-k", "4"))
    assert "--bn-k is used only with --ranges bn" in line and not (tmp_path / "o").exists()


@pytest.mark.parametrize("k", ["0", "-2", "inf"])
def test_bn_k_must_be_positive(c4_checkpoint, tmp_path, k):
    line = one_line_error(convert_cli("tflite", c4_checkpoint, "--out", tmp_path / "o", "--bn-k", k))
    assert f"--bn-k {float(k)}: use a positive number" in line and not (tmp_path / "o").exists()


def test_relative_data_path_in_a_checkpoint_is_not_guessed(c4_checkpoint, tmp_path):
    from convert.pipeline import ConvertOptions, validate

    ckpt = read_checkpoint(c4_checkpoint)
    ckpt["settings"] = {**(ckpt.get("settings") or {}), "data": "data/demo"}
    torch.save(ckpt, tmp_path / "rel.pt")
    (tmp_path / "data" / "demo").mkdir(parents=True)  # a folder of that name here: still not used
    lines: list[str] = []
    _, parity_dir = validate(ConvertOptions(checkpoint=tmp_path / "rel.pt"), tmp_path / "o", lines.append)
    assert parity_dir is None
    assert lines == ["note: parity figures on the built-in demo patches: the checkpoint records its data as the "
                     "relative path 'data/demo'; give --parity-data for others"]


def test_fit_never_overwrites_an_earlier_run_silently(c4_checkpoint, demo_dir):
    files = {p: p.read_bytes() for p in c4_checkpoint.parent.iterdir() if p.is_file()}
    line = one_line_error(train_cli("fit", "--data", demo_dir, "--out", c4_checkpoint, *FIT))
    assert "exists (an earlier run)" in line and "--resume" in line and "--force" in line
    assert {p: p.read_bytes() for p in c4_checkpoint.parent.iterdir() if p.is_file()} == files


# --------------------------------------------------------------------------------------------------
# 7. A hang: the group order is bounded


def test_large_group_is_refused_at_once(tiny_data, tmp_path, saved_c400):
    t = time.perf_counter()
    line = one_line_error(train_cli("fit", "--data", tiny_data, "--out", tmp_path / "m.pt", "--group", "C400"))
    assert "N must be at most 16" in line and time.perf_counter() - t < 30
    with pytest.raises(CheckpointError, match="at most 16"):
        load_model(saved_c400)


@pytest.fixture
def saved_c400(c4_checkpoint, tmp_path):
    ckpt = read_checkpoint(c4_checkpoint)
    ckpt["config"]["group"] = "C400"
    torch.save(ckpt, tmp_path / "c400.pt")
    return tmp_path / "c400.pt"


# --------------------------------------------------------------------------------------------------
# 10. Clear messages


def test_clear_messages_for_bad_files_and_options(c4_checkpoint, tiny_data, tmp_path):
    assert "is a directory, not a checkpoint file" in one_line_error(convert_cli("tflite", tmp_path))
    for args, option in ((["--limit", "0"], "--limit"), (["--seed", "-1"], None)):
        command = ["eval", c4_checkpoint, "--data", tiny_data] if option else \
                  ["fit", "--data", tiny_data, "--out", tmp_path / "m.pt"]
        r = train_cli(*command, *args)
        errors = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
        assert r.exit_code == 2 and len(errors) == 1 and "Traceback" not in r.output, r.output
        assert f"Invalid value for '{args[0]}'" in errors[0]
    (tmp_path / "dir.pt").mkdir()
    line = one_line_error(train_cli("fit", "--data", tiny_data, "--out", tmp_path / "dir.pt", *FIT))
    assert "is a directory: give the checkpoint's file name" in line  # before the first epoch, not after it
    ckpt = read_checkpoint(c4_checkpoint)
    ckpt["config"]["width"] = 0.5
    torch.save(ckpt, tmp_path / "wide.pt")
    with pytest.raises(CheckpointError, match=r"\(C4, width 0.5\): '.+' is \[\d+.*\] in the file, \[\d+.*\] in the model"):
        load_model(tmp_path / "wide.pt")


def test_json_has_no_nan(c4_checkpoint, tmp_path):
    data = _data_with(tmp_path, "one_class", labels=0)  # ROC AUC is undefined on one class
    r = train_cli("eval", c4_checkpoint, "--data", data, "--json", "--no-invariance", "--limit", "8")
    assert r.exit_code == 0, r.output

    def no_nan(name):
        raise AssertionError(f"{name} is not JSON")

    res = json.loads(r.stdout.strip().splitlines()[-1], parse_constant=no_nan)
    assert res["roc_auc"] is None and res["images"] == 8


def test_a_full_disk_names_the_file(tiny_data, tmp_path):
    """A file-size limit stands in for a full disk: the write fails with an OS error (EFBIG)."""
    import resource

    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    out = tmp_path / "m.pt"
    r = subprocess.run([sys.executable, "-m", "train.cli", "fit", "--data", str(tiny_data), "--out", str(out),
                        "--epochs", "1", *FIT], capture_output=True, text=True, env=ENV, preexec_fn=limit,
                       timeout=600)
    assert r.returncode == 1, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == f"error: cannot write {out}: File too large"
    assert "enforce fail" not in r.stderr and "Traceback" not in r.stderr
    assert not out.exists() and hidden(tmp_path) == []
