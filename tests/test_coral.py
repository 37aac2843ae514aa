"""firmware/coral/run_coral.py without an Edge TPU: it says so, falls back to the CPU, and its scores
on the demo patch are the int8 model's LiteRT scores (with --reference, exactly the ones TFLM gives)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convert.runtimes import LiteRT

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "firmware" / "coral" / "run_coral.py"
sys.path.insert(0, str(RUNNER.parent))
import run_coral  # noqa: E402

MISSING = "libedgetpu-not-installed.so.1"  # a delegate that cannot load, whatever this machine has


def sample(converted) -> tuple[np.ndarray, np.ndarray]:
    """The patch baked into sample_patch.cc and its expected int8 scores (LiteRT reference kernels)."""
    cc, h = (converted / "sample_patch.cc").read_text(), (converted / "sample_patch.h").read_text()
    pixels = np.array(re.findall(r"-?\d+", cc[cc.index("{") + 1:cc.rindex("}")]), dtype=np.int64)
    size = int(round((len(pixels) / 3) ** 0.5))
    expected = re.search(r"kSamplePatchExpected\[kCategoryCount\] = \{([^}]*)\}", h).group(1)
    return pixels.astype(np.int8).reshape(1, size, size, 3), np.array(expected.split(","), dtype=np.int64)


def test_cpu_fallback_equals_litert(converted_c4):
    patch, expected = sample(converted_c4)
    model = converted_c4 / "model_int8.tflite"
    got = run_coral.run(model, patch, delegate=MISSING)
    np.testing.assert_array_equal(got, LiteRT(model.read_bytes(), reference=False)(patch)[0])
    # --reference: TFLite's reference kernels, as TFLM and the converter's kSamplePatchExpected
    np.testing.assert_array_equal(run_coral.run(model, patch, reference=True), expected)


def test_cli_says_it_falls_back_and_prints_scores(converted_c4, tmp_path):
    patch, _ = sample(converted_c4)
    np.save(tmp_path / "patch.npy", patch[0])
    model = converted_c4 / "model_int8.tflite"
    r = subprocess.run([sys.executable, str(RUNNER), "--model", str(model), "--image", str(tmp_path / "patch.npy"),
                        "--delegate", MISSING], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"Edge TPU delegate not found ({MISSING}" in r.stderr and "running on the CPU" in r.stderr
    assert "Traceback" not in r.stderr
    assert "model: model_int8.tflite on the CPU" in r.stdout
    scores = [int(v) for v in re.findall(r"\(int8 (-?\d+)\)", r.stdout)]
    np.testing.assert_array_equal(scores, run_coral.run(model, patch, delegate=MISSING))
    labels = ["normal", "tumour"]  # the demo checkpoint's class names, read from report.json
    assert f"prediction: {labels[int(np.argmax(scores))]}" in r.stdout, r.stdout


def test_pcam_h5_input_is_cropped_like_training(converted_c4, demo_dir):
    """The sample patch is the first test-split image of the demo data: reading it from the .h5
    (96×96, centre-cropped to the model's size) must give exactly the same int8 patch."""
    patch, _ = sample(converted_c4)
    x = run_coral.load_patch(demo_dir / "camelyonpatch_level_2_split_test_x.h5", 0, patch.shape[1])
    np.testing.assert_array_equal(x, patch[0])
    with pytest.raises(ValueError, match="--index 10000 outside"):
        run_coral.load_patch(demo_dir / "camelyonpatch_level_2_split_test_x.h5", 10000, patch.shape[1])


def test_compiled_model_without_delegate_runs_the_int8_sibling(converted_c4, tmp_path):
    patch, _ = sample(converted_c4)
    shutil.copy(converted_c4 / "model_int8.tflite", tmp_path / "model_int8.tflite")
    # Stands in for edgetpu_compiler's output: all that matters here is the custom op's name inside.
    (tmp_path / "model_edgetpu.tflite").write_bytes(b"\0" * 64 + run_coral.EDGETPU_CUSTOM_OP)
    notes: list[str] = []
    interp, device = run_coral.make_interpreter(tmp_path / "model_edgetpu.tflite", MISSING, warn=notes.append)
    assert device == "CPU" and any("running " in n and "model_int8.tflite instead" in n for n in notes), notes
    np.testing.assert_array_equal(run_coral.invoke(interp, patch), run_coral.run(tmp_path / "model_int8.tflite",
                                                                                patch, MISSING))
    (tmp_path / "model_int8.tflite").unlink()
    with pytest.raises(ValueError, match="compiled for the Edge TPU and needs the delegate"):
        run_coral.make_interpreter(tmp_path / "model_edgetpu.tflite", MISSING, warn=notes.append)
