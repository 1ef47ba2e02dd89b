"""Azure Blob Storage credentials and calls for the tests against a real blob service (Azurite).

Astro hands a deploy a service SAS URL of one blob; these make such URLs for any blob, with
chosen permissions and expiry, the way Azure computes them: an HMAC-SHA256, keyed with the
account key, of the string-to-sign of REST version :data:`SAS_VERSION`. An account SAS (the
same, over the account's string-to-sign) makes and deletes the containers.

The signing functions are pure; :class:`BlobService` is the small client over one account's
endpoint (Azurite's path-style ``http://127.0.0.1:<port>/<account>``) that the tests use to
make a container, hand out a blob's URL, and read a blob back as its size and sha256, streamed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

import httpx

__all__ = [
    "DEV_ACCOUNT",
    "DEV_KEY",
    "SAS_VERSION",
    "BlobService",
    "account_sas",
    "sas_time",
    "service_sas",
]

DEV_ACCOUNT = "devstoreaccount1"
"""Azurite's development account."""

DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
"""The development account's key, published by Microsoft for the storage emulators: no
secret, and no real account accepts it."""

SAS_VERSION = "2021-12-02"
"""The REST version the SAS are signed for (``sv``); its string-to-sign is the one of
2020-12-06 and later."""

_API_VERSION = "2021-12-02"
_READ_CHUNK = 1024 * 1024


def sas_time(moment: datetime) -> str:
    """``moment`` as a SAS takes it: UTC, to the second, ``2030-01-01T00:00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def service_sas(
    *,
    account: str,
    key: str,
    container: str,
    blob: str | None,
    permissions: str,
    expiry: datetime,
) -> str:
    """The query of a service SAS for ``blob`` in ``container`` (``sr=b``), or for the whole
    container when ``blob`` is None (``sr=c``): ``sv``, ``sr``, ``sp``, ``se``, ``sig``.

    ``permissions`` in Azure's letters and order (``racwdl``...): ``cw`` writes a blob as
    Astro's upload URLs do, ``r`` reads it back.
    """
    resource = f"/blob/{account}/{container}" + (f"/{blob}" if blob is not None else "")
    signed_resource = "b" if blob is not None else "c"
    expires = sas_time(expiry)
    string_to_sign = "\n".join(
        [
            permissions,
            "",  # signedStart
            expires,
            resource,
            "",  # signedIdentifier
            "",  # signedIP
            "",  # signedProtocol
            SAS_VERSION,
            signed_resource,
            "",  # signedSnapshotTime
            "",  # signedEncryptionScope
            "",  # rscc
            "",  # rscd
            "",  # rsce
            "",  # rscl
            "",  # rsct
        ]
    )
    return urlencode(
        {
            "sv": SAS_VERSION,
            "sr": signed_resource,
            "sp": permissions,
            "se": expires,
            "sig": _sign(key, string_to_sign),
        }
    )


def account_sas(*, account: str, key: str, permissions: str, expiry: datetime) -> str:
    """The query of an account SAS for the blob service's service, container and object
    levels (``ss=b``, ``srt=sco``) with ``permissions`` (``rwdlac``...)."""
    expires = sas_time(expiry)
    string_to_sign = "\n".join(
        [
            account,
            permissions,
            "b",  # signedServices
            "sco",  # signedResourceTypes
            "",  # signedStart
            expires,
            "",  # signedIP
            "",  # signedProtocol
            SAS_VERSION,
            "",  # signedEncryptionScope
            "",  # the string ends with a newline
        ]
    )
    return urlencode(
        {
            "sv": SAS_VERSION,
            "ss": "b",
            "srt": "sco",
            "sp": permissions,
            "se": expires,
            "sig": _sign(key, string_to_sign),
        }
    )


def _sign(key: str, string_to_sign: str) -> str:
    digest = hmac.new(base64.b64decode(key), string_to_sign.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class BlobService:
    """One storage account's blob endpoint, ``http://127.0.0.1:<port>/<account>`` (path
    style, as Azurite serves it), with the account's key (by default the development
    account's). Its own SAS (to make containers, to read blobs back) expire an hour after
    ``clock``."""

    endpoint: str
    key: str = DEV_KEY
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), compare=False)

    @property
    def account(self) -> str:
        """The account, the endpoint's last path segment."""
        return urlsplit(self.endpoint).path.rstrip("/").rpartition("/")[2]

    def blob_url(self, container: str, blob: str, *, permissions: str, expiry: datetime) -> str:
        """``blob``'s URL with a service SAS for it, as Astro's ``dagsUploadUrl``."""
        query = service_sas(
            account=self.account,
            key=self.key,
            container=container,
            blob=blob,
            permissions=permissions,
            expiry=expiry,
        )
        return f"{self.endpoint.rstrip('/')}/{container}/{blob}?{query}"

    def create_container(self, container: str) -> None:
        """Create ``container`` (Create Container with an account SAS); raises
        httpx.HTTPStatusError unless it was made."""
        self._container_call("PUT", container).raise_for_status()

    def delete_container(self, container: str) -> None:
        """Delete ``container`` and its blobs; raises httpx.HTTPStatusError unless it is
        being deleted."""
        self._container_call("DELETE", container).raise_for_status()

    def read_digest(self, container: str, blob: str) -> tuple[int, str]:
        """``blob``'s committed size and sha256 (hex), read with a read-only SAS in chunks of
        1 MiB: never held whole. Raises httpx.HTTPStatusError when it cannot be read."""
        url = self.blob_url(container, blob, permissions="r", expiry=self._in_an_hour())
        digest, size = hashlib.sha256(), 0
        with httpx.stream("GET", url, headers={"x-ms-version": _API_VERSION}) as response:
            response.raise_for_status()
            for chunk in response.iter_bytes(_READ_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def committed_blocks(self, container: str, blob: str) -> list[int]:
        """The sizes of ``blob``'s committed blocks, in order (Get Block List); none for a
        blob made by one Put Blob. Raises httpx.HTTPStatusError when it cannot be read."""
        url = self.blob_url(container, blob, permissions="r", expiry=self._in_an_hour())
        response = httpx.get(
            f"{url}&comp=blocklist&blocklisttype=committed",
            headers={"x-ms-version": _API_VERSION},
        )
        response.raise_for_status()
        root = ET.fromstring(response.content)  # noqa: S314 - the tests' own Azurite
        return [int(size.text or "") for size in root.iterfind("CommittedBlocks/Block/Size")]

    def _container_call(self, method: str, container: str) -> httpx.Response:
        query = account_sas(
            account=self.account, key=self.key, permissions="rwdlac", expiry=self._in_an_hour()
        )
        url = f"{self.endpoint.rstrip('/')}/{container}?restype=container&{query}"
        return httpx.request(method, url, headers={"x-ms-version": _API_VERSION})

    def _in_an_hour(self) -> datetime:
        """The expiry of the credentials the service makes for itself."""
        return self.clock() + timedelta(hours=1)
