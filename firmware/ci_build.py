"""Compile, size and run the TFLM-free firmware parts with Debian's arm-none-eabi toolchain and QEMU.

The parts of firmware/cortex-m that need no TFLM, checked on their own: the generated model and
sample arrays, the image provider, the responder, the platform hooks and the board files compile for
Cortex-M4 and Cortex-M7; `arm-none-eabi-size` says what lands in flash and RAM; and host_check/
(those parts) runs on an emulated Cortex-M (QEMU mps2, semihosting). The firmware with TFLM is built
by firmware/qemu_run.py. Used by tests/test_firmware.py, qemu_run.py and the firmware benchmarks.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parent
CORTEX_M = FIRMWARE / "cortex-m"
if str(FIRMWARE.parent) not in sys.path:  # run as a script or imported from firmware/: find the repository's packages
    sys.path.insert(0, str(FIRMWARE.parent))
from convert import model_id  # noqa: E402
from convert.model_id import check_one_model  # noqa: E402
from convert.outputs import ENGINE_FIRMWARE_FILES, FIRMWARE_FILES  # noqa: E402  (what `convert … --firmware DIR` copies)
from e2micro.errors import BadInput  # noqa: E402

CPUS = {
    "cortex-m4": (["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], "mps2-an386"),
    "cortex-m7": (["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"], "mps2-an500"),
}
CXXFLAGS = ["-std=c++17", "-Os", "-ffunction-sections", "-fdata-sections", "-fno-exceptions", "-fno-rtti",
            "-Wall", "-Wextra", "-Werror", "--specs=picolibcpp.specs"]
# picolibc's crt0 and linker script with semihosting: printf reaches QEMU's stdout and main's
# return value becomes QEMU's exit code. 4 MB of flash and RAM, as both mps2 machines have.
SEMIHOST_LINK = ["--oslib=semihost", "--crt0=semihost", "-Wl,--gc-sections",
                 "-Wl,--defsym=__flash=0x0", "-Wl,--defsym=__flash_size=0x400000",
                 "-Wl,--defsym=__ram=0x20000000", "-Wl,--defsym=__ram_size=0x400000",
                 "-Wl,--defsym=__stack_size=0x10000"]
# Headers that only a vendor SDK provides: files including them are built by that SDK only.
SDK_HEADERS = {"tensorflow/": "TFLM", "Arduino.h": "the Arduino core"}
INSTALL = ("install the Debian packages gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib "
           "libstdc++-arm-none-eabi-picolibc picolibc-arm-none-eabi qemu-system-arm cmake (`make setup` does)")


class ToolchainMissing(RuntimeError):
    pass


class BuildFailed(RuntimeError):
    pass


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolchainMissing(f"{name} not found: {INSTALL}")
    return path


def stage(conversion_dir: Path, dest: Path) -> Path:
    """firmware/cortex-m plus the generated sources of one `convert tflite` output, in dest."""
    check_model_dir(conversion_dir)
    shutil.copytree(CORTEX_M, dest, ignore=shutil.ignore_patterns(*FIRMWARE_FILES, ".gitignore"), dirs_exist_ok=True)
    for name in FIRMWARE_FILES:
        shutil.copyfile(Path(conversion_dir) / name, dest / name)
    return dest


def check_model_dir(model_dir: Path) -> str:
    """Before building: model_dir holds every generated source, all from one conversion (the same
    checkpoint sha256); returns it. FileNotFoundError / BadInput name the files."""
    missing = [n for n in FIRMWARE_FILES if not (Path(model_dir) / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{model_dir} lacks {', '.join(missing)}: not a `convert tflite` output")
    return check_one_model(Path(model_dir), FIRMWARE_FILES)


def check_engine_sources(model_dir: Path, sha: str) -> None:
    """e2m_model.h, when present, comes from the same conversion (one made from a bare .tflite names
    none); a missing one is CMake's to report (E2MICRO_BACKEND=engine)."""
    path = Path(model_dir) / ENGINE_FIRMWARE_FILES[0]
    engine_sha = model_id.read(path) if path.is_file() else None
    if engine_sha is not None and engine_sha != sha:
        raise BadInput(f"{path} and {Path(model_dir) / 'model_settings.h'} come from different conversions "
                       f"(checkpoint sha256 {engine_sha[:12]}… vs {sha[:12]}…): run `convert engine` on the "
                       "conversion whose files you build with")


_INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)


def sdk_needed(path: Path, root: Path, seen: set[Path] | None = None) -> set[str]:
    """Which SDKs (TFLM, the Arduino core) a source needs, following the local headers it includes."""
    seen = set() if seen is None else seen
    if path in seen:
        return set()
    seen.add(path)
    found: set[str] = set()
    for inc in _INCLUDE.findall(path.read_text()):
        local = root / inc
        if local.is_file():
            found |= sdk_needed(local, root, seen)
        found |= {sdk for prefix, sdk in SDK_HEADERS.items() if inc.startswith(prefix)}
    return found


def sources(src: Path) -> dict[str, list[Path]]:
    """The firmware sources of a staged tree, split into those CI compiles and those that need an SDK."""
    files = sorted(src.glob("*.cc")) + sorted(src.glob("*.h")) + sorted((src / "boards").glob("*.cc"))
    out: dict[str, list[Path]] = {"free": [], "TFLM": [], "the Arduino core": []}
    for f in files:
        needs = sdk_needed(f, src)
        out[sorted(needs)[0] if needs else "free"].append(f)
    return out


def compile_all(src: Path, cpu: str, files: list[Path], out: Path, extra: tuple[str, ...] = ()) -> list[Path]:
    """Compile each source to out/<name>.o (headers: syntax check only); raises BuildFailed with the
    compiler's first error line."""
    gxx = tool("arm-none-eabi-g++")
    out.mkdir(parents=True, exist_ok=True)

    def one(f: Path) -> Path | None:
        obj = out / (f.stem + ".o")
        lang = ["-x", "c++", "-fsyntax-only"] if f.suffix == ".h" else ["-c", "-o", str(obj)]
        cmd = [gxx, *CPUS[cpu][0], *CXXFLAGS, f"-I{src}", *extra, *lang, str(f)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            first = next((ln for ln in r.stderr.splitlines() if "error" in ln), r.stderr.strip()[-300:])
            raise BuildFailed(f"{f.name} ({cpu}): {first}")
        return None if f.suffix == ".h" else obj

    with ThreadPoolExecutor(max_workers=2) as pool:
        return [o for o in pool.map(one, files) if o is not None]


def section_sizes(objects: list[Path]) -> dict[str, dict[str, int]]:
    """`arm-none-eabi-size -A` per object: {object name: {section: bytes}}."""
    size = tool("arm-none-eabi-size")
    r = subprocess.run([size, "-A", *map(str, objects)], capture_output=True, text=True, check=True)
    result: dict[str, dict[str, int]] = {}
    current = None
    for line in r.stdout.splitlines():
        m = re.match(r"^(\S+)\s+:$", line)
        if m:
            current = result.setdefault(Path(m.group(1)).name, {})
            continue
        parts = line.split()
        if current is not None and len(parts) == 3 and parts[1].isdigit() and parts[0] not in ("section", "Total"):
            current[parts[0]] = int(parts[1])
    return result


def memory(sections: dict[str, int]) -> tuple[int, int]:
    """(flash, RAM) bytes of one object: code, constants and initial values in flash; data and bss in RAM."""
    flash = ram = 0
    for name, n in sections.items():
        if name.startswith((".text", ".rodata", ".ARM.exidx", ".ARM.extab", ".init_array", ".fini_array")):
            flash += n
        elif name.startswith(".data"):
            flash += n
            ram += n
        elif name.startswith(".bss"):
            ram += n
    return flash, ram


def setting(src: Path, name: str) -> int:
    """An integer constexpr from model_settings.h (e.g. kTensorArenaSize)."""
    m = re.search(rf"constexpr int {name} = (-?\d+);", (src / "model_settings.h").read_text())
    if m is None:
        raise ValueError(f"{name} not found in {src / 'model_settings.h'}")
    return int(m.group(1))


def memory_usage(linker_output: str) -> dict[str, int]:
    """{region: bytes used} from ld's --print-memory-usage table(s) (a later table's region wins)."""
    unit = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3}
    return {m[0]: int(m[1]) * unit[m[2]] for m in re.findall(r"^\s*(\w+):\s+(\d+) (B|KB|MB|GB) ", linker_output, re.M)}


def sample_patch(src: Path):
    """g_sample_patch's int8 values, parsed back from sample_patch.cc (flat, HWC order)."""
    import numpy as np

    text = (Path(src) / "sample_patch.cc").read_text()
    body = text[text.index("{") + 1:text.rindex("}")]
    return np.array([int(v) for v in re.findall(r"-?\d+", body)], dtype=np.int64).astype(np.int8)


def link(objects: list[Path], elf: Path, cpu: str) -> Path:
    gxx = tool("arm-none-eabi-g++")
    r = subprocess.run([gxx, *CPUS[cpu][0], *CXXFLAGS, *SEMIHOST_LINK, *map(str, objects), "-o", str(elf)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise BuildFailed(f"linking {elf.name} ({cpu}): {r.stderr.strip()[-400:]}")
    return elf


def run_qemu(elf: Path, cpu: str, timeout: float = 60) -> tuple[int, str]:
    """Runs a semihosted ELF on QEMU's mps2 board for the CPU; returns (exit code, console output).
    QEMU writes the semihosting console to stderr when stdout is not a terminal: both are kept."""
    qemu = tool("qemu-system-arm")
    r = subprocess.run([qemu, "-M", CPUS[cpu][1], "-nographic", "-monitor", "none", "-serial", "none",
                        "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout
