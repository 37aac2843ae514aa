"""Settings dataclasses with many fields take keyword arguments only: a positional call would bind
values to whichever field happens to come next, silently, once a field is added or reordered."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("train", "convert", "calibration", "e2micro", "firmware", "bench")
SETTINGS = ("Options", "Settings", "Config")  # what a settings class's name ends with
MANY = 5


def _settings_dataclasses() -> dict[str, bool]:
    """name → declared kw_only, for each settings dataclass with more than MANY fields."""
    found = {}
    for pkg in PACKAGES:
        for p in sorted((ROOT / pkg).rglob("*.py")):
            for node in ast.walk(ast.parse(p.read_text(), str(p))):
                if not (isinstance(node, ast.ClassDef) and node.name.endswith(SETTINGS)):
                    continue
                decorators = [d for d in node.decorator_list if "dataclass" in ast.unparse(d)]
                fields = [s for s in node.body if isinstance(s, ast.AnnAssign)]
                if decorators and len(fields) > MANY:
                    kw = [k for d in decorators if isinstance(d, ast.Call) for k in d.keywords if k.arg == "kw_only"]
                    found[f"{p.relative_to(ROOT)}:{node.name}"] = any(ast.unparse(k.value) == "True" for k in kw)
    return found


def test_settings_dataclasses_are_keyword_only():
    found = _settings_dataclasses()
    names = {k.split(":")[1] for k in found}
    assert {"ConvertOptions", "FitSettings", "DFQOptions", "ModelConfig"} <= names
    assert all(found.values()), f"not kw_only: {sorted(k for k, v in found.items() if not v)}"


def test_a_positional_call_is_refused():
    from calibration.dfq import DFQOptions
    from convert.pipeline import ConvertOptions
    from train.config import ModelConfig
    from train.fit import FitSettings

    for make in (lambda: ConvertOptions(Path("m.pt")), lambda: FitSettings("data", "m.pt"),
                 lambda: DFQOptions("keep"), lambda: ModelConfig("C4")):
        with pytest.raises(TypeError, match="positional"):
            make()
    assert ModelConfig.from_dict(ModelConfig(group="C4", width=0.25).to_dict()).width == 0.25  # checkpoints' path
