"""The Astro API client: the deploy operations of the Astro platform API v1.

Deployments (get, list, logs, hibernation override) and their deploys (list, create, get,
finalize, roll back). :class:`AstroClient` speaks JSON to one API host with the bearer
token, retries what :mod:`ci_deploy.http` allows, parses answers with
:mod:`ci_deploy.astro.wire`, and turns every failure into an
:class:`~ci_deploy.errors.ApiError` subclass whose message says what was attempted, what
the API answered, and what to do. A write (POST, DELETE) that may or may not have been
processed raises :class:`~ci_deploy.errors.ApiAmbiguousError` and is never retried here.
The token never appears in a message, a log line or a ``repr``.

The client is made of parts, each in a module of its own:

* :mod:`ci_deploy.astro.client_core`: the session (sending, retries, parsing, paging);
* :mod:`ci_deploy.astro.client_errors`: how failures become ``ApiError`` messages;
* :mod:`ci_deploy.astro.client_deployments`, :mod:`ci_deploy.astro.client_logs` and
  :mod:`ci_deploy.astro.client_deploys`: the operations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

import httpx

from ci_deploy.astro.client_core import PAGE_SIZE, ApiSession
from ci_deploy.astro.client_deployments import DeploymentCalls
from ci_deploy.astro.client_deploys import DeployCalls
from ci_deploy.astro.client_logs import LOG_PAGE_SIZE, LOG_PAGES, LogCalls

__all__ = ["LOG_PAGES", "LOG_PAGE_SIZE", "PAGE_SIZE", "AstroClient"]


class AstroClient(DeploymentCalls, LogCalls, DeployCalls):
    """A client for the Astro API's deploy operations.

    ``api_url`` is the API base (``https://api.astronomer.io/v1``); ``client_identifier``
    is sent as ``X-Astro-Client-Identifier`` ("github-action" inside GitHub Actions).
    ``on_retry`` receives one line per retry. Use it as a context manager or call
    :meth:`close`.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        organization_id: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        client_identifier: str = "ci-deploy",
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self._session = ApiSession(
            api_url,
            token,
            organization_id,
            timeout=timeout,
            max_attempts=max_attempts,
            sleep=sleep,
            transport=transport,
            client_identifier=client_identifier,
            on_retry=on_retry,
        )

    @classmethod
    def over(cls, session: ApiSession) -> Self:
        """A client over a session made already (see :mod:`ci_deploy.astro.early`)."""
        client = cls.__new__(cls)
        client._session = session
        return client

    @property
    def api_url(self) -> str:
        """The API base URL, without a trailing slash."""
        return self._session.api_url

    @property
    def organization_id(self) -> str:
        """The organization every call is made in."""
        return self._session.organization_id

    def __repr__(self) -> str:
        return f"AstroClient(api_url={self.api_url!r}, organization_id={self.organization_id!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP connections."""
        self._session.close()
