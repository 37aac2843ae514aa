"""report.json → report.md and its plots: the per-layer table, the arena figures, the plots, and
report.md as a pure rendering of report.json (also after `convert edgetpu` adds its verdict)."""
from __future__ import annotations

import json
import math
import shutil
import struct

import pytest

from convert.images import from_path
from convert.layers import nbytes
from convert.outputs import TFLITE_FILES
from convert.plots import PLOTS, render_plots
from convert.report import render
from convert.tflite_graph import Graph
from e2micro.errors import BadInput


def _report(folder):
    return json.loads((folder / "report.json").read_text())


def test_one_row_per_op_with_its_shape_bytes_and_macs(converted_c4):
    r = _report(converted_c4)
    g = Graph.load(converted_c4 / "model_int8.tflite")
    rows = r["layers"]["rows"]
    assert [(row["index"], row["op"]) for row in rows] == [(op.index, op.name) for op in g.ops]
    assert sum(row["macs"] for row in rows) == r["macs"]["total"] > 0
    for row, op in zip(rows, g.ops):
        out = g.tensors[op.outputs[0]]
        assert row["output_shape"] == list(out.shape) and row["activation_bytes"] == math.prod(out.shape)  # int8
        consts = [g.tensors[i] for i in op.inputs if i >= 0 and g.tensors[i].is_constant]
        assert row["weight_bytes"] == sum(t.data.nbytes for t in consts)
    conv = next(row for row in rows if row["op"] == "CONV_2D")
    assert conv["weight_bytes"] > 0 and conv["macs"] > 0


def test_arena_in_use_is_bounded_by_the_op_and_by_the_measured_arena(converted_c4, demo_dir):
    from tflite_micro.python.tflite_micro import runtime

    r = _report(converted_c4)
    g = Graph.load(converted_c4 / "model_int8.tflite")
    measured = r["arena"]["measured_bytes"]
    rows = r["layers"]["rows"]
    for row, op in zip(rows, g.ops):  # at least the op's own activations, at most what TFLM needs
        own = {i for i in op.inputs + op.outputs if i >= 0 and not g.tensors[i].is_constant}
        assert sum(nbytes(g.tensors[i]) for i in own) <= row["arena_in_use_bytes"] <= measured
        assert row["largest_live_tensor"]["bytes"] <= row["arena_in_use_bytes"]
    model = (converted_c4 / "model_int8.tflite").read_bytes()
    runtime.Interpreter.from_bytes(model, arena_size=measured)  # the bisection's answer, to the byte
    with pytest.raises(RuntimeError):
        runtime.Interpreter.from_bytes(model, arena_size=measured - 1)
    # the values the plot sets against the int8 ranges are those of the parity images
    x = from_path(demo_dir, "test", r["parity"]["images"], 95).x
    assert r["observed_ranges"]["ranges"]["image"] == [float(x.min()), float(x.max())]


def test_plots_are_pngs_drawn_from_report_json_and_shown_in_report_md(converted_c4):
    r = _report(converted_c4)
    md = (converted_c4 / "report.md").read_text()
    drawn = render_plots(r)
    assert set(drawn) == set(PLOTS) and set(PLOTS) <= set(TFLITE_FILES)
    for name in PLOTS:
        data = (converted_c4 / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        width, height = struct.unpack(">II", data[16:24])
        assert width > 400 and height > 200
        assert f"]({name})" in md and r["files"][name] == len(data)
        assert drawn[name] == data, name  # a function of report.json alone
        assert b"Software" not in data  # no version stamp: same checkpoint, same bytes


def test_report_md_is_rendered_from_report_json(converted_c4):
    r = _report(converted_c4)
    md = (converted_c4 / "report.md").read_text()
    assert render(r) == md
    assert "## Layers" in md and "| # | op | output | MACs |" in md
    assert md.count("\n| ") >= len(r["layers"]["rows"]) + len(r["quantization"])


def test_edgetpu_verdict_re_renders_report_md(converted_c4, tmp_path, monkeypatch):
    from convert.edgetpu.command import edgetpu_command

    folder = shutil.copytree(converted_c4, tmp_path / "c4_tflite")
    empty = tmp_path / "empty_path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no edgetpu_compiler: the check alone
    before = (folder / "report.md").read_text()
    for _ in range(2):
        edgetpu_command(folder / "model_int8.tflite", echo=lambda s: None)
        r = _report(folder)
        md = (folder / "report.md").read_text()
        assert "edgetpu" in r and md == render(r) and md.count("## Edge TPU") == 1
        assert md.startswith(before)  # the conversion's part unchanged
    for name in PLOTS:
        assert (folder / name).read_bytes() == (converted_c4 / name).read_bytes()


def test_edgetpu_never_overwrites_a_foreign_report_md(converted_c4, tmp_path, monkeypatch):
    from convert.edgetpu.command import edgetpu_command

    monkeypatch.setenv("PATH", str(tmp_path))
    shutil.copy(converted_c4 / "model_int8.tflite", tmp_path / "model_int8.tflite")
    (tmp_path / "report.md").write_text("my notes")
    with pytest.raises(BadInput, match="report.md was not written by e2micro"):
        edgetpu_command(tmp_path / "model_int8.tflite", echo=lambda s: None)
    assert (tmp_path / "report.md").read_text() == "my notes" and not (tmp_path / "report.json").exists()
