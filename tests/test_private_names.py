"""No module of the project imports or reaches into another module's private (`_name`) names: what a
second module needs is public API of its home. (Tests may test internals of the module they test.)"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("train", "convert", "calibration", "e2micro", "firmware", "bench")
PROJECT = set(PACKAGES) | {p.stem for d in ("firmware", "bench") for p in (ROOT / d).glob("*.py")}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _project_module(module: str | None, level: int) -> bool:
    return level > 0 or (module or "").split(".")[0] in PROJECT


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _project_module(node.module, node.level):
            for a in node.names:
                if _private(a.name):
                    found.append(f"{where}:{node.lineno} imports {a.name} from {node.module}")
                else:
                    modules.add(a.asname or a.name)  # may be a module (from . import pipeline)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in PROJECT:
                    modules.add(a.asname or a.name.split(".")[0])
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            found.append(f"{where}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


def test_no_private_names_across_modules():
    files = [p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py")) if "__pycache__" not in p.parts]
    assert len(files) > 50
    bad = [v for p in files for v in violations(p)]
    assert not bad, "\n".join(bad)


def test_the_check_sees_imports_and_attributes(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from .pipeline import _x\nfrom . import pipeline\npipeline._y()\nimport qemu_run\nqemu_run._z\n")
    assert {v.split(" ", 1)[1] for v in violations(probe)} == {
        "imports _x from pipeline", "uses pipeline._y", "uses qemu_run._z"}
