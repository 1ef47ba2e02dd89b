"""Time as a run sees it: the clock, sleeping, the poll schedule, the wall clock.

One :class:`Timing` per run, injected, so the orchestration tests run a ten-minute rollout
in milliseconds with a fake clock and never sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime


def poll_delays(
    initial: float = 2.0, maximum: float = 15.0, factor: float = 1.5
) -> Iterator[float]:
    """Seconds to wait between polls: ``initial``, growing by ``factor``, capped at ``maximum``."""
    delay = initial
    while True:
        yield delay
        delay = min(maximum, delay * factor)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Timing:
    """The clocks of a run: ``clock`` (monotonic seconds) and ``sleep`` pace the waits,
    ``poll_delays`` makes each wait's schedule, ``now`` stamps events for log queries,
    ``request_timeout`` is how long one HTTP request may wait for its answer (seconds)."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    poll_delays: Callable[[], Iterator[float]] = field(default=poll_delays)
    now: Callable[[], datetime] = _utc_now
    request_timeout: float = 30.0
