"""The project's own error types. The CLIs print these as one line (exit 1); anything else is a bug
and keeps its traceback (see `cli_errors`)."""
from __future__ import annotations


class E2microError(Exception):
    """A failure the user can act on: the message says what and where, in one line."""


class BadInput(E2microError, ValueError):
    """A file, option or combination of options the project cannot use."""


class MissingTool(E2microError):
    """A program or package the command needs is not installed here."""


class ConversionError(E2microError, RuntimeError):
    """A conversion stage failed or produced something it must not."""


class WriteError(E2microError, OSError):
    """A file or folder could not be written (disk full, permissions, …); names the path."""
