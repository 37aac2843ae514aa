"""The generated firmware files: one list (`convert.outputs.FIRMWARE_FILES`, and ENGINE_FIRMWARE_FILES
for `convert engine`'s) that every other place agrees with, and one model per build (each file names its checkpoint's sha256; ci_build refuses a
mix in one line, the firmware's static_asserts stop the compiler)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convert import model_id
from convert.engine.qemu import SKETCH_GENERATED
from convert.outputs import ENGINE_FIRMWARE_FILES, FIRMWARE_FILES
from e2micro.errors import BadInput

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "firmware"))
import ci_build  # noqa: E402
import qemu_run  # noqa: E402

MANIFEST = set(FIRMWARE_FILES)
ENGINE = set(ENGINE_FIRMWARE_FILES)
HEADERS = sorted(n for n in FIRMWARE_FILES if n.endswith(".h"))
MIXED = "come from different conversions"
# A generated-looking name, with `model_data.{h,cc}` expanded as the READMEs write it.
_NAME = re.compile(r"\b((?:model|sample)_\w+)\.(?:\{([\w,]+)\}|(h|cc))(?![\w.])")


def _names(text: str) -> set[str]:
    return {f"{stem}.{ext}" for stem, braces, one in _NAME.findall(text)
            for ext in (braces.split(",") if braces else [one])}


def _differ(where: str, found: set[str], expected: set[str]) -> str:
    return f"{where}: lacks {sorted(expected - found)}, has extra {sorted(found - expected)}"


def _block(path: str, pattern: str) -> str:
    m = re.search(pattern, (ROOT / path).read_text(), re.M | re.S)
    assert m, f"{path}: its list of generated files ({pattern}) is gone: update tests/test_manifest.py"
    return m.group(1)


CMAKE = "firmware/cortex-m/CMakeLists.txt"
SKETCH = "firmware/arduino/make_sketch.sh"
GITIGNORE = "firmware/cortex-m/.gitignore"


def _cmake_required() -> set[str]:
    return set(_block(CMAKE, r"^foreach\(generated ([^)]*)\)").split())


def _cmake_compiled() -> set[str]:
    sources = _block(CMAKE, r"^add_library\(e2micro_base OBJECT ([^)]*)\)")
    return set(re.findall(r"\$\{E2MICRO_MODEL_DIR\}/(\S+)", sources))


def _cmake_engine_required() -> set[str]:
    return set(_block(CMAKE, r"^\s*foreach\(engine_generated ([^)]*)\)").split())


def _cmake_engine_compiled() -> set[str]:
    sources = _block(CMAKE, r"^\s*add_library\(e2micro_engine_app OBJECT ([^)]*)\)")
    return set(re.findall(r"\$\{E2MICRO_MODEL_DIR\}/(\S+)", sources))


def _engine_ignored() -> set[str]:
    block = _block(GITIGNORE, r"^# Written by `convert engine[^\n]*\n((?:/[^\n]*\n)+)")
    return {ln.strip().lstrip("/") for ln in block.splitlines()}


def _sketch_required() -> set[str]:
    return set(_block(SKETCH, r"^for f in ([^;\n]*); do").split())


def _ignored() -> set[str]:
    block = _block(GITIGNORE, r"^# Written by `convert tflite[^\n]*\n((?:/[^\n]*\n)+)")
    return {ln.strip().lstrip("/") for ln in block.splitlines()}


def _readme() -> set[str]:
    return _names(_block("README.md", r"output directory \(default[^\n]*\n(.*?)`report\.json`"))


def _firmware_readme() -> set[str]:
    return _names(_block("firmware/README.md", r"copies the six generated sources into\n(.*?)the int8 scores LiteRT"))


# Each copy the manifest cannot be imported into: (file, what its list must equal, how to read it).
COPIES = {
    CMAKE: [("the files it requires", MANIFEST, _cmake_required),
            ("the sources it compiles", {n for n in MANIFEST if n.endswith(".cc")}, _cmake_compiled),
            ("the engine sources it requires", ENGINE, _cmake_engine_required),
            ("the engine sources it compiles", {n for n in ENGINE if n.endswith(".c")}, _cmake_engine_compiled)],
    SKETCH: [("the files it requires", MANIFEST, _sketch_required)],
    GITIGNORE: [("the files it ignores", MANIFEST, _ignored), ("the engine files it ignores", ENGINE, _engine_ignored)],
    "README.md": [("the output folder's sources", MANIFEST, _readme)],
    "firmware/README.md": [("the sources --firmware copies", MANIFEST, _firmware_readme)],
}
HOME = "convert/outputs.py"


@pytest.mark.parametrize("path", sorted(COPIES))
def test_each_copy_of_the_list_equals_the_manifest(path):
    for what, expected, read in COPIES[path]:
        found = read()
        assert found == expected, _differ(f"{path} ({what})", found, expected)


def test_subsets_name_only_generated_files():
    """Places that use some of the files: the Coral build and the engine sketch."""
    coral = set(re.findall(r"\$\{CORTEX_M\}/(\w+\.(?:h|cc))", (ROOT / "firmware/coral/dev_board_micro/CMakeLists.txt")
                           .read_text()))
    assert coral and coral <= MANIFEST | {"image_provider.cc", "result_responder.cc", "platform.cc"}, coral
    assert set(SKETCH_GENERATED) <= MANIFEST, _differ("convert/engine/qemu.py SKETCH_GENERATED", set(SKETCH_GENERATED),
                                                      MANIFEST)


def _listings(text: str) -> list[tuple[int, set[str]]]:
    """(line, names) wherever 5 or more of the generated files are named within 8 lines: a list of them
    (a subset, such as the three the engine sketch uses, is a different fact)."""
    lines = text.splitlines()
    found = []
    for i in range(len(lines)):
        names = _names("\n".join(lines[i:i + 8])) & MANIFEST
        if len(names) >= 5 and not (found and found[-1][0] >= i - 7):
            found.append((i + 1, names))
    return found


def test_no_other_copy_of_the_list():
    """A new hand-written list of the generated files anywhere in the repository fails here: import
    convert.outputs.FIRMWARE_FILES, or add the copy to COPIES so that it is checked."""
    r = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, f"git ls-files failed: {r.stderr}"
    checked = set(COPIES) | {HOME}
    strays, seen = [], set()
    for rel in r.stdout.splitlines():
        path = ROOT / rel
        if not path.is_file() or path.suffix in (".pt", ".npy", ".npz", ".png", ".h5", ".tflite", ".onnx"):
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        hits = _listings(text)
        if hits:
            seen.add(rel)
        if hits and rel not in checked:
            strays += [f"{rel}:{line} lists {sorted(names)}" for line, names in hits]
    assert not strays, "hand-written copies of the generated-file list: " + "; ".join(strays)
    assert seen >= checked, f"the checked copies were not found by the scan: {sorted(checked - seen)}"


# --- one model per build -------------------------------------------------------------------------

def test_every_generated_file_names_its_checkpoint(converted_c4, converted_plain):
    shas = {}
    for conv in (converted_c4, converted_plain):
        report_sha = json.loads((conv / "report.json").read_text())["checkpoint"]["sha256"]
        for name in FIRMWARE_FILES:
            assert model_id.read(conv / name) == report_sha, f"{conv / name} does not name {report_sha}"
        for name in HEADERS:
            text = (conv / name).read_text()
            p = model_id.macro_prefix(name)
            assert f'#define {p}_SHA256 "{report_sha}"\n' in text and f"#define {p}_ID 0x{report_sha[:15]}ULL\n" in text
        shas[conv] = ci_build.check_model_dir(conv)
    assert shas[converted_c4] != shas[converted_plain]


def _mixed(good: Path, other: Path, swapped: str, dest: Path) -> Path:
    """good's generated files with `swapped` taken from another conversion."""
    dest.mkdir(parents=True)
    for name in FIRMWARE_FILES:
        shutil.copyfile((other if name == swapped else good) / name, dest / name)
    return dest


def test_ci_build_refuses_files_of_two_conversions(converted_c4, converted_plain, tmp_path):
    for swapped in ("model_settings.h", "sample_patch.cc"):
        mixed = _mixed(converted_c4, converted_plain, swapped, tmp_path / swapped)
        with pytest.raises(BadInput) as e:
            ci_build.stage(mixed, tmp_path / f"staged_{swapped}")
        msg = str(e.value)
        assert "\n" not in msg and MIXED in msg and str(mixed / swapped) in msg, msg
        assert not (tmp_path / f"staged_{swapped}").exists(), "staged anyway"
        with pytest.raises(BadInput, match=MIXED):  # the CMake build refuses before configuring
            qemu_run.configure(mixed, "mps2_an386", tmp_path / f"cmake_{swapped}")
        assert not (tmp_path / f"cmake_{swapped}").exists()
    # A file that names no checkpoint (hand-written, or from an older converter).
    old = _mixed(converted_c4, converted_c4, "", tmp_path / "old")
    (old / "model_ops.h").write_text(re.sub(r"// Checkpoint sha256: .*\n", "", (old / "model_ops.h").read_text()))
    with pytest.raises(BadInput, match=r"model_ops\.h names no checkpoint"):
        ci_build.check_model_dir(old)


def _stage_unchecked(conv_files: Path, dest: Path) -> Path:
    """firmware/cortex-m with these generated files, bypassing ci_build's check (what a user's own
    build of copied files sees)."""
    shutil.copytree(ROOT / "firmware" / "cortex-m", dest, ignore=shutil.ignore_patterns(*FIRMWARE_FILES))
    for name in FIRMWARE_FILES:
        shutil.copyfile(conv_files / name, dest / name)
    return dest


@pytest.mark.parametrize("swapped", ["model_data.h", "sample_patch.h"])
def test_firmware_does_not_compile_with_headers_of_two_conversions(converted_c4, converted_plain, swapped, tmp_path):
    ok = _stage_unchecked(converted_c4, tmp_path / "ok")
    assert ci_build.compile_all(ok, "cortex-m4", [ok / "one_model.h", ok / "image_provider.cc"], tmp_path / "o1")
    bad = _stage_unchecked(_mixed(converted_c4, converted_plain, swapped, tmp_path / "mixed"), tmp_path / "bad")
    with pytest.raises(ci_build.BuildFailed, match=f"{re.escape(swapped)} and model_settings.h {MIXED}"):
        ci_build.compile_all(bad, "cortex-m4", [bad / "one_model.h"], tmp_path / "o2")


def test_main_functions_does_not_compile_with_another_conversions_model_ops(converted_c4, converted_plain, tmp_path):
    """model_ops.h needs TFLM's headers: main_functions.cc checked with them (syntax only, no TFLM build)."""
    tflm = ROOT.parent / "shared" / "third_party" / "tflite-micro"
    downloads = tflm / "tensorflow/lite/micro/tools/make/downloads"
    if not (tflm / "tensorflow/lite/micro/micro_interpreter.h").is_file():
        pytest.fail(f"TFLM source not found at {tflm} (see firmware/README.md)", pytrace=False)
    # TFLM's headers are not -Wall -Wextra clean: system includes, as its CMake target declares them.
    flags = ["-isystem", str(tflm), "-isystem", str(downloads / "flatbuffers/include"), "-isystem",
             str(downloads / "gemmlowp"), "-DTF_LITE_STATIC_MEMORY"]
    ok = _stage_unchecked(converted_c4, tmp_path / "ok")
    r = _syntax(ok, flags)
    assert r.returncode == 0, r.stderr[-2000:]
    bad = _stage_unchecked(_mixed(converted_c4, converted_plain, "model_ops.h", tmp_path / "mixed"), tmp_path / "bad")
    r = _syntax(bad, flags)
    assert r.returncode != 0 and f"model_ops.h and model_settings.h {MIXED}" in r.stderr, r.stderr[-2000:]


def _syntax(src: Path, flags: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([ci_build.tool("arm-none-eabi-g++"), *ci_build.CPUS["cortex-m4"][0], *ci_build.CXXFLAGS,
                           f"-I{src}", *flags, "-fsyntax-only", str(src / "main_functions.cc")],
                          capture_output=True, text=True)


def test_engine_sources_name_their_conversion_and_the_sketch_refuses_a_mix(converted_c4, converted_plain, tmp_path):
    """`convert engine` on a conversion writes its checkpoint into e2m_model.{h,c}; the engine
    sketch refuses (in Python, and at compile time) model_settings.h of another conversion."""
    from convert.engine import qemu
    from convert.engine.command import engine_command

    engine = tmp_path / "engine"
    engine_command(converted_c4 / "model_int8.tflite", engine, echo=lambda s: None)
    sha = ci_build.check_model_dir(converted_c4)
    assert model_id.read(engine / "e2m_model.h") == model_id.read(engine / "e2m_model.c") == sha
    assert f"#define E2MICRO_E2M_MODEL_ID 0x{sha[:15]}ULL\n" in (engine / "e2m_model.h").read_text()
    with pytest.raises(BadInput, match=f"e2m_model.h and .*model_settings.h {MIXED}"):
        qemu.build_sketch(converted_plain, engine, "cortex-m4", tmp_path / "sketch")
    assert not (tmp_path / "sketch").exists()

    fw = ROOT / "firmware"

    def compiles(conv: Path) -> subprocess.CompletedProcess:
        inc = tmp_path / f"inc_{conv.name}"
        inc.mkdir()
        for name in SKETCH_GENERATED:
            shutil.copyfile(conv / name, inc / name)
        return subprocess.run([ci_build.tool("arm-none-eabi-g++"), *ci_build.CPUS["cortex-m4"][0], *ci_build.CXXFLAGS,
                               f"-I{inc}", f"-I{fw / 'cortex-m'}", f"-I{engine}", "-fsyntax-only",
                               str(fw / "engine" / "engine_main_functions.cc")], capture_output=True, text=True)

    r = compiles(converted_c4)
    assert r.returncode == 0, r.stderr[-2000:]
    r = compiles(converted_plain)
    assert r.returncode != 0 and f"e2m_model.h and model_settings.h {MIXED}" in r.stderr, r.stderr[-2000:]


def test_engine_and_edgetpu_outputs_do_not_make_a_conversion_folder_foreign(converted_c4, tmp_path):
    """`convert engine` and `convert edgetpu` write into the conversion folder by default; a later
    `convert tflite` into it must still see a previous output of its own (and replace the stale files)."""
    from convert.outputs import ENGINE_FILES, foreign_entries

    folder = tmp_path / "conv"
    folder.mkdir()
    (folder / "report.json").write_bytes((converted_c4 / "report.json").read_bytes())
    for name in ENGINE_FILES + ("model_edgetpu.log",):
        (folder / name).write_text("x")
    assert foreign_entries(folder) == []
    (folder / "notes.txt").write_text("mine")
    assert foreign_entries(folder) == ["notes.txt"]
