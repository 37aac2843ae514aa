"""`train eval`."""
from __future__ import annotations

import json
from pathlib import Path

import typer

from .errors import user_errors


def eval_command(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `train fit`."),
    data: Path = typer.Option(..., "--data", help="Directory with PCam-format files."),
    split: str = typer.Option("test", help="train, valid or test."),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    limit: int = typer.Option(None, help="Evaluate the first N images only."),
    invariance: bool = typer.Option(True, "--invariance/--no-invariance", help="Also measure rotation behaviour."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
):
    """Accuracy, ROC AUC, NLL, class-change rate under 90° rotations, softmax change under 30°/45°."""
    from ..checkpoint import load_model
    from ..data.pcam import PCamSplit
    from ..evaluate import evaluate

    with user_errors():
        model, config, _ = load_model(checkpoint)
        result = evaluate(model, config, PCamSplit(data, split), batch_size, invariance, limit)
    result = {"checkpoint": str(checkpoint), "group": config.group or "none", "width": config.width, **result}
    if as_json:
        typer.echo(json.dumps(result))
        return
    for k, v in result.items():
        typer.echo(f"{k:>26}: {v:.4f}" if isinstance(v, float) else f"{k:>26}: {v}")
