"""What `convert edgetpu` and `convert engine` take as their target: a checkpoint (converted with
`convert tflite`'s defaults, or its existing conversion reused) or an int8 .tflite; resolved to the
model file and the folder the command writes into."""
from __future__ import annotations

from pathlib import Path

from e2micro.errors import BadInput

from .outputs import check_report_folder, read_report


def load_model(model: Path):
    """The .tflite as a `convert.tflite_graph.Graph`; one clear line if it is not a readable one."""
    from .tflite_graph import Graph

    head = model.read_bytes()[:8]
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise BadInput(f"{model}: not a TFLite model (no 'TFL3' flatbuffer identifier)")
    try:
        return Graph.load(model)
    except BadInput:
        raise
    except Exception as e:  # noqa: BLE001 — the flatbuffer reader raises anything on a damaged file
        raise BadInput(f"{model}: a damaged .tflite model ({type(e).__name__}: {e})") from None


def model_for(target: Path, out: Path | None, echo) -> tuple[Path, Path]:
    """(model, output folder): a .tflite's own folder (or --out); a checkpoint's conversion folder
    (<stem>_tflite/ or --out), converted now unless it holds a conversion of this very checkpoint
    (same sha256 in its report.json)."""
    if target.is_dir():
        raise BadInput(f"{target} is a directory: give a checkpoint or a .tflite file")
    if not target.exists():
        raise BadInput(f"{target}: no such file")
    if target.suffix == ".tflite":
        out_dir = Path(out) if out is not None else target.parent
        if out_dir.exists() and not out_dir.is_dir():
            raise BadInput(f"--out {out_dir} exists and is not a directory")
        check_report_folder(out_dir) if out_dir.is_dir() else None
        load_model(target)  # a bad file fails before anything is written
        out_dir.mkdir(parents=True, exist_ok=True)
        return target, out_dir
    from .pipeline import ConvertOptions, convert_tflite
    from .stages import sha256

    opts = ConvertOptions(checkpoint=target, out=out)
    out_dir = opts.out_dir()
    model = out_dir / "model_int8.tflite"
    if out_dir.is_dir():
        check_report_folder(out_dir)
    if model.is_file() and converted_from(out_dir) == sha256(target):
        echo(f"using {model} (converted from this checkpoint)")
    else:
        echo(f"converting {target} with `convert tflite` into {out_dir}")
        convert_tflite(opts, echo=echo)
    return model, out_dir


def converted_from(out_dir: Path) -> str | None:
    report = read_report(out_dir)
    return report["checkpoint"]["sha256"] if report else None
