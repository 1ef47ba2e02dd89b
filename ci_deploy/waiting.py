"""Waiting for an environment: the looks paced by the poll schedule, the timeout kept, and a
log that shows progress rather than a line per look.

Every wait of a run (a rollout, a rollback, a revert, a preview being made) goes through one
:class:`Wait`, so every wait logs by the same rule, :func:`progress_line`: a line whenever
what is seen changes (a status or phase, the versions running, the steps done), and
otherwise one ``Still waiting (2m 10s of 10m): ...`` line every :data:`PROGRESS_EVERY`
seconds. A ten-minute wait on an unchanging state logs about twenty lines, not one per look.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ci_deploy.text import capitalized
from ci_deploy.timing import Timing

PROGRESS_EVERY = 30.0
"""Seconds between the lines of a wait whose state does not change."""
_CLOCK_GRAIN = 1e-3
"""Time left that counts as none: the float sum of the delays may fall short of the timeout
by a rounding error, and sleeping that long would not move a clock (a wait that always runs
to its end, like the settle window, would then never end)."""


@dataclass(frozen=True)
class Logged:
    """The last line a wait logged: the state it showed, ``at`` seconds into the wait."""

    state: str
    at: float


def duration(seconds: float) -> str:
    """Whole seconds in words: ``45s``, ``2m 10s``, ``10m``, ``1h 5m``, ``6h``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    return f"{secs}s"


def progress_line(
    state: str,
    elapsed: float,
    timeout: float,
    last: Logged | None,
    every: float = PROGRESS_EVERY,
) -> str | None:
    """The line to log for a look that saw ``state`` ``elapsed`` seconds into a wait of at
    most ``timeout``, after ``last`` (None before the first line); None: log nothing.

    A new state is always logged; the same one again only once ``every`` seconds have passed
    since the last line.
    """
    if last is None or state != last.state:
        return f"[{duration(elapsed)}] {capitalized(state)}"
    if elapsed - last.at >= every:
        return f"Still waiting ({duration(elapsed)} of {duration(timeout)}): {state}"
    return None


class Wait:
    """One wait on a run's clock: its looks paced by ``timing.poll_delays``, bounded by
    ``timeout`` seconds, what they see logged through ``log`` by :func:`progress_line`.

    The caller looks, tells :meth:`seen` what it saw, and calls :meth:`pause` before the
    next look; :meth:`pause` says when the time is up.
    """

    def __init__(self, timing: Timing, timeout: float, log: Callable[[str], None]) -> None:
        self.timeout = timeout
        self._timing = timing
        self._log = log
        self._started = timing.clock()
        self._delays = timing.poll_delays()
        self._last: Logged | None = None

    @property
    def elapsed(self) -> float:
        """Seconds since the wait began."""
        return self._timing.clock() - self._started

    def seen(self, state: str) -> bool:
        """Log what a look saw, when the rule says so; True when ``state`` is new."""
        new = self._last is None or state != self._last.state
        elapsed = self.elapsed
        line = progress_line(state, elapsed, self.timeout, self._last)
        if line is not None:
            self._log(line)
            self._last = Logged(state, elapsed)
        return new

    def pause(self) -> bool:
        """Sleep until the next look (never past the timeout); False, without sleeping, when
        the timeout has passed."""
        remaining = self.timeout - self.elapsed
        if remaining <= _CLOCK_GRAIN:  # not 0: a sleep of 1e-14 s may not move the clock
            return False
        self._timing.sleep(min(next(self._delays), remaining))
        return True
