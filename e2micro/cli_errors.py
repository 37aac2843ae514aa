"""How both CLIs end a command that fails.

- The project's own errors (`e2micro.errors`: bad input, missing tool, conversion failure, a write
  that failed) and the system's (`OSError`: disk full, permissions) are one line on stderr, exit 1.
- SIGINT/SIGTERM: one line saying what was kept, exit 130/143.
- Anything else is a bug: its traceback, then one line saying so, exit 70 (EX_SOFTWARE).
- `--debug` (on `train` and `convert`) re-raises everything.
"""
from __future__ import annotations

import contextlib
import traceback

import typer

from . import interrupts
from .errors import E2microError

DEBUG = False
BUG_EXIT = 70


def debug_option(value: bool) -> None:
    """Typer callback of the apps' `--debug` option."""
    global DEBUG
    DEBUG = bool(value)


def one_line(e: BaseException) -> str:
    text = str(e).strip()
    if isinstance(e, OSError) and not isinstance(e, E2microError) and e.strerror:
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror}"
    return text.splitlines()[0] if text else type(e).__name__


@contextlib.contextmanager
def cli_errors(interrupted: str = "stopped"):
    """Wrap a command's body. `interrupted` says what a SIGINT/SIGTERM leaves behind; an exception
    may carry a more precise `kept` attribute."""
    with interrupts.handled():
        try:
            yield
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt as e:
            if DEBUG:
                raise
            signum = getattr(e, "signum", 2)
            name = "SIGINT" if signum == 2 else "SIGTERM" if signum == 15 else f"signal {signum}"
            typer.echo(f"interrupted ({name}): {getattr(e, 'kept', None) or interrupted}", err=True)
            raise typer.Exit(128 + signum) from None
        except (E2microError, OSError) as e:
            if DEBUG:
                raise
            typer.echo(f"error: {one_line(e)}", err=True)
            raise typer.Exit(1) from None
        except Exception as e:  # noqa: BLE001 — a bug: keep its traceback
            if DEBUG:
                raise
            traceback.print_exc()
            typer.echo(f"error: this is a bug in e2micro, not a problem with your input ({type(e).__name__}); "
                       "please report it with the traceback above", err=True)
            raise typer.Exit(BUG_EXIT) from None
