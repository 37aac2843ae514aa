"""The real firmware: firmware/cortex-m's CMake builds main_functions.cc with TFLM + CMSIS-NN
(the tree cortex-m/cmake/tflm.cmake finds; ../shared/third_party/tflite-micro here) for Cortex-M4
(QEMU mps2-an386), Cortex-M7 (mps2-an500) and Cortex-M55 (mps3-an547), runs it on QEMU, and its int8
outputs must equal the tflite-micro Python interpreter's and LiteRT's reference kernels' on the demo
test images and their 90/180/270° rotations, for the equivariant and the conventional model. The
Nucleo-H743ZI build is compiled and linked. Without TFLM's source these tests fail (one line)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "firmware"))
import ci_build  # noqa: E402
import qemu_run  # noqa: E402

# Test-split images per CPU (each with its three rotations): M4 and M7 run the same CMSIS-NN C code
# (DSP extension) and share the first 32 between them; the M55 (MVE code, 3× fewer instructions)
# runs all 32.
IMAGES = {"mps2_an386": slice(0, 16), "mps2_an500": slice(16, 32), "mps3_an547": slice(0, 32)}
MODELS = ("c4", "plain")


def _build(model_dir: Path, board: str, folder: Path) -> qemu_run.Build:
    try:
        return qemu_run.build(model_dir, board, folder)
    except (ci_build.BuildFailed, ci_build.ToolchainMissing) as e:
        pytest.fail(str(e), pytrace=False)


def _compiled_tflm(build_log: str) -> int:
    return len(re.findall(r"Building \S+ object CMakeFiles/e2micro_tflm\.dir/", build_log))


@pytest.fixture(scope="module")
def firmware(converted_c4, converted_plain, tmp_path_factory):
    """Per QEMU board one build folder: TFLM compiled once for the CPU with converted_c4, then the
    same folder reconfigured for converted_plain (same ops: TFLM is not recompiled) and, on the M7,
    for the Nucleo board. {(board, model): {target: ELF}} plus the build records."""
    work = tmp_path_factory.mktemp("fw_tflm")
    elfs, records = {}, {}
    for board in qemu_run.QEMU_BOARDS:
        folder = work / board
        steps = [("c4", converted_c4, board), ("plain", converted_plain, board)]
        if board == "mps2_an500":
            steps.append(("c4", converted_c4, "nucleo_h743zi"))
        for model, conv, target_board in steps:
            b = _build(conv, target_board, folder)
            keep = work / "elf" / f"{target_board}_{model}"
            keep.mkdir(parents=True)
            elfs[(target_board, model)] = {name: Path(shutil.copy2(elf, keep)) for name, elf in b.elfs.items()}
            records[(target_board, model)] = b
    return elfs, records


def _patches(demo_dir, board):
    from convert import images
    from convert.parity import rotations
    from convert.runtimes import pixels_to_int8

    x = pixels_to_int8(images.from_path(demo_dir, "test", None, 95).x)[IMAGES[board]]
    return np.concatenate([x, *rotations(x)]), len(x)


@pytest.fixture(scope="module")
def runs(firmware, demo_dir):
    """e2micro_batch on QEMU (-icount shift=0) for every board and model, two at a time."""
    elfs, _ = firmware
    jobs = [(board, model) for board in qemu_run.QEMU_BOARDS for model in MODELS]

    def one(job):
        board, model = job
        x, n = _patches(demo_dir, board)
        try:
            return job, (x, n, qemu_run.run_batch(board, elfs[job]["e2micro_batch"], x, classes=2))
        except ci_build.BuildFailed as e:
            return job, e

    with ThreadPoolExecutor(max_workers=2) as pool:
        out = dict(pool.map(one, jobs))
    return out


def _result(runs, job):
    r = runs[job]
    if isinstance(r, Exception):
        pytest.fail(str(r), pytrace=False)
    return r


def test_tflm_is_compiled_from_the_shared_tree_once_per_cpu(firmware):
    _, records = firmware
    for (board, model), b in records.items():
        assert "e2micro: TFLM from " in b.configure_log, b.configure_log
        cpu = qemu_run.BOARDS[board][0]
        assert f"TFLM library for {cpu} (release_with_logs, CMSIS-NN; kernels " in b.configure_log
        n = _compiled_tflm(b.build_log)
        if (board, model) in (("mps2_an386", "c4"), ("mps2_an500", "c4"), ("mps3_an547", "c4")):
            m = re.search(r"(\d+) framework \+ (\d+) kernel \+ (\d+) CMSIS-NN sources", b.configure_log)
            assert n == sum(map(int, m.groups())) and int(m.group(3)) > 0, (board, n, m.group(0))
        else:
            assert n == 0, f"{board}/{model}: TFLM recompiled ({n} sources) though only the model or board changed"


def test_cpu_flags_reach_tflm(firmware):
    """Every object of the TFLM library is built for its CPU: the build attributes name the
    architecture, the FPU (M4: single precision; M7: double) and, on the M55, MVE."""
    _, records = firmware
    want = {"mps2_an386": ("v7E-M", "VFPv4-D16"), "mps2_an500": ("v7E-M", "FPv5/FP-D16 for ARMv8"),
            "mps3_an547": ("v8.1-M.mainline", "FPv5/FP-D16 for ARMv8")}
    for board, (arch, fp) in want.items():
        lib = records[(board, "c4")].folder / "libe2micro_tflm.a"
        r = subprocess.run(["arm-none-eabi-readelf", "-A", str(lib)], capture_output=True, text=True, check=True)
        members = r.stdout.count("File: ")
        assert members > 50 and r.stdout.count(f"Tag_CPU_arch: {arch}\n") == members, (board, members)
        assert r.stdout.count(f"Tag_FP_arch: {fp}\n") == members, board
        assert r.stdout.count("Tag_MVE_arch: MVE Integer and FP") == (members if board == "mps3_an547" else 0), board


@pytest.mark.parametrize("board", qemu_run.QEMU_BOARDS)
def test_instruction_clock_counts_instructions(firmware, board):
    """clock_check times a loop of exactly 20,000,001 instructions under -icount shift=0."""
    elfs, _ = firmware
    r = subprocess.run(qemu_run.qemu_command(board, elfs[(board, "c4")]["clock_check"]), capture_output=True,
                       text=True, timeout=120, stdin=subprocess.DEVNULL)
    counts = [int(v) for v in re.findall(r"loop of 20000001 instructions: (\d+)", r.stdout + r.stderr)]
    assert r.returncode == 0 and len(counts) == 3, r.stdout + r.stderr
    assert all(20000001 <= c <= 20000001 + 200 for c in counts), counts


@pytest.mark.parametrize("board", qemu_run.QEMU_BOARDS)
@pytest.mark.parametrize("model", MODELS)
def test_firmware_equals_tflm_and_reference_kernels(runs, board, model, converted_c4, converted_plain):
    from convert.runtimes import TFLM, LiteRT

    x, n, r = _result(runs, (board, model))
    conv = converted_c4 if model == "c4" else converted_plain
    tflite = (conv / "model_int8.tflite").read_bytes()
    arena = ci_build.setting(conv, "kTensorArenaSize")
    tflm, ref = TFLM(tflite, arena)(x), LiteRT(tflite, reference=True)(x)
    assert np.array_equal(tflm, ref), "tflite-micro and LiteRT reference kernels disagree"
    diff = np.abs(r.scores.astype(int) - tflm.astype(int))
    bad = np.flatnonzero(diff.max(axis=1))
    assert bad.size == 0, (f"{board}/{model}: CMSIS-NN firmware differs from the tflite-micro interpreter on "
                           f"{bad.size} of {len(x)} inputs, by up to {diff.max()} LSB (first: {bad[:8].tolist()})")
    # A constant or broken model would pass the equality trivially: the outputs must vary.
    assert len({tuple(s) for s in r.scores.tolist()}) > 1, r.scores[:4]
    assert 0 < r.arena_used <= arena
    assert len(set(r.instructions)) >= 1 and min(r.instructions) > 1_000_000


@pytest.mark.parametrize("board", qemu_run.QEMU_BOARDS)
def test_equivariant_firmware_outputs_are_identical_under_rotation(runs, board):
    x, n, r = _result(runs, (board, "c4"))
    upright = r.scores[:n]
    for k in (1, 2, 3):
        assert np.array_equal(r.scores[k * n:(k + 1) * n], upright), f"{board}: outputs change under {90 * k}°"


def test_firmware_prints_its_self_check_on_qemu(firmware, converted_c4):
    """e2micro_pcam as a user runs it: setup() line, the sample patch's scores equal the converter's."""
    elfs, _ = firmware
    for board in qemu_run.QEMU_BOARDS:
        out = qemu_run.first_block(board, elfs[(board, "c4")]["e2micro_pcam"])
        size = (converted_c4 / "model_int8.tflite").stat().st_size
        assert re.search(rf"^e2micro: model {size} bytes, schema 3, \d ops registered, arena \d+ of "
                         rf"{ci_build.setting(converted_c4, 'kTensorArenaSize')} bytes used$", out, re.M), out
        assert "check: int8 scores equal the converter's reference" in out, out
        assert re.search(r"^inference: \d+ us$", out, re.M), out


def test_nucleo_build_links_with_the_model_in_flash(firmware, converted_c4):
    elfs, records = firmware
    b = records[("nucleo_h743zi", "c4")]
    usage = ci_build.memory_usage(b.build_log)
    sections = qemu_run.elf_sections(elfs[("nucleo_h743zi", "c4")]["e2micro_pcam"])
    size = (converted_c4 / "model_int8.tflite").stat().st_size
    assert sections[".rodata"] >= size and sections[".text"] > 20_000, sections
    assert usage["FLASH"] >= size + sections[".text"], usage
    arena = ci_build.setting(converted_c4, "kTensorArenaSize")
    assert arena <= usage["AXISRAM"] < arena + 64 * 1024 and usage["DTCM"] == 0, usage


def test_convert_measure_adds_the_firmware_to_the_report(firmware, runs, converted_c4, tmp_path):
    """`convert measure` on a copy of a conversion, reusing the M4 build folder (TFLM already compiled):
    report.json gains the instructions, arena and sizes the firmware itself shows; report.md follows."""
    import json

    from typer.testing import CliRunner

    from convert.cli import app
    from convert.report import render

    _, records = firmware
    conv = Path(shutil.copytree(converted_c4, tmp_path / "conv"))
    build_dir = records[("mps2_an386", "c4")].folder.parent
    r = CliRunner().invoke(app, ["measure", str(conv), "--board", "mps2_an386", "--build-dir", str(build_dir)])
    assert r.exit_code == 0, r.output
    report = json.loads((conv / "report.json").read_text())
    (row,) = report["firmware"]["boards"]
    _, _, batch = _result(runs, ("mps2_an386", "c4"))
    assert row["board"] == "mps2_an386" and row["cpu"] == "cortex-m4+fp"
    assert row["arena_used"] == batch.arena_used  # the arena in use does not depend on the image
    # One inference of the sample patch: CMSIS-NN's instruction count barely depends on the data.
    assert abs(row["instructions"] - np.median(batch.instructions)) < 0.05 * np.median(batch.instructions), row
    assert row["instructions_per_mac"] == round(row["instructions"] / report["macs"]["total"], 3)
    assert row["rodata"] >= (conv / "model_int8.tflite").stat().st_size and row["bss"] >= row["tensor_arena_size"]
    md = (conv / "report.md").read_text()
    assert md == render(report) and "| mps2_an386 | cortex-m4+fp |" in md
    assert row["kernels"] == report["firmware"]["kernels"] == "cmsis_nn" and "(TFLM + CMSIS-NN," in md
    for args, says in ((["--board", "mps9"], "--board mps9: use one of"), (["--kernels", "fast"], "--kernels fast: use")):
        bad = CliRunner().invoke(app, ["measure", str(conv), *args])
        assert bad.exit_code == 1 and bad.output.count("\n") == 1 and says in bad.output, bad.output


def test_reference_kernels_are_a_configure_option(converted_c4, tmp_path):
    """E2MICRO_TFLM_KERNELS=reference (what bench/engine.py measures the engine against): TFLM's
    portable kernels, no CMSIS-NN source or define; anything else is refused in one line."""
    log = qemu_run.configure(converted_c4, "mps2_an386", tmp_path / "ref", {"E2MICRO_TFLM_KERNELS": "reference"})
    m = re.search(r"\(release_with_logs, reference kernels; kernels ([^)]*)\): \d+ framework \+ (\d+) kernel "
                  r"\+ (\d+) CMSIS-NN sources", log)
    assert m and m.group(3) == "0" and int(m.group(2)) >= len(m.group(1).split(";")), log
    flags = (tmp_path / "ref" / "CMakeFiles" / "e2micro_tflm.dir" / "flags.make").read_text()
    assert "-DCMSIS_NN" not in flags and "-DCORTEX_M_GENERIC" in flags, flags
    with pytest.raises(ci_build.BuildFailed) as e:
        qemu_run.configure(converted_c4, "mps2_an386", tmp_path / "bad", {"E2MICRO_TFLM_KERNELS": "fast"})
    assert "E2MICRO_TFLM_KERNELS=fast: use cmsis_nn or reference" in str(e.value) and "\n" not in str(e.value)


def test_missing_tflm_fails_with_one_clear_line(converted_c4, tmp_path):
    with pytest.raises(ci_build.BuildFailed) as e:
        qemu_run.configure(converted_c4, "mps2_an386", tmp_path / "b", {"TFLM_DIR": str(tmp_path / "nothing")})
    assert "lacks tensorflow/lite/micro/micro_interpreter.h" in str(e.value) and "\n" not in str(e.value), e.value
    # A clone with no ../shared next to it and nothing fetched: told where TFLM comes from.
    alone = tmp_path / "clone" / "firmware" / "cortex-m"
    shutil.copytree(ROOT / "firmware" / "cortex-m", alone)
    r = subprocess.run(["cmake", "-S", str(alone), "-B", str(tmp_path / "b2"), f"-DE2MICRO_MODEL_DIR={converted_c4}"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "TFLM source not found: pass -DTFLM_DIR=" in r.stderr, r.stderr
    assert "firmware/fetch_tflm.sh" in qemu_run._cmake_error(r.stderr)


def test_fetch_script_pins_the_shared_trees_commit():
    """firmware/fetch_tflm.sh, tflm.cmake and the shared tree's PROVENANCE.txt name one commit."""
    script = re.search(r"^COMMIT=([0-9a-f]{40})", (ROOT / "firmware/fetch_tflm.sh").read_text(), re.M).group(1)
    cmake = re.search(r"set\(TFLM_COMMIT ([0-9a-f]{40})\)", (ROOT / "firmware/cortex-m/cmake/tflm.cmake").read_text())
    assert cmake and cmake.group(1) == script
    provenance = ROOT.parent / "shared/third_party/tflite-micro/PROVENANCE.txt"
    if provenance.is_file():  # this workplace's copy; elsewhere the script is the only source
        assert re.search(rf"^tflite-micro {script}$", provenance.read_text(), re.M)
