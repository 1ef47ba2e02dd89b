"""The retry policy: what is retryable, backoff delays, Retry-After, and the retry loop."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from ci_deploy.http import (
    API_GET,
    API_POST,
    BLOB_PUT,
    Backoff,
    Retryable,
    TransportFailure,
    parse_retry_after,
    rate_limit_delay,
    send_with_retries,
)

REQUEST = httpx.Request("GET", "https://api.example/x")


@pytest.mark.parametrize(
    ("policy", "retried", "final"),
    [
        (API_GET, {408, 429, 500, 502, 503, 504}, {200, 301, 400, 401, 403, 404, 409, 501}),
        (API_POST, {429, 503}, {200, 204, 400, 404, 408, 409, 500, 501, 502, 504}),
        (BLOB_PUT, {408, 429, 500, 502, 503, 504}, {201, 400, 403, 404, 409, 412}),
    ],
)
def test_retryable_statuses(policy: Retryable, retried: set[int], final: set[int]) -> None:
    assert {s for s in retried | final if policy.status(s)} == retried


@pytest.mark.parametrize(
    ("error", "get", "post", "put", "post_ambiguous"),
    [
        (httpx.ConnectError("refused"), True, True, True, False),
        (httpx.ConnectTimeout("x"), True, True, True, False),
        (httpx.PoolTimeout("x"), True, True, True, False),
        (httpx.ReadTimeout("x"), True, False, True, True),
        (httpx.WriteTimeout("x"), True, False, True, True),
        (httpx.ReadError("reset"), True, False, True, True),
        (httpx.WriteError("x"), True, False, True, True),
        (httpx.RemoteProtocolError("closed without response"), True, False, True, True),
        (httpx.ProxyError("x"), True, False, True, True),
        (httpx.UnsupportedProtocol("x"), False, False, False, False),
    ],
)
def test_retryable_errors(
    error: httpx.TransportError, get: bool, post: bool, put: bool, post_ambiguous: bool
) -> None:
    assert (API_GET.error(error), API_POST.error(error), BLOB_PUT.error(error)) == (get, post, put)
    assert API_POST.ambiguous_error(error) is post_ambiguous
    assert not API_GET.ambiguous_error(error)  # idempotent: never ambiguous
    assert not BLOB_PUT.ambiguous_error(error)


def test_ambiguous_statuses() -> None:
    codes = {200, 204, 301, 400, 403, 404, 408, 409, 429, *range(500, 600)}
    assert {c for c in codes if API_POST.ambiguous_status(c)} == set(range(500, 600)) - {
        501,
        503,
        505,
    }
    assert not any(API_GET.ambiguous_status(c) or BLOB_PUT.ambiguous_status(c) for c in codes)


def test_a_retryable_status_is_never_ambiguous() -> None:
    policy = Retryable(frozenset({500}), (), idempotent=False)
    assert not policy.ambiguous_status(500)
    assert policy.ambiguous_status(502)


def test_backoff_doubles_up_to_the_cap() -> None:
    backoff = Backoff(rng=lambda: 0.5)
    assert [backoff.delay(n) for n in range(1, 8)] == [1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]


def test_backoff_jitter_bounds() -> None:
    low, high = Backoff(rng=lambda: 0.0), Backoff(rng=lambda: 0.999999)
    assert low.delay(1) == pytest.approx(0.8)
    assert high.delay(1) == pytest.approx(1.2, abs=1e-5)
    assert high.delay(5) == 15.0  # jitter never goes above the cap


def test_backoff_is_reproducible_with_a_seed() -> None:
    def delays() -> list[float]:
        backoff = Backoff(rng=random.Random(7).random)
        return [backoff.delay(n) for n in range(1, 5)]

    assert delays() == delays()


NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("120", 60.0),
        ("Wed, 01 May 2024 12:00:30 GMT", 30.0),
        ("Wed, 01 May 2024 13:00:00 GMT", 60.0),
        ("Wed, 01 May 2024 11:00:00 GMT", 0.0),
        ("soon", None),
        ("nan", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


Step = httpx.Response | httpx.TransportError


def scripted(*steps: Step) -> tuple[httpx.Client, list[httpx.Request]]:
    """A client whose transport answers (or fails) with ``steps`` in order."""
    sent: list[httpx.Request] = []
    queue = list(steps)

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        step = queue.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    return httpx.Client(transport=httpx.MockTransport(handle)), sent


def run(
    client: httpx.Client, policy: Retryable, *, max_attempts: int = 4, method: str = "GET"
) -> tuple[Callable[[], httpx.Response], list[float], list[str]]:
    sleeps: list[float] = []
    lines: list[str] = []

    def send() -> httpx.Response:
        return send_with_retries(
            client,
            lambda: client.build_request(method, "https://api.example/x"),
            retryable=policy,
            label="GET thing",
            max_attempts=max_attempts,
            sleep=sleeps.append,
            on_retry=lines.append,
            backoff=Backoff(rng=lambda: 0.5),
        )

    return send, sleeps, lines


def test_retries_until_success() -> None:
    client, sent = scripted(
        httpx.Response(503), httpx.ConnectError("no"), httpx.Response(200, text="ok")
    )
    send, sleeps, lines = run(client, API_GET)
    assert send().text == "ok"
    assert len(sent) == 3
    assert sleeps == [1.0, 2.0]
    assert lines == [
        "GET thing: HTTP 503, retrying in 1.0 s (attempt 2 of 4)",
        "GET thing: ConnectError, retrying in 2.0 s (attempt 3 of 4)",
    ]


def test_retry_after_replaces_the_backoff() -> None:
    client, _ = scripted(httpx.Response(429, headers={"Retry-After": "9"}), httpx.Response(200))
    send, sleeps, _ = run(client, API_POST)
    assert send().status_code == 200
    assert sleeps == [9.0]


def test_returns_the_last_answer_when_attempts_run_out() -> None:
    client, sent = scripted(*(httpx.Response(503) for _ in range(3)))
    send, sleeps, _ = run(client, API_GET, max_attempts=3)
    assert send().status_code == 503
    assert len(sent) == 3
    assert sleeps == [1.0, 2.0]


def test_final_status_is_returned_at_once() -> None:
    client, sent = scripted(httpx.Response(500))
    send, sleeps, lines = run(client, API_POST)
    assert send().status_code == 500
    assert (len(sent), sleeps, lines) == (1, [], [])


def test_transport_failure_after_the_last_attempt() -> None:
    client, _ = scripted(httpx.ConnectError("a"), httpx.ConnectError("b"))
    send, sleeps, _ = run(client, API_POST, max_attempts=2)
    with pytest.raises(TransportFailure) as caught:
        send()
    assert (caught.value.attempts, caught.value.retryable) == (2, True)
    assert str(caught.value.error) == "b"
    assert sleeps == [1.0]


def test_unretryable_transport_error_fails_at_once() -> None:
    client, sent = scripted(httpx.ReadTimeout("late"))
    send, sleeps, lines = run(client, API_POST, method="POST")
    with pytest.raises(TransportFailure) as caught:
        send()
    failure = caught.value
    assert (failure.attempts, failure.retryable, failure.ambiguous) == (1, False, True)
    assert isinstance(failure.error, httpx.ReadTimeout)
    assert (len(sent), sleeps, lines) == (1, [], [])


def test_exhausted_connect_errors_are_not_ambiguous() -> None:
    client, _ = scripted(httpx.ConnectTimeout("a"), httpx.ConnectError("b"))
    send, _, _ = run(client, API_POST, max_attempts=2, method="POST")
    with pytest.raises(TransportFailure) as caught:
        send()
    assert (caught.value.retryable, caught.value.ambiguous) == (True, False)


def test_get_transport_failures_are_never_ambiguous() -> None:
    client, _ = scripted(httpx.ReadTimeout("a"), httpx.RemoteProtocolError("b"))
    send, _, _ = run(client, API_GET, max_attempts=2)
    with pytest.raises(TransportFailure) as caught:
        send()
    assert (caught.value.retryable, caught.value.ambiguous) == (True, False)


def test_unsupported_scheme_is_neither_retried_nor_ambiguous() -> None:
    client, sent = scripted(httpx.UnsupportedProtocol("ftp"))
    send, sleeps, _ = run(client, API_POST, method="POST")
    with pytest.raises(TransportFailure) as caught:
        send()
    assert (caught.value.retryable, caught.value.ambiguous) == (False, False)
    assert (len(sent), sleeps) == (1, [])


def test_408_on_get_is_retried() -> None:
    client, sent = scripted(httpx.Response(408), httpx.Response(200, text="ok"))
    send, sleeps, lines = run(client, API_GET)
    assert send().text == "ok"
    assert (len(sent), sleeps) == (2, [1.0])
    assert lines == ["GET thing: HTTP 408, retrying in 1.0 s (attempt 2 of 4)"]


def test_503_then_pool_timeout_on_post_are_retried() -> None:
    client, sent = scripted(
        httpx.Response(503, headers={"Retry-After": "3"}),
        httpx.PoolTimeout("pool"),
        httpx.Response(200, text="ok"),
    )
    send, sleeps, lines = run(client, API_POST, method="POST")
    assert send().text == "ok"
    assert [r.method for r in sent] == ["POST", "POST", "POST"]
    assert sleeps == [3.0, 2.0]
    assert lines == [
        "GET thing: HTTP 503, retrying in 3.0 s (attempt 2 of 4)",
        "GET thing: PoolTimeout, retrying in 2.0 s (attempt 3 of 4)",
    ]


@pytest.mark.parametrize("status", [500, 502, 504])
def test_ambiguous_post_answer_after_a_503_ends_the_retries(status: int) -> None:
    client, sent = scripted(httpx.Response(503), httpx.Response(status), httpx.Response(200))
    send, sleeps, _ = run(client, API_POST, method="POST")
    response = send()
    assert response.status_code == status
    assert API_POST.ambiguous_status(response.status_code)
    assert (len(sent), sleeps) == (2, [1.0])


def test_each_attempt_gets_a_fresh_request() -> None:
    client, sent = scripted(httpx.Response(503), httpx.Response(200))
    send, _, _ = run(client, API_GET)
    send()
    assert sent[0] is not sent[1]


def test_max_attempts_must_be_positive() -> None:
    client, _ = scripted()
    send, _, _ = run(client, API_GET, max_attempts=0)
    with pytest.raises(ValueError, match="max_attempts"):
        send()


# --- rate limits (GitHub) ----------------------------------------------------------------------


def test_rate_limit_delay_reads_retry_after_then_the_reset_time() -> None:
    def answer(**headers: str) -> httpx.Response:
        return httpx.Response(403, headers=headers)

    assert rate_limit_delay(answer(**{"Retry-After": "7"})) == 7.0
    reset = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1000"}
    assert rate_limit_delay(answer(**reset), now=990.0) == 10.0
    assert rate_limit_delay(answer(**reset), now=5000.0) == 0.0
    assert rate_limit_delay(answer(**{**reset, "X-RateLimit-Reset": "99999"}), now=0) == 60.0
    assert rate_limit_delay(answer(**{**reset, "X-RateLimit-Remaining": "5"})) is None
    assert rate_limit_delay(answer(**{**reset, "X-RateLimit-Reset": "soon"})) is None
    assert rate_limit_delay(answer()) is None


def test_app_platforms_429_waits_until_its_ratelimit_reset() -> None:
    def answer(status: int, **headers: str) -> httpx.Response:
        return httpx.Response(status, headers=headers)

    reset = {"ratelimit-limit": "5000", "ratelimit-remaining": "0", "ratelimit-reset": "1000"}
    assert rate_limit_delay(answer(429, **reset), now=988.0) == 12.0
    assert rate_limit_delay(answer(429, **reset), now=5000.0) == 0.0
    assert rate_limit_delay(answer(429, **{**reset, "ratelimit-reset": "99999"}), now=0) == 60.0
    assert rate_limit_delay(answer(429, **{**reset, "ratelimit-reset": "soon"})) is None
    assert rate_limit_delay(answer(429, **{**reset, "Retry-After": "3"}), now=0) == 3.0
    assert rate_limit_delay(answer(503, **reset), now=988.0) is None  # only a 429's


def test_app_platforms_ratelimit_reset_replaces_the_backoff() -> None:
    reset = str(int(time.time()) + 30)
    client, _ = scripted(
        httpx.Response(429, headers={"ratelimit-reset": reset}), httpx.Response(200)
    )
    send, sleeps, _ = run(client, API_POST)
    assert send().status_code == 200
    assert len(sleeps) == 1 and 28.0 <= sleeps[0] <= 30.0


def test_only_a_policy_for_rate_limited_403s_retries_them() -> None:
    limited = httpx.Response(403, headers={"Retry-After": "0"})
    forbidden = httpx.Response(403)
    github = Retryable(frozenset({429}), (), rate_limited_403=True)

    assert github.answer(limited) and not github.answer(forbidden)
    assert not API_GET.answer(limited), "Astro's 403 is a missing permission"
