"""The runtimes that check a converted model: LiteRT (reference or optimised kernels) and the real
TensorFlow Lite Micro interpreter (`tflite-micro`'s Python wheel)."""
from __future__ import annotations

import numpy as np


def pixels_to_int8(x_nchw: np.ndarray) -> np.ndarray:
    """Raw 0..255 pixels (NCHW float) → the int8 input contract: NHWC, pixel − 128."""
    nhwc = np.rint(np.asarray(x_nchw).transpose(0, 2, 3, 1))
    return (nhwc - 128).clip(-128, 127).astype(np.int8)


class LiteRT:
    """LiteRT interpreter; `reference=True` uses the reference kernels (the ones TFLM also uses)."""

    def __init__(self, model: bytes, reference: bool = True):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = OpResolverType.BUILTIN_REF if reference else OpResolverType.AUTO
        self.it = Interpreter(model_content=model, experimental_op_resolver_type=resolver, num_threads=1)
        self.it.allocate_tensors()
        self.inp, self.out = self.it.get_input_details()[0], self.it.get_output_details()[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Batch of inputs in the model's own layout and dtype → stacked outputs."""
        outs = []
        for i in range(len(x)):
            self.it.set_tensor(self.inp["index"], x[i:i + 1])
            self.it.invoke()
            outs.append(self.it.get_tensor(self.out["index"]).copy())
        return np.concatenate(outs)


class TFLM:
    def __init__(self, model: bytes, arena_size: int):
        from tflite_micro.python.tflite_micro import runtime

        self.it = runtime.Interpreter.from_bytes(model, arena_size=arena_size)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        outs = []
        for i in range(len(x)):
            self.it.set_input(x[i:i + 1], 0)
            self.it.invoke()
            outs.append(np.array(self.it.get_output(0)))
        return np.concatenate(outs)
