"""The real Azure blob service in the tests: Azurite, which ``make test`` starts.

The ``azurite`` fixture (re-exported by conftest) gives each test a fresh container in the
development account at ``CI_DEPLOY_TEST_AZURITE_BLOB``; it fails, never skips, when the
variable is unset or Azurite does not answer.
"""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from ci_deploy_testkit.azure_blob import BlobService

AZURITE_VARIABLE = "CI_DEPLOY_TEST_AZURITE_BLOB"

_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class AzuriteContainer:
    """One container of the tests' own in Azurite."""

    service: BlobService
    name: str

    def upload_url(self, blob: str, *, expiry: datetime | None = None) -> str:
        """``blob``'s upload URL as Astro hands it out (a service SAS, ``sp=cw``), valid
        until ``expiry`` (an hour from now by default)."""
        expiry = expiry or datetime.now(UTC) + timedelta(hours=1)
        return self.service.blob_url(self.name, blob, permissions="cw", expiry=expiry)

    def digest(self, blob: str) -> tuple[int, str]:
        """The committed blob's size and sha256, read back (streamed)."""
        return self.service.read_digest(self.name, blob)

    def committed_blocks(self, blob: str) -> list[int]:
        """The sizes of the committed blob's blocks, in order (none for a Put Blob's)."""
        return self.service.committed_blocks(self.name, blob)


def write_file(path: Path, size: int, seed: int = 12) -> str:
    """Write ``size`` deterministic, incompressible bytes to ``path`` a MiB at a time (never
    held whole); return their sha256."""
    rng, digest = random.Random(seed), hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            chunk = rng.randbytes(min(_CHUNK, left))
            digest.update(chunk)
            out.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


@pytest.fixture
def azurite() -> Iterator[AzuriteContainer]:
    """A fresh container in the real Azure blob service (Azurite) that ``make test`` starts,
    deleted afterwards."""
    endpoint = os.environ.get(AZURITE_VARIABLE, "")
    if not endpoint:
        pytest.fail(
            f"{AZURITE_VARIABLE} is not set: run the tests through `make test`, which starts "
            "the real Docker engine, registry and Azurite"
        )
    service = BlobService(endpoint)
    name = f"ci-deploy-{uuid.uuid4().hex}"
    try:
        service.create_container(name)
    except httpx.HTTPError as error:
        pytest.fail(
            f"Azurite at {endpoint} ({AZURITE_VARIABLE}) did not make a container: "
            f"{type(error).__name__}: {error}. Run the tests through "
            "`make test`, which starts it"
        )
    yield AzuriteContainer(service, name)
    service.delete_container(name)
