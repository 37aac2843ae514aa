"""Keep conversion offline and quiet: no socket may connect, onnx2tf gets its sample data locally."""
from __future__ import annotations

import contextlib
import os
import socket
import sys
import tempfile

import numpy as np


class NetworkBlocked(RuntimeError):
    pass


@contextlib.contextmanager
def no_network():
    """Any attempt to open a network connection fails loudly instead of hanging or downloading."""
    def refuse(self, address, *a, **k):
        if self.family == socket.AF_UNIX:
            return original(self, address, *a, **k)
        raise NetworkBlocked(f"network access attempted during conversion: {address}")

    original = socket.socket.connect
    socket.socket.connect = refuse
    try:
        yield
    finally:
        socket.socket.connect = original


def onnx2tf_sample_images() -> np.ndarray:
    """Stands in for the sample images onnx2tf downloads for 3-channel inputs (it only runs its
    own ONNX reference inference with them): fixed, so conversions are reproducible."""
    return np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32)


def patch_onnx2tf() -> None:
    from .private_api import require

    require("onnx2tf.download_test_image_data")
    import onnx2tf.onnx2tf as o2t
    import onnx2tf.utils.common_functions as cf

    o2t.download_test_image_data = onnx2tf_sample_images
    cf.download_test_image_data = onnx2tf_sample_images


@contextlib.contextmanager
def captured_output():
    """Redirect fd 1 and 2 (C++ logs included) to a temp file; yields a callable returning its text."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)

        def text() -> str:
            sys.stdout.flush()
            sys.stderr.flush()
            log.seek(0)
            return log.read().decode(errors="replace")

        try:
            yield text
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")  # same float rounding on every machine
