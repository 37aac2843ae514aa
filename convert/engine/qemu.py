"""The engine on emulated Cortex-M4 (mps2-an386) and Cortex-M55 (mps3-an547): arm-none-eabi-gcc +
picolibc semihosting, QEMU with -icount shift=0; scores and instructions per inference."""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from e2micro.errors import BadInput

from .. import model_id
from ..errors import ConversionError

HARNESS = Path(__file__).resolve().parents[2] / "firmware" / "engine" / "qemu_harness.c"
CPUS = {
    "cortex-m4": (["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], "mps2-an386"),
    "cortex-m55": (["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"], "mps3-an547"),
}
# flash and RAM windows of both machines' code and data memories (picolibc's linker script)
LINK = {
    "mps2-an386": ["-Wl,--defsym=__flash=0x0", "-Wl,--defsym=__flash_size=0x400000",
                   "-Wl,--defsym=__ram=0x20000000", "-Wl,--defsym=__ram_size=0x400000"],
    "mps3-an547": ["-Wl,--defsym=__flash=0x0", "-Wl,--defsym=__flash_size=0x80000",
                   "-Wl,--defsym=__ram=0x60000000", "-Wl,--defsym=__ram_size=0x1000000"],
}
INSTALL = "install gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm (`make setup` does)"


def _tool(name: str) -> str:
    p = shutil.which(name)
    if p is None:
        raise ConversionError(f"{name} not found: {INSTALL}")
    return p


def build(model_dir: Path, cpu: str, exe: Path, opt: str = "-O2") -> Path:
    flags, machine = CPUS[cpu]
    cmd = [_tool("arm-none-eabi-gcc"), *flags, opt, "-std=c99", "-Wall", "-Wextra", "-Werror",
           "--specs=picolibc.specs", "--oslib=semihost", "--crt0=semihost", *LINK[machine],
           "-Wl,--defsym=__stack_size=0x10000", "-I", str(model_dir), str(model_dir / "e2m_model.c"), str(HARNESS),
           "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise ConversionError(f"{cpu} build failed: {(r.stderr or r.stdout).strip()[:2000]}")
    return exe


def run(exe: Path, cpu: str, x: np.ndarray, timeout: float = 600) -> dict:
    """Scores (N, classes), instructions per image (N,) and the deepest stack e2m_invoke reached
    (bytes below the harness's main, the SysTick interrupt's frame included), from one QEMU run."""
    machine = CPUS[cpu][1]
    with tempfile.TemporaryDirectory(prefix="e2m-qemu-") as tmp:
        (Path(tmp) / "in.bin").write_bytes(np.ascontiguousarray(x, np.int8).tobytes())
        cmd = [_tool("qemu-system-arm"), "-M", machine, "-nographic", "-monitor", "none", "-serial", "none",
               "-icount", "shift=0", "-semihosting-config", "enable=on,target=native", "-kernel", str(exe)]
        try:
            r = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ConversionError(f"QEMU {machine} did not finish in {timeout:.0f} s") from None
    text = r.stdout + r.stderr  # semihosting's console may reach either
    if r.returncode != 0 or f"done {len(x)} images" not in text:
        raise ConversionError(f"QEMU {machine} run failed ({r.returncode}): {text.strip()[-1500:]}")
    cal = int(re.search(r"calibration (\d+) ticks per 10000000 instructions", text).group(1))
    rows = re.findall(r"image (\d+) scores ([-\d ]+) ticks (\d+)", text)
    scores = np.array([[int(v) for v in s.split()] for _, s, _ in rows], np.int8)
    insns = np.array([int(t) * 10_000_000 / cal for *_, t in rows])
    stack = int(re.search(r"stack (\d+) bytes deep at most", text).group(1))  # below main's frame
    return {"scores": scores, "instructions": insns, "ticks_per_10M": cal, "stack_bytes": stack}


SKETCH_PARTS = ("image_provider.cc", "result_responder.cc", "platform.cc")
SKETCH_GENERATED = ("model_settings.h", "sample_patch.h", "sample_patch.cc")
CXX = ["-std=c++17", "-O2", "-fno-exceptions", "-fno-rtti", "-Wall", "-Wextra", "-Werror", "--specs=picolibcpp.specs"]


def build_sketch(conversion_dir: Path, engine_dir: Path, cpu: str, work: Path) -> Path:
    """The firmware sketch with the engine back end: firmware/cortex-m's image provider, responder
    and platform hooks, firmware/engine/engine_main_functions.cc, the generated e2m_model.c."""
    root = HARNESS.parents[1]
    flags, machine = CPUS[cpu]
    _check_one_model(Path(conversion_dir), Path(engine_dir))
    work.mkdir(parents=True, exist_ok=True)
    for name in SKETCH_GENERATED:
        shutil.copy(Path(conversion_dir) / name, work / name)
    inc = ["-I", str(work), "-I", str(root / "cortex-m"), "-I", str(engine_dir)]
    objs = []
    cc = [_tool("arm-none-eabi-gcc"), *flags, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror",
          "--specs=picolibc.specs", "-c", str(Path(engine_dir) / "e2m_model.c"), *inc, "-o", str(work / "e2m_model.o")]
    jobs = [cc] + [[_tool("arm-none-eabi-g++"), *flags, *CXX, "-c", str(src), *inc, "-o", str(work / (src.stem + ".o"))]
                   for src in [*(root / "cortex-m" / n for n in SKETCH_PARTS), work / "sample_patch.cc",
                               root / "engine" / "engine_main_functions.cc", root / "engine" / "engine_qemu_main.cc"]]
    for cmd in jobs:
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise ConversionError(f"engine sketch build failed: {(r.stderr or r.stdout).strip()[:2000]}")
        objs.append(cmd[-1])
    elf = work / f"engine_sketch_{cpu}.elf"
    r = subprocess.run([_tool("arm-none-eabi-g++"), *flags, "--specs=picolibcpp.specs", "--oslib=semihost",
                        "--crt0=semihost", *LINK[machine], "-Wl,--defsym=__stack_size=0x10000", "-Wl,--gc-sections",
                        *objs, "-o", str(elf)], capture_output=True, text=True)
    if r.returncode != 0:
        raise ConversionError(f"engine sketch link failed: {(r.stderr or r.stdout).strip()[:2000]}")
    return elf


def _check_one_model(conversion_dir: Path, engine_dir: Path) -> None:
    """The sketch's generated files come from one conversion (engine_main_functions.cc's
    static_asserts say the same, later and less plainly). A bare .tflite's e2m_model.h names none."""
    sha = model_id.check_one_model(conversion_dir, SKETCH_GENERATED)
    engine_sha = model_id.read(engine_dir / "e2m_model.h")
    if engine_sha is not None and engine_sha != sha:
        raise BadInput(f"{engine_dir / 'e2m_model.h'} and {conversion_dir / 'model_settings.h'} come from "
                       f"different conversions (checkpoint sha256 {engine_sha[:12]}… vs {sha[:12]}…): run "
                       f"`convert engine` on {conversion_dir}")


def run_sketch(elf: Path, cpu: str, timeout: float = 300) -> str:
    cmd = [_tool("qemu-system-arm"), "-M", CPUS[cpu][1], "-nographic", "-monitor", "none", "-serial", "none",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ConversionError(f"QEMU did not finish in {timeout:.0f} s") from None
    if r.returncode != 0:
        raise ConversionError(f"engine sketch exited {r.returncode}: {(r.stdout + r.stderr).strip()[-1500:]}")
    return r.stdout + r.stderr


def size(elf: Path) -> dict:
    """text / data / bss of an ELF (arm-none-eabi-size): flash = text + data, RAM = data + bss."""
    r = subprocess.run([_tool("arm-none-eabi-size"), str(elf)], capture_output=True, text=True, check=True)
    text, data, bss = (int(v) for v in r.stdout.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss, "flash": text + data, "ram": data + bss}
