"""Cancellation: a cancelled workflow (SIGTERM, or SIGINT at a terminal) stops the run where it
is, and the report is still written.

Inside :func:`cancellable` the first signal raises
:class:`~ci_deploy.errors.CancelledError` wherever the run is. Every later signal, and any
signal while the report is written (inside :func:`guarded` but outside
:func:`cancellable`), is ignored: the run is already stopping, and the outputs and the
summary must not be cut off by a second SIGTERM. The handlers in place before are put back
when the outermost block exits. Signals are handled in the main thread only; elsewhere
these blocks do nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from ci_deploy.errors import CancelledError

__all__ = ["cancellable", "guarded"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _State:
    depth = 0
    raising = False
    fired = False


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _State.raising and not _State.fired:
        _State.fired = True
        raise CancelledError(
            f"The run was cancelled ({signal.Signals(signum).name}) and stopped where it was.",
        )
    # Already stopping, or writing the report: finish that first.


@contextmanager
def guarded() -> Iterator[None]:
    """Inside: SIGTERM and SIGINT do not kill the process (see :func:`cancellable`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    if _State.depth == 0:
        previous = {sig: signal.signal(sig, _on_signal) for sig in _SIGNALS}
        _State.fired = False
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def cancellable() -> Iterator[None]:
    """Inside: the first SIGTERM or SIGINT raises CancelledError; later ones are ignored."""
    with guarded():
        outer, _State.raising = _State.raising, True
        try:
            yield
        finally:
            _State.raising = outer
