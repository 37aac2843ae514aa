"""Stage: ONNX → TensorFlow (onnx2tf, NHWC) → float TFLite, and the calibrate-only float model whose
activation min/max slots the ranges table fills in."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from e2micro import interrupts

from .errors import ConversionError
from .offline import patch_onnx2tf, quiet_tensorflow
from .private_api import require


def converter_errors() -> tuple[type[BaseException], ...]:
    """What TF raises when a model does not convert (as opposed to a bug). Called only once TF is
    loaded: never while an interrupt unwinds a half-finished import."""
    from tensorflow.lite.python.convert_phase import ConverterError

    return (ConverterError, ConversionError)


def onnx_to_tf(onnx_path: Path, workdir: Path):
    """onnx2tf's Keras model and its concrete function (NHWC input)."""
    quiet_tensorflow()
    import onnx2tf
    import tensorflow as tf
    import tf_keras

    patch_onnx2tf()
    # Keras numbers layers with process-wide counters that end up in TFLite tensor names:
    # reset them so a second conversion in the same process writes the same bytes.
    tf_keras.backend.clear_session()
    onnx_path, workdir = Path(onnx_path).resolve(), Path(workdir).resolve()  # before the chdir below
    cwd = os.getcwd()
    os.chdir(workdir)  # onnx2tf writes helper files next to the working directory
    try:
        # not_use_onnxsim: onnx2tf would run the `onnxsim` program only when it is on PATH, rewriting
        # model.onnx in place: outputs would depend on PATH. Our export is already simplified.
        model = onnx2tf.convert(input_onnx_file_path=str(onnx_path), output_folder_path=str(workdir / "tf"),
                                disable_model_save=True, non_verbose=True, not_use_onnxsim=True)
    except SystemExit as e:  # onnx2tf reports its errors by exiting the process
        raise ConversionError(f"onnx2tf stopped (exit code {e.code})") from None
    finally:
        os.chdir(cwd)
    interrupts.check()  # onnx2tf's bare `except:` blocks can swallow a Ctrl-C
    fn = tf.function(lambda *inputs: model(inputs),
                     input_signature=[tf.TensorSpec(t.shape, t.dtype, t.name) for t in model.inputs])
    return model, fn.get_concrete_function()


def _converter(model, concrete):
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)


def float_tflite(model, concrete) -> bytes:
    return _converter(model, concrete).convert()


def calibrated_tflite(model, concrete, input_shape) -> bytes:
    """TF's first quantization stage only: a float model with min/max slots on every activation.

    The one all-zero calibration sample only creates the slots; every value is overwritten from
    the ranges table before TF's second stage (`quantize.int8_tflite`).
    """
    import tensorflow as tf

    conv = _converter(model, concrete)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: iter([[np.zeros(input_shape, np.float32)]])
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    require("_experimental_calibrate_only")  # private: pinned in convert/private_api.py
    conv._experimental_calibrate_only = True
    return conv.convert()
