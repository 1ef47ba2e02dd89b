"""upload_blob against a real Azure blob service: Azurite, started by ``make test``.

The uploader is called as the run calls it (a tarball file, the default sizes and
concurrency, the run's progress lines), against SAS URLs signed with the development
account's key as Azure signs them, so Azurite checks every request's signature (with the
``comp`` and ``blockid`` the uploader adds), its expiry and its permissions. What the
store committed is read back and compared by sha256, streamed.

Azurite keeps no blob versions: its answers have no ``x-ms-version-id``, which a deploy's
finalize needs. One test checks our error for that as Azurite answers; the others see the
upload through :class:`VersionedAccount`, which adds the version id to the answer that
committed the blob, as a versioned account does, and changes nothing else.
"""

from __future__ import annotations

import itertools
import re
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from ci_deploy.astro.upload import (
    BLOCK_SIZE,
    MIB,
    SINGLE_PUT_LIMIT,
    UploadProgress,
    redact_url,
    upload_blob,
)
from ci_deploy.bundle import Packing, build_dag_tarball
from ci_deploy.compression import compression_for
from ci_deploy.errors import UploadError
from ci_deploy_testkit.azure_blob import BlobService
from tests.azurite import AzuriteContainer, write_file

EXAMPLE_DAGS = Path(__file__).resolve().parents[1] / "examples" / "astro-project" / "dags"
BLOB = "dep-1/deploy-1.tar.gz"


class VersionedAccount(httpx.HTTPTransport):
    """Real HTTP to Azurite; the answer that committed the blob (Put Blob's, Put Block
    List's) gets the ``x-ms-version-id`` a versioned account adds, when Azurite gave none.
    Records each request's step and the versions it added."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[str] = []
        self.versions: list[str] = []
        self._numbers = itertools.count(1)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        comp = parse_qs(request.url.query.decode()).get("comp", [""])[0]
        step = {"": "Put Blob", "block": "Put Block", "blocklist": "Put Block List"}[comp]
        self.steps.append(step)
        response = super().handle_request(request)
        if response.status_code == 201 and step != "Put Block":
            assert "x-ms-version-id" not in response.headers  # Azurite keeps no versions
            version = f"2026-01-01T00:00:00.{next(self._numbers):07d}Z"
            response.headers["x-ms-version-id"] = version
            self.versions.append(version)
        return response


@pytest.fixture
def versioned() -> Iterator[VersionedAccount]:
    with VersionedAccount() as transport:
        yield transport


def signature_forms(url: str) -> list[str]:
    """The URL's signature as it may show: raw, URL-decoded, quoted again; and its query."""
    query = urlsplit(url).query
    (sig,) = parse_qs(query)["sig"]
    return [sig, quote(sig, safe=""), quote(sig), query]


def assert_no_signature(url: str, error: BaseException, *lines: str) -> None:
    """Neither ``error`` nor any exception in its chain (message, repr, the formatted
    traceback) nor the log ``lines`` hold the URL's signature in any form."""
    texts = [*lines, *traceback.format_exception(error)]
    link: BaseException | None = error
    while link is not None:
        texts += [str(link), repr(link), *(str(arg) for arg in link.args)]
        link = link.__cause__ or link.__context__
    for form in signature_forms(url):
        for text in texts:
            assert form not in text


class Log:
    """The run's log lines of an upload: its retries, and its progress lines on a clock
    that moves 10 s a look (so every block's progress is said)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        ticks = itertools.count(0, 10)
        self.progress = UploadProgress(self.lines.append, lambda: float(next(ticks)), step=0)

    def retry(self, line: str) -> None:
        self.lines.append(line)


# -- the bytes arrive whole -----------------------------------------------------------------


def test_a_dag_tarball_goes_up_in_one_put_blob_and_reads_back_identical(
    azurite: AzuriteContainer, versioned: VersionedAccount, tmp_path: Path
) -> None:
    packing = Packing(compression_for(1), str(tmp_path))
    with build_dag_tarball(EXAMPLE_DAGS, packing) as tarball:
        assert 0 < tarball.size <= SINGLE_PUT_LIMIT
        log = Log()
        version = upload_blob(
            azurite.upload_url(BLOB),
            tarball.path,
            transport=versioned,
            on_retry=log.retry,
            on_progress=log.progress,
        )
        assert versioned.steps == ["Put Blob"]
        assert version == versioned.versions[0]
        assert azurite.digest(BLOB) == (tarball.size, tarball.sha256)
        assert azurite.committed_blocks(BLOB) == []  # one Put Blob, no blocks
        assert log.lines == []  # no retry, and no progress line at the end of the upload


def test_200_mb_go_up_in_put_blocks_and_read_back_identical(
    azurite: AzuriteContainer, versioned: VersionedAccount, tmp_path: Path
) -> None:
    size = 200_000_000  # 23 blocks of 8 MiB and a shorter last one
    path = tmp_path / "dags.tar.gz"
    sha256 = write_file(path, size)
    log = Log()
    version = upload_blob(
        azurite.upload_url(BLOB),
        path,
        transport=versioned,
        on_retry=log.retry,
        on_progress=log.progress,
    )
    blocks, last = divmod(size, BLOCK_SIZE)
    assert versioned.steps == ["Put Block"] * (blocks + 1) + ["Put Block List"]
    assert version == versioned.versions[0]
    assert azurite.committed_blocks(BLOB) == [BLOCK_SIZE] * blocks + [last]
    assert azurite.digest(BLOB) == (size, sha256)
    # A line after each block but the last (blocks arrive in any order, so only the first
    # line's figure is known).
    assert len(log.lines) == blocks
    assert log.lines[0] == "Uploaded 8 of 191 MiB (4%)"
    assert all(re.fullmatch(r"Uploaded \d+ of 191 MiB \(\d+%\)", line) for line in log.lines)


# -- the store refuses the URL ----------------------------------------------------------------


@pytest.mark.parametrize("size", [1000, SINGLE_PUT_LIMIT + 1], ids=["put-blob", "put-block"])
def test_an_expired_upload_url_is_refused_clearly_without_its_signature(
    azurite: AzuriteContainer, tmp_path: Path, size: int
) -> None:
    expiry = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    url = azurite.upload_url(BLOB, expiry=expiry)
    path = tmp_path / "dags.tar.gz"
    write_file(path, size)
    dropped = [False]

    class DroppedOnce(httpx.HTTPTransport):
        """The first request's connection is lost, so the run logs a retry line naming
        the URL; then Azurite answers."""

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if not dropped[0]:
                dropped[0] = True
                raise httpx.ReadError("connection reset by peer", request=request)
            return super().handle_request(request)

    log = Log()
    with DroppedOnce() as transport, pytest.raises(UploadError) as caught:
        upload_blob(
            url,
            path,
            transport=transport,
            sleep=lambda seconds: None,
            on_retry=log.retry,
            on_progress=log.progress,
            concurrency=1,  # the dropped request is block 1's, and its retry line is said
        )
    step = "Put Blob" if size <= SINGLE_PUT_LIMIT else f"Put Block 1 of {-(-size // BLOCK_SIZE)}"
    (retry,) = log.lines
    assert retry.startswith(f"{step} to {redact_url(url)}: ReadError, retrying in ")
    assert retry.endswith(" s (attempt 2 of 4)")
    message = caught.value.message
    assert message.startswith(f"{step} to {redact_url(url)} failed: HTTP 403 Forbidden: ")
    assert "AuthorizationFailure: Server failed to authenticate the request." in message
    expired = expiry.strftime("%Y-%m-%d %H:%M:%S")
    assert message.endswith(
        f"The upload URL expired at {expired} UTC, before the upload ended; run the job "
        "again to get a new upload URL."
    )
    assert_no_signature(url, caught.value, *log.lines)
    with pytest.raises(httpx.HTTPStatusError) as missing:
        azurite.digest(BLOB)
    assert missing.value.response.status_code == 404  # nothing was committed


def test_an_upload_url_signed_with_another_key_is_refused_clearly(
    azurite: AzuriteContainer,
) -> None:
    other_key = BlobService(azurite.service.endpoint, key="b3RoZXIga2V5IG9mIDY0IGJ5dGVz")
    url = other_key.blob_url(
        azurite.name, BLOB, permissions="cw", expiry=datetime.now(UTC) + timedelta(hours=1)
    )
    with pytest.raises(UploadError) as caught:
        upload_blob(url, b"gzip bytes")
    message = caught.value.message
    assert message.startswith(f"Put Blob to {redact_url(url)} failed: HTTP 403 Forbidden: ")
    assert message.endswith(
        "The upload URL's signature was refused or has expired; run the job again to get a "
        "new upload URL."
    )
    assert_no_signature(url, caught.value)


# -- no version id --------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1000, SINGLE_PUT_LIMIT + MIB], ids=["put-blob", "put-block"])
def test_a_store_without_version_ids_fails_the_upload_clearly(
    azurite: AzuriteContainer, tmp_path: Path, size: int
) -> None:
    url = azurite.upload_url(BLOB)
    path = tmp_path / "dags.tar.gz"
    sha256 = write_file(path, size)
    with pytest.raises(UploadError) as caught:
        upload_blob(url, path)  # Azurite's own answers, as the run gets them
    assert caught.value.message == (
        f"Upload to {redact_url(url)} succeeded, but the blob store did not return a version "
        "id (x-ms-version-id; blob versioning must be enabled on the storage account), so "
        "the deploy cannot be finalized. Contact Astronomer support if this persists."
    )
    assert_no_signature(url, caught.value)
    assert azurite.digest(BLOB) == (size, sha256)  # the bytes are there, but unversioned
