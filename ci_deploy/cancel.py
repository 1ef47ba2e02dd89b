"""Cancellation: a cancelled workflow (SIGTERM, or SIGINT at a terminal) stops the run where it
is, and the report is still written.

Inside :func:`cancellable` the first signal raises
:class:`~ci_deploy.errors.CancelledError` wherever the run is. Every later signal, and any
signal while the report is written (inside :func:`guarded` but outside
:func:`cancellable`), is ignored: the run is already stopping, and the outputs and the
summary must not be cut off by a second SIGTERM. The handlers in place before are put back
when the outermost block exits. Signals are handled in the main thread only; elsewhere
these blocks do nothing. A process that ends with the report runs
its run inside :func:`until_exit`, so that no signal before the run is lost and none after
the report turns its exit code into a kill.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from ci_deploy.errors import CancelledError

__all__ = ["cancellable", "guarded", "until_exit"]

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class _State:
    depth = 0
    raising = False
    fired = False
    pending = 0
    """A signal that came before the run began (0: none): the run stops as it begins."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _State.fired:
        return  # already stopping, or writing the report: finish that first
    if not _State.raising:
        _State.pending = _State.pending or signum
        return
    _cancel(signum)


def _cancel(signum: int) -> None:
    _State.fired = True
    raise CancelledError(
        f"The run was cancelled ({signal.Signals(signum).name}) and stopped where it was.",
    )


def leave_signals_to_the_run() -> None:
    """In a worker process of the run (a syntax-check worker, the packing process): Ctrl-C is
    the run's to handle, and SIGTERM ends the worker at once (the run stops its workers)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def guarded() -> Iterator[None]:
    """Inside: SIGTERM and SIGINT do not kill the process (see :func:`cancellable`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    if _State.depth == 0:
        previous = {sig: signal.signal(sig, _on_signal) for sig in _SIGNALS}
        if previous[signal.SIGTERM] is not _on_signal:  # a new run, not the process's own
            _State.fired, _State.pending = False, 0
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
            if _State.pending and not _State.fired:
                _cancel(_State.pending)
            yield
        finally:
            _State.raising = outer


@contextmanager
def until_exit() -> Iterator[None]:
    """For the process's entry point, around the whole run: SIGTERM and SIGINT never kill it.

    Before the run begins a signal is kept, and the run stops as it begins; inside
    :func:`cancellable` the first one cancels; after that, while the report is written and
    once the block is left, they are ignored. Nothing is put back: the process exits after
    the run has reported, and a signal then must not turn its exit code into a kill (the
    interpreter resets Python-level handlers as it shuts down, so the block ends with the
    signals ignored at the OS level).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    for sig in _SIGNALS:
        signal.signal(sig, _on_signal)
    try:
        yield
    finally:
        for sig in _SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
