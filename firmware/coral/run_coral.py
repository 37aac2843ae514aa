#!/usr/bin/env python3
"""Classify one PCam patch on a Coral USB Accelerator or Coral Dev Board (Edge TPU delegate), or on
the CPU when the delegate library is missing.

    python3 run_coral.py --model model_edgetpu.tflite --image patch.npy
    python3 run_coral.py --model model_int8.tflite --image camelyonpatch_level_2_split_test_x.h5 --index 7

Standalone on purpose (numpy, plus ai-edge-litert or tflite-runtime, plus h5py for .h5 input), so it
can be copied to a Dev Board. --image: a .npy patch (int8 NHWC = raw pixel − 128 as the model takes
it, or uint8 raw pixels), or a PCam-format *_x.h5 with --index; patches larger than the model's
input are centre-cropped the way training does (96 → 95 keeps rows and columns 0..94).
"""
from __future__ import annotations

import argparse
import ctypes
import json
import platform
import sys
from pathlib import Path

import numpy as np

EDGETPU_LIBRARY = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
EDGETPU_CUSTOM_OP = b"edgetpu-custom-op"


def _interpreter_module():
    try:
        from ai_edge_litert import interpreter
    except ImportError:
        try:
            from tflite_runtime import interpreter  # what Coral's Debian packages install
        except ImportError:
            sys.exit("error: neither ai-edge-litert nor tflite-runtime is installed (pip install ai-edge-litert)")
    return interpreter


def make_interpreter(model_path: Path, delegate: str | None = None, warn=lambda s: print(s, file=sys.stderr),
                     reference: bool = False):
    """(allocated interpreter, where it runs). The Edge TPU if its delegate loads, else the CPU,
    saying so; reference=True: the CPU with TFLite's reference kernels, the ones TFLM uses, so the
    scores equal a microcontroller's (the default CPU kernels may round differently by a few LSB).
    A model compiled for the Edge TPU cannot run on the CPU: its sibling model_int8.tflite runs."""
    it = _interpreter_module()
    library = delegate or EDGETPU_LIBRARY.get(platform.system(), "libedgetpu.so.1")
    tpu = None
    if not reference:
        try:
            ctypes.CDLL(library)  # first: a failed load_delegate() also prints a traceback from __del__
            tpu = it.load_delegate(library)
        except (ValueError, RuntimeError, OSError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            warn(f"Edge TPU delegate not found ({reason}); running on the CPU")
    if tpu is not None:
        interp = it.Interpreter(model_path=str(model_path), experimental_delegates=[tpu])
        interp.allocate_tensors()
        return interp, "Edge TPU"
    if EDGETPU_CUSTOM_OP in Path(model_path).read_bytes():
        fallback = Path(model_path).with_name("model_int8.tflite")
        if not fallback.is_file():
            raise ValueError(f"{model_path} is compiled for the Edge TPU and needs the delegate; "
                             f"pass the uncompiled model_int8.tflite to run on the CPU")
        warn(f"{Path(model_path).name} needs the Edge TPU; running {fallback} instead")
        model_path = fallback
    if reference:
        if not hasattr(it, "OpResolverType"):
            raise ValueError("--reference needs ai-edge-litert (this tflite-runtime has no reference kernels)")
        interp = it.Interpreter(model_path=str(model_path),
                                experimental_op_resolver_type=it.OpResolverType.BUILTIN_REF)
    else:
        interp = it.Interpreter(model_path=str(model_path))
    interp.allocate_tensors()
    return interp, "CPU (reference kernels)" if reference else "CPU"


def run(model_path, patch_int8: np.ndarray, delegate: str | None = None, reference: bool = False) -> np.ndarray:
    """int8 outputs (logits) for one int8 NHWC patch, shape (classes,)."""
    interp, _ = make_interpreter(Path(model_path), delegate, reference=reference)
    return invoke(interp, patch_int8)


def invoke(interp, patch_int8: np.ndarray) -> np.ndarray:
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    x = np.asarray(patch_int8)
    x = x.reshape((1,) + x.shape) if x.ndim == 3 else x
    if tuple(x.shape) != tuple(inp["shape"]) or x.dtype != inp["dtype"]:
        raise ValueError(f"patch is {x.dtype} {list(x.shape)}, the model takes {np.dtype(inp['dtype'])} "
                         f"{list(inp['shape'])}")
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    return interp.get_tensor(out["index"])[0].copy()


def load_patch(path: Path, index: int, size: int) -> np.ndarray:
    """int8 NHWC (size, size, 3) from a .npy (int8 as-is; uint8 raw pixels − 128) or a PCam *_x.h5 row."""
    if path.suffix == ".h5":
        import h5py

        with h5py.File(path, "r") as f:
            if "x" not in f:
                raise ValueError(f"{path}: no dataset 'x' (not a PCam-format *_x.h5)")
            if not 0 <= index < len(f["x"]):
                raise ValueError(f"{path}: --index {index} outside 0..{len(f['x']) - 1}")
            x = np.asarray(f["x"][index])
    else:
        x = np.load(path)
    x = x[0] if x.ndim == 4 else x
    if x.ndim != 3 or x.shape[-1] != 3 or x.shape[0] < size or x.shape[1] < size:
        raise ValueError(f"{path}: expected a ({size}+, {size}+, 3) patch, got {list(x.shape)}")
    o = (x.shape[0] - size) // 2
    x = x[o:o + size, o:o + size]
    if x.dtype == np.uint8:
        return (x.astype(np.int16) - 128).astype(np.int8)
    if x.dtype != np.int8:
        raise ValueError(f"{path}: patch dtype {x.dtype}; expected int8 (pixel − 128) or uint8 pixels")
    return x


def class_names(model_path: Path, count: int, given: str | None) -> list[str]:
    if given:
        names = [s.strip() for s in given.split(",")]
    else:
        try:  # the conversion report next to the model knows the checkpoint's class names
            names = json.loads((model_path.parent / "report.json").read_text())["checkpoint"]["class_names"]
        except (OSError, ValueError, KeyError, TypeError):
            names = [f"class {i}" for i in range(count)]
    if len(names) != count:
        raise ValueError(f"{len(names)} class names for {count} outputs")
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, required=True, help="model_edgetpu.tflite or model_int8.tflite")
    p.add_argument("--image", type=Path, required=True, help=".npy patch or PCam-format *_x.h5")
    p.add_argument("--index", type=int, default=0, help="row of the .h5 file (default 0)")
    p.add_argument("--labels", help="comma-separated class names (default: from report.json next to the model)")
    p.add_argument("--delegate", help="Edge TPU delegate library (default: libedgetpu for this OS)")
    p.add_argument("--reference", action="store_true",
                   help="CPU with TFLite's reference kernels: the scores a TFLM microcontroller gives")
    a = p.parse_args(argv)
    try:
        interp, device = make_interpreter(a.model, a.delegate, reference=a.reference)
        size = int(interp.get_input_details()[0]["shape"][1])
        q = invoke(interp, load_patch(a.image, a.index, size))
        scale, zero = interp.get_output_details()[0]["quantization"]
        names = class_names(a.model, len(q), a.labels)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    logits = (q.astype(np.float64) - zero) * scale
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    print(f"model: {a.model.name} on the {device}")
    for name, qi, lg, pr in zip(names, q, logits, probs):  # equal lengths: class_names() checks
        print(f"  {name:<8} logit {lg:7.3f}  p {pr:.3f}  (int8 {int(qi)})")
    print(f"prediction: {names[int(np.argmax(q))]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
