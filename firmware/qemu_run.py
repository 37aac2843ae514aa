"""Build the real firmware (firmware/cortex-m's CMake: TFLM + CMSIS-NN) for a board and run it on QEMU.

`build()` configures and builds one board in one build folder (TFLM's source: cortex-m/cmake/tflm.cmake
decides); `run_batch()` runs e2micro_batch.elf on QEMU with `-icount shift=0` on int8 patches and
returns their int8 scores and the instructions each inference executed (QEMU's virtual clock under
icount advances 1 ns per instruction; these are executed instructions, not cycles); `elf_sections()`
sizes an ELF. Used by tests/test_firmware_tflm.py and bench/firmware_{size,speed}.py.
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ci_build import CORTEX_M, BuildFailed, check_engine_sources, check_model_dir, tool

# board → (TFLM TARGET_ARCH, QEMU machine or None for a real board only built)
BOARDS = {
    "mps2_an386": ("cortex-m4+fp", "mps2-an386"),
    "mps2_an500": ("cortex-m7+fp", "mps2-an500"),
    "mps3_an547": ("cortex-m55", "mps3-an547"),
    "nucleo_h743zi": ("cortex-m7+fp", None),
}
QEMU_BOARDS = [b for b, (_, m) in BOARDS.items() if m]


class DoesNotFit(BuildFailed):
    """The linker's verdict: the firmware needs more of a memory region than the board has."""

    def __init__(self, board: str, region: str, overflow: int):
        super().__init__(f"building {board}: the firmware does not fit: region {region} overflowed by {overflow:,} bytes")
        self.region, self.overflow = region, overflow


@dataclass
class Build:
    board: str
    folder: Path
    configure_log: str
    build_log: str
    elfs: dict[str, Path] = field(default_factory=dict)


def _last_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    hits = [ln for ln in lines if re.search(r"\berror\b:|Error \d|FAILED|undefined reference", ln)]
    return (hits[0] if hits else (lines[-1] if lines else "no output"))[:400]


def configure(model_dir: Path, board: str, folder: Path, options: dict[str, str] | None = None) -> str:
    """cmake -S firmware/cortex-m -B folder for a `convert tflite` output (with E2MICRO_BACKEND=engine,
    plus `convert engine`'s e2m_model.{h,c} in it); returns CMake's output."""
    sha = check_model_dir(model_dir)  # one clear line now rather than a static_assert deep in the build
    if (options or {}).get("E2MICRO_BACKEND") == "engine":
        check_engine_sources(model_dir, sha)
    args = [tool("cmake"), "-S", str(CORTEX_M), "-B", str(folder), f"-DE2MICRO_BOARD={board}",
            f"-DE2MICRO_MODEL_DIR={Path(model_dir).resolve()}"]
    args += [f"-D{k}={v}" for k, v in (options or {}).items()]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildFailed(f"cmake ({board}): {_cmake_error(r.stderr) or _last_error(r.stdout)}")
    return r.stdout


def _cmake_error(stderr: str) -> str:
    """CMake's FATAL_ERROR message as one line (it wraps it over several, indented)."""
    m = re.search(r"CMake Error at [^\n]*:\s*\n(.*?)(\n\S|\Z)", stderr, re.S)
    return " ".join(m.group(1).split()) if m else _last_error(stderr)


def build(model_dir: Path, board: str, folder: Path, options: dict[str, str] | None = None) -> Build:
    """Configure and build every target for board; -j the number of cores."""
    log = configure(model_dir, board, folder, options)
    r = subprocess.run([tool("cmake"), "--build", str(folder), "-j", str(os.cpu_count() or 1)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        m = re.search(r"region `(\w+)' overflowed by (\d+) bytes", r.stdout + r.stderr)
        if m:
            raise DoesNotFit(board, m.group(1), int(m.group(2)))
        raise BuildFailed(f"building {board}: {_last_error(r.stdout + r.stderr)}")
    elfs = {p.stem: p for p in folder.glob("*.elf")}
    return Build(board, folder, log, r.stdout, elfs)


def elf_sections(elf: Path) -> dict[str, int]:
    """`arm-none-eabi-size -A`: {section: bytes} of the sections that take memory."""
    r = subprocess.run([tool("arm-none-eabi-size"), "-A", str(elf)], capture_output=True, text=True, check=True)
    out = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit() and int(parts[2]) != 0:
            out[parts[0]] = int(parts[1])
    return out


def qemu_command(board: str, elf: Path, icount: bool = True) -> list[str]:
    machine = BOARDS[board][1]
    if machine is None:
        raise ValueError(f"{board} is a real board, not one QEMU emulates")
    return [tool("qemu-system-arm"), "-M", machine, "-nographic", "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native", *(["-icount", "shift=0"] if icount else []),
            "-kernel", str(elf)]


@dataclass
class BatchResult:
    scores: np.ndarray        # (N, classes) int8
    instructions: list[int]   # per inference (icount shift=0: virtual ns = executed instructions)
    arena_used: int
    console: str


def first_block(board: str, elf: Path) -> str:
    """The console of e2micro_pcam up to its first self-check line (its loop() runs forever: QEMU is
    stopped there)."""
    p = subprocess.Popen(qemu_command(board, elf), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, text=True)
    lines = []
    try:
        for line in p.stdout:
            lines.append(line)
            if line.startswith(("check:", "error:")):
                break
    finally:
        p.kill()
        p.wait()
    return "".join(lines)


def run_batch(board: str, elf: Path, patches: np.ndarray, classes: int, timeout: float = 600) -> BatchResult:
    """Runs e2micro_batch.elf on QEMU over patches (N, H, W, C) int8; the files go through a temporary
    working directory (semihosting opens them relative to QEMU's)."""
    patches = np.ascontiguousarray(patches, dtype=np.int8)
    with tempfile.TemporaryDirectory(prefix="e2micro-qemu-") as tmp:
        (Path(tmp) / "e2micro_patches.bin").write_bytes(patches.tobytes())
        r = subprocess.run(qemu_command(board, elf), cwd=tmp, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout)
        out = r.stdout
        if r.returncode != 0:
            raise BuildFailed(f"e2micro_batch on {board} exited with {r.returncode}: {_last_error(out)}")
        scores = np.frombuffer((Path(tmp) / "e2micro_scores.bin").read_bytes(), dtype=np.int8)
    if scores.size != len(patches) * classes:
        raise BuildFailed(f"e2micro_batch on {board} wrote {scores.size} scores for {len(patches)} patches")
    m = re.search(r"arena (\d+) of (\d+) bytes used", out)
    instructions = [int(v) for v in re.findall(r"^patch \d+: (\d+) instructions$", out, re.M)]
    if m is None or len(instructions) != len(patches):
        raise BuildFailed(f"e2micro_batch on {board}: unexpected console output: {out[-400:]}")
    return BatchResult(scores.reshape(len(patches), classes), instructions, int(m.group(1)), out)
