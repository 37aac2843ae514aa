"""`train fit`."""
from __future__ import annotations

import os
from pathlib import Path

import typer

from e2micro.cli_errors import cli_errors


def fit_command(
    data: Path = typer.Option(..., "--data", help="Directory with PCam-format train/valid files."),
    out: Path = typer.Option(Path("ckpt.pt"), "--out", help="Best checkpoint (see --select)."),
    group: str = typer.Option(None, help="C4, C8, C12, C16, D4, D8, D16 (C_N/D_N, N a multiple of 4, at most 16), "
                                         "or none.  [default: C12]"),
    width: float = typer.Option(None, help="Width multiplier.  [default: 0.35]"),
    epochs: int = typer.Option(None, min=1, help="[default: 10]; with --resume, a larger value extends the run."),
    batch_size: int = typer.Option(None, "--batch-size", min=1, help="Per process.  [default: 64]"),
    lr: float = typer.Option(None, help="Peak learning rate (AdamW, cosine schedule).  [default: 0.002]"),
    weight_decay: float = typer.Option(None, "--weight-decay", help="[default: 0.0001]"),
    seed: int = typer.Option(None, min=0, help="[default: 0]"),
    activation: str = typer.Option(None, help="relu6 (MobileNetV2) or relu (cross-layer equalization is "
                                              "then exact at conversion).  [default: relu6]"),
    min_fields: int = typer.Option(None, "--min-fields", help="Regular fields every stage has at least "
                                   "(equivariant groups only; 1 is MobileNetV2's rounding, which leaves small "
                                   "widths single-field early stages).  [default: 2]"),
    num_classes: int = typer.Option(None, "--num-classes", min=2, help="Classes in the labels (PCam: 2).  "
                                                                       "[default: 2]"),
    augment: str = typer.Option(None, help="Training augmentation: none, dihedral (90° turns and flips), colour "
                                           "(stain-like jitter) or dihedral+colour.  [default: dihedral]"),
    select: str = typer.Option(None, help="Checkpoint kept: the epoch with the lowest validation loss, or "
                                          "the highest validation accuracy (ties: lower loss): loss or accuracy.  "
                                          "[default: loss]"),
    device: str = typer.Option("auto", help="auto (CUDA when present), cpu or cuda."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved next to --out (<out>.last.pt) "
                                                        "with its stored settings."),
    force: bool = typer.Option(False, "--force", help="Start over where an earlier run's files exist at --out."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Train a model; keeps the best epoch's checkpoint (--select) and a JSON-lines log."""
    given = {k: v for k, v in dict(group=group, width=width, epochs=epochs, batch_size=batch_size, lr=lr,
                                   weight_decay=weight_decay, seed=seed, activation=activation,
                                   num_classes=num_classes, augment=augment, select=select,
                                   min_fields=min_fields).items() if v is not None}
    with cli_errors("stopped; with an epoch finished, the same command and --resume continues"):
        from e2micro.errors import BadInput

        from ..fit import FitSettings, fit
        from ..groups import parse_group

        # A bad --augment / --select is refused here, so its line comes before any warning.
        settings = FitSettings(data=str(data), out=str(out), device=device, progress=progress, **given)
        if min_fields is not None and not resume and parse_group(settings.group) is None:
            raise BadInput("--min-fields applies to equivariant groups (regular fields); --group none has none")
        if not resume and os.environ.get("RANK", "0") == "0":  # once per run: not on resume, not per DDP rank
            warn_single_fields(settings)
        best = fit(settings, resume=resume, given=given, force=force)
    if best is not None:  # rank 0 only
        acc = best.get("val_acc", float("nan"))  # absent when no epoch improved (val loss never finite)
        typer.echo(f"best epoch {best.get('epoch')}: val loss {best['val_loss']:.4f} acc {acc:.3f}, checkpoint {out}")


def warn_single_fields(s) -> None:
    """One line on stderr when the configuration leaves a stage with a single regular field."""
    from ..fit import single_field_stages
    from ..groups import parse_group

    stages = single_field_stages(s)
    if stages:
        typer.echo(f"warning: {parse_group(s.group).name} at width {s.width:g} leaves a single regular field "
                   f"({stages[0][1]} channels) in {', '.join(n for n, _ in stages)}: few distinct filters there "
                   "(see the README's data-efficiency section); --min-fields 2 (the default), a larger --width or a "
                   "smaller group gives every stage at least two fields", err=True)
