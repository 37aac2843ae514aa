"""The import graph matches the floors: each layer imports only the layers below it. The plain
model (train.plain) is the format every later stage consumes, so it sits under train.nn and
train.model, and calibration/ reads it without knowing e2cnn or the equivariant model."""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("train", "convert", "calibration", "e2micro")
BASE = {"e2micro", "train"}  # train/__init__: the version string only
# layer → the layers it may import (functions' own imports included)
ALLOWED = {
    "e2micro": set(),
    "train.groups": BASE, "train.data": BASE, "train.distributed": BASE,
    "train.config": BASE | {"train.groups"},
    "train.plain": BASE | {"train.config", "train.groups"},
    "train.nn": BASE | {"train.plain", "train.config", "train.groups"},
    "train.model": BASE | {"train.nn", "train.plain", "train.config", "train.groups"},
    "train.checkpoint": BASE | {"train.model", "train.plain", "train.config", "train.groups"},
    "train.evaluate": BASE | {"train.checkpoint", "train.data", "train.model", "train.nn", "train.plain",
                              "train.config", "train.groups"},
    "train.fit": BASE | {"train.checkpoint", "train.data", "train.distributed", "train.model", "train.plain",
                         "train.config", "train.groups"},
    "train.cli": BASE | {"train.checkpoint", "train.data", "train.evaluate", "train.fit", "train.config",
                         "train.groups"},
    "calibration": BASE | {"train.plain", "train.config", "train.groups"},
    "convert": BASE | {"calibration", "train.checkpoint", "train.config", "train.data", "train.groups", "train.plain"},
}


def _module(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    is_pkg = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_pkg else parts), is_pkg


def layer(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "train" and len(parts) > 1 else parts[0]


def imports(path: Path) -> set[str]:
    mod, is_pkg = _module(path)
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                out.add(".".join(base + ([node.module] if node.module else [])))
            else:
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def graph() -> dict[str, set[str]]:
    g = defaultdict(set)
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            src = layer(_module(p)[0])
            for target in imports(p):
                dst = layer(target)
                if dst.split(".")[0] in PACKAGES and dst != src:
                    g[src].add(dst)
    return g


def test_every_layer_imports_only_the_floors_below():
    g = graph()
    assert set(g) <= set(ALLOWED), f"layers without a rule: {sorted(set(g) - set(ALLOWED))}"
    bad = {src: sorted(dst - ALLOWED[src]) for src, dst in g.items() if dst - ALLOWED[src]}
    assert not bad, f"imports that go up or sideways: {bad}"


def test_the_plain_model_knows_nothing_of_e2cnn_or_the_layers_above():
    for p in (ROOT / "train" / "plain").rglob("*.py"):
        assert not any(t.split(".")[0] == "e2cnn" for t in imports(p)), p
    assert "train.plain" in graph()["train.nn"] and "train.plain" in graph()["calibration"]


def test_calibration_names_no_onnx_op():
    """Points have kinds; which ONNX ops compute a kind is convert/onnx_export.py's business alone."""
    from calibration.points import KINDS
    from convert.onnx_export import ACTIVATIONS, PRODUCERS
    from convert.op_table import OPS

    onnx_ops = {op for ops in (*PRODUCERS.values(), *ACTIVATIONS.values()) for op in ops}
    for p in (ROOT / "calibration").rglob("*.py"):
        names = {n.value for n in ast.walk(ast.parse(p.read_text())) if isinstance(n, ast.Constant)}
        assert not names & onnx_ops, f"{p.name} names ONNX ops {sorted(names & onnx_ops)}"
    assert set(PRODUCERS) == set(KINDS)
    assert {k for op in OPS.values() for k in op.kinds} == set(KINDS) - {"input"}


def test_one_atomic_publisher():
    """Files are published by e2micro/atomic.py alone: no other module replaces files itself."""
    bad = []
    for pkg in PACKAGES + ("bench", "firmware"):
        for p in (ROOT / pkg).rglob("*.py"):
            if p == ROOT / "e2micro" / "atomic.py":
                continue
            for n in ast.walk(ast.parse(p.read_text())):
                if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "replace"
                        and isinstance(n.func.value, ast.Name) and n.func.value.id == "os"):
                    bad.append(f"{p.relative_to(ROOT)}:{n.lineno}")
    assert not bad, f"os.replace outside e2micro/atomic.py: {bad}"
