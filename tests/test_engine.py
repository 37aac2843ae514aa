"""`convert engine`: the generated C is bit-identical to the tflite-micro interpreter (every demo
test image and its 90°/180°/270° rotations, every block output against LiteRT's reference
kernels), keeps the equivariant weight sharing it checked exactly, falls back to dense storage
where a weight breaks it, and fits the memory plan (ASan sees the arena at exactly its size).
Models: the constructed C4, D4 and conventional test models (width 0.25), the demo's model, C12 at
width 0.35, and C12 at full width (1.0: a 2.6 MB .tflite, ~40 s to convert) on 4 images and their
rotations. The conventional twin, C4 and D4 at width 1.0 get the same check in bench/engine.py
(`--models plain-w1.0,c4-w1.0,d4-w1.0`): three more full-width conversions would not fit `make
test`'s 25 minutes."""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from typer.testing import CliRunner

from convert.cli import app
from convert.engine import host
from convert.engine.command import engine_command
from convert.runtimes import TFLM, pixels_to_int8

ARENA = 8 << 20
TRACED = 8  # images whose every block output is compared (the outputs are compared on all)


def _images(demo_dir) -> np.ndarray:
    from convert import images

    return pixels_to_int8(images.from_path(demo_dir, "test", 10 ** 6, 95).x)  # the whole test split


def _engine(converted, out):
    rep = engine_command(converted / "model_int8.tflite", out, echo=lambda s: None)
    exe = host.build(out, out / "harness", trace=True)
    return rep, exe


@pytest.fixture(scope="module")
def c4_engine(converted_c4, tmp_path_factory):
    return _engine(converted_c4, tmp_path_factory.mktemp("eng_c4"))


@pytest.fixture(scope="module")
def plain_engine(converted_plain, tmp_path_factory):
    return _engine(converted_plain, tmp_path_factory.mktemp("eng_plain"))


@pytest.fixture(scope="module")
def converted_d4(construct, convert_checkpoint, tmp_path_factory):
    """A D4 model right by construction (see tests/conftest.py), converted by default."""
    d = tmp_path_factory.mktemp("d4")
    return convert_checkpoint(construct(d / "d4.pt", "D4"), d / "d4_tflite")


@pytest.fixture(scope="module")
def converted_c12(construct, convert_checkpoint, tmp_path_factory):
    """The demo's model (`make demo`: C12, width 0.35), right by construction, converted by default."""
    d = tmp_path_factory.mktemp("c12")
    return convert_checkpoint(construct(d / "c12.pt", "C12", width=0.35), d / "c12_tflite")


@pytest.fixture(scope="module")
def c12_engine(converted_c12, tmp_path_factory):
    return _engine(converted_c12, tmp_path_factory.mktemp("eng_c12"))


@pytest.fixture(scope="module")
def full_width(construct, convert_checkpoint, tmp_path_factory):
    """C12 at width 1.0 (the issue's 2.66 MB model), converted by default (parity on 2 images) → its engine."""
    d = tmp_path_factory.mktemp("w1_c12")
    conv = convert_checkpoint(construct(d / "w1.pt", "C12", width=1.0), d / "tflite", parity_images=2)
    return conv, _engine(conv, d / "engine")


@pytest.fixture(scope="module")
def d4_engine(converted_d4, tmp_path_factory):
    return _engine(converted_d4, tmp_path_factory.mktemp("eng_d4"))


def _check_bit_exact(converted, engine, demo_dir, invariant: bool, limit: int | None = None):
    from convert.engine.generate import generate
    from convert.tflite_graph import Graph

    rep, exe = engine
    model = (converted / "model_int8.tflite").read_bytes()
    classes = Graph(model).output().shape[-1]
    x = host.rotations(_images(demo_dir)[:limit])
    n = len(x) // 4
    with ThreadPoolExecutor(max_workers=1) as pool:  # the engine (a process) runs beside the interpreter
        engine_run = pool.submit(host.run, exe, x, classes)
        ref = TFLM(model, ARENA)(x)
        got = engine_run.result()
    bad = np.flatnonzero((got != ref).any(axis=1))
    assert bad.size == 0, f"{bad.size} of {len(x)} images differ from TFLM, first {bad[0]}"
    # every block output and the pooled vector, on a few unrotated images, against LiteRT's reference kernels
    plan = generate(Graph(model), None, ["a"] * classes).plan
    m = min(n, TRACED)
    _, trace = host.run(exe, x[:m], classes, trace=True)
    assert np.array_equal(trace, host.litert_trace(model, x[:m], plan.trace_tensors()))
    pooled = trace.reshape(m, -1)[:, -plan.head.conv.out_shape[2]:]
    assert len(np.unique(pooled, axis=0)) >= m - 1  # the images are told apart before the classifier
    if invariant:
        for k in range(1, 4):
            assert np.array_equal(got[k * n:(k + 1) * n], got[:n]), f"rotation {90 * k}° changed an output"


def test_c4_bit_exact_with_tflm(converted_c4, c4_engine, demo_dir):
    _check_bit_exact(converted_c4, c4_engine, demo_dir, invariant=True)


def test_plain_bit_exact_with_tflm(converted_plain, plain_engine, demo_dir):
    _check_bit_exact(converted_plain, plain_engine, demo_dir, invariant=False)


def test_d4_bit_exact_with_tflm(converted_d4, d4_engine, demo_dir):
    _check_bit_exact(converted_d4, d4_engine, demo_dir, invariant=True, limit=16)  # module-made: fewer images


def test_c12_bit_exact_with_tflm(converted_c12, c12_engine, demo_dir):
    _check_bit_exact(converted_c12, c12_engine, demo_dir, invariant=True)


def test_full_width_bit_exact_and_stored(full_width, demo_dir):
    """The issue's goal at full width: ≤ 1/8 of the dense int8 weights (2.66 MB .tflite → ≤ 400 KB)."""
    conv, engine = full_width
    _check_bit_exact(conv, engine, demo_dir, invariant=True, limit=4)
    t = _check_cyclic_storage(engine[0], 12)
    assert t["int8_weights_stored_bytes"] * 8 <= t["int8_weights_dense_bytes"]
    assert t["weights_bytes"] <= 400_000 < 2_000_000 < t["tflite_bytes"], t


def test_sanitized_build_matches(converted_c4, c4_engine, demo_dir, tmp_path):
    """ASan + UBSan, the arena malloc'd at exactly E2M_ARENA_BYTES: no access outside the plan."""
    out = c4_engine[1].parent
    exe = host.build(out, tmp_path / "asan", extra=host.SANITIZE)
    x = host.rotations(_images(demo_dir)[:2])
    assert np.array_equal(host.run(exe, x, 2), TFLM((converted_c4 / "model_int8.tflite").read_bytes(), ARENA)(x))


def _check_cyclic_storage(rep, n: int) -> dict:
    """C_N's sharing kept exactly where the model has it: every 1×1 conv between fields stored N-fold
    smaller (circulant), every depthwise filter and the stem 4-fold (rot90 orbits: exact for the 90°
    multiples only), the classifier tied; the arena plus input ≤ 1/4 of TFLM's arena. The totals."""
    forms = {r["layer"]: r for r in rep["layers"]}
    assert rep["dense_fallbacks"] == [] and rep["symmetry"] == f"C{n}" and rep["field_size"] == n
    assert forms["stem"]["form"] == "rot90 orbit" and forms["head.fc"]["form"] == "tied"
    for name, r in forms.items():
        if name.endswith((".expand", ".project")) or name == "head.conv":
            assert r["form"] == "circulant" and r["weight_bytes"] * n == r["dense_weight_bytes"], r
        if name.endswith(".dw") or name == "stem":
            assert r["form"] == "rot90 orbit" and r["weight_bytes"] * 4 == r["dense_weight_bytes"], r
    t = rep["totals"]
    assert t["arena_plus_input_bytes"] * 4 <= t["tflm_arena_bytes"]
    assert t["input_bytes"] == 95 * 95 * 3
    return t


def test_c4_storage_and_memory(c4_engine):
    t = _check_cyclic_storage(c4_engine[0], 4)
    assert t["int8_weights_stored_bytes"] * 3.5 <= t["int8_weights_dense_bytes"]  # ≈ 1/4 for C4


def test_c12_storage_and_memory(c12_engine):
    """The issue's goal for the demo's model: int8 weights ≤ 1/8 of dense (the depthwise filters,
    4-fold only, keep it above 1/12)."""
    t = _check_cyclic_storage(c12_engine[0], 12)
    assert t["int8_weights_stored_bytes"] * 8 <= t["int8_weights_dense_bytes"]


def test_plain_is_dense_and_says_nothing_failed(plain_engine):
    rep = plain_engine[0]
    assert {r["form"] for r in rep["layers"]} == {"dense"}
    assert rep["dense_fallbacks"] == [] and rep["symmetry"] == "none"
    assert rep["totals"]["int8_weights_stored_bytes"] == rep["totals"]["int8_weights_dense_bytes"]
    assert rep["totals"]["arena_plus_input_bytes"] * 4 <= rep["totals"]["tflm_arena_bytes"]


def test_d4_storage(d4_engine):
    rep = d4_engine[0]
    forms = {r["layer"]: r for r in rep["layers"]}
    assert forms["head.fc"]["form"] == "tied" and forms["stem"]["form"] == "rot90 orbit"
    assert all(r["form"] == "rot90 orbit" for n, r in forms.items() if n.endswith(".dw"))
    # 1×1 convs between D4 fields follow D4's multiplication table, not a cyclic shift
    assert all(r["form"] == "group table" for n, r in forms.items() if n.endswith((".expand", ".project")))
    assert forms["head.conv"]["form"] == "group table" and rep["dense_fallbacks"] == []


def test_perturbed_weight_falls_back_to_dense(converted_c4, demo_dir, tmp_path):
    """Negative control: one int8 weight changed in a 1×1 conv and one in a depthwise filter."""
    from convert.engine.plan import build_plan
    from convert.tflite_graph import Graph

    raw = bytearray((converted_c4 / "model_int8.tflite").read_bytes())
    g = Graph(raw)  # tensor data are views into raw
    plan = build_plan(g)
    pw, dw = plan.blocks[2].expand, plan.blocks[3].dw
    for op_index, pos in ((pw.op_index, (1, 0, 0, 2)), (dw.op_index, (0, 1, 2, 1))):
        w = g.tensors[g.ops[op_index].inputs[1]].data
        w[pos] = w[pos] + 1 if w[pos] < 127 else w[pos] - 1
    (tmp_path / "model_int8.tflite").write_bytes(bytes(raw))
    (tmp_path / "report.json").write_text((converted_c4 / "report.json").read_text())
    rep = engine_command(tmp_path / "model_int8.tflite", tmp_path, echo=lambda s: None)
    assert rep["dense_fallbacks"] == sorted([pw.name, dw.name], key=[r["layer"] for r in rep["layers"]].index)
    why = {r["layer"]: r["dense_because"] for r in rep["layers"]}
    assert "circulant" in why[pw.name] and "rotated" in why[dw.name]
    assert pw.name in (tmp_path / "engine_report.md").read_text()
    exe = host.build(tmp_path, tmp_path / "harness")
    x = host.rotations(_images(demo_dir)[:4])
    assert np.array_equal(host.run(exe, x, 2), TFLM(bytes(raw), ARENA)(x))


def test_sources_are_self_contained(converted_c4, c4_engine, tmp_path):
    out = c4_engine[1].parent
    engine_command(converted_c4 / "model_int8.tflite", tmp_path, echo=lambda s: None)
    for name in ("e2m_model.h", "e2m_model.c", "engine_report.json"):  # same model, same bytes
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    h, c = (out / "e2m_model.h").read_text(), (out / "e2m_model.c").read_text()
    for macro in ("E2M_INPUT_BYTES 27075", "E2M_OUTPUT_BYTES 2", "E2M_ARENA_BYTES", "E2M_OUTPUT_SCALE",
                  "E2M_OUTPUT_ZERO_POINT", "E2M_LABELS {\"normal\", \"tumour\"}"):
        assert f"#define {macro}" in h
    assert "int e2m_invoke(const int8_t *input, int8_t *output, uint8_t *arena);" in h
    assert int(re.search(r"E2M_ARENA_BYTES (\d+)", h).group(1)) == c4_engine[0]["totals"]["arena_bytes"]
    includes = set(re.findall(r'#include [<"]([^>"]+)[>"]', c))
    assert includes == {"e2m_model.h", "stddef.h", "stdint.h", "string.h"}
    assert not re.search(r"\b(malloc|calloc|free)\s*\(", c)


def test_cli_bad_inputs(converted_c4, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    cases = [[str(tmp_path / "missing.tflite")], [str(bad)],
             [str(converted_c4 / "model_float.tflite"), "--out", str(tmp_path / "o")],
             [str(converted_c4 / "model_int8.tflite"), "--out", str(tmp_path / "o2"), "--firmware", str(bad)]]
    for args in cases:
        r = CliRunner().invoke(app, ["engine", *args])
        assert r.exit_code == 1, args
        assert r.output.strip().startswith("error:") and len(r.output.strip().splitlines()) == 1, r.output
        assert "Traceback" not in r.output


@pytest.mark.parametrize("cpu", ["cortex-m4", "cortex-m55"])
def test_qemu_bit_exact(converted_c4, c4_engine, demo_dir, cpu, tmp_path):
    """arm-none-eabi-gcc + picolibc semihosting on QEMU (mps2-an386 / mps3-an547), -icount shift=0."""
    from convert.engine import qemu

    exe = qemu.build(c4_engine[1].parent, cpu, tmp_path / "engine.elf")
    x = host.rotations(_images(demo_dir)[:1])
    r = qemu.run(exe, cpu, x)
    assert np.array_equal(r["scores"], TFLM((converted_c4 / "model_int8.tflite").read_bytes(), ARENA)(x))
    assert np.all(r["instructions"] > 1e6)  # counted, and plausible for ~30 M multiply-accumulates
    assert np.ptp(r["instructions"]) < 1e-3 * r["instructions"].mean()  # no data-dependent branches to speak of
    assert 256 < r["stack_bytes"] <= 8192, r["stack_bytes"]  # measured (painted stack), not the unpainted margin


def test_engine_sketch_on_qemu(converted_c4, c4_engine, tmp_path):
    """The firmware sketch built with the engine instead of TFLM (same image provider, responder,
    platform hooks) runs on the emulated Cortex-M4 and reproduces the converter's reference scores."""
    from convert.engine import qemu

    elf = qemu.build_sketch(converted_c4, c4_engine[1].parent, "cortex-m4", tmp_path)
    text = qemu.run_sketch(elf, "cortex-m4")
    assert "check: int8 scores equal the converter's reference" in text, text
    assert qemu.size(elf)["ram"] < c4_engine[0]["totals"]["tflm_arena_bytes"]
