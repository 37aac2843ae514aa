"""Which conversion a generated firmware file comes from: the checkpoint's sha256 (report.json's
`checkpoint.sha256`), written into each file, and the check that a set of files agrees.

Every file gets a `// Checkpoint sha256: <hex>` line; each header also gets `E2MICRO_<NAME>_SHA256`
(the hex string) and `E2MICRO_<NAME>_ID` (its first 15 hex digits as a number, so that C++ can
compare ids in a static_assert: firmware/cortex-m/one_model.h). Names are per header because a
macro defined twice with different values is only a warning, before any message of ours.
"""
from __future__ import annotations

import re
from pathlib import Path

from e2micro.errors import BadInput

COMMENT = "// Checkpoint sha256: "
_READ = re.compile(re.escape(COMMENT) + r"([0-9a-f]{64})\n")


def comment(sha256: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return COMMENT + sha256 + "\n"


def macro_prefix(header: str) -> str:
    """model_data.h → E2MICRO_MODEL_DATA."""
    return "E2MICRO_" + re.sub(r"\W", "_", Path(header).stem).upper()


def macros(header: str, sha256: str) -> str:
    p = macro_prefix(header)
    return (f"// The conversion this header comes from (the firmware checks that all headers agree).\n"
            f'#define {p}_SHA256 "{sha256}"\n#define {p}_ID 0x{sha256[:15]}ULL\n')


def read(path: Path) -> str | None:
    """The checkpoint sha256 a generated file names, or None (not written by this converter)."""
    try:
        head = Path(path).read_text(errors="replace")[:1024]
    except OSError:
        return None
    m = _READ.search(head)
    return m.group(1) if m else None


def check_one_model(folder: Path, names: tuple[str, ...]) -> str:
    """The sha256 that all of folder/names name; BadInput naming the first two files that disagree,
    or a file that names none."""
    folder = Path(folder)
    first: tuple[str, str] | None = None
    for name in names:
        sha = read(folder / name)
        if sha is None:
            raise BadInput(f"{folder / name} names no checkpoint (no `{COMMENT.strip()}` line): "
                           "re-run `convert tflite` to regenerate it")
        if first is None:
            first = (name, sha)
        elif sha != first[1]:
            raise BadInput(f"{folder / first[0]} and {folder / name} come from different conversions "
                           f"(checkpoint sha256 {first[1][:12]}… vs {sha[:12]}…): copy all of "
                           f"{', '.join(names)} from one `convert tflite` output")
    assert first is not None, "no files to check"
    return first[1]
