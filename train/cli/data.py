"""`train data demo`: write the built-in synthetic demo set in PCam's layout."""
from __future__ import annotations

from pathlib import Path

import typer

from e2micro.cli_errors import cli_errors

app = typer.Typer(help="Data sets in PCam's file layout.", no_args_is_help=True)


@app.command("demo")
def demo(
    out: Path = typer.Option(..., "--out", help="Directory for camelyonpatch_level_2_split_*_{x,y}.h5."),
    seed: int = typer.Option(0, help="Everything is determined by this seed."),
    train: int = typer.Option(2048, help="Training patches."),
    valid: int = typer.Option(512, help="Validation patches."),
    test: int = typer.Option(512, help="Test patches."),
    difficulty: str = typer.Option("easy", help="easy: the quick demo (a small model reaches ≈95 %); hard: "
                                                "stain and texture variation, subtle classes, heavy tails."),
):
    """Write a small synthetic PCam-like set (label = centre 32×32 px only; offline, deterministic)."""
    from ..data.demo import write_demo

    with cli_errors():
        sizes = write_demo(out, seed, {"train": train, "valid": valid, "test": test}, difficulty)
    typer.echo(f"wrote {difficulty} demo data to {out}: " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
