"""The retry and backoff policy shared by the Astro API client and the blob upload.

A :class:`Retryable` says which answers and transport errors are worth another attempt,
and, for requests that are not idempotent, which failures leave open whether the server
processed the request (*ambiguous* failures, never retried here);
:func:`send_with_retries` sends a request until it gets a final answer or runs out of
attempts, sleeping :meth:`Backoff.delay` or the server's ``Retry-After`` in between.
Retry messages name the request by the caller's label and never hold a URL or a header.

The rules:

* API GETs and blob PUTs (idempotent): retry 408, 429, 500, 502, 503, 504 and every
  transport error.
* API POSTs and DELETEs (not idempotent): retry only what provably was not processed:
  429, 503, and failures to get a connection at all (connection refused, connect timeout,
  no free connection in the pool). Any other transport error (read timeout, connection
  dropped after sending...) and any other 5xx but 501/505 is ambiguous: not retried, and
  flagged so the caller can check the state before trying again.
* Capped exponential backoff with jitter between attempts, or the server's
  ``Retry-After`` (at most 60 s) when it sent one, else the wait until
  ``X-RateLimit-Reset`` when ``X-RateLimit-Remaining`` is 0 (GitHub's rate limits), or
  until ``ratelimit-reset`` on a 429 (DigitalOcean's).
* GitHub answers a secondary rate limit with 403 (or 429) and such a header: a policy with
  ``rate_limited_403`` retries that 403 (an ordinary 403, a missing permission, is final).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from ci_deploy import tls

__all__ = [
    "API_GET",
    "API_POST",
    "BLOB_PUT",
    "DEFAULT_BACKOFF",
    "RETRY_AFTER_CAP",
    "Backoff",
    "Retryable",
    "TransportFailure",
    "bearer_client",
    "parse_retry_after",
    "rate_limit_delay",
    "send_with_retries",
]

RETRY_AFTER_CAP = 60.0
"""The longest ``Retry-After`` honoured, in seconds."""

_SERVER_ERRORS = frozenset({500, 502, 503, 504})

_UNSENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)
"""Transport errors raised before any byte of the request went out: no connection."""

_UNPROCESSED_SERVER_ERRORS = frozenset({501, 503, 505})
"""Server errors that say the request was not processed (not implemented, unavailable)."""


def bearer_client(
    base_url: str,
    token: str,
    *,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
    headers: Mapping[str, str],
) -> httpx.Client:
    """The HTTP client of one API: ``token`` is the bearer of requests to ``base_url`` only,
    redirects are never followed (they would carry the token elsewhere), and a connection
    gets 10 s. ``headers`` are the API's own."""
    return httpx.Client(
        base_url=base_url,
        timeout=httpx.Timeout(timeout, connect=10),
        follow_redirects=False,
        verify=tls.context(),
        transport=transport,
        headers={"Authorization": f"Bearer {token}", **headers},
    )


@dataclass(frozen=True)
class Retryable:
    """Which outcomes of one kind of request may be retried.

    ``statuses`` are the retryable HTTP statuses, ``errors`` the retryable httpx transport
    errors (checked with ``isinstance``). ``idempotent`` is False for requests that must not
    be repeated blindly (API POST and DELETE): their failures can be *ambiguous*, see
    :meth:`ambiguous_status` and :meth:`ambiguous_error`.
    """

    statuses: frozenset[int]
    errors: tuple[type[httpx.TransportError], ...]
    idempotent: bool = True
    rate_limited_403: bool = False
    """Whether a 403 that carries a rate limit (``Retry-After``, or ``X-RateLimit-Remaining: 0``)
    may be retried: GitHub's secondary rate limits answer so. A request refused by a rate
    limit was not processed, so this holds for requests that are not idempotent too."""

    def answer(self, response: httpx.Response) -> bool:
        """Whether this answer may be retried: its status, or a rate-limited 403."""
        if response.status_code == 403 and self.rate_limited_403:
            return rate_limit_delay(response) is not None
        return self.status(response.status_code)

    def status(self, status_code: int) -> bool:
        """Whether an answer with this status may be retried."""
        return status_code in self.statuses

    def error(self, exc: httpx.TransportError) -> bool:
        """Whether this transport error may be retried.

        An unsupported URL scheme is a configuration error: it never is.
        """
        return isinstance(exc, self.errors) and not isinstance(exc, httpx.UnsupportedProtocol)

    def ambiguous_status(self, status_code: int) -> bool:
        """Whether this final answer leaves open whether the server processed the request.

        Only for requests that are not idempotent: a 5xx that is not retried here and does
        not say the request went unprocessed (500, 502, 504, but not 501, 503 or 505).
        """
        return (
            not self.idempotent
            and 500 <= status_code <= 599
            and status_code not in _UNPROCESSED_SERVER_ERRORS
            and not self.status(status_code)
        )

    def ambiguous_error(self, exc: httpx.TransportError) -> bool:
        """Whether this transport error leaves open whether the server processed the request.

        Only for requests that are not idempotent: every error except those raised before
        the request went out (connection refused, connect or pool timeout, bad scheme).
        """
        return not self.idempotent and not isinstance(exc, _UNSENT_ERRORS)


API_GET = Retryable(_SERVER_ERRORS | {408, 429}, (httpx.TransportError,))
"""API reads: request timeouts, rate limits, server errors and any transport error."""

API_POST = Retryable(
    frozenset({429, 503}),
    (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout),
    idempotent=False,
)
"""API writes (POST and DELETE): only when the request provably was not processed.

Retried: 429, 503, and no connection (refused, connect timeout, pool timeout). Read
timeouts, dropped connections and other 5xx are ambiguous and never retried.
"""

BLOB_PUT = Retryable(_SERVER_ERRORS | {408, 429}, (httpx.TransportError,))
"""Blob PUTs are idempotent: timeouts, rate limits, server and transport errors."""


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter: ``base``, 2x``base``, 4x``base``... up to ``cap``.

    Each delay is scaled by a random factor in ``[1 - jitter, 1 + jitter)``; ``rng``
    returns a float in ``[0, 1)`` and can be replaced (for example by a seeded
    ``random.Random(7).random``) to make delays reproducible.
    """

    base: float = 1.0
    cap: float = 15.0
    jitter: float = 0.2
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, retry: int) -> float:
        """The delay in seconds before retry number ``retry`` (1 for the second attempt)."""
        raw = min(self.cap, self.base * 2.0 ** max(retry - 1, 0))
        factor = 1.0 + self.jitter * (2.0 * self.rng() - 1.0)
        return min(self.cap, max(0.0, raw * factor))


DEFAULT_BACKOFF = Backoff()


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP-date), capped at 60.

    Returns ``None`` when the header is missing or unreadable; dates in the past give 0.
    """
    if value is None or not value.strip():
        return None
    seconds = _seconds(value.strip(), now)
    if seconds is None or seconds != seconds:  # missing, unreadable or NaN
        return None
    return min(RETRY_AFTER_CAP, max(0.0, seconds))


def _seconds(text: str, now: datetime | None) -> float | None:
    try:
        return float(text)
    except ValueError:
        return _seconds_until(text, now)


def _seconds_until(http_date: str, now: datetime | None) -> float | None:
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - (now or datetime.now(UTC))).total_seconds()


class TransportFailure(Exception):
    """A request got no HTTP answer.

    ``error`` is httpx's exception (its text may hold the URL: redact before showing it),
    ``attempts`` how many attempts were made, and ``retryable`` whether the error was of
    a retryable kind (so the attempts ran out) rather than one that must not be retried.
    ``ambiguous`` is True when the request is not idempotent and the server may have
    processed it (see :meth:`Retryable.ambiguous_error`).
    """

    def __init__(
        self,
        error: httpx.TransportError,
        *,
        attempts: int,
        retryable: bool,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(type(error).__name__)
        self.error = error
        self.attempts = attempts
        self.retryable = retryable
        self.ambiguous = ambiguous


def send_with_retries(
    client: httpx.Client,
    request_factory: Callable[[], httpx.Request],
    *,
    retryable: Retryable,
    label: str,
    max_attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[str], None] | None = None,
    backoff: Backoff = DEFAULT_BACKOFF,
    first: httpx.Response | None = None,
) -> httpx.Response:
    """Send a request, retrying what ``retryable`` allows, up to ``max_attempts`` in total.

    ``first`` is the first attempt's answer when it was sent already (an early read): it
    counts as that attempt, and a retryable one is waited for (``Retry-After`` included) and
    logged like any other.

    Returns the first answer that is not retryable, or the last answer once the attempts
    run out (its status then is retryable). Raises :class:`TransportFailure` when the last
    attempt got no answer. ``label`` names the request in the ``on_retry`` messages.

    An ambiguous failure of a request that is not idempotent is never retried (its status
    or error is not retryable); :meth:`Retryable.ambiguous_status` of the returned status
    and :attr:`TransportFailure.ambiguous` tell the caller about it. Every earlier attempt
    then provably went unprocessed, so only the last one decides.
    """
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    attempt = 1
    while True:
        try:
            response = first if first is not None else client.send(request_factory())
            first = None
        except httpx.TransportError as exc:
            may_retry = retryable.error(exc)
            if not may_retry or attempt >= max_attempts:
                raise TransportFailure(
                    exc,
                    attempts=attempt,
                    retryable=may_retry,
                    ambiguous=retryable.ambiguous_error(exc),
                ) from exc
            delay, reason = backoff.delay(attempt), type(exc).__name__
        else:
            if not retryable.answer(response) or attempt >= max_attempts:
                return response
            delay = _delay_for(response, backoff, attempt)
            reason = f"HTTP {response.status_code}"
        attempt += 1
        if on_retry is not None:
            on_retry(
                f"{label}: {reason}, retrying in {delay:.1f} s "
                f"(attempt {attempt} of {max_attempts})"
            )
        sleep(delay)


def _delay_for(response: httpx.Response, backoff: Backoff, retry: int) -> float:
    wait = rate_limit_delay(response)
    return backoff.delay(retry) if wait is None else wait


def rate_limit_delay(response: httpx.Response, *, now: float | None = None) -> float | None:
    """Seconds the server asks to wait (at most 60): ``Retry-After``, else, when
    ``X-RateLimit-Remaining`` is 0, until ``X-RateLimit-Reset`` (epoch seconds, GitHub), else,
    on a 429, until ``ratelimit-reset`` (epoch seconds, DigitalOcean); None when the answer
    names no wait."""
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    if response.headers.get("X-RateLimit-Remaining", "").strip() == "0":
        header = "X-RateLimit-Reset"
    elif response.status_code == 429 and "ratelimit-reset" in response.headers:
        header = "ratelimit-reset"
    else:
        return None
    try:
        reset = float(response.headers.get(header, ""))
    except ValueError:
        return None
    if reset != reset:  # NaN
        return None
    return min(RETRY_AFTER_CAP, max(0.0, reset - (time.time() if now is None else now)))
