"""Where the tests find the real components ``make test`` starts (``scripts/services.py``).

The variables are set by ``scripts/services.py run``; a test that needs one fails (never
skips) when it is missing, saying how to run the tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from ci_deploy_testkit.emulator.registry import RegistryAnswer, manifest_digest

SERVICES_HINT = (
    "run the tests through `make test`, which starts the real Docker engine, registry and "
    "Azurite (scripts/services.py run -- pytest ...)"
)


def service_variable(name: str) -> str:
    """The variable ``name`` of the started services; the test fails when it is not set."""
    value = os.environ.get(name, "")
    if not value:
        pytest.fail(f"{name} is not set: {SERVICES_HINT}", pytrace=False)
    return value


@dataclass(frozen=True)
class RealRegistry:
    """The CNCF distribution registry on loopback, with htpasswd auth like Astro's."""

    host: str
    """``127.0.0.1:<port>``."""
    user: str
    token: str
    """The password of :attr:`user` (the Astro API token's place)."""

    def manifest(self, name: str, tag: str, *, password: str | None = None) -> RegistryAnswer:
        """``GET /v2/<name>/manifests/<tag>`` as :attr:`user`: its digest, or the problem."""
        return manifest_digest(
            self.host,
            name,
            tag,
            user=self.user,
            password=self.token if password is None else password,
        )
