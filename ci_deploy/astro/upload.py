"""The tarball upload to a deploy's blob URL (an Azure Blob Storage SAS URL).

The URL's query is a credential: it is sent only to the blob host, by a client of its own
(no API token, no cookies, no redirects), and every message shows :func:`redact_url` of
it. Small tarballs go up in one Put Blob; larger ones as Put Block calls and a Put Block
List. The result is the blob's ``x-ms-version-id``, which finalizes the deploy.
"""

from __future__ import annotations

import base64
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

import httpx

from ci_deploy import __version__
from ci_deploy.errors import UploadError
from ci_deploy.http import BLOB_PUT, TransportFailure, send_with_retries
from ci_deploy.text import shorten

__all__ = ["AZURE_API_VERSION", "redact_url", "upload_blob"]

AZURE_API_VERSION = "2023-11-03"
"""The Azure Blob Storage REST version sent as ``x-ms-version``."""

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


def upload_blob(
    url: str,
    data: bytes | Path,
    *,
    timeout: float = 120.0,
    max_attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
    transport: httpx.BaseTransport | None = None,
    on_retry: Callable[[str], None] | None = None,
    block_size: int = 8 * 1024 * 1024,
    single_put_limit: int = 32 * 1024 * 1024,
) -> str:
    """Upload ``data`` as a block blob to the SAS ``url``; return its ``x-ms-version-id``.

    Raises :class:`~ci_deploy.errors.UploadError`, whose message holds the redacted URL only.
    """
    if isinstance(data, Path):  # stand-in until the upload streams from the file
        data = data.read_bytes()
    if block_size < 1:
        raise ValueError("block_size must be positive")
    uploader = _Uploader(url, timeout, max_attempts, sleep, transport, on_retry)
    with uploader:
        if len(data) <= single_put_limit:
            response = uploader.put("Put Blob", url, data, {"x-ms-blob-type": "BlockBlob"})
        else:
            response = uploader.put_blocks(data, block_size)
    return uploader.version_id(response)


class _Uploader:
    """One upload: the blob host's client, and the PUTs with retries and error messages."""

    def __init__(
        self,
        url: str,
        timeout: float,
        max_attempts: int,
        sleep: Callable[[float], None],
        transport: httpx.BaseTransport | None,
        on_retry: Callable[[str], None] | None,
    ) -> None:
        self.url = url
        self.redacted = redact_url(url)
        self.max_attempts = max_attempts
        self.sleep = sleep
        self.on_retry = on_retry
        self.client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=10),
            follow_redirects=False,
            transport=transport,
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
            headers={"User-Agent": f"ci-deploy/{__version__}", "x-ms-version": AZURE_API_VERSION},
        )

    def __enter__(self) -> _Uploader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.client.close()

    def put_blocks(self, data: bytes, block_size: int) -> httpx.Response:
        """Put Block for each chunk, then Put Block List; returns the list's answer."""
        count = -(-len(data) // block_size)
        ids = [base64.b64encode(f"block-{i:06d}".encode()).decode() for i in range(count)]
        for index, block_id in enumerate(ids):
            chunk = data[index * block_size : (index + 1) * block_size]
            block_url = _with_query(self.url, {"comp": "block", "blockid": block_id})
            self.put(f"Put Block {index + 1} of {count}", block_url, chunk, {})
        body = "".join(f"<Latest>{block_id}</Latest>" for block_id in ids)
        xml = f'<?xml version="1.0" encoding="utf-8"?><BlockList>{body}</BlockList>'
        headers = {"Content-Type": "application/xml", "x-ms-blob-content-type": "application/gzip"}
        list_url = _with_query(self.url, {"comp": "blocklist"})
        return self.put("Put Block List", list_url, xml.encode(), headers)

    def put(self, step: str, url: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        """One PUT with retries; returns a 200/201 answer or raises UploadError."""
        headers = {"Content-Type": "application/gzip", **headers}

        def build() -> httpx.Request:
            return self.client.build_request("PUT", url, content=content, headers=headers)

        try:
            response = send_with_retries(
                self.client,
                build,
                retryable=BLOB_PUT,
                label=f"{step} to {self.redacted}",
                max_attempts=self.max_attempts,
                sleep=self.sleep,
                on_retry=self.on_retry,
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
        if status == 403 and code == "AuthenticationFailed":
            text += (
                ". The upload URL's signature was refused or has expired; run the job "
                "again to get a new upload URL."
            )
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


def _with_query(url: str, extra: dict[str, str]) -> str:
    """``url`` with ``extra`` appended to its query, the existing query kept byte for byte."""
    parts = urlsplit(url)
    added = urlencode(extra)
    query = f"{parts.query}&{added}" if parts.query else added
    return urlunsplit(parts._replace(query=query))


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
            message = shorten(scrub(root.findtext("Message") or ""), _TEXT_LIMIT)
    return code, message
