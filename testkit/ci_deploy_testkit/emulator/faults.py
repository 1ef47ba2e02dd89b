"""Fault injection: make the next matching requests fail, or lose their answers.

Rules are matched in the order they were added; the first rule whose method equals the
request's (``"*"`` matches any) and whose regex is found in the request's path (no query)
takes the request and counts down. A rule is gone once its count is used up::

    emu.faults.add("POST", r"/finalize$", 503, retry_after="1")   # one 503, not processed
    emu.faults.add("PUT", r"^/blob/", 500, count=2)                # two upload failures
    emu.faults.add_drop("POST", r"/deploys$")                      # processed, answer lost
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Fault:
    """What to do with one request instead of (or after) handling it.

    ``status`` is None for a drop: the request is handled, then the connection is closed
    without an answer.
    """

    status: int | None
    retry_after: str | None = None
    body: dict[str, Any] | None = None

    @property
    def drop(self) -> bool:
        return self.status is None


@dataclass
class _Rule:
    method: str
    pattern: re.Pattern[str]
    remaining: int
    fault: Fault

    def matches(self, method: str, path: str) -> bool:
        return self.method in ("*", method) and self.pattern.search(path) is not None


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
    ) -> None:
        """Answer the next ``count`` matching requests with ``status``, without handling them.

        The body is an API Error JSON (an Azure XML error on ``/blob/`` paths) unless
        ``body`` is given; ``retry_after`` becomes a ``Retry-After`` header.
        """
        if not 100 <= status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {status}")
        self._add(method, path_regex, count, Fault(status, retry_after, body))

    def add_drop(self, method: str, path_regex: str, count: int = 1) -> None:
        """Handle the next ``count`` matching requests, then close without answering."""
        self._add(method, path_regex, count, Fault(None))

    def take(self, method: str, path: str) -> Fault | None:
        """The fault for this request, counting it against its rule; None when none applies."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method.upper(), path):
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                    return rule.fault
        return None

    @property
    def pending(self) -> int:
        """How many requests the remaining rules will still take."""
        with self._lock:
            return sum(rule.remaining for rule in self._rules)

    def clear(self) -> None:
        """Drop every remaining rule."""
        with self._lock:
            self._rules.clear()

    def _add(self, method: str, path_regex: str, count: int, fault: Fault) -> None:
        if count < 1:
            raise ValueError(f"count must be at least 1, got {count}")
        rule = _Rule(method.upper(), re.compile(path_regex), count, fault)
        with self._lock:
            self._rules.append(rule)
