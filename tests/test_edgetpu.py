"""`convert edgetpu`: the checker's verdicts on the demo model (everything maps) and on tiny bad models
built with TensorFlow (a float op, a TRANSPOSE, a dynamic shape, a 5-D tensor); the command with and
without edgetpu_compiler (a fake one on PATH), its report and its errors."""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from convert import model_id
from convert.edgetpu.check import check, table_lines
from convert.edgetpu.command import edgetpu_command, register
from convert.edgetpu.rules import EDGETPU_OPS
from convert.errors import ConversionError
from convert.tflite_graph import Graph


def _tflite(fn, shape, int8: bool) -> bytes:
    import tensorflow as tf

    concrete = fn.get_concrete_function(tf.TensorSpec(shape, tf.float32))
    conv = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fn)
    if int8:
        static = [1 if d is None else d for d in shape]

        def representative():
            rng = np.random.default_rng(0)
            for _ in range(4):
                yield [rng.uniform(-1, 1, static).astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = conv.inference_output_type = tf.int8
    return conv.convert()


@pytest.fixture(scope="module")
def bad_models() -> dict[str, bytes]:
    """Each a few ops, converted in well under a second once TensorFlow is loaded."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf

    w = tf.constant(np.random.default_rng(1).normal(size=(3, 3, 3, 4)).astype(np.float32))

    @tf.function
    def conv_relu(x):
        return tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME"))

    @tf.function
    def with_transpose(x):
        y = tf.transpose(tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME")), [0, 2, 1, 3])
        return tf.nn.relu(tf.nn.conv2d(y, tf.ones((1, 1, 4, 4)), 1, "SAME"))

    @tf.function
    def five_d(x):
        return x * 2.0 + 1.0

    return {"float": _tflite(conv_relu, (1, 8, 8, 3), int8=False),
            "transpose": _tflite(with_transpose, (1, 8, 8, 3), int8=True),
            "dynamic": _tflite(conv_relu, (None, 8, 8, 3), int8=True),
            "5d": _tflite(five_d, (1, 2, 4, 4, 3), int8=True)}


def test_demo_model_maps_entirely(converted_c4):
    graph = Graph.load(converted_c4 / "model_int8.tflite")
    v = check(graph)
    assert v.ok and v.cut_at is None, v.summary()
    assert len(v.rows) == len(graph.ops) and all(r.maps and not r.reasons for r in v.rows)
    assert {r.op for r in v.rows} <= EDGETPU_OPS
    assert v.summary() == f"all {len(graph.ops)} ops map to the Edge TPU"
    d = v.to_dict()
    assert d["ok"] is True and d["cut_at"] is None and len(d["rows"]) == len(graph.ops)
    json.dumps(d)  # goes into report.json


def test_float_model_does_not_map(bad_models):
    v = check(Graph(bad_models["float"]))
    assert not v.ok and v.cut_at == 0
    assert any("is float32" in r for r in v.rows[0].reasons), v.rows[0].reasons
    assert "nothing runs on the Edge TPU" in v.summary()


def test_transpose_cuts_the_graph_where_it_is(bad_models):
    v = check(Graph(bad_models["transpose"]))
    assert [r.op for r in v.rows] == ["CONV_2D", "TRANSPOSE", "CONV_2D"]
    assert [r.maps for r in v.rows] == [True, False, True]
    assert v.cut_at == 1 and v.rows[1].reasons == ["TRANSPOSE is not in the Edge TPU's op table"]
    assert v.summary().endswith("ops 0..0 run on the Edge TPU, ops 1..2 on the CPU")
    status = [line.split()[2] for line in table_lines(v)[1:]]
    assert status == ["yes", "no", "cpu"]  # the last conv would map, but follows the cut


def test_dynamic_shape_does_not_map(bad_models):
    v = check(Graph(bad_models["dynamic"]))
    assert not v.ok and v.cut_at == 0
    assert any("dynamic shape [-1, 8, 8, 3]" in r for r in v.rows[0].reasons), v.rows[0].reasons


def test_five_d_tensor_does_not_map(bad_models):
    v = check(Graph(bad_models["5d"]))
    assert not v.ok and v.cut_at == 0 and not any(r.maps for r in v.rows)
    assert any("outside the innermost 3" in r for r in v.rows[0].reasons), v.rows[0].reasons
    assert not any("is float32" in r for r in v.rows[0].reasons)  # int8: only the shape is wrong


@pytest.fixture
def conversion(converted_c4, tmp_path):
    """A private copy of converted_c4: the command writes into its folder."""
    return Path(shutil.copytree(converted_c4, tmp_path / "c4_tflite"))


@pytest.fixture
def no_compiler(monkeypatch, tmp_path):
    empty = tmp_path / "empty_path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_command_without_compiler_prints_the_command_and_reports(conversion, no_compiler):
    lines: list[str] = []
    before = json.loads((conversion / "report.json").read_text())
    edgetpu_command(conversion / "model_int8.tflite", echo=lines.append)
    text = "\n".join(lines)
    model = conversion / "model_int8.tflite"
    assert f"edgetpu_compiler not found; run: edgetpu_compiler -s -o {conversion} {model}" in text
    assert "all " in text and "ops map to the Edge TPU" in text
    report = json.loads((conversion / "report.json").read_text())
    assert {k: v for k, v in report.items() if k != "edgetpu"} == before  # the rest untouched
    e = report["edgetpu"]
    assert e["ok"] is True and e["cut_at"] is None and e["compiler"] == {
        "found": False, "command": f"edgetpu_compiler -s -o {conversion} {model}"}
    assert not (conversion / "model_edgetpu.tflite").exists()
    edgetpu_command(model, echo=lines.append)  # again: report.md keeps one section
    assert (conversion / "report.md").read_text().count("## Edge TPU") == 1
    assert not list(conversion.glob(".*tmp*")) and not list(conversion.glob(".edgetpu-*"))


FAKE_COMPILER = """#!/bin/sh
# Stand-in for Coral's edgetpu_compiler: -s -o DIR MODEL -> DIR/<stem>_edgetpu.tflite and .log
[ -n "${FAIL:-}" ] && { echo "Edge TPU Compiler version 16.0.384591198"; echo "ERROR: $FAIL" >&2; exit 1; }
out=$3; model=$4; stem=$(basename "$model" .tflite)
cp "$model" "$out/${stem}_edgetpu.tflite"
printf 'Edge TPU Compiler version 16.0.384591198\\nInput: %s\\n' "$model" > "$out/${stem}_edgetpu.log"
echo "Number of operations that will run on Edge TPU: 42"
echo "Number of operations that will run on CPU: 0"
"""


@pytest.fixture
def fake_compiler(monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "edgetpu_compiler"
    exe.write_text(FAKE_COMPILER)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return exe


def test_command_with_compiler_keeps_model_log_and_c_array(conversion, fake_compiler, tmp_path):
    firmware = tmp_path / "dev_board_micro"
    firmware.mkdir()
    lines: list[str] = []
    entry = edgetpu_command(conversion / "model_int8.tflite", firmware=firmware, echo=lines.append)
    compiled = conversion / "model_edgetpu.tflite"
    assert compiled.read_bytes() == (conversion / "model_int8.tflite").read_bytes()  # what the fake wrote
    assert "Edge TPU Compiler version 16.0.384591198" in (conversion / "model_edgetpu.log").read_text()
    c = entry["compiler"]
    assert c["found"] and c["ok"] and c["version"] == "16.0.384591198" and c["ops_on_edgetpu"] == 42
    assert c["ops_on_cpu"] == 0
    assert any("warning: the compiler left ops on the CPU" in ln for ln in lines)  # the fake compiled nothing
    for folder in (conversion, firmware):
        cc = (folder / "model_edgetpu_data.cc").read_text()
        assert "alignas(16) const unsigned char g_model_edgetpu_data[]" in cc
        assert f"g_model_edgetpu_data_len = {compiled.stat().st_size};" in cc
        assert "extern const unsigned char g_model_edgetpu_data[];" in (folder / "model_edgetpu_data.h").read_text()
        sha = json.loads((conversion / "report.json").read_text())["checkpoint"]["sha256"]
        assert model_id.read(folder / "model_edgetpu_data.h") == model_id.read(folder / "model_edgetpu_data.cc") == sha
        assert f"#define E2MICRO_MODEL_EDGETPU_DATA_ID 0x{sha[:15]}ULL" in (folder / "model_edgetpu_data.h").read_text()
    assert json.loads((conversion / "report.json").read_text())["edgetpu"]["compiler"]["file"] == "model_edgetpu.tflite"
    assert not list(conversion.glob(".edgetpu-*"))


def test_compiler_failure_is_one_clear_error_and_leaves_nothing(conversion, fake_compiler, monkeypatch):
    monkeypatch.setenv("FAIL", "Model not quantized")
    with pytest.raises(ConversionError, match=r"edgetpu_compiler failed \(exit 1\): ERROR: Model not quantized"):
        edgetpu_command(conversion / "model_int8.tflite", echo=lambda s: None)
    assert not (conversion / "model_edgetpu.tflite").exists() and not list(conversion.glob(".edgetpu-*"))
    assert json.loads((conversion / "report.json").read_text())["edgetpu"]["compiler"]["ok"] is False


def test_cli_fails_with_one_line_error_on_a_model_that_does_not_map(bad_models, tmp_path, no_compiler):
    import typer
    from typer.testing import CliRunner

    app = typer.Typer()
    register(app)

    @app.callback()
    def _root():  # a group, as `convert` is
        pass

    model = tmp_path / "transpose.tflite"
    model.write_bytes(bad_models["transpose"])
    result = CliRunner().invoke(app, ["edgetpu", str(model)])
    assert result.exit_code == 1
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert errors == ["error: the model does not fully map to the Edge TPU: op #1 TRANSPOSE does not map "
                      "(TRANSPOSE is not in the Edge TPU's op table): ops 0..0 run on the Edge TPU, "
                      "ops 1..2 on the CPU"], result.output
    e = json.loads((tmp_path / "report.json").read_text())["edgetpu"]
    assert e["ok"] is False and e["cut_at"] == 1 and "compiler" not in e  # not compiled: nothing to gain
    result = CliRunner().invoke(app, ["edgetpu", str(tmp_path / "missing.tflite")])
    assert result.exit_code == 1 and "error:" in result.output and "no such file" in result.output


def test_checkpoint_target_reuses_its_own_conversion(c4_checkpoint, conversion, no_compiler):
    stamp = (conversion / "model_int8.tflite").stat().st_mtime_ns
    lines: list[str] = []
    entry = edgetpu_command(c4_checkpoint, out=conversion, echo=lines.append)
    assert entry["ok"] and any("converted from this checkpoint" in ln for ln in lines), lines
    assert (conversion / "model_int8.tflite").stat().st_mtime_ns == stamp
