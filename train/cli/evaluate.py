"""`train eval`."""
from __future__ import annotations

import json
import math
from pathlib import Path

import typer

from e2micro.cli_errors import cli_errors


def _finite(v):
    """JSON has no NaN: a figure that is undefined here (ROC AUC on one class) becomes null."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def eval_command(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `train fit`."),
    data: Path = typer.Option(..., "--data", help="Directory with PCam-format files."),
    split: str = typer.Option("test", help="train, valid or test."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    limit: int = typer.Option(None, min=1, help="Evaluate the first N images only."),
    invariance: bool = typer.Option(True, "--invariance/--no-invariance", help="Also measure rotation behaviour."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (undefined figures as null)."),
):
    """Accuracy, ROC AUC, NLL, class-change rate under 90° rotations, softmax change under 30°/45°."""
    with cli_errors():
        from ..checkpoint import load_model
        from ..data.pcam import PCamSplit
        from ..evaluate import evaluate

        model, config, _ = load_model(checkpoint)
        images = PCamSplit(data, split)
        images.check_labels(config.num_classes, f"the model ({config.num_classes} classes)")
        result = evaluate(model, config, images, batch_size, invariance, limit)
    result = {"checkpoint": str(checkpoint), "group": config.group or "none", "width": config.width,
              "min_fields": config.min_fields, **result}
    if as_json:
        typer.echo(json.dumps({k: _finite(v) for k, v in result.items()}, allow_nan=False))
        return
    for k, v in result.items():
        typer.echo(f"{k:>26}: {v:.4f}" if isinstance(v, float) else f"{k:>26}: {v}")
