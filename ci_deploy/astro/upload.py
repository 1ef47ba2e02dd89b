"""The tarball upload to a deploy's blob URL (an Azure Blob Storage SAS URL).

The URL's query is a credential: it is sent only to the blob host, by a client of its own
(no API token, no cookies, no redirects), and every message shows :func:`redact_url` of
it. The tarball is bytes or a file. A small one goes up in one Put Blob; a larger one in
fixed-size Put Blocks, several in flight at once, each read (from the file, by offset, in
pieces of :data:`_PIECE`) as it is sent, and read again when it is retried on its own;
then one Put Block List names them in order. The result is the blob's
``x-ms-version-id``, which finalizes the deploy.

The blocks are sent by daemon threads, at most ``concurrency`` at a time, each holding one
piece at a time: memory does not grow with the block size. The caller's thread waits for
them and runs every callback (retries, progress). At the first block that fails for good,
or when the caller's thread is interrupted (a cancelled run), no further block starts and
no block list is sent; a block still in flight cannot keep the process alive, and the
client and the file are closed by whoever finishes last.
"""

from __future__ import annotations

import base64
import os
import queue
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode, urlsplit, urlunsplit

import httpx

from ci_deploy import __version__, tls
from ci_deploy.errors import UploadError
from ci_deploy.http import BLOB_PUT, TransportFailure, send_with_retries
from ci_deploy.text import shorten

__all__ = [
    "AZURE_API_VERSION",
    "BLOCK_SIZE",
    "CONCURRENCY",
    "MAX_BLOCKS",
    "MAX_BLOCK_SIZE",
    "SINGLE_PUT_LIMIT",
    "UploadProgress",
    "block_size_for",
    "progress_line",
    "redact_url",
    "refusal_advice",
    "upload_blob",
]

AZURE_API_VERSION = "2023-11-03"
"""The Azure Blob Storage REST version sent as ``x-ms-version``."""

MIB = 1024 * 1024

BLOCK_SIZE = 8 * MIB
"""The size of a Put Block (the last one is shorter); see the README's upload figures."""

CONCURRENCY = 4
"""How many Put Blocks are in flight at once; see the README's upload figures."""

SINGLE_PUT_LIMIT = 8 * MIB
"""Tarballs up to this size go up in one Put Blob."""

MAX_BLOCKS = 50_000
"""Azure's limit on the blocks of one block blob."""

MAX_BLOCK_SIZE = 4000 * MIB
"""Azure's limit on one block (REST version 2019-12-12 and later)."""

_PIECE = 256 * 1024
_ERROR_XML_LIMIT = 64 * 1024
_TEXT_LIMIT = 300


def redact_url(url: str) -> str:
    """``scheme://host/path``, with the query (the SAS signature) as ``?<redacted>``.

    User info and fragment are dropped too.
    """
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    suffix = "?<redacted>" if parts.query else ""
    return f"{parts.scheme}://{host}{parts.path}{suffix}"


def block_size_for(size: int, preferred: int) -> int:
    """The block size for a blob of ``size`` bytes: ``preferred`` (at most Azure's 4000 MiB),
    grown to whole MiB when the blob would need more than Azure's 50,000 blocks.

    Raises UploadError for a blob larger than 50,000 blocks of 4000 MiB.
    """
    if preferred < 1:
        raise ValueError("block_size must be positive")
    preferred = min(preferred, MAX_BLOCK_SIZE)
    if -(-size // preferred) <= MAX_BLOCKS:
        return preferred
    needed = -(-size // MAX_BLOCKS)
    grown = -(-needed // MIB) * MIB
    if grown > MAX_BLOCK_SIZE:
        raise UploadError(
            f"The tarball is {size} bytes: more than a block blob holds ({MAX_BLOCKS} blocks "
            f"of {MAX_BLOCK_SIZE // MIB} MiB). Leave the largest files out of the deploy."
        )
    return grown


def refusal_advice(expiry: datetime | None, now: float) -> str:
    """What to do when the blob store refuses the upload URL (HTTP 403), from the URL's
    expiry (its ``se``, None when it has none or it cannot be read) and the wall clock
    ``now`` (seconds since the epoch)."""
    again = "run the job again to get a new upload URL."
    if expiry is not None and expiry.timestamp() <= now:
        expired = expiry.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"The upload URL expired at {expired}, before the upload ended; {again}"
    return f"The upload URL's signature was refused or has expired; {again}"


def progress_line(done: int, total: int) -> str:
    """``Uploaded 120 of 640 MiB (19%)``; tenths of MiB below 10 MiB."""
    digits = 0 if total >= 10 * MIB else 1
    percent = done * 100 // total if total else 100
    return f"Uploaded {done / MIB:.{digits}f} of {total / MIB:.{digits}f} MiB ({percent}%)"


class UploadProgress:
    """An ``on_progress`` for :func:`upload_blob` that says :func:`progress_line` through
    ``say``: at most one line every ``interval`` seconds of ``clock``, each at least
    ``step`` (a fraction of the whole) further on, and none at the end (an upload done
    within ``interval`` says nothing)."""

    def __init__(
        self,
        say: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        *,
        interval: float = 5.0,
        step: float = 0.1,
    ) -> None:
        self._say, self._clock = say, clock
        self._interval, self._step = interval, step
        self._said_at, self._said_done = clock(), 0

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        if (
            done >= total
            or now - self._said_at < self._interval
            or done - self._said_done < self._step * total
        ):
            return
        self._said_at, self._said_done = now, done
        self._say(progress_line(done, total))


def upload_blob(
    url: str,
    source: bytes | Path,
    *,
    timeout: float = 120.0,
    max_attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
    transport: httpx.BaseTransport | None = None,
    on_retry: Callable[[str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    block_size: int = BLOCK_SIZE,
    single_put_limit: int = SINGLE_PUT_LIMIT,
    concurrency: int = CONCURRENCY,
    wall_clock: Callable[[], float] = time.time,
) -> str:
    """Upload ``source`` (bytes, or a file's path) as a block blob to the SAS ``url``;
    return its ``x-ms-version-id``.

    Up to ``single_put_limit`` bytes go in one Put Blob, more in blocks of ``block_size``
    (grown by :func:`block_size_for` for huge files), ``concurrency`` at a time.
    ``on_retry`` gets each retry's message, ``on_progress`` the bytes sent and the total
    after each block (and once at the end of a Put Blob); both run on the caller's thread.
    ``wall_clock`` tells whether a refused URL had expired.
    Raises :class:`~ci_deploy.errors.UploadError`, whose message holds the redacted URL only.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    block_size = block_size_for(0, block_size)  # checks it before anything is sent
    uploader = _Uploader(
        url, timeout, max_attempts, sleep, transport, on_retry, concurrency, wall_clock
    )
    with uploader:
        tarball = uploader.open(source)
        if tarball.size <= single_put_limit:
            whole = _Body(tarball.size, lambda: tarball.pieces(0, tarball.size))
            response = uploader.put("Put Blob", url, whole, {"x-ms-blob-type": "BlockBlob"})
            if on_progress is not None:
                on_progress(tarball.size, tarball.size)
        else:
            size = block_size_for(tarball.size, block_size)
            response = uploader.put_blocks(tarball, size, concurrency, on_progress)
    return uploader.version_id(response)


@dataclass(frozen=True)
class _Body:
    """A request body: its length, and its bytes in pieces, made anew for each attempt."""

    length: int
    pieces: Callable[[], Iterator[bytes]]

    @classmethod
    def of(cls, content: bytes) -> _Body:
        return cls(len(content), lambda: iter((content,)))


class _Tarball:
    """The bytes to upload, read piece by piece as they are sent: from memory, or from a
    file by offset (:func:`os.pread`, so blocks are read in parallel without sharing a file
    position)."""

    def __init__(self, source: bytes | Path) -> None:
        self._data: bytes | None = None
        self._fd: int | None = None
        if isinstance(source, bytes):
            self._data, self.size, self.name = source, len(source), "tarball"
        else:
            self._fd = os.open(source, os.O_RDONLY)
            self.size, self.name = os.fstat(self._fd).st_size, str(source)

    def pieces(self, offset: int, length: int) -> Iterator[bytes]:
        """The ``length`` bytes from ``offset``, in pieces of :data:`_PIECE` read as they are
        sent: a block is never held whole. UploadError when the file has become shorter."""
        end = offset + length
        while offset < end:
            want = min(_PIECE, end - offset)
            if self._fd is None:
                assert self._data is not None
                piece = self._data[offset : offset + want]
            else:
                piece = os.pread(self._fd, want, offset)
            if not piece:
                raise UploadError(
                    f"The tarball {self.name} changed while it was uploaded: it ends at "
                    f"{offset} bytes, not {self.size}. Run the job again."
                )
            offset += len(piece)
            yield piece

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Uploader:
    """One upload: the blob host's client, the tarball, and the PUTs with retries and error
    messages. The caller and each block worker hold it; the last to let go closes it."""

    def __init__(
        self,
        url: str,
        timeout: float,
        max_attempts: int,
        sleep: Callable[[float], None],
        transport: httpx.BaseTransport | None,
        on_retry: Callable[[str], None] | None,
        concurrency: int,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.wall_clock = wall_clock
        self.redacted = redact_url(url)
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.on_retry = on_retry
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=10),
            follow_redirects=False,
            verify=tls.context(),  # the run's one CA bundle, loaded once
            transport=transport,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            headers={"User-Agent": f"ci-deploy/{__version__}", "x-ms-version": AZURE_API_VERSION},
        )
        self._tarball: _Tarball | None = None
        self._holders = 1
        self._holders_lock = threading.Lock()

    def __enter__(self) -> _Uploader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def open(self, source: bytes | Path) -> _Tarball:
        """The tarball to upload, closed with the client."""
        self._tarball = _Tarball(source)
        return self._tarball

    def hold(self) -> None:
        """One more holder (a block worker): the client stays open until it lets go."""
        with self._holders_lock:
            self._holders += 1

    def release(self) -> None:
        """One holder lets go; the last one closes the client and the tarball."""
        with self._holders_lock:
            self._holders -= 1
            if self._holders:
                return
        self.client.close()
        if self._tarball is not None:
            self._tarball.close()

    def put_blocks(
        self,
        tarball: _Tarball,
        block_size: int,
        concurrency: int,
        on_progress: Callable[[int, int], None] | None,
    ) -> httpx.Response:
        """Put Block for each block, ``concurrency`` at a time, then Put Block List in
        order; returns the list's answer."""
        count = -(-tarball.size // block_size)
        ids = [base64.b64encode(f"block-{i:06d}".encode()).decode() for i in range(count)]
        _Blocks(self, tarball, ids, block_size).send(min(concurrency, count), on_progress)
        body = "".join(f"<Latest>{block_id}</Latest>" for block_id in ids)
        xml = f'<?xml version="1.0" encoding="utf-8"?><BlockList>{body}</BlockList>'
        headers = {"Content-Type": "application/xml", "x-ms-blob-content-type": "application/gzip"}
        list_url = _with_query(self.url, {"comp": "blocklist"})
        return self.put("Put Block List", list_url, _Body.of(xml.encode()), headers)

    def put(
        self,
        step: str,
        url: str,
        content: _Body,
        headers: dict[str, str],
        *,
        sleep: Callable[[float], None] | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> httpx.Response:
        """One PUT with retries; returns a 200/201 answer or raises UploadError.

        ``sleep`` and ``on_retry`` replace the upload's own (a block worker's).
        """
        headers = {
            "Content-Type": "application/gzip",
            "Content-Length": str(content.length),
            **headers,
        }

        def build() -> httpx.Request:
            # The bytes as a stream read anew for each attempt, never the block whole: a
            # sent request then holds none of them (httpx's answer and request refer to
            # each other, so they are freed only by a garbage collection).
            body = content.pieces()
            return self.client.build_request("PUT", url, content=body, headers=headers)

        try:
            response = send_with_retries(
                self.client,
                build,
                retryable=BLOB_PUT,
                label=f"{step} to {self.redacted}",
                max_attempts=self.max_attempts,
                sleep=sleep or self.sleep,
                on_retry=on_retry or self.on_retry,
            )
        except TransportFailure as failure:
            raise self._unreachable(step, failure) from None
        if response.status_code not in (200, 201):
            raise self._error(step, response)
        return response

    def version_id(self, response: httpx.Response) -> str:
        """The ``x-ms-version-id`` of the final PUT, or UploadError when it is missing."""
        version = str(response.headers.get("x-ms-version-id", "")).strip()
        if not version:
            raise UploadError(
                f"Upload to {self.redacted} succeeded, but the blob store did not return a "
                "version id (x-ms-version-id; blob versioning must be enabled on the storage "
                "account), so the deploy cannot be finalized. Contact Astronomer support if "
                "this persists."
            )
        return version

    def _unreachable(self, step: str, failure: TransportFailure) -> UploadError:
        error = self._scrub(f"{type(failure.error).__name__}: {failure.error}")
        times = "once" if failure.attempts == 1 else f"{failure.attempts} times"
        return UploadError(
            f"{step} to {self.redacted} failed: no answer from the blob store (tried {times}; "
            f"last error {error}). Check the runner's network, then run the job again."
        )

    def _error(self, step: str, response: httpx.Response) -> UploadError:
        status = response.status_code
        code, message = _azure_error(response, self._scrub)
        text = f"{step} to {self.redacted} failed: HTTP {status} "
        text += httpx.codes.get_reason_phrase(status)
        if code or message:
            text += ": " + ": ".join(part for part in (code, message) if part)
        if status == 403:
            text += ". " + refusal_advice(_expiry_of(self.url), self.wall_clock())
        elif 300 <= status < 400:
            text += ". Redirects are not followed for uploads."
        elif BLOB_PUT.status(status):
            text += f". Tried {self.max_attempts} times; run the job again later."
        return UploadError(self._scrub(text))

    def _scrub(self, text: str) -> str:
        """Remove the URL's query, and its signature in any form, from ``text``."""
        parts = urlsplit(self.url)
        secrets = {self.url: self.redacted, parts.query: "<redacted>"}
        for raw in parts.query.split("&"):
            name, _, value = raw.partition("=")
            if name.lower() == "sig" and value:
                secrets[value] = "<redacted>"
                secrets[unquote(value)] = "<redacted>"
        for secret in sorted((s for s in secrets if s), key=len, reverse=True):
            text = text.replace(secret, secrets[secret])
        return text


class _Stopped(Exception):
    """Raised in a block worker when the upload has stopped: it sends nothing more."""


_Event = tuple[str, object]
"""What a block worker tells the caller's thread: ``("sent", bytes)``, ``("retry",
message)`` or ``("failed", exception)``."""


class _Blocks:
    """The Put Blocks of one upload: daemon workers take the next block, read it, send it
    with retries, and report on :attr:`events`; the caller's thread waits in :meth:`send`."""

    def __init__(
        self, uploader: _Uploader, tarball: _Tarball, ids: list[str], block_size: int
    ) -> None:
        self.uploader, self.tarball, self.ids, self.block_size = uploader, tarball, ids, block_size
        self.events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self.stopped = threading.Event()
        self._next = iter(range(len(ids)))
        self._next_lock = threading.Lock()

    def send(self, workers: int, on_progress: Callable[[int, int], None] | None) -> None:
        """Send every block with ``workers`` threads; raise the first failure.

        Whatever ends the wait (a failure, the caller's thread interrupted) stops the
        workers: none starts another block or another attempt.
        """
        try:
            for number in range(1, workers + 1):
                self.uploader.hold()
                try:
                    threading.Thread(
                        target=self._work, name=f"ci-deploy-upload-{number}", daemon=True
                    ).start()
                except BaseException:
                    self.uploader.release()
                    raise
            sent = done = 0
            while sent < len(self.ids):
                kind, value = self.events.get()
                if kind == "failed":
                    assert isinstance(value, BaseException)
                    raise value
                if kind == "retry":
                    if self.uploader.on_retry is not None:
                        self.uploader.on_retry(str(value))
                    continue
                assert isinstance(value, int)
                sent, done = sent + 1, done + value
                if on_progress is not None:
                    on_progress(done, self.tarball.size)
        finally:
            self.stopped.set()

    def _work(self) -> None:
        try:
            while not self.stopped.is_set():
                with self._next_lock:
                    index = next(self._next, None)
                if index is None:
                    return
                self.events.put(("sent", self._send(index)))
        except _Stopped:
            pass
        except BaseException as exc:  # the caller's thread raises it, and never waits on
            # a worker that is gone
            self.stopped.set()
            self.events.put(("failed", exc))
        finally:
            self.uploader.release()

    def _send(self, index: int) -> int:
        """Put Block ``index``, read from the tarball as it is sent; its length."""
        offset = index * self.block_size
        length = min(self.block_size, self.tarball.size - offset)
        block = _Body(length, lambda: self.tarball.pieces(offset, length))
        url = _with_query(self.uploader.url, {"comp": "block", "blockid": self.ids[index]})
        step = f"Put Block {index + 1} of {len(self.ids)}"
        self.uploader.put(step, url, block, {}, sleep=self._pause, on_retry=self._retry)
        return length

    def _pause(self, seconds: float) -> None:
        """The wait before a retry; raises _Stopped when the upload stopped meanwhile."""
        if self.stopped.is_set():
            raise _Stopped
        self.uploader.sleep(seconds)
        if self.stopped.is_set():
            raise _Stopped

    def _retry(self, message: str) -> None:
        self.events.put(("retry", message))


def _with_query(url: str, extra: dict[str, str]) -> str:
    """``url`` with ``extra`` appended to its query, the existing query kept byte for byte."""
    parts = urlsplit(url)
    added = urlencode(extra)
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit(parts._replace(query=query))


def _expiry_of(url: str) -> datetime | None:
    """The SAS URL's expiry (``se``, no secret), in UTC; None when absent or unreadable."""
    values = parse_qs(urlsplit(url).query).get("se", [])
    try:
        expiry = datetime.fromisoformat(values[0]) if len(values) == 1 else None
    except ValueError:
        return None
    if expiry is not None and expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=UTC)  # a date alone, or a time without its Z
    return expiry


def _azure_error(response: httpx.Response, scrub: Callable[[str], str]) -> tuple[str, str]:
    """Azure's error ``(Code, Message)`` from the XML body, else the ``x-ms-error-code``.

    The message is scrubbed before it is shortened, so a cut never leaves part of a secret.
    """
    code = response.headers.get("x-ms-error-code", "").strip()
    message = ""
    body = response.content[:_ERROR_XML_LIMIT]
    if body.strip() and b"<!DOCTYPE" not in body.upper():
        try:
            root = ET.fromstring(body)  # noqa: S314 - bounded, no DTD: no entity expansion
        except ET.ParseError:
            root = None
        if root is not None and root.tag == "Error":
            code = (root.findtext("Code") or "").strip() or code
            # Azure says why a SAS was refused in AuthenticationErrorDetail (Message is
            # generic then).
            found = (root.findtext(tag) for tag in ("Message", "AuthenticationErrorDetail"))
            parts = (shorten(scrub(text.strip()), _TEXT_LIMIT) for text in found if text)
            message = ": ".join(part for part in parts if part)
    return code, message
