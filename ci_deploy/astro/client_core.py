"""The core of the Astro API client: one session that sends, retries, parses and pages.

:class:`ApiSession` speaks JSON to one API host with the bearer token and retries what
:mod:`ci_deploy.http` allows. It is the one boundary where httpx errors, error statuses and
unexpected answers become :class:`~ci_deploy.errors.ApiError` subclasses (through
:mod:`ci_deploy.astro.client_errors`). :class:`Operations` is the base of the operation
groups that :class:`~ci_deploy.astro.client.AstroClient` is made of.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote

import httpx

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

if TYPE_CHECKING:  # imported where an answer is parsed: the session sends without them
    from pydantic import BaseModel

__all__ = [
    "PAGE_SIZE",
    "ApiSession",
    "EarlyRead",
    "Operations",
    "deployment_path",
    "deployments_path",
    "deployments_query",
    "page_params",
]

PAGE_SIZE = 100
"""Deploys or Deployments asked for per page by the ``list_*`` methods."""

_Model = TypeVar("_Model", bound="BaseModel")
_Page = TypeVar("_Page", bound="BaseModel")
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
        self._early: dict[tuple[str, str, tuple[tuple[str, str], ...]], EarlyRead] = {}
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

    def read_early(self, read: EarlyRead) -> Callable[[], None]:
        """Keep ``read``'s answer for the call that sends the same GET (same path and query)
        first; returns what sends it, once and without retries (call it on a thread of its
        own, before or while that call is made).

        That call takes the answer as its first attempt's: a success, or an error status,
        reported as always; one worth another attempt (429, 5xx) is waited for
        (``Retry-After`` included), logged and retried as any first attempt is. Without an
        answer (no connection, a timeout) it sends as usual. Nothing is raised or logged by
        the early read itself.
        """
        self._early[read.key] = read

        def send() -> httpx.Response:
            request = self._http.build_request("GET", read.path, params=read.query)
            request.extensions["trace"] = read.trace
            return self._http.send(request)

        return lambda: read.send(send)

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

        early = self._early.pop((method, path, tuple(params)), None) if body is None else None
        try:  # an early answer is the first attempt's; none (no answer) and it is sent here
            response = send_with_retries(
                self._http,
                build,
                retryable=call.retryable,
                label=call.description,
                max_attempts=self._max_attempts,
                sleep=self._sleep,
                on_retry=self._on_retry,
                first=None if early is None else early.answer(),
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
        from pydantic import ValidationError

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
            page = page_params(params, offset)
            items, total = read(self.request(call, "GET", path, model, params=page))
            known = len(found)
            for item in items:
                found.setdefault(key(item), item)
            offset += len(items)
            if not items or offset >= total or len(found) == known:
                return list(found.values())

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text


class EarlyRead:
    """A GET sent ahead of the call that needs it (see :meth:`ApiSession.read_early`): its
    answer, or None when it got none (a transport error, a timeout, never sent)."""

    def __init__(self, path: str, params: Sequence[tuple[str, str]] = ()) -> None:
        self.path = path
        self.query = tuple(params) or None
        self.key = ("GET", path, tuple(params))
        self._answers: list[httpx.Response] = []
        self._done = threading.Event()
        self._under_way = threading.Event()

    def send(self, send: Callable[[], httpx.Response]) -> None:
        """Keep what ``send`` answers; whatever it raises is left to the call's own sending."""
        try:
            with suppress(Exception):
                self._answers.append(send())
        finally:
            self._under_way.set()
            self._done.set()

    def trace(self, event: str, info: object) -> None:
        """httpcore's trace hook: the first network step (a connection made, or a request
        written on one kept open) means the request is under way."""
        self._under_way.set()

    def wait_under_way(self, timeout: float) -> None:
        """Wait until the request's Python side is done and it waits on the network (or
        until it ended, or ``timeout`` passed)."""
        self._under_way.wait(timeout)

    def give_up(self) -> None:
        """Never sent: the call sends its request itself."""
        self._under_way.set()
        self._done.set()

    def answer(self) -> httpx.Response | None:
        """The answer, once the GET is done (waits for it; a signal still interrupts)."""
        self._done.wait()
        return self._answers[0] if self._answers else None


def page_params(params: Sequence[tuple[str, str]], offset: int) -> list[tuple[str, str]]:
    """The query of the page of an offset-paged list that starts at ``offset``."""
    return [*params, ("offset", str(offset)), ("limit", str(PAGE_SIZE))]


def deployments_path(organization_id: str) -> str:
    """The path of the organization's Deployments."""
    return f"/organizations/{segment(organization_id, 'organization id')}/deployments"


def deployment_path(organization_id: str, deployment_id: str) -> str:
    """The path of one Deployment."""
    return deployments_path(organization_id) + "/" + segment(deployment_id, "deployment id")


def deployments_query(names: Sequence[str], workspace_id: str | None) -> list[tuple[str, str]]:
    """ListDeployments' filters: exact ``names``, the workspace, and a stable order for offset
    paging (oldest first)."""
    filters = [("names", name) for name in names]
    if workspace_id is not None:
        filters.append(("workspaceIds", workspace_id))
    filters.append(("sorts", "createdAt:asc"))
    return filters


class Operations:
    """The base of the operation groups: the session, and the paths and calls they share."""

    _session: ApiSession

    def _deployments_path(self) -> str:
        return deployments_path(self._session.organization_id)

    def _deployment_path(self, deployment_id: str) -> str:
        return deployment_path(self._session.organization_id, deployment_id)

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
