"""Fault injection: make the next matching requests fail, lose their answers, or answer late.

Rules are matched in the order they were added; the first armed rule whose method equals
the request's (``"*"`` matches any) and whose regex is found in the request's path (no
query) takes the request and counts down. A rule is gone once its count is used up.

Five kinds of fault, each for the next ``count`` matching requests::

    emu.faults.add("POST", r"/finalize$", 503, retry_after="1")   # answered 503, not processed
    emu.faults.add("PUT", r"^/blob/", 500, count=2)                # two upload failures
    emu.faults.add_drop("POST", r"/deploys$")                      # processed, answer lost
    emu.faults.add_drop("POST", r"/deploys$", processed=False)     # lost before processing
    emu.faults.add_slow("GET", r"/deploys$", 1.5)                  # processed, answered 1.5 s late
    emu.faults.add_late("POST", r"/deploys$", until=("PUT", "^/blob/"))  # processed later on

- ``add``: answered with an HTTP status without being handled (the state is unchanged).
- ``add_drop``: the connection is closed without an answer, after the request was handled
  (``processed=True``, the default) or without handling it (``processed=False``). The
  client sees the same thing either way: a connection closed before any answer.
- ``add_slow``: handled at once (the state changes), but answered only after ``seconds``
  of real time (at most :data:`MAX_SLOW_SECONDS`), so a client whose read timeout is
  shorter gives up first. Stopping the emulator cuts the wait short: the connection is
  then closed without an answer.
- ``add_late``: the connection is closed without an answer and without handling the
  request; it is handled later, just before the first request matching ``until`` (a server
  that finished the work after the client had given up and looked).

Every kind takes ``after=(method, regex)``: the rule is armed only once a request matching
that method and regex has arrived since the rule was added (the arming request itself is
never taken by it). This faults "the polls after the finalize" without touching the GETs
of the same path before it::

    emu.faults.add("GET", r"/deployments/[^/]+$", 500, after=("POST", r"/finalize$"))
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

MAX_SLOW_SECONDS = 10.0
"""The longest delay :meth:`Faults.add_slow` accepts, so no test can hang on it for long."""


@dataclass(frozen=True)
class Fault:
    """What to do with one request instead of (or besides) answering it at once.

    ``status`` answers the request without handling it. With no ``status``, the request
    is handled when ``processed`` is true, then the connection is closed without an
    answer (a drop), or answered after ``delay`` seconds when ``delay`` is positive (slow).
    With neither ``processed`` nor ``status``, the connection is closed unhandled.
    """

    status: int | None
    retry_after: str | None = None
    body: dict[str, Any] | None = None
    processed: bool = False
    delay: float = 0.0
    until: tuple[str, str] | None = None
    """A late fault: the request is handled only when a request matching this (method,
    regex) arrives, just before that one is handled."""

    @property
    def drop(self) -> bool:
        """Whether the connection is closed without an answer."""
        return self.status is None and self.delay == 0

    @property
    def slow(self) -> bool:
        """Whether the request is handled and answered late."""
        return self.status is None and self.delay > 0


@dataclass(frozen=True)
class _Match:
    method: str
    pattern: re.Pattern[str]

    @classmethod
    def of(cls, method: str, path_regex: str) -> _Match:
        return cls(method.upper(), re.compile(path_regex))

    def __call__(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self.pattern.search(path) is not None


@dataclass
class _Rule:
    match: _Match
    remaining: int
    fault: Fault
    after: _Match | None = None
    """Armed once a request matching this arrived; None when armed from the start."""


class Faults:
    """The pending fault rules of one emulator. Safe to use from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []

    def add(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        count: int = 1,
        retry_after: str | None = None,
        body: dict[str, Any] | None = None,
        after: tuple[str, str] | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status``, without handling them.

        The body is an API Error JSON (an Azure XML error on ``/blob/`` paths) unless
        ``body`` is given; ``retry_after`` becomes a ``Retry-After`` header.
        """
        if not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {status}")
        self._add(method, path_regex, count, Fault(status, retry_after, body), after)

    def add_drop(
        self,
        method: str,
        path_regex: str,
        count: int = 1,
        *,
        processed: bool = True,
        after: tuple[str, str] | None = None,
    ) -> None:
        """Close the connection of the next ``count`` matching requests without answering.

        ``processed``: the request is handled first (its answer is lost), or not at all.
        """
        self._add(method, path_regex, count, Fault(None, processed=processed), after)

    def add_slow(
        self,
        method: str,
        path_regex: str,
        seconds: float,
        *,
        count: int = 1,
        after: tuple[str, str] | None = None,
    ) -> None:
        """Handle the next ``count`` matching requests, answering each ``seconds`` late.

        Real seconds, not the emulator's clock: the point is a client's read timeout.
        """
        if not 0 < seconds <= MAX_SLOW_SECONDS:
            raise ValueError(
                f"seconds must be more than 0 and at most {MAX_SLOW_SECONDS:g}, got {seconds}"
            )
        self._add(method, path_regex, count, Fault(None, processed=True, delay=seconds), after)

    def add_late(
        self,
        method: str,
        path_regex: str,
        *,
        until: tuple[str, str],
        count: int = 1,
        after: tuple[str, str] | None = None,
    ) -> None:
        """Close the connection of the next ``count`` matching requests without answering,
        and handle each only when a request matching ``until`` arrives: processed after the
        client gave up on it, and after it looked whether it was."""
        self._add(method, path_regex, count, Fault(None, until=until), after)

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request, counting it against its rule; None when none applies.

        Rules waiting for this request (``after``) are armed after it is matched, so they
        apply from the next request on.
        """
        method = method.upper()
        with self._lock:
            fault = None
            for rule in self._rules:
                if rule.after is None and rule.match(method, path):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                    fault = rule.fault
                    break
            for rule in self._rules:
                if rule.after is not None and rule.after(method, path):
                    rule.after = None
            return fault

    @property
    def pending(self) -> int:
        """How many requests the remaining rules will still take (armed or not)."""
        with self._lock:
            return sum(rule.remaining for rule in self._rules)

    def clear(self) -> None:
        """Drop every remaining rule."""
        with self._lock:
            self._rules.clear()

    def _add(
        self,
        method: str,
        path_regex: str,
        count: int,
        fault: Fault,
        after: tuple[str, str] | None,
    ) -> None:
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        rule = _Rule(
            _Match.of(method, path_regex),
            count,
            fault,
            None if after is None else _Match.of(*after),
        )
        with self._lock:
            self._rules.append(rule)
