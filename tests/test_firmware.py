"""The firmware parts that need no TFLM (firmware/ci_build.py): they compile for Cortex-M4 and
Cortex-M7, the model lands in flash, those parts run on an emulated Cortex-M, and the Arduino sketch
assembles. The firmware with TFLM itself: tests/test_firmware_tflm.py.
The toolchain is required: a missing arm-none-eabi-g++ or QEMU fails these tests (`make setup`)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "firmware"))
import ci_build  # noqa: E402

# The parts linked into the semihosted check programs (picolibc brings its own startup).
HOST_PARTS = ("image_provider.o", "platform.o", "result_responder.o", "model_data.o", "sample_patch.o")


@pytest.fixture(scope="module")
def staged(converted_c4, tmp_path_factory):
    """firmware/cortex-m plus converted_c4's generated sources, laid out like the repository."""
    root = tmp_path_factory.mktemp("fw") / "firmware"
    shutil.copytree(ROOT / "firmware" / "arduino", root / "arduino", ignore=shutil.ignore_patterns("e2micro_pcam"))
    return ci_build.stage(converted_c4, root / "cortex-m")


@pytest.fixture(scope="module")
def objects(staged):
    """Every TFLM-free source compiled for both CPUs: {cpu: {object name: path}}."""
    free = ci_build.sources(staged)["free"]
    return {cpu: {o.name: o for o in ci_build.compile_all(staged, cpu, free, staged.parent / "obj" / cpu)}
            for cpu in ci_build.CPUS}


def settings(src: Path) -> dict:
    text = (src / "model_settings.h").read_text()
    labels = re.search(r"kCategoryLabels\[kCategoryCount\] = \{(.*)\};", text).group(1)
    return {"labels": re.findall(r'"([^"]*)"', labels), "arena": ci_build.setting(src, "kTensorArenaSize")}


def test_toolchain_is_installed():
    for name in ("arm-none-eabi-g++", "arm-none-eabi-size", "qemu-system-arm"):
        assert shutil.which(name), f"{name} missing: {ci_build.INSTALL}"
    r = subprocess.run(["arm-none-eabi-g++", "--specs=picolibcpp.specs", "-mcpu=cortex-m4", "-mthumb", "-x", "c++",
                        "-fsyntax-only", "-"], input="#include <cstdio>\n", capture_output=True, text=True)
    assert r.returncode == 0, f"picolibc for C++ missing: {ci_build.INSTALL}\n{r.stderr}"


def test_only_sources_that_need_tflm_or_a_core_are_left_out(staged):
    split = {k: sorted(p.name for p in v) for k, v in ci_build.sources(staged).items()}
    assert split["TFLM"] == ["main_functions.cc", "model_ops.h"]
    assert split["the Arduino core"] == ["arduino.cc"]
    generated_free = set(ci_build.FIRMWARE_FILES) - {"model_ops.h"}
    assert generated_free <= set(split["free"]), "a generated file other than model_ops.h would be skipped"
    assert {"image_provider.cc", "result_responder.cc", "platform.cc", "main.cc", "nucleo_h743zi.cc",
            "startup_cortex_m.cc"} <= set(split["free"])
    # The exclusion is real: model_ops.h does not compile without TFLM's headers.
    with pytest.raises(ci_build.BuildFailed, match="micro_mutable_op_resolver.h"):
        ci_build.compile_all(staged, "cortex-m4", [staged / "model_ops.h"], staged.parent / "obj" / "x")


def test_model_and_sample_land_in_flash(objects, staged, converted_c4):
    tflite = (converted_c4 / "model_int8.tflite").stat().st_size
    for cpu, objs in objects.items():
        sizes = ci_build.section_sizes(list(objs.values()))
        model = sizes["model_data.o"]
        assert model[".rodata.g_model_data"] == tflite, cpu
        flash, ram = ci_build.memory(model)
        assert flash >= tflite and ram == 0, (cpu, flash, ram)
        pixels = ci_build.setting(staged, "kNumRows") * ci_build.setting(staged, "kNumCols") * 3
        flash, ram = ci_build.memory(sizes["sample_patch.o"])
        assert flash >= pixels and ram == 0, (cpu, flash, ram)
        code_ram = sum(ci_build.memory(sizes[n])[1] for n in ("image_provider.o", "platform.o", "result_responder.o"))
        assert code_ram < 256, f"{cpu}: the TFLM-free code should need almost no RAM, uses {code_ram}"
        r = subprocess.run(["arm-none-eabi-objdump", "-h", str(objs["model_data.o"])], capture_output=True,
                           text=True, check=True)
        row = next(ln for ln in r.stdout.splitlines() if ".rodata.g_model_data " in ln)
        assert row.split()[-1] == "2**4", f"g_model_data is not 16-byte aligned: {row}"


@pytest.mark.parametrize("cpu", sorted(ci_build.CPUS))
def test_tflm_free_parts_run_on_an_emulated_cortex_m(objects, staged, cpu, tmp_path):
    objs = objects[cpu]
    check = ci_build.compile_all(staged, cpu, [staged / "host_check" / "host_check.cc"], tmp_path)
    elf = ci_build.link(check + [objs[n] for n in HOST_PARTS], tmp_path / "host_check.elf", cpu)
    rc, out = ci_build.run_qemu(elf, cpu)
    assert rc == 0 and "host_check: all checks passed" in out, out
    labels = settings(staged)["labels"]
    assert all(f"  {name}" in out for name in labels), out
    assert re.search(rf"prediction: ({'|'.join(map(re.escape, labels))})\n", out), out
    assert "check: int8 scores equal the converter's reference" in out
    assert "check: MISMATCH" in out and "by up to 1 LSB" in out  # the deliberately perturbed scores


def test_cmake_boards_link_and_the_qemu_one_runs(staged, tmp_path, converted_c4):
    """The CMake project with E2MICRO_TFLM=OFF builds host_check.elf with its own startup code, linker
    scripts and newlib: run it on QEMU's Cortex-M7, and check where the Nucleo build puts things."""
    assert shutil.which("cmake"), f"cmake missing: {ci_build.INSTALL}"
    usage = {}
    for board in ("mps2_an500", "nucleo_h743zi"):
        build = tmp_path / board
        r = subprocess.run(["cmake", "-S", str(staged), "-B", str(build), f"-DE2MICRO_BOARD={board}",
                            "-DE2MICRO_TFLM=OFF"], capture_output=True, text=True)
        assert r.returncode == 0 and "E2MICRO_TFLM=OFF: building host_check only" in r.stdout, r.stdout + r.stderr
        r = subprocess.run(["cmake", "--build", str(build)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
        usage[board] = ci_build.memory_usage(r.stdout)
    rc, out = ci_build.run_qemu(tmp_path / "mps2_an500" / "host_check.elf", "cortex-m7")
    assert rc == 0 and "host_check: all checks passed" in out, out
    assert usage["nucleo_h743zi"]["FLASH"] >= (converted_c4 / "model_int8.tflite").stat().st_size
    assert usage["nucleo_h743zi"]["DTCM"] == 0 and 0 < usage["nucleo_h743zi"]["AXISRAM"] < 64 * 1024, usage


def test_arduino_sketch_assembles_and_its_tflm_free_files_compile(staged, tmp_path):
    script = staged.parent / "arduino" / "make_sketch.sh"
    sketch = tmp_path / "e2micro_pcam"
    r = subprocess.run(["sh", str(script), str(sketch)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    names = {p.name for p in sketch.iterdir()}
    assert "e2micro_pcam.ino" in names and "main_functions.cpp" in names and "arduino_board.cpp" in names
    assert "main.cpp" not in names and not any(n.endswith(".cc") for n in names), names
    assert set(ci_build.FIRMWARE_FILES) - names == {"model_data.cc", "sample_patch.cc"}  # renamed .cpp
    assert "#include <Chirale_TensorFlowLite.h>" in (sketch / "e2micro_pcam.ino").read_text()
    free = [sketch / n for n in ("image_provider.cpp", "result_responder.cpp", "platform.cpp", "sample_patch.cpp")]
    assert len(ci_build.compile_all(sketch, "cortex-m7", free, tmp_path / "obj")) == 4

    r = subprocess.run(["sh", str(script), "--library", "arduino", str(sketch)], capture_output=True, text=True)
    assert r.returncode == 0 and "#include <TensorFlowLite.h>" in (sketch / "e2micro_pcam.ino").read_text()
    r = subprocess.run(["sh", str(script), "--library", "nope", str(tmp_path / "x")], capture_output=True, text=True)
    assert r.returncode == 2 and "error: --library must be chirale or arduino" in r.stderr


def test_arduino_sketch_refuses_without_generated_sources(tmp_path):
    (tmp_path / "firmware" / "cortex-m").mkdir(parents=True)
    shutil.copytree(ROOT / "firmware" / "arduino", tmp_path / "firmware" / "arduino",
                    ignore=shutil.ignore_patterns("e2micro_pcam"))
    out = tmp_path / "sketch" / "e2micro_pcam"
    r = subprocess.run(["sh", str(tmp_path / "firmware" / "arduino" / "make_sketch.sh"), str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "convert tflite CHECKPOINT --firmware firmware/cortex-m" in r.stderr
    assert not (tmp_path / "sketch").exists()
