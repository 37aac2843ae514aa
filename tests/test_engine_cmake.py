"""The engine back end of the firmware's CMake project (-DE2MICRO_BACKEND=engine): e2micro_pcam built
from firmware/engine/engine_main_functions.cc and `convert engine`'s e2m_model.c with the same image
provider, responder, platform and board files, and no TFLM (TFLM_DIR points nowhere: tflm.cmake
would fail if it ran). On QEMU's Cortex-M4 it prints its setup line and passes the self-check on the
sample patch; the Nucleo-H743ZI build compiles and links. The engine's numbers against TFLM are
tests/test_engine.py's."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convert.engine.command import engine_command
from convert.outputs import ENGINE_FIRMWARE_FILES, FIRMWARE_FILES
from e2micro.errors import BadInput

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "firmware"))
import ci_build  # noqa: E402
import qemu_run  # noqa: E402

BOARDS = ("mps2_an386", "nucleo_h743zi")


def _model_dir(conv: Path, dest: Path) -> tuple[Path, dict]:
    """A folder as a user makes it: `convert tflite --firmware` files, then `convert engine --firmware`."""
    dest.mkdir(parents=True)
    for name in FIRMWARE_FILES:
        shutil.copyfile(conv / name, dest / name)
    rep = engine_command(conv / "model_int8.tflite", dest.parent / f"{dest.name}_engine", firmware=dest,
                         echo=lambda s: None)
    return dest, rep


def _options(work: Path) -> dict[str, str]:
    return {"E2MICRO_BACKEND": "engine", "TFLM_DIR": str(work / "no_tflm_here")}


@pytest.fixture(scope="module")
def engine_firmware(converted_c4, tmp_path_factory):
    work = tmp_path_factory.mktemp("fw_engine")
    model, rep = _model_dir(converted_c4, work / "model")
    builds = {}
    for board in BOARDS:
        try:
            builds[board] = qemu_run.build(model, board, work / board, _options(work))
        except (ci_build.BuildFailed, ci_build.ToolchainMissing) as e:
            pytest.fail(str(e), pytrace=False)
    return builds, rep


def _usage(build_log: str, target: str) -> dict[str, int]:
    """The linker's memory usage for one target (the log holds one table per program)."""
    part = build_log.split(f"Linking CXX executable {target}.elf", 1)[1]
    table = part.split("Memory region", 2)[1]
    return ci_build.memory_usage(table)


def test_engine_backend_uses_no_tflm(engine_firmware):
    builds, _ = engine_firmware
    for board, b in builds.items():
        assert "e2micro: engine back end" in b.configure_log, b.configure_log
        assert "TFLM from" not in b.configure_log and "e2micro_tflm" not in b.build_log, board
        assert {"e2micro_pcam", "host_check"} <= set(b.elfs), b.elfs
        r = subprocess.run(["arm-none-eabi-nm", str(b.elfs["e2micro_pcam"])], capture_output=True, text=True,
                           check=True)
        assert re.search(r" T e2m_invoke$", r.stdout, re.M) and "tflite" not in r.stdout, board
        assert "g_model_data" not in r.stdout, f"{board}: the .tflite flatbuffer was linked in"


def test_engine_firmware_self_check_on_qemu(engine_firmware, converted_c4):
    """e2micro_pcam as a user runs it (loop() runs forever: read the first image's block, then stop QEMU)."""
    builds, rep = engine_firmware
    out = qemu_run.first_block("mps2_an386", builds["mps2_an386"].elfs["e2micro_pcam"])
    t = rep["totals"]
    assert re.search(rf"^e2micro engine: weights {t['weights_bytes']} bytes, arena {t['arena_bytes']} bytes, "
                     rf"input {t['input_bytes']} bytes$", out, re.M), out
    assert "check: int8 scores equal the converter's reference" in out, out
    assert re.search(r"^inference: \d+ us$", out, re.M), out


def test_engine_nucleo_build_links(engine_firmware, converted_c4):
    builds, rep = engine_firmware
    b = builds["nucleo_h743zi"]
    usage = _usage(b.build_log, "e2micro_pcam")
    t = rep["totals"]
    tflite = (converted_c4 / "model_int8.tflite").stat().st_size
    assert t["weights_bytes"] < usage["FLASH"] < tflite, (usage, t)  # the compressed weights, not the .tflite
    assert t["arena_bytes"] + t["input_bytes"] <= usage["AXISRAM"] < t["arena_bytes"] + t["input_bytes"] + 64 * 1024
    assert usage["DTCM"] == 0, usage
    sections = qemu_run.elf_sections(b.elfs["e2micro_pcam"])
    assert sections[".rodata"] >= t["weights_bytes"] and sections[".text"] > 5_000, sections


def test_engine_backend_says_what_is_missing(engine_firmware, converted_c4, converted_plain, tmp_path):
    """Without e2m_model.{h,c}: CMake's one line says which command writes them; e2m_model.h of
    another conversion is refused before configuring; an unknown back end is named."""
    builds, _ = engine_firmware
    model = builds["mps2_an386"].folder.parent / "model"
    bare = tmp_path / "bare"
    shutil.copytree(model, bare, ignore=shutil.ignore_patterns(ENGINE_FIRMWARE_FILES[1]))
    with pytest.raises(ci_build.BuildFailed) as e:
        qemu_run.configure(bare, "mps2_an386", tmp_path / "b1", _options(tmp_path))
    msg = str(e.value)
    assert "\n" not in msg and f"{bare}/e2m_model.c is missing (E2MICRO_BACKEND=engine): run `convert engine " \
        f"CHECKPOINT --firmware {bare}` first" in msg, msg

    mixed = tmp_path / "mixed"
    shutil.copytree(model, mixed)
    engine_command(converted_plain / "model_int8.tflite", tmp_path / "plain_engine", firmware=mixed,
                   echo=lambda s: None)
    with pytest.raises(BadInput, match=r"e2m_model\.h and .*model_settings\.h come from different conversions"):
        qemu_run.configure(mixed, "mps2_an386", tmp_path / "b2", _options(tmp_path))
    assert not (tmp_path / "b2").exists()

    with pytest.raises(ci_build.BuildFailed, match="unknown E2MICRO_BACKEND 'tflite': use tflm or engine"):
        qemu_run.configure(model, "mps2_an386", tmp_path / "b3", {"E2MICRO_BACKEND": "tflite"})
