"""The private APIs of other packages that the converter relies on, each pinned to the one version it
was checked with. A different installed version fails with one line before the API is touched,
never with a deep AttributeError or, worse, a silently different model. tests/test_private_api.py
holds a canary per entry (the API still exists and behaves as used) and checks that these pins are
pyproject.toml's."""
from __future__ import annotations

from importlib import metadata

from e2micro.errors import MissingTool

# name → (distribution, exact version, where it is and what the converter uses it for)
PINS = {
    "mlir_quantize": ("tensorflow", "2.19.0",
                      "tensorflow.lite.python.convert.mlir_quantize (TF's second quantization stage)"),
    "_experimental_calibrate_only": ("tensorflow", "2.19.0",
                                     "TFLiteConverter._experimental_calibrate_only (TF's first quantization stage)"),
    "onnx2tf.download_test_image_data": ("onnx2tf", "1.29.24",
                                         "onnx2tf's download_test_image_data (replaced: conversions stay offline)"),
    "schema_py_generated": ("ai-edge-litert", "2.1.0",
                            "ai_edge_litert.schema_py_generated (the .tflite flatbuffer schema)"),
}
_checked: set[str] = set()


def require(name: str) -> None:
    """Raises MissingTool unless the distribution behind `name` is installed at its pinned version."""
    if name in _checked:
        return
    dist, pinned, what = PINS[name]
    try:
        found = metadata.version(dist)
    except metadata.PackageNotFoundError:
        raise MissingTool(f"{dist} is not installed (needed for {what}): run `make setup`") from None
    if found != pinned:
        raise MissingTool(f"{what} is private API checked with {dist} {pinned} only, and {dist} {found} is "
                          f"installed: install {dist}=={pinned} (`make setup` does)")
    _checked.add(name)
