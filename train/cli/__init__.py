"""`train`: fit and evaluate models; `train data` makes data sets."""
from __future__ import annotations

import typer

from e2micro.cli_errors import debug_option

from .data import app as data_app
from .evaluate import eval_command
from .fit import fit_command

app = typer.Typer(help="Train and evaluate equivariant MobileNetV2 models on PCam-format data.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)  # plain usage errors: a line, not a box


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", callback=debug_option, is_eager=True,
                                     help="Show the full traceback of any error.")):
    """Train and evaluate equivariant MobileNetV2 models on PCam-format data."""


app.command("fit")(fit_command)
app.command("eval")(eval_command)
app.add_typer(data_app, name="data")


def main() -> None:
    app()
