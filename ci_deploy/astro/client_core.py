"""The core of the Astro API client: one session that sends, retries, parses and pages.

:class:`ApiSession` speaks JSON to one API host with the bearer token and retries what
:mod:`ci_deploy.http` allows. It is the one boundary where httpx errors, error statuses and
unexpected answers become :class:`~ci_deploy.errors.ApiError` subclasses (through
:mod:`ci_deploy.astro.client_errors`). :class:`Operations` is the base of the operation
groups that :class:`~ci_deploy.astro.client.AstroClient` is made of.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from ci_deploy import __version__
from ci_deploy.astro.client_errors import (
    CHECK_HISTORY,
    Call,
    check_token,
    status_error,
    unexpected_answer,
    unreachable,
)
from ci_deploy.http import Retryable, TransportFailure, bearer_client, send_with_retries

__all__ = ["PAGE_SIZE", "ApiSession", "Operations"]

PAGE_SIZE = 100
"""Deploys or Deployments asked for per page by the ``list_*`` methods."""

_Model = TypeVar("_Model", bound=BaseModel)
_Page = TypeVar("_Page", bound=BaseModel)
_Item = TypeVar("_Item")


class ApiSession:
    """The HTTP side of :class:`~ci_deploy.astro.client.AstroClient` (same arguments).

    The token is checked (without echoing it), sent only as the ``Authorization`` header of
    requests to ``api_url`` (redirects are not followed), and scrubbed from every message.
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
        token = token.strip()
        check_token(token)
        self._token = token
        self.api_url = api_url.rstrip("/")
        self.organization_id = organization_id
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._on_retry = on_retry
        self._http = bearer_client(
            self.api_url,
            token,
            timeout=timeout,
            transport=transport,
            headers={
                "Accept": "application/json",
                "User-Agent": f"ci-deploy/{__version__}",
                "X-Astro-Client-Identifier": client_identifier,
                "X-Astro-Client-Version": __version__,
            },
        )

    def __repr__(self) -> str:
        return f"ApiSession(api_url={self.api_url!r}, organization_id={self.organization_id!r})"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def request(
        self,
        call: Call,
        method: str,
        path: str,
        model: type[_Model],
        *,
        params: Sequence[tuple[str, str]] = (),
        body: BaseModel | None = None,
    ) -> _Model:
        """Send the call and read its answer as ``model``."""
        response = self.send(call, method, path, params=params, body=body)
        return self.parse(call, response, model)

    def send(
        self,
        call: Call,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: BaseModel | None = None,
    ) -> httpx.Response:
        """Send the call with retries; its successful answer, else the ApiError for it.

        ``body`` is sent as JSON without its None fields; ``params`` keep their order and
        repeated names.
        """
        payload = None if body is None else body.model_dump(exclude_none=True)
        query = tuple(params) or None

        def build() -> httpx.Request:
            return self._http.build_request(method, path, params=query, json=payload)

        try:
            response = send_with_retries(
                self._http,
                build,
                retryable=call.retryable,
                label=call.description,
                max_attempts=self._max_attempts,
                sleep=self._sleep,
                on_retry=self._on_retry,
            )
        except TransportFailure as failure:
            raise unreachable(call, failure, self.api_url, self._scrub) from None
        if response.is_success:
            return response
        raise status_error(
            call,
            response,
            organization_id=self.organization_id,
            max_attempts=self._max_attempts,
            scrub=self._scrub,
        )

    def parse(self, call: Call, response: httpx.Response, model: type[_Model]) -> _Model:
        """The answer's body as ``model``; ApiError when it is not one."""
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise unexpected_answer(call, response, model, exc, self.api_url) from None

    def collect(
        self,
        call: Call,
        path: str,
        model: type[_Page],
        read: Callable[[_Page], tuple[Sequence[_Item], int]],
        key: Callable[[_Item], str],
        *,
        params: Sequence[tuple[str, str]] = (),
    ) -> list[_Item]:
        """Every item of an offset-paged list, each once (by ``key``), in the order first seen.

        Pages of :data:`PAGE_SIZE` are asked for with ``params`` plus ``offset`` and
        ``limit``; ``read`` gives a page's items and its ``totalCount``. The paging stops at
        an empty page, once the offset reaches the total, or at a page that adds nothing new
        (an API that ignores the offset would otherwise be asked forever).
        """
        found: dict[str, _Item] = {}
        offset = 0
        while True:
            page_params = [*params, ("offset", str(offset)), ("limit", str(PAGE_SIZE))]
            items, total = read(self.request(call, "GET", path, model, params=page_params))
            known = len(found)
            for item in items:
                found.setdefault(key(item), item)
            offset += len(items)
            if not items or offset >= total or len(found) == known:
                return list(found.values())

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text


class Operations:
    """The base of the operation groups: the session, and the paths and calls they share."""

    _session: ApiSession

    def _deployments_path(self) -> str:
        org = segment(self._session.organization_id, "organization id")
        return f"/organizations/{org}/deployments"

    def _deployment_path(self, deployment_id: str) -> str:
        return self._deployments_path() + "/" + segment(deployment_id, "deployment id")

    def _deploys_path(self, deployment_id: str) -> str:
        return self._deployment_path(deployment_id) + "/deploys"

    def _deploy_path(self, deployment_id: str, deploy_id: str) -> str:
        return self._deploys_path(deployment_id) + "/" + segment(deploy_id, "deploy id")

    def _call(
        self,
        operation: str,
        description: str,
        permission: str,
        retryable: Retryable,
        deployment_id: str,
        deploy_id: str | None = None,
        *,
        check: str = CHECK_HISTORY,
    ) -> Call:
        """A call on a Deployment (or on one of its deploys), for the messages of its errors."""
        where = f"Deployment '{deployment_id}' in organization '{self._session.organization_id}'"
        not_found = where if deploy_id is None else f"deploy '{deploy_id}' of {where}"
        return Call(operation, description, permission, retryable, not_found, check=check)


def segment(value: str, what: str) -> str:
    """``value`` quoted as one path segment; ValueError when it is empty."""
    if not value:
        raise ValueError(f"the {what} is empty")
    return quote(value, safe="")
