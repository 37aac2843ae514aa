"""Known failures become one clear line on stderr and a non-zero exit, not a traceback."""
from __future__ import annotations

import contextlib

import typer

from ..checkpoint import CheckpointError
from ..data.pcam import PCamFormatError

# ConversionError is a RuntimeError; RuntimeError also covers TFLM's "failed to allocate".
USER_ERRORS = (CheckpointError, PCamFormatError, ValueError, OSError, RuntimeError)


@contextlib.contextmanager
def user_errors():
    try:
        yield
    except USER_ERRORS as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        typer.echo(f"error: {msg}", err=True)
        raise typer.Exit(1) from None
