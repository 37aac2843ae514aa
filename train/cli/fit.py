"""`train fit`."""
from __future__ import annotations

from pathlib import Path

import typer

from .errors import user_errors


def fit_command(
    data: Path = typer.Option(..., "--data", help="Directory with PCam-format train/valid files."),
    out: Path = typer.Option(Path("ckpt.pt"), "--out", help="Best checkpoint (lowest validation loss)."),
    group: str = typer.Option("C12", help="C4, C8, C12, D4, D8 (C_N/D_N, N a multiple of 4), or none."),
    width: float = typer.Option(0.35, help="Width multiplier."),
    epochs: int = typer.Option(10, min=1),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Per process."),
    lr: float = typer.Option(2e-3, help="Peak learning rate (AdamW, cosine schedule)."),
    weight_decay: float = typer.Option(1e-4, "--weight-decay"),
    seed: int = typer.Option(0),
    activation: str = typer.Option("relu6", help="relu6 (MobileNetV2) or relu (cross-layer equalization is "
                                                   "then exact at conversion)."),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu or cuda."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved next to --out (<out>.last.pt)."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Train a model; keeps the checkpoint with the lowest validation loss and a JSON-lines log."""
    from ..fit import FitSettings, TrainingError, fit

    with user_errors():
        try:
            best = fit(FitSettings(str(data), str(out), group, width, epochs, batch_size, lr, weight_decay, seed,
                                   activation=activation, device=device, progress=progress), resume=resume)
        except TrainingError as e:
            raise RuntimeError(str(e)) from None
    if best is not None:  # rank 0 only
        typer.echo(f"best epoch {best.get('epoch')}: val loss {best['val_loss']:.4f}, checkpoint {out}")
