"""SIGINT and SIGTERM stop a command the same way: an `Interrupted` exception, so every cleanup
runs, then exit 128 + signal (130, 143).

Libraries may swallow the exception (onnx2tf has bare `except:` blocks), so the signal is also
remembered: `check()` raises it again, and long stages call it when a library returns.
"""
from __future__ import annotations

import contextlib
import signal
import threading

HANDLED = (signal.SIGINT, signal.SIGTERM)
_received: int | None = None


class Interrupted(KeyboardInterrupt):
    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handler(signum, frame):
    global _received
    _received = signum
    raise Interrupted(signum)


def check() -> None:
    """Raise again a signal that arrived earlier (and may have been swallowed)."""
    if _received is not None:
        raise Interrupted(_received)


@contextlib.contextmanager
def handled():
    """Within: SIGINT/SIGTERM raise `Interrupted` (main thread only; elsewhere a no-op)."""
    global _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in HANDLED}
    _received = None
    for s in HANDLED:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _received = None
