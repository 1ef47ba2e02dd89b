"""upload_blob against respx: Put Blob, Put Block + Put Block List, Azure errors, retries.

The upload URL's ``sig`` is a credential: every error and retry message is checked for it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote

import httpx
import pytest
import respx

from ci_deploy.astro.upload import redact_url, refusal_advice, upload_blob
from ci_deploy.errors import UploadError

SIG = "Zm9vYmFy%2BYmF6cXV4%3D"
SIG_DECODED = "Zm9vYmFy+YmF6cXV4="
QUERY = f"sv=2023-11-03&se=2030-01-01T00%3A00%3A00Z&sr=b&sp=cw&sig={SIG}"
BLOB = "https://acct.blob.core.windows.net/dags/dep-1/deploy-1.tar.gz"
URL = f"{BLOB}?{QUERY}"
REDACTED = f"{BLOB}?<redacted>"
VERSION = "2024-01-12T18:32:20.5898930Z"


def azure_error(code: str, message: str) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}\nRequestId:r-1\nTime:now</Message></Error>"
    )


@dataclass
class Blob:
    """A respx router for the blob host, with the sleeps and retry lines of one upload."""

    router: respx.MockRouter
    sleeps: list[float] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)

    def upload(self, data: bytes, **kwargs: Any) -> str:
        kwargs.setdefault("sleep", self.sleeps.append)
        kwargs.setdefault("on_retry", self.retries.append)
        return upload_blob(URL, data, transport=httpx.MockTransport(self.router.handler), **kwargs)

    def fail(self, data: bytes = b"tarball", **kwargs: Any) -> UploadError:
        with pytest.raises(UploadError) as caught:
            self.upload(data, **kwargs)
        assert_no_secret(caught.value, repr(caught.value), *self.retries)
        return caught.value


@pytest.fixture
def blob() -> Iterator[Blob]:
    yield Blob(respx.MockRouter(assert_all_called=False))


def assert_no_secret(*texts: object) -> None:
    for text in texts:
        for secret in (SIG, SIG_DECODED, "Zm9vYmFy", QUERY):
            assert secret not in str(text)


def query_of(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.url.query.decode(), keep_blank_values=True)


# -- success ----------------------------------------------------------------------------


def test_single_put_blob(blob: Blob) -> None:
    route = blob.router.put(BLOB).respond(201, headers={"x-ms-version-id": VERSION})
    assert blob.upload(b"gzip bytes") == VERSION
    assert route.call_count == 1
    request = route.calls.last.request
    assert str(request.url) == URL  # the SAS query is sent byte for byte
    assert request.content == b"gzip bytes"
    assert request.headers["x-ms-blob-type"] == "BlockBlob"
    assert request.headers["x-ms-version"] == "2023-11-03"
    assert request.headers["Content-Type"] == "application/gzip"
    assert request.headers["Content-Length"] == "10"
    assert "Authorization" not in request.headers
    assert "Cookie" not in request.headers
    assert request.extensions["timeout"]["read"] == 120.0
    assert blob.retries == []


def test_200_is_accepted(blob: Blob) -> None:
    blob.router.put(BLOB).respond(200, headers={"x-ms-version-id": VERSION})
    assert blob.upload(b"x") == VERSION


def test_missing_version_id(blob: Blob) -> None:
    blob.router.put(BLOB).respond(201)
    error = blob.fail()
    assert "did not return a version id" in error.message
    assert "blob versioning" in error.message
    assert "cannot be finalized" in error.message
    assert REDACTED in error.message


def test_block_upload(blob: Blob) -> None:
    route = blob.router.put(BLOB)
    route.side_effect = lambda request: httpx.Response(
        201, headers={"x-ms-version-id": VERSION} if b"comp=blocklist" in request.url.query else {}
    )
    data = b"0123456789abcdefghij-"
    assert blob.upload(data, block_size=8, single_put_limit=16) == VERSION
    *blocks, block_list = [call.request for call in route.calls]
    assert len(blocks) == 3
    blocks.sort(key=lambda request: query_of(request)["blockid"][0])  # sent in parallel
    ids = []
    for index, request in enumerate(blocks):
        assert request.url.query.decode().startswith(QUERY + "&comp=block&blockid=")
        query = query_of(request)
        assert query["comp"] == ["block"]
        assert query["sig"] == [SIG_DECODED]
        ids.append(query["blockid"][0])
        assert base64.b64decode(ids[-1]) == f"block-{index:06d}".encode()
        assert request.content == data[index * 8 : (index + 1) * 8]
        assert "Authorization" not in request.headers
    assert len({len(block_id) for block_id in ids}) == 1
    assert block_list.url.query.decode() == QUERY + "&comp=blocklist"
    assert block_list.headers["Content-Type"] == "application/xml"
    assert block_list.headers["x-ms-blob-content-type"] == "application/gzip"
    latest = "".join(f"<Latest>{block_id}</Latest>" for block_id in ids)
    assert block_list.content.decode() == (
        f'<?xml version="1.0" encoding="utf-8"?><BlockList>{latest}</BlockList>'
    )


def test_block_upload_needs_the_version_of_the_block_list(blob: Blob) -> None:
    blob.router.put(BLOB).mock(
        side_effect=lambda request: httpx.Response(
            201,
            headers={} if b"comp=blocklist" in request.url.query else {"x-ms-version-id": "x"},
        )
    )
    error = blob.fail(b"0123456789", block_size=4, single_put_limit=4)
    assert "did not return a version id" in error.message


def test_no_cookies_are_kept(blob: Blob) -> None:
    route = blob.router.put(BLOB).respond(
        201, headers={"x-ms-version-id": VERSION, "Set-Cookie": "session=abc; Path=/"}
    )
    blob.upload(b"0123456789", block_size=4, single_put_limit=4)
    assert route.call_count == 4
    assert all("Cookie" not in call.request.headers for call in route.calls)


# -- errors -----------------------------------------------------------------------------


def test_403_authentication_failed(blob: Blob) -> None:
    body = azure_error(
        "AuthenticationFailed",
        f"Server failed to authenticate the request. sig={SIG_DECODED} did not match.",
    )
    blob.router.put(BLOB).respond(
        403, text=body, headers={"x-ms-error-code": "AuthenticationFailed"}
    )
    error = blob.fail()
    assert error.message.startswith(
        f"Put Blob to {REDACTED} failed: HTTP 403 Forbidden: AuthenticationFailed: "
        "Server failed to authenticate the request."
    )
    assert "RequestId:r-1" in error.message
    assert "signature was refused or has expired" in error.message
    assert blob.sleeps == []


def test_403_says_when_the_url_expired_and_why_azure_refused_it(blob: Blob) -> None:
    # Azure's answer to an expired SAS: a generic Message, the reason in its detail.
    url = f"{BLOB}?sv=2023-11-03&se=2026-01-12T18%3A30%3A00Z&sr=b&sp=cw&sig={SIG}"
    body = (
        '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
        "<Message>Server failed to authenticate the request.\nRequestId:r-1</Message>"
        "<AuthenticationErrorDetail>Signed expiry time [Mon, 12 Jan 2026 18:30:00 GMT] must "
        f"be after signed start time [Mon, 12 Jan 2026 18:32:20 GMT] ({SIG_DECODED})"
        "</AuthenticationErrorDetail></Error>"
    )
    blob.router.put(BLOB).respond(403, text=body)
    now = datetime(2026, 1, 12, 18, 32, 20, tzinfo=UTC).timestamp()
    with pytest.raises(UploadError) as caught:
        upload_blob(
            url, b"x", transport=httpx.MockTransport(blob.router.handler), wall_clock=lambda: now
        )
    assert caught.value.message == (
        f"Put Blob to {REDACTED} failed: HTTP 403 Forbidden: AuthenticationFailed: Server "
        "failed to authenticate the request. RequestId:r-1: Signed expiry time [Mon, 12 Jan "
        "2026 18:30:00 GMT] must be after signed start time [Mon, 12 Jan 2026 18:32:20 GMT] "
        "(<redacted>). The upload URL expired at 2026-01-12 18:30:00 UTC, before the upload "
        "ended; run the job again to get a new upload URL."
    )
    assert_no_secret(caught.value, repr(caught.value))


@pytest.mark.parametrize(
    ("expiry", "advice"),
    [
        ("2026-01-12T18%3A30%3A00Z", "expired at 2026-01-12 18:30:00 UTC"),
        ("2026-01-12", "expired at 2026-01-12 00:00:00 UTC"),  # a date alone is UTC
        ("2026-01-12T18%3A40%3A00.1234567Z", "signature was refused or has expired"),
        ("not-a-time", "signature was refused or has expired"),
        (None, "signature was refused or has expired"),
    ],
)
def test_403_advice_from_the_url_expiry(blob: Blob, expiry: str | None, advice: str) -> None:
    # AuthorizationFailure (what Azurite answers, and Azure for a network rule) too.
    url = URL if expiry is None else f"{BLOB}?sv=2023-11-03&se={expiry}&sr=b&sp=cw&sig={SIG}"
    if expiry is None:
        url = url.replace("se=2030-01-01T00%3A00%3A00Z&", "")
    blob.router.put(BLOB).respond(403, text=azure_error("AuthorizationFailure", "Refused."))
    now = datetime(2026, 1, 12, 18, 35, tzinfo=UTC).timestamp()
    with pytest.raises(UploadError) as caught:
        upload_blob(
            url, b"x", transport=httpx.MockTransport(blob.router.handler), wall_clock=lambda: now
        )
    assert advice in caught.value.message
    assert caught.value.message.endswith("; run the job again to get a new upload URL.")


@pytest.mark.parametrize(
    ("expiry", "now", "expired"),
    [
        (None, 0.0, False),
        (datetime(2026, 1, 12, tzinfo=UTC), datetime(2026, 1, 11, tzinfo=UTC).timestamp(), False),
        (datetime(2026, 1, 12, tzinfo=UTC), datetime(2026, 1, 12, tzinfo=UTC).timestamp(), True),
        (datetime(2026, 1, 12, tzinfo=UTC), datetime(2026, 1, 13, tzinfo=UTC).timestamp(), True),
    ],
)
def test_refusal_advice(expiry: datetime | None, now: float, expired: bool) -> None:
    advice = refusal_advice(expiry, now)
    if expired:
        assert advice == (
            "The upload URL expired at 2026-01-12 00:00:00 UTC, before the upload ended; run "
            "the job again to get a new upload URL."
        )
    else:
        assert advice == (
            "The upload URL's signature was refused or has expired; run the job again to get "
            "a new upload URL."
        )


def test_azure_error_code_from_the_header(blob: Blob) -> None:
    blob.router.put(BLOB).respond(
        409, text="not xml <", headers={"x-ms-error-code": "BlobImmutableDueToPolicy"}
    )
    error = blob.fail()
    assert error.message == (
        f"Put Blob to {REDACTED} failed: HTTP 409 Conflict: BlobImmutableDueToPolicy"
    )


def test_azure_xml_with_a_dtd_is_not_parsed(blob: Blob) -> None:
    body = (
        '<?xml version="1.0"?><!DOCTYPE e [<!ENTITY a "aaaaaaaa">]>'
        "<Error><Code>&a;</Code><Message>&a;&a;</Message></Error>"
    )
    blob.router.put(BLOB).respond(400, text=body, headers={"x-ms-error-code": "InvalidInput"})
    assert blob.fail().message.endswith("HTTP 400 Bad Request: InvalidInput")


def test_redirect_is_not_followed(blob: Blob) -> None:
    route = blob.router.put(BLOB).respond(307, headers={"Location": "https://evil.example/"})
    error = blob.fail()
    assert route.call_count == 1
    assert "HTTP 307 Temporary Redirect" in error.message
    assert "not followed" in error.message


# -- retries ----------------------------------------------------------------------------


def test_503_is_retried(blob: Blob) -> None:
    route = blob.router.put(BLOB).mock(
        side_effect=[
            httpx.Response(503, text=azure_error("ServerBusy", "busy")),
            httpx.Response(500),
            httpx.Response(201, headers={"x-ms-version-id": VERSION}),
        ]
    )
    assert blob.upload(b"data") == VERSION
    assert route.call_count == 3
    assert [call.request.content for call in route.calls] == [b"data"] * 3
    assert 0.8 <= blob.sleeps[0] <= 1.2
    assert 1.6 <= blob.sleeps[1] <= 2.4
    assert blob.retries[0].startswith(f"Put Blob to {REDACTED}: HTTP 503, retrying in ")
    assert blob.retries[0].endswith("(attempt 2 of 4)")
    assert_no_secret(*blob.retries)


def test_408_and_429_are_retried_with_retry_after(blob: Blob) -> None:
    blob.router.put(BLOB).mock(
        side_effect=[
            httpx.Response(408),
            httpx.Response(429, headers={"Retry-After": "5"}),
            httpx.Response(201, headers={"x-ms-version-id": VERSION}),
        ]
    )
    assert blob.upload(b"data") == VERSION
    assert blob.sleeps[1] == 5.0


def test_a_failing_block_is_retried_alone(blob: Blob) -> None:
    second = base64.b64encode(b"block-000001").decode()
    failed: list[str] = []

    def respond(request: httpx.Request) -> httpx.Response:
        block_id = query_of(request).get("blockid", ["list"])[0]
        if block_id == second and not failed:
            failed.append(block_id)
            return httpx.Response(503)
        return httpx.Response(201, headers={"x-ms-version-id": VERSION})

    route = blob.router.put(BLOB).mock(side_effect=respond)
    assert blob.upload(b"abcdef", block_size=4, single_put_limit=4) == VERSION
    ids = [query_of(call.request).get("blockid", ["list"])[0] for call in route.calls]
    assert sorted(ids[:3]) == sorted([ids[0], second, second]) and ids[0] != second
    assert ids[3] == "list"
    assert blob.retries[0].startswith(f"Put Block 2 of 2 to {REDACTED}: HTTP 503")


def test_transport_errors_are_retried_then_reported_without_the_url(blob: Blob) -> None:
    leaky = f"connection to {URL} failed"
    route = blob.router.put(BLOB).mock(side_effect=httpx.ConnectError(leaky))
    error = blob.fail()
    assert route.call_count == 4
    assert len(blob.sleeps) == 3
    assert error.message == (
        f"Put Blob to {REDACTED} failed: no answer from the blob store (tried 4 times; last "
        f"error ConnectError: connection to {REDACTED} failed). Check the runner's network, "
        "then run the job again."
    )
    assert len(blob.retries) == 3
    assert all(f"Put Blob to {REDACTED}: ConnectError, retrying in" in r for r in blob.retries)


def test_read_timeout_is_retried(blob: Blob) -> None:
    blob.router.put(BLOB).mock(
        side_effect=[
            httpx.WriteTimeout("slow"),
            httpx.Response(201, headers={"x-ms-version-id": VERSION}),
        ]
    )
    assert blob.upload(b"data") == VERSION
    assert "WriteTimeout, retrying in" in blob.retries[0]


def test_exhausted_retries_on_503(blob: Blob) -> None:
    route = blob.router.put(BLOB).respond(503, text=azure_error("ServerBusy", f"sig={SIG}"))
    error = blob.fail(max_attempts=2)
    assert route.call_count == 2
    assert "HTTP 503 Service Unavailable: ServerBusy" in error.message
    assert "Tried 2 times" in error.message


def test_400_is_not_retried(blob: Blob) -> None:
    route = blob.router.put(BLOB).respond(400, text=azure_error("InvalidHeaderValue", "bad"))
    error = blob.fail()
    assert route.call_count == 1
    assert "HTTP 400 Bad Request: InvalidHeaderValue: bad RequestId:r-1 Time:now" in error.message


LONG_SIG_DECODED = "A1b2+C3d4/" * 8 + "="  # longer than the 300-character cut
LONG_SIG = quote(LONG_SIG_DECODED, safe="")


@pytest.mark.parametrize("echoed", [LONG_SIG, LONG_SIG_DECODED], ids=["encoded", "decoded"])
@pytest.mark.parametrize("before", [250, 280, 286])
def test_a_signature_across_the_cut_of_an_azure_message_leaves_no_part(
    blob: Blob, echoed: str, before: int
) -> None:
    # Azure's Message is cut to 300 characters: the signature starts before the cut and
    # ends after it. It is scrubbed first, so no part of it is left.
    url = f"{BLOB}?sv=2023-11-03&sr=b&sp=cw&sig={LONG_SIG}"
    message = "m" * before + echoed + " and more" * 40
    blob.router.put(BLOB).respond(403, text=azure_error("AuthenticationFailed", message))
    with pytest.raises(UploadError) as caught:
        upload_blob(url, b"data", transport=httpx.MockTransport(blob.router.handler))
    text = caught.value.message
    for secret in (LONG_SIG, LONG_SIG_DECODED):
        assert secret[:8] not in text
    assert "m<redacted>" in text
    assert text.startswith(f"Put Blob to {REDACTED} failed: HTTP 403 Forbidden: ")


# -- redact_url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        (URL, REDACTED),
        (BLOB, BLOB),
        (
            "http://127.0.0.1:9000/b/a.tar.gz?sig=x#frag",
            "http://127.0.0.1:9000/b/a.tar.gz?<redacted>",
        ),
        ("https://user:pw@host/p?x=1", "https://host/p?<redacted>"),
        ("https://[::1]:8443/p", "https://[::1]:8443/p"),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted
