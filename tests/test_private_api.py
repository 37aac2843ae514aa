"""Canaries for the private APIs in convert/private_api.py: each still exists and behaves as the
converter uses it, its pin is the project's install pin, and another version fails in one line."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from convert import private_api
from e2micro.errors import MissingTool

ROOT = Path(__file__).resolve().parents[1]


def test_pins_are_the_install_pins():
    deps = (ROOT / "pyproject.toml").read_text()
    lock = (ROOT / "requirements.lock").read_text()
    for name, (dist, version, _) in private_api.PINS.items():
        for text, where in ((deps, "pyproject.toml"), (lock, "requirements.lock")):
            pins = re.findall(rf"^\W*{'[-_]'.join(map(re.escape, dist.split('-')))}==([^\s\"',;]+)", text, re.M | re.I)
            assert pins == [version], f"{name}: {where} pins {dist} to {pins}, convert/private_api.py to {version}"


def test_another_version_fails_in_one_line(monkeypatch):
    monkeypatch.setattr(private_api, "_checked", set())
    monkeypatch.setattr(private_api.metadata, "version", lambda dist: "0.0.1")
    for name, (dist, version, _) in private_api.PINS.items():
        with pytest.raises(MissingTool) as e:
            private_api.require(name)
        msg = str(e.value)
        assert "\n" not in msg and f"{dist} {version} only" in msg and f"{dist} 0.0.1 is installed" in msg, msg


def test_the_installed_versions_pass():
    for name in private_api.PINS:
        private_api.require(name)


@pytest.fixture(scope="module")
def calibrate_only():
    """A one-conv float model through TF's first quantization stage only (_experimental_calibrate_only)."""
    import tensorflow as tf

    from convert.tf_export import calibrated_tflite

    w = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 3, 4)).astype(np.float32))

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
        def __call__(self, x):
            return tf.nn.relu(tf.nn.conv2d(x, w, 1, "SAME"))

    m = M()
    return calibrated_tflite(m, m.__call__.get_concrete_function(), (1, 8, 8, 3))


def test_calibrate_only_leaves_a_float_model_with_min_max_slots(calibrate_only):
    from convert.tflite_graph import Graph

    g = Graph(calibrate_only)
    acts = [t for t in g.tensors if t.data is None]
    assert acts and all(t.dtype == "float32" for t in acts), [(t.name, t.dtype) for t in acts]
    assert all(t.min is not None and t.min.size == 1 and t.max.size == 1 for t in acts), "no calibration slots"


def test_mlir_quantize_turns_the_slots_into_int8(calibrate_only):
    from tensorflow.lite.python.convert import mlir_quantize

    from convert.quantize import int8_tflite
    from convert.tflite_graph import Graph

    params = inspect.signature(mlir_quantize).parameters
    assert {"disable_per_channel", "input_data_type", "output_data_type"} <= set(params), list(params)
    g = Graph(int8_tflite(calibrate_only))
    assert g.input().dtype == "int8" and g.output().dtype == "int8"
    assert [op.name for op in g.ops] == ["CONV_2D"], [op.name for op in g.ops]


def test_schema_reads_and_writes_calibration_slots_in_place(calibrate_only):
    """quantize.apply_ranges writes min/max through the generated schema's numpy views."""
    from convert.tflite_graph import schema

    fb = schema()
    buf = bytearray(calibrate_only)
    sub = fb.Model.GetRootAs(buf, 0).Subgraphs(0)
    q = next(sub.Tensors(i).Quantization() for i in range(sub.TensorsLength())
             if sub.Tensors(i).Quantization() is not None and sub.Tensors(i).Quantization().MinLength() == 1)
    q.MinAsNumpy()[0] = np.float32(-1.25)
    assert bytes(buf) != calibrate_only and fb.ModelT.InitFromPackedBuf(bytes(buf), 0) is not None


def test_onnx2tf_still_calls_the_sample_image_download_we_replace():
    """convert/offline.py replaces download_test_image_data in both modules onnx2tf calls it from."""
    import onnx2tf.onnx2tf as o2t
    import onnx2tf.utils.common_functions as cf

    from convert.offline import onnx2tf_sample_images, patch_onnx2tf

    assert "download_test_image_data(" in inspect.getsource(o2t)
    patch_onnx2tf()
    assert o2t.download_test_image_data is onnx2tf_sample_images and cf.download_test_image_data is onnx2tf_sample_images
