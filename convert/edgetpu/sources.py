"""model_edgetpu_data.{h,cc}: the compiled model as a 16-byte aligned const array in flash, for the
Dev Board Micro sketch (the array writer and banner are convert/c_sources.py's), naming the
conversion's checkpoint when report.json does (e2micro_coral.cc checks it against model_settings.h)."""
from __future__ import annotations

from pathlib import Path

from e2micro.atomic import write_atomic

from .. import model_id
from ..c_sources import BANNER, c_array
from ..targets import converted_from

EDGETPU_BANNER = BANNER.replace("convert tflite", "convert edgetpu")


def model_edgetpu_data(compiled: bytes, sha: str | None = None) -> dict[str, str]:
    ident = ("", "") if sha is None else (model_id.comment(sha), model_id.macros("model_edgetpu_data.h", sha) + "\n")
    banner = EDGETPU_BANNER + ident[0]
    h = (banner + "#ifndef E2MICRO_MODEL_EDGETPU_DATA_H_\n#define E2MICRO_MODEL_EDGETPU_DATA_H_\n\n" + ident[1] +
         "// The model compiled by edgetpu_compiler: one edgetpu-custom-op.\n"
         "extern const unsigned char g_model_edgetpu_data[];\nextern const unsigned int g_model_edgetpu_data_len;\n\n"
         "#endif  // E2MICRO_MODEL_EDGETPU_DATA_H_\n")
    cc = banner + '#include "model_edgetpu_data.h"\n\n' + c_array("g_model_edgetpu_data", compiled)
    return {"model_edgetpu_data.h": h, "model_edgetpu_data.cc": cc}


def write_sources(compiled: Path, out_dir: Path, firmware: Path | None, echo) -> list[str]:
    """Into the conversion folder and, with --firmware, that folder too; returns the file names."""
    files = model_edgetpu_data(compiled.read_bytes(), converted_from(out_dir))
    for folder in [out_dir] + ([Path(firmware)] if firmware is not None else []):
        for name, text in files.items():
            write_atomic(Path(folder) / name, text)
        echo(f"wrote model_edgetpu_data.h/.cc in {folder}")
    return sorted(files)
