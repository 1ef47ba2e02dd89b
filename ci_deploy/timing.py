"""Time as a run sees it: the clock, sleeping, the poll schedule, the wall clock.

One :class:`Timing` per run, injected, so the orchestration tests run a ten-minute rollout
in milliseconds with a fake clock and never sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime


def poll_delays(first: float = 1.0, step: float = 1.0, maximum: float = 5.0) -> Iterator[float]:
    """Seconds to wait between the looks of a wait: 1, 2, 3, 4, then 5 s for good.

    A rollout that finishes is noticed within ``maximum`` seconds (5), however long the wait
    has lasted, while staying polite: after the first 10 s a wait looks 12 times a minute,
    720 times in an hour (a look is one or two GETs). That is well inside App Platform's
    limits (250 requests a minute, 5,000 an hour) and light for Astro's API, which publishes
    none. A 429 (or 503) answered while waiting is waited out by :mod:`ci_deploy.http`
    (``Retry-After``, App Platform's ``ratelimit-reset``, at most 60 s) before the look
    returns; the schedule then goes on where it was.
    """
    delay = first
    while True:
        yield delay
        delay = min(maximum, delay + step)


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
