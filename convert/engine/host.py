"""Build and run the generated engine on this machine (tests, bench): the harness in
firmware/engine/host_harness.c, compiled with the host C compiler."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ConversionError

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "firmware" / "engine" / "host_harness.c"
STRICT = ("-O2", "-Wall", "-Wextra", "-Werror", "-std=c99")
SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g")


def compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise ConversionError("no host C compiler (cc) on PATH")
    return cc


def build(model_dir: Path, exe: Path, extra=(), trace: bool = False) -> Path:
    cmd = [compiler(), *STRICT, *extra, *(["-DE2M_TRACE"] if trace else []), "-I", str(model_dir),
           str(model_dir / "e2m_model.c"), str(HARNESS), "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ConversionError(f"host build failed: {(r.stderr or r.stdout).strip()[:2000]}")
    return exe


def run(exe: Path, x: np.ndarray, num_classes: int, trace: bool = False):
    """x: (N, H, W, C) int8 → (N, classes) int8 [, trace bytes]."""
    with tempfile.TemporaryDirectory(prefix="e2m-host-") as tmp:
        t = Path(tmp)
        (t / "in.bin").write_bytes(np.ascontiguousarray(x, np.int8).tobytes())
        r = subprocess.run([str(exe), str(t / "in.bin"), str(t / "out.bin"), *([str(t / "trace.bin")] * trace)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise ConversionError(f"engine harness failed ({r.returncode}): {(r.stderr or r.stdout).strip()[:2000]}")
        y = np.frombuffer((t / "out.bin").read_bytes(), np.int8).reshape(len(x), num_classes)
        tr = np.frombuffer((t / "trace.bin").read_bytes(), np.int8) if trace else None
    return (y, tr) if trace else y


def rotations(x: np.ndarray) -> np.ndarray:
    """The images and their 90°, 180°, 270° rotations (NHWC), stacked in that order."""
    return np.ascontiguousarray(np.concatenate([np.rot90(x, k, axes=(1, 2)) for k in range(4)]))


def litert_trace(model: bytes, x: np.ndarray, tensors: list[int]) -> np.ndarray:
    """The same tensors an E2M_TRACE build writes, from LiteRT's reference kernels (TFLM's)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model, experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
                     experimental_preserve_all_tensors=True, num_threads=1)
    it.allocate_tensors()
    idx, parts = it.get_input_details()[0]["index"], []
    for i in range(len(x)):
        it.set_tensor(idx, x[i:i + 1])
        it.invoke()
        parts += [it.get_tensor(t).reshape(-1) for t in tensors]
    return np.concatenate(parts)
