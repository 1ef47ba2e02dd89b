"""The real registry an emulated Deployment's ``imageRepository`` may point at.

Astro hands each Deployment an ``imageRepository`` on its own registry, where user ``cli``
with an API token as password may push; a finalize of an image deploy whose image is not
there fails. ``Emulator(registry="127.0.0.1:5000")`` does the same against a real registry
(the CNCF distribution registry ``make test`` starts): before it accepts such a finalize it
asks ``GET /v2/<org>/<deployment>/manifests/<tag>`` with the finalize's own token as the
password, and keeps the ``Docker-Content-Digest`` it answered.

Plain ``http`` only: the registry runs on loopback.
"""

from __future__ import annotations

import base64
import http.client
from dataclasses import dataclass

__all__ = ["MANIFEST_TYPES", "RegistryAnswer", "manifest_digest"]

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
)
"""The manifests a registry may hold for a pushed image (without them it converts to v1)."""


@dataclass(frozen=True)
class RegistryAnswer:
    """What the registry said of one manifest: ``digest`` when it has it, else a ``problem``
    worded for an API error message (never holding the password)."""

    digest: str = ""
    problem: str = ""


def manifest_digest(
    registry: str, name: str, tag: str, *, user: str, password: str, timeout: float = 10.0
) -> RegistryAnswer:
    """The digest of ``name:tag`` on ``registry`` (``host:port``), asked as ``user``."""
    where = f"GET http://{registry}/v2/{name}/manifests/{tag}"
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    host, _, port = registry.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        connection.request(
            "GET",
            f"/v2/{name}/manifests/{tag}",
            headers={"Authorization": f"Basic {credentials}", "Accept": MANIFEST_TYPES},
        )
        response = connection.getresponse()
        response.read()
    except OSError as exc:
        return RegistryAnswer(problem=f"the registry did not answer {where}: {exc}")
    finally:
        connection.close()
    if response.status == 200:
        digest = response.getheader("Docker-Content-Digest", "")
        if digest.startswith("sha256:"):
            return RegistryAnswer(digest=digest)
        return RegistryAnswer(problem=f"{where} answered no Docker-Content-Digest")
    if response.status == 401:
        return RegistryAnswer(
            problem=f"the registry refused user {user} with this API token ({where}: 401)"
        )
    if response.status == 404:
        return RegistryAnswer(problem=f"the registry has no such image ({where}: 404)")
    return RegistryAnswer(problem=f"{where} answered {response.status} {response.reason}")
