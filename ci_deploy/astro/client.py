"""The Astro API client: the deploy operations of the Astro platform API v1.

Deployments (get, list, logs, hibernation override) and their deploys (list, create, get,
finalize, roll back). :class:`AstroClient` speaks JSON to one API host with the bearer
token, retries what :mod:`ci_deploy.http` allows, parses answers with
:mod:`ci_deploy.astro.wire`, and turns every failure into an
:class:`~ci_deploy.errors.ApiError` subclass whose message says what was attempted, what
the API answered, and what to do. A write (POST, DELETE) that may or may not have been
processed raises :class:`~ci_deploy.errors.ApiAmbiguousError` and is never retried here.
The token never appears in a message, a log line or a ``repr``.
"""

from __future__ import annotations

import json
import string
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from ci_deploy import __version__
from ci_deploy.astro import wire as models
from ci_deploy.errors import (
    ApiAmbiguousError,
    ApiError,
    ApiUnavailableError,
    AuthError,
    NotFoundError,
)
from ci_deploy.http import API_GET, API_POST, Retryable, TransportFailure, send_with_retries

__all__ = ["LOG_PAGES", "LOG_PAGE_SIZE", "PAGE_SIZE", "AstroClient"]

PAGE_SIZE = 100
"""Deploys or Deployments asked for per page by the ``list_*`` methods."""

LOG_PAGE_SIZE = 500
"""Log entries asked for per page (the API's default page size)."""

LOG_PAGES = 10
"""The most pages :meth:`AstroClient.get_deployment_logs` reads."""

_CHECK_HISTORY = "check the Deployment's deploy history before running the job again."
_CHECK_HIBERNATION = (
    "check the Deployment's hibernation settings in the Astro UI before running the job again."
)
_AMBIGUOUS = "The API may or may not have processed the request, so it was not retried:"

_TEXT_LIMIT = 200
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-._~+/=")

_Model = TypeVar("_Model", bound=BaseModel)


@dataclass(frozen=True)
class _Call:
    """One API call: its spec operation, what it does in words, and what it looks for."""

    operation: str  # the spec's operationId
    description: str  # "Create deploy on Deployment 'd1'"
    permission: str  # the spec's x-permission
    retryable: Retryable
    not_found: str  # "Deployment 'd1' in organization 'o1'"
    ids: str = "organization and Deployment ids"  # what to check after a 404
    tokens: str = "a Deployment API token of this Deployment, or a Workspace API token"
    check: str = _CHECK_HISTORY  # what to check after an ambiguous failure


class AstroClient:
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
        token = token.strip()
        _check_token(token)
        self._token = token
        self.api_url = api_url.rstrip("/")
        self.organization_id = organization_id
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._on_retry = on_retry
        self._http = httpx.Client(
            base_url=self.api_url,
            timeout=httpx.Timeout(timeout, connect=10),
            follow_redirects=False,
            transport=transport,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json",
                "User-Agent": f"ci-deploy/{__version__}",
                "X-Astro-Client-Identifier": client_identifier,
                "X-Astro-Client-Version": __version__,
            },
        )

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
        self._http.close()

    # -- operations -------------------------------------------------------------------

    def get_deployment(self, deployment_id: str) -> models.Deployment:
        """Read a Deployment (GetDeployment)."""
        call = self._call(
            "GetDeployment",
            f"Get Deployment '{deployment_id}'",
            "deployment.get",
            API_GET,
            deployment_id,
        )
        response = self._send(call, "GET", self._deployment_path(deployment_id))
        return self._parse(call, response, models.Deployment)

    def list_deployments(
        self, *, names: Sequence[str] = (), workspace_id: str | None = None
    ) -> list[models.Deployment]:
        """The organization's Deployments (ListDeployments, all pages).

        In the API's order; the pages are asked for sorted by creation time, oldest first,
        so offset paging stays stable. ``names`` (exact names, repeated ``names``
        parameters) and ``workspace_id`` (``workspaceIds``) filter on the server, and again
        here, so an API that ignores a filter never adds a Deployment that does not match.
        """
        wanted = (names,) if isinstance(names, str) else tuple(dict.fromkeys(names))
        workspace = workspace_id or None
        org = self.organization_id
        call = _Call(
            "ListDeployments",
            f"List Deployments of organization '{org}'",
            "organization.deployments.get",
            API_GET,
            not_found=f"organization '{org}'",
            ids="organization id",
            tokens="a Workspace or Organization API token",
        )
        path = f"/organizations/{_segment(org, 'organization id')}/deployments"
        filters = [("names", name) for name in wanted]
        if workspace is not None:
            filters.append(("workspaceIds", workspace))
        filters.append(("sorts", "createdAt:asc"))  # a stable order for offset paging
        found: dict[str, models.Deployment] = {}
        offset = 0
        while True:
            params = [*filters, ("offset", str(offset)), ("limit", str(PAGE_SIZE))]
            response = self._send(call, "GET", path, params=params)
            page = self._parse(call, response, models.DeploymentsPage)
            known = len(found)
            for deployment in page.deployments:
                found.setdefault(deployment.id, deployment)
            offset += len(page.deployments)
            # An empty page, the end, or a page of nothing new (the offset was ignored).
            if not page.deployments or offset >= page.totalCount or len(found) == known:
                break
        return [
            deployment
            for deployment in found.values()
            if (not wanted or deployment.name in wanted)
            and (workspace is None or deployment.workspaceId == workspace)
        ]

    def get_deployment_logs(
        self,
        deployment_id: str,
        *,
        sources: Sequence[str],
        start: datetime | None = None,
        end: datetime | None = None,
        search_text: str | None = None,
        limit: int = 1000,
    ) -> list[models.LogEntry]:
        """A Deployment's log entries (GetDeploymentLogs), oldest first, at most ``limit``.

        ``sources`` (at least one of :data:`ci_deploy.astro.wire.LOG_SOURCES`) are sent as
        repeated ``sources`` parameters. ``start`` and ``end`` must be aware datetimes;
        they are sent in UTC as ``startDate``/``endDate`` (``...Z``, whole seconds, the
        range widened to include the partial seconds). ``end`` defaults to now when only
        ``start`` is given; with neither, the API's default range (the last hour) applies.
        ``limit`` is also sent as ``maxNumResults``. Pages of :data:`LOG_PAGE_SIZE` entries
        are read, with the first answer's ``searchId``, until ``limit`` entries, a short
        page, or :data:`LOG_PAGES` pages (so at most 5000 entries). Raises ValueError for
        arguments the API would refuse.
        """
        query = self._log_query(sources, start, end, search_text, limit)
        call = self._call(
            "GetDeploymentLogs",
            f"Get logs of Deployment '{deployment_id}'",
            "deployment.logs.get",
            API_GET,
            deployment_id,
        )
        path = self._deployment_path(deployment_id) + "/logs"
        page_size = min(limit, LOG_PAGE_SIZE)
        entries: list[models.LogEntry] = []
        search_id: str | None = None
        for _ in range(LOG_PAGES):
            params = [
                *query,
                ("limit", str(page_size)),
                ("offset", str(len(entries))),
                ("maxNumResults", str(limit)),
            ]
            if search_id:
                params.append(("searchId", search_id))
            response = self._send(call, "GET", path, params=params)
            page = self._parse(call, response, models.DeploymentLogs)
            entries.extend(page.results)
            search_id = page.searchId or search_id
            if len(page.results) < page_size or len(entries) >= limit:
                break
        return sorted(entries[:limit], key=lambda entry: entry.timestamp)

    def set_hibernation_override(
        self, deployment_id: str, request: models.HibernationOverrideRequest
    ) -> models.HibernationOverride:
        """Set the Deployment's hibernation override (UpdateDeploymentHibernationOverride).

        ``isHibernating=False`` wakes a hibernating development Deployment. Retried like
        every write: only when provably not processed.
        """
        call = self._call(
            "UpdateDeploymentHibernationOverride",
            f"Set the hibernation override of Deployment '{deployment_id}'",
            "deployment.update",
            API_POST,
            deployment_id,
            check=_CHECK_HIBERNATION,
        )
        path = self._deployment_path(deployment_id) + "/hibernation-override"
        response = self._send(call, "POST", path, body=request)
        return self._parse(call, response, models.HibernationOverride)

    def delete_hibernation_override(self, deployment_id: str) -> None:
        """Remove the Deployment's hibernation override (DeleteDeploymentHibernationOverride).

        The hibernation schedule applies again. The API answers 204 No Content.
        """
        call = self._call(
            "DeleteDeploymentHibernationOverride",
            f"Delete the hibernation override of Deployment '{deployment_id}'",
            "deployment.update",
            API_POST,
            deployment_id,
            check=_CHECK_HIBERNATION,
        )
        path = self._deployment_path(deployment_id) + "/hibernation-override"
        self._send(call, "DELETE", path)

    def list_deploys(self, deployment_id: str) -> list[models.Deploy]:
        """Every deploy of a Deployment (ListDeploys, all pages), oldest first."""
        call = self._call(
            "ListDeploys",
            f"List deploys of Deployment '{deployment_id}'",
            "deployment.deploys.get",
            API_GET,
            deployment_id,
        )
        path = self._deploys_path(deployment_id)
        found: dict[str, models.Deploy] = {}
        offset = 0
        while True:
            params = [("offset", str(offset)), ("limit", str(PAGE_SIZE))]
            response = self._send(call, "GET", path, params=params)
            page = self._parse(call, response, models.DeploysPage)
            for deploy in page.deploys:
                found.setdefault(deploy.id, deploy)
            offset += len(page.deploys)
            if not page.deploys or offset >= page.totalCount:
                break
        return sorted(found.values(), key=_created_at)

    def create_deploy(
        self, deployment_id: str, request: models.CreateDeployRequest
    ) -> models.Deploy:
        """Start a deploy (CreateDeploy); the answer holds the upload URL.

        Retried only when the API provably did not process the request (429, 503, no
        connection). After an ambiguous failure (no answer once the request went out, or
        HTTP 500/502/504) this raises :class:`~ci_deploy.errors.ApiAmbiguousError` and does
        not retry by itself: a deploy may have been created, so the caller reads the deploy
        history first and only then creates again if it has to.
        """
        call = self._call(
            "CreateDeploy",
            f"Create deploy on Deployment '{deployment_id}'",
            "deployment.deploys.create",
            API_POST,
            deployment_id,
        )
        response = self._send(call, "POST", self._deploys_path(deployment_id), body=request)
        return self._parse(call, response, models.Deploy)

    def get_deploy(self, deployment_id: str, deploy_id: str) -> models.Deploy:
        """Read one deploy (GetDeploy)."""
        call = self._call(
            "GetDeploy",
            f"Get deploy '{deploy_id}' of Deployment '{deployment_id}'",
            "deployment.deploys.get",
            API_GET,
            deployment_id,
            deploy_id,
        )
        response = self._send(call, "GET", self._deploy_path(deployment_id, deploy_id))
        return self._parse(call, response, models.Deploy)

    def finalize_deploy(
        self, deployment_id: str, deploy_id: str, request: models.FinalizeDeployRequest
    ) -> models.Deploy:
        """Finalize a deploy with the uploaded version (FinalizeDeploy)."""
        call = self._call(
            "FinalizeDeploy",
            f"Finalize deploy '{deploy_id}' on Deployment '{deployment_id}'",
            "deployment.deploys.update",
            API_POST,
            deployment_id,
            deploy_id,
        )
        path = self._deploy_path(deployment_id, deploy_id) + "/finalize"
        response = self._send(call, "POST", path, body=request)
        return self._parse(call, response, models.Deploy)

    def rollback_deploy(
        self, deployment_id: str, deploy_id: str, request: models.RollbackRequest
    ) -> models.Deploy:
        """Roll the Deployment back to an earlier deploy (DeployRollback)."""
        call = self._call(
            "DeployRollback",
            f"Roll back Deployment '{deployment_id}' to deploy '{deploy_id}'",
            "deployment.deploys.update",
            API_POST,
            deployment_id,
            deploy_id,
        )
        path = self._deploy_path(deployment_id, deploy_id) + "/rollback"
        response = self._send(call, "POST", path, body=request)
        return self._parse(call, response, models.Deploy)

    # -- paths ------------------------------------------------------------------------

    def _deployment_path(self, deployment_id: str) -> str:
        org = _segment(self.organization_id, "organization id")
        return f"/organizations/{org}/deployments/{_segment(deployment_id, 'deployment id')}"

    def _deploys_path(self, deployment_id: str) -> str:
        return self._deployment_path(deployment_id) + "/deploys"

    def _deploy_path(self, deployment_id: str, deploy_id: str) -> str:
        return self._deploys_path(deployment_id) + "/" + _segment(deploy_id, "deploy id")

    def _call(
        self,
        operation: str,
        description: str,
        permission: str,
        retryable: Retryable,
        deployment_id: str,
        deploy_id: str | None = None,
        *,
        check: str = _CHECK_HISTORY,
    ) -> _Call:
        where = f"Deployment '{deployment_id}' in organization '{self.organization_id}'"
        not_found = where if deploy_id is None else f"deploy '{deploy_id}' of {where}"
        return _Call(operation, description, permission, retryable, not_found, check=check)

    @staticmethod
    def _log_query(
        sources: Sequence[str],
        start: datetime | None,
        end: datetime | None,
        search_text: str | None,
        limit: int,
    ) -> list[tuple[str, str]]:
        """The filter parameters of GetDeploymentLogs; ValueError for what the API refuses."""
        chosen = [sources] if isinstance(sources, str) else list(dict.fromkeys(sources))
        if not chosen:
            raise ValueError("get_deployment_logs needs at least one log source")
        unknown = [source for source in chosen if source not in models.LOG_SOURCES]
        if unknown:
            raise ValueError(
                f"unknown log source(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(models.LOG_SOURCES))}"
            )
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        query = [("sources", source) for source in chosen]
        if end is not None and start is None:
            raise ValueError("an end needs a start: the API takes endDate only with startDate")
        if start is not None:
            until = end if end is not None else datetime.now(UTC)
            start_text = models.rfc3339(start)
            if until.microsecond:  # round up, so the last partial second is included
                until += timedelta(microseconds=1_000_000 - until.microsecond)
            end_text = models.rfc3339(until)
            if start_text > end_text:
                raise ValueError(f"the start {start_text} is after the end {end_text}")
            query += [("startDate", start_text), ("endDate", end_text)]
        if search_text:
            query.append(("searchText", search_text))
        return query

    # -- sending and answers ----------------------------------------------------------

    def _send(
        self,
        call: _Call,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: BaseModel | None = None,
    ) -> httpx.Response:
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
            raise self._unreachable(call, failure) from None
        if response.is_success:
            return response
        raise self._error(call, response)

    def _parse(self, call: _Call, response: httpx.Response, model: type[_Model]) -> _Model:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
                for err in exc.errors(include_url=False, include_input=False)[:5]
            )
            raise ApiError(
                f"{call.description} failed: the Astro API answered something unexpected "
                f"(HTTP {response.status_code}, not a valid {model.__name__}: {problems}). "
                f"Check that the API URL {self.api_url} is the Astro API.",
                status_code=response.status_code,
                request_id=_request_id_header(response),
                operation=call.operation,
            ) from None

    def _unreachable(self, call: _Call, failure: TransportFailure) -> ApiError:
        error = self._scrub(f"{type(failure.error).__name__}: {failure.error}")
        if failure.ambiguous:
            return ApiAmbiguousError(
                f"{call.description} failed: no answer from the Astro API at {self.api_url} "
                f"({error}). {_AMBIGUOUS} {call.check}",
                operation=call.operation,
            )
        tried = f"tried {_times(failure.attempts)}; last error " if failure.retryable else ""
        return ApiUnavailableError(
            f"{call.description} failed: could not reach the Astro API at {self.api_url} "
            f"({tried}{error}). Check the API URL and the runner's network, then run the job "
            "again.",
            operation=call.operation,
        )

    def _error(self, call: _Call, response: httpx.Response) -> ApiError:
        status = response.status_code
        detail = _ErrorBody.from_response(response, self._scrub)
        reason = httpx.codes.get_reason_phrase(status)
        what = f"{call.description} failed: HTTP {status} {reason}"
        if 300 <= status < 400:
            what += f": a redirect{_redirect_target(response)}"
        else:
            what += detail.suffix()
        error_class, advice = self._advice(call, status)
        return error_class(
            _sentences(what, advice),
            status_code=status,
            request_id=detail.request_id,
            operation=call.operation,
            title="Astro API permission missing" if status == 403 else None,
        )

    def _advice(self, call: _Call, status: int) -> tuple[type[ApiError], str]:
        """The exception class for an error status, and what the user should do."""
        if call.retryable.status(status):
            return ApiUnavailableError, (
                f"Tried {_times(self._max_attempts)}: the Astro API is busy or unavailable; "
                "run the job again later."
            )
        if status == 401:
            return AuthError, (
                "The Astro API rejected the token: 'api-token' / ASTRO_API_TOKEN must be a "
                f"valid, unexpired Astro API token for organization '{self.organization_id}'."
            )
        if status == 403:
            return AuthError, (
                f"The token lacks the permission '{call.permission}': use {call.tokens} "
                f"whose role grants '{call.permission}'."
            )
        if status == 404:
            return NotFoundError, (
                f"There is no {call.not_found}, or the token cannot see it: check the {call.ids}."
            )
        if 300 <= status < 400:
            return ApiError, (
                "Redirects are not followed, so the token is never sent elsewhere: check "
                "the API URL."
            )
        if call.retryable.ambiguous_status(status):
            return ApiAmbiguousError, f"{_AMBIGUOUS} {call.check}"
        return ApiError, ""

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text


@dataclass(frozen=True)
class _ErrorBody:
    """What an error answer said: the API's Error JSON, or the start of its text."""

    message: str
    request_id: str
    field_errors: tuple[str, ...] = ()

    @classmethod
    def from_response(cls, response: httpx.Response, scrub: Callable[[str], str]) -> _ErrorBody:
        header_id = _request_id_header(response)
        try:
            data = json.loads(response.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return cls(scrub(_shorten(response.text)), header_id)
        field_errors = tuple(
            scrub(f"{item.get('field', '?')}: {item.get('message', '')}".strip())
            for item in data.get("fieldErrors") or []
            if isinstance(item, dict)
        )
        message = data.get("message")
        text = message if isinstance(message, str) and message else _shorten(response.text)
        request_id = data.get("requestId")
        return cls(
            scrub(_shorten(text, 500)),
            request_id if isinstance(request_id, str) and request_id else header_id,
            field_errors,
        )

    def suffix(self) -> str:
        """``: <message> [fieldErrors: ...] (requestId: ...)``, leaving out empty parts."""
        text = f": {self.message}" if self.message else ""
        if self.field_errors:
            text += f" [fieldErrors: {'; '.join(self.field_errors)}]"
        if self.request_id:
            text += f" (requestId: {self.request_id})"
        return text


def _check_token(token: str) -> None:
    """Reject tokens that cannot be sent in a header (without echoing them)."""
    if not token:
        raise AuthError("The Astro API token is empty: set 'api-token' / ASTRO_API_TOKEN.")
    if not set(token) <= _TOKEN_CHARS:
        raise AuthError(
            "The Astro API token contains characters a token cannot hold (spaces, quotes or "
            "control characters): check that 'api-token' / ASTRO_API_TOKEN holds just the token."
        )


def _segment(value: str, what: str) -> str:
    if not value:
        raise ValueError(f"the {what} is empty")
    return quote(value, safe="")


def _sentences(first: str, then: str) -> str:
    """``first``, closed with a full stop if needed, followed by ``then``."""
    if not then:
        return first
    stop = "" if first.endswith((".", "!", "?")) else "."
    return f"{first}{stop} {then}"


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _shorten(text: str, limit: int = _TEXT_LIMIT) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _request_id_header(response: httpx.Response) -> str:
    return str(response.headers.get("X-Request-Id", ""))


def _redirect_target(response: httpx.Response) -> str:
    location = response.headers.get("Location")
    if not location:
        return ""
    parts = urlsplit(location)
    return f" to {parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else ""


def _created_at(deploy: models.Deploy) -> tuple[datetime, str]:
    """Sort key: creation time (unreadable times first), then id."""
    try:
        when = datetime.fromisoformat(deploy.createdAt)
    except ValueError:
        when = datetime.min
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when, deploy.id
