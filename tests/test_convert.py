"""`convert tflite`: the output contract, traceable int8 parameters, determinism and clean failures."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convert.cli import app
from convert.errors import ConversionError
from convert.ops_check import ALLOWED, check_ops
from convert.quantize import expected_quantization
from convert.outputs import TFLITE_FILES
from convert.pipeline import ConvertOptions, convert_tflite
from convert.tflite_graph import Graph

ROOT = Path(__file__).resolve().parents[1]
EXPECTED_FILES = set(TFLITE_FILES)  # the one list (tests/test_manifest.py checks every other copy against it)


def test_output_files_and_op_contract(converted_c4):
    assert {p.name for p in converted_c4.iterdir()} == EXPECTED_FILES
    q = Graph.load(converted_c4 / "model_int8.tflite")
    f = Graph.load(converted_c4 / "model_float.tflite")
    assert set(q.histogram()) == {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MUL", "MEAN", "FULLY_CONNECTED"}
    assert set(f.histogram()) <= set(ALLOWED)
    inp, out = q.input(), q.output()
    assert (inp.shape, inp.dtype, float(inp.scale[0]), int(inp.zero_point[0])) == ((1, 95, 95, 3), "int8", 1.0, -128)
    assert out.dtype == "int8" and out.shape == (1, 2)
    assert (f.input().shape, f.input().dtype) == ((1, 95, 95, 3), "float32")
    for op in q.ops:  # weights int8 per-channel, biases int32, every activation int8
        for i in op.inputs + op.outputs:
            t = q.tensors[i]
            assert t.dtype == ("int32" if t.is_constant and len(t.shape) == 1 and op.name != "MEAN" else "int8") \
                or (op.name == "MEAN" and t.is_constant), (op.name, t.name, t.dtype)
            assert len(t.shape) <= 4
        if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            assert q.tensors[op.inputs[1]].scale.size > 1  # per-channel weights


def test_every_scale_traces_to_the_ranges_table(converted_c4):
    r = json.loads((converted_c4 / "report.json").read_text())
    q = Graph.load(converted_c4 / "model_int8.tflite")
    ranges = r["ranges"]["ranges"]
    activations = {i for op in q.ops for i in op.inputs + op.outputs if not q.tensors[i].is_constant}
    traced = {row["tensor"] for row in r["quantization"]}
    assert traced == activations  # every activation tensor of the int8 file is in the table's mapping
    for row in r["quantization"]:
        t = q.tensors[row["tensor"]]
        scale, zp = expected_quantization(*ranges[row["key"]])
        assert abs(float(t.scale[0]) - scale) <= 1e-6 * scale and abs(int(t.zero_point[0]) - zp) <= 1


def test_c_sources_hold_the_model(converted_c4):
    model = (converted_c4 / "model_int8.tflite").read_bytes()
    cc = (converted_c4 / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_model_data[]" in cc
    data = bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", cc))
    assert data == model and f"g_model_data_len = {len(model)};" in cc
    ops = (converted_c4 / "model_ops.h").read_text()
    registered = re.findall(r"resolver\.(Add\w+)\(\)", ops)
    assert sorted(registered) == sorted(["AddConv2D", "AddDepthwiseConv2D", "AddAdd", "AddMul", "AddMean",
                                         "AddFullyConnected"])
    assert "MicroMutableOpResolver<kModelOpCount>" in ops and f"kModelOpCount = {len(registered)}" in ops
    settings = (converted_c4 / "model_settings.h").read_text()
    assert "kInputZeroPoint = -128" in settings and "kNumRows = 95" in settings
    assert 'kCategoryLabels[kCategoryCount] = {"normal", "tumour"}' in settings


def test_arena_is_measured_with_tflm(converted_c4):
    from tflite_micro.python.tflite_micro import runtime

    r = json.loads((converted_c4 / "report.json").read_text())
    used, size = r["arena"]["measured_bytes"], r["arena"]["tensor_arena_size"]
    assert f"kTensorArenaSize = {size};" in (converted_c4 / "model_settings.h").read_text()
    assert used < size <= used * 1.25 + 32 * 1024  # a small margin, not a guess
    model = (converted_c4 / "model_int8.tflite").read_bytes()
    runtime.Interpreter.from_bytes(model, arena_size=size).invoke()
    with pytest.raises(RuntimeError):  # the measurement is tight: a little less fails
        runtime.Interpreter.from_bytes(model, arena_size=used - 4096).invoke()


def test_report(converted_c4):
    r = json.loads((converted_c4 / "report.json").read_text())
    assert r["files"]["model_int8.tflite"] == (converted_c4 / "model_int8.tflite").stat().st_size
    assert r["ops"] == Graph.load(converted_c4 / "model_int8.tflite").histogram()
    assert r["macs"]["total"] > r["macs"]["CONV_2D"] > 0
    assert r["input"]["scale"] == 1.0 and r["input"]["zero_point"] == -128
    p = r["parity"]
    assert p["images"] == 8 and p["rot90_bitexact_rate_tflm"] == 1.0 and p["tflm_vs_litert_max_lsb"] == 0
    assert p["float_vs_torch_max_abs_logit"] < 1e-4
    md = (converted_c4 / "report.md").read_text()
    assert "Activation ranges" in md and "blocks.0.dw" in md


def test_no_network_during_conversion(c4_checkpoint, converted_c4, demo_dir, tmp_path):
    """A real conversion where no socket can connect (a network namespace without interfaces, else
    socket creation refused), with onnxsim on PATH and another thread count, into a folder that
    holds a foreign file (--force): it completes, keeps the foreign file, and the same checkpoint
    gives byte-identical files (those of the in-process `converted_c4`)."""
    out = tmp_path / "forced"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "model_edgetpu.tflite").write_bytes(b"an earlier conversion's")  # convert's own: goes
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "onnxsim").exists()  # onnx2tf would run it from PATH: the conversion must not
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1",
           "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
    cmd = [sys.executable, "-m", "convert", "tflite", str(c4_checkpoint), "--out", str(out), "--parity-data",
           str(demo_dir), "--parity-images", "8", "--force", "--quiet"]
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        cmd = ["unshare", "-n", *cmd]
        probe = [sys.executable, "-c", "import socket; socket.create_connection(('192.0.2.1', 80), timeout=2)"]
        assert subprocess.run(["unshare", "-n", *probe], capture_output=True).returncode != 0
    else:
        site = tmp_path / "site"
        site.mkdir()
        (site / "sitecustomize.py").write_text(NO_SOCKETS)
        env["PYTHONPATH"] = f"{site}{os.pathsep}{ROOT}"
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (out / "notes.txt").read_text() == "mine" and not (out / "model_edgetpu.tflite").exists()
    for name in EXPECTED_FILES:
        assert (out / name).read_bytes() == (converted_c4 / name).read_bytes(), name


NO_SOCKETS = """import socket
class _NoNetwork(socket.socket):
    def __init__(self, family=-1, *a, **k):
        if family in (socket.AF_INET, socket.AF_INET6, -1):
            raise OSError("network disabled for this test")
        super().__init__(family, *a, **k)
socket.socket = _NoNetwork
"""


def _cli(*args):
    return CliRunner().invoke(app, ["tflite", *map(str, args)])


def test_bad_checkpoint_one_line_no_output(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    r = _cli(bad, "--out", tmp_path / "out")
    assert r.exit_code == 1 and r.stderr.startswith("error:") and len(r.stderr.strip().splitlines()) == 1
    assert "weights_only" not in r.stderr  # no advice to unpickle an unknown file
    r = _cli(tmp_path / "missing.pt", "--out", tmp_path / "out")
    assert r.exit_code == 1 and "no such checkpoint" in r.output
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def test_unwritable_directory(c4_checkpoint, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = _cli(c4_checkpoint, "--out", blocker / "out")
    assert r.exit_code == 1 and "cannot write" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_failed_stage_leaves_nothing_and_keeps_previous_output(c4_checkpoint, converted_c4, demo_dir, tmp_path,
                                                              monkeypatch):
    import convert.arena

    out = Path(shutil.copytree(converted_c4, tmp_path / "out"))  # a previous output

    def fail(*a, **k):
        raise ConversionError("TFLM failed to allocate tensors")

    monkeypatch.setattr(convert.arena, "measure_arena", fail)
    with pytest.raises(ConversionError, match="allocate"):
        convert_tflite(ConvertOptions(checkpoint=c4_checkpoint, out=out, parity_data=demo_dir, parity_images=2),
                       echo=lambda s: None)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging directory left
    for name in EXPECTED_FILES:
        assert (out / name).read_bytes() == (converted_c4 / name).read_bytes(), name


def test_op_checker_names_unsupported_ops(converted_c4):
    g = Graph.load(converted_c4 / "model_int8.tflite")
    check_ops(g, "demo")  # passes
    g.ops[3].name = "TRANSPOSE"
    with pytest.raises(ConversionError, match="unsupported op TRANSPOSE"):
        check_ops(g, "demo")


def test_default_is_data_free_dfq(converted_c4):
    r = json.loads((converted_c4 / "report.json").read_text())
    assert r["ranges"]["method"] == "bn" and "source" not in r["ranges"]["notes"]
    assert r["dfq"]["steps"] == ["equalize", "absorb_high_biases", "correct_bias"] and r["dfq"]["relu6"] == "keep"
    assert r["dfq"]["per_channel"] is True
    effect = {e["step"]: e for e in r["dfq"]["effect"]}
    assert list(effect) == r["dfq"]["steps"]
    # a ReLU6 network keeps its function: equalization and absorption find nothing they may rescale
    assert effect["equalize"]["max_abs_logit_change"] == 0 == effect["absorb_high_biases"]["max_abs_logit_change"]
    assert set(op.fused_activation for op in Graph.load(converted_c4 / "model_int8.tflite").ops) <= {"NONE", "RELU6"}


def test_step_flags_and_no_image_reaches_the_ranges(c4_checkpoint, demo_dir, tmp_path, monkeypatch):
    import calibration.ranges

    def no_images(*a, **k):
        raise AssertionError("images were used for the ranges")

    monkeypatch.setattr(calibration.ranges, "observe", no_images)
    monkeypatch.chdir(tmp_path)  # relative paths too (onnx2tf runs in its own working directory)
    out = tmp_path / "flags"
    r = _cli(c4_checkpoint, "--out", "flags", "--no-equalize", "--no-absorb", "--per-tensor", "--parity-data",
             demo_dir, "--parity-images", "2", "--quiet")
    assert r.exit_code == 0, r.output
    rep = json.loads((out / "report.json").read_text())
    assert rep["dfq"]["steps"] == ["correct_bias"] and rep["dfq"]["per_channel"] is False
    q = Graph.load(out / "model_int8.tflite")
    weights = [q.tensors[op.inputs[1]] for op in q.ops if op.name in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert weights and all(t.scale.size == 1 for t in weights)  # per-tensor
    # without equalization nothing is rescaled, so every ReLU6 stays
    assert "RELU" not in {op.fused_activation for op in q.ops} and "RELU6" in {op.fused_activation for op in q.ops}


@pytest.mark.parametrize("args, message", [
    (["--ranges", "data"], "--calibration-data"),
    (["--ranges", "magic"], "unknown ranges method"),
    (["--relu6", "clip"], "relu6 must be one of"),
])
def test_bad_options(c4_checkpoint, tmp_path, args, message):
    r = _cli(c4_checkpoint, "--out", tmp_path / "o", *args)
    assert r.exit_code == 1 and message in r.stderr and not (tmp_path / "o").exists()


def test_one_op_table_for_readme_checker_map_resolver_and_edge_tpu():
    from pathlib import Path

    from convert import c_sources, tensor_map
    from convert.edgetpu.rules import EDGETPU_OPS
    from convert.op_table import OPS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    line = readme[readme.index("- **Ops**"):readme.index("- **Activation ranges**")]
    listed = [w.strip() for w in line.split("):", 1)[1].split("—")[0].split(",")]
    assert listed == list(OPS)
    assert set(ALLOWED) == set(OPS) == set(c_sources.RESOLVER) == set(tensor_map.KINDS) | set(tensor_map.ALIASES)
    assert set(OPS) <= EDGETPU_OPS


def test_an_op_outside_the_contract_is_named_before_the_tensor_map(converted_c4, c4_checkpoint, tmp_path, monkeypatch):
    """A SOFTMAX in the graph fails with the op check's message, not the tensor map's."""
    import convert.tensor_map
    from convert.tflite_graph import Graph as _Graph

    real = _Graph.__init__

    def with_softmax(self, model_bytes):
        real(self, model_bytes)
        self.ops[-1].name = "SOFTMAX"

    monkeypatch.setattr(_Graph, "__init__", with_softmax)
    monkeypatch.setattr(convert.tensor_map, "map_tensors", lambda *a: pytest.fail("the tensor map ran first"))
    with pytest.raises(ConversionError, match="unsupported op SOFTMAX"):
        convert_tflite(ConvertOptions(checkpoint=c4_checkpoint, out=tmp_path / "o", parity_images=2),
                       echo=lambda s: None)


def test_onnx_export_accepts_parameters_the_exporter_shares(tmp_path):
    """Bit-identical parameters (here two layers' biases) are stored once, behind an Identity node:
    not computation, so the point naming must not take it for an unexpected op."""
    import torch

    from calibration.fold import fold_all
    from convert.onnx_export import export_onnx
    from train.config import ModelConfig
    from train.model import model_from_config
    from train.model.constructed import set_bn_statistics

    torch.manual_seed(0)
    plain = fold_all(set_bn_statistics(model_from_config(ModelConfig(group=None, width=0.25))).export())
    a, b = plain.blocks[2].expand.conv, plain.blocks[3].expand.conv
    with torch.no_grad():
        b.bias.copy_(a.bias)
    proto = export_onnx(plain, tmp_path / "m.onnx")
    assert any(n.op_type == "Identity" for n in proto.graph.node)  # the case this test is about
    assert {"blocks.2.expand", "blocks.3.expand"} <= {o for n in proto.graph.node for o in n.output}
