"""A small App Platform API client over httpx, sharing :mod:`ci_deploy.http`'s policy.

Why not pydo: pydo (the official client) brings azure-core and its transport, retries of its
own (POSTs included) and untyped dicts; the guarantees of a run (no write repeated blindly, a
lost answer told apart from a refusal and read back) rest on :mod:`ci_deploy.http`'s rules,
which this client shares with the Astro client and the GitHub client, and on typed answers.
It needs nine calls. The token goes only to ``api_url`` (no redirects followed), as the
``Authorization`` header, and is scrubbed from every message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from ci_deploy import __version__
from ci_deploy.errors import (
    ApiAmbiguousError,
    ApiError,
    ApiUnavailableError,
    AuthError,
    NotFoundError,
)
from ci_deploy.http import (
    API_GET,
    API_POST,
    Retryable,
    TransportFailure,
    bearer_client,
    send_with_retries,
)
from ci_deploy.input_rules import DIGITALOCEAN_API_URL

__all__ = ["DEFAULT_API_URL", "PAGE_SIZE", "AppsApi", "AppsClient"]

DEFAULT_API_URL = DIGITALOCEAN_API_URL
PAGE_SIZE = 200
"""Apps or deployments asked for per page (the API's maximum)."""

Json = dict[str, Any]


class AppsApi(Protocol):
    """The calls the App Platform platform makes: :class:`AppsClient` over HTTP, or an
    app in memory in the tests."""

    def get_app(self, app_id: str) -> Json: ...
    def list_apps(self) -> list[Json]: ...
    def create_app(self, spec: Json) -> Json: ...
    def delete_app(self, app_id: str) -> None: ...
    def update_app(self, app_id: str, spec: Json) -> Json: ...
    def propose(self, spec: Json, app_id: str) -> Json: ...
    def list_deployments(self, app_id: str, kinds: Sequence[str] = ()) -> list[Json]: ...
    def get_deployment(self, app_id: str, deployment_id: str) -> Json: ...
    def create_deployment(self, app_id: str, *, force_build: bool) -> Json: ...
    def deployment_logs(self, app_id: str, deployment_id: str, kind: str) -> Json: ...
    def validate_rollback(self, app_id: str, deployment_id: str, *, skip_pin: bool) -> Json: ...
    def rollback(self, app_id: str, deployment_id: str, *, skip_pin: bool) -> Json: ...
    def commit_rollback(self, app_id: str) -> None: ...
    def revert_rollback(self, app_id: str) -> Json: ...


class AppsClient:
    """The App Platform calls a deploy and a rollback need; answers as plain JSON objects
    (read by :mod:`ci_deploy.digitalocean.rules`). Failures are :class:`ApiError` subclasses;
    a write whose outcome is unknown is :class:`ApiAmbiguousError`."""

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self._token = token.strip()
        if not self._token:
            raise AuthError("The DigitalOcean token is empty: set digitalocean-token.")
        self.api_url = api_url.rstrip("/")
        self._max_attempts, self._sleep, self._on_retry = max_attempts, sleep, on_retry
        self._http = bearer_client(
            self.api_url,
            self._token,
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": f"ci-deploy/{__version__}"},
        )

    def __repr__(self) -> str:
        return f"AppsClient(api_url={self.api_url!r})"

    def __enter__(self) -> AppsClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- apps -------------------------------------------------------------------------------

    def get_app(self, app_id: str) -> Json:
        return self._object("reading the app", "GET", f"/v2/apps/{_seg(app_id)}", "app")

    def list_apps(self) -> list[Json]:
        return self._pages("listing the apps", "/v2/apps", "apps")

    def create_app(self, spec: Json) -> Json:
        """A new app from ``spec`` (a preview); App Platform deploys it at once."""
        return self._object("creating the app", "POST", "/v2/apps", "app", body={"spec": spec})

    def delete_app(self, app_id: str) -> None:
        self._send("deleting the app", "DELETE", f"/v2/apps/{_seg(app_id)}")

    def update_app(self, app_id: str, spec: Json) -> Json:
        return self._object(
            "updating the app's spec",
            "PUT",
            f"/v2/apps/{_seg(app_id)}",
            "app",
            body={"spec": spec},
        )

    def propose(self, spec: Json, app_id: str) -> Json:
        """Validate ``spec`` as the app's new spec (``apps/propose``)."""
        return self._json(
            "validating the app spec", "POST", "/v2/apps/propose", {"spec": spec, "app_id": app_id}
        )

    # -- deployments ------------------------------------------------------------------------

    def list_deployments(self, app_id: str, kinds: Sequence[str] = ()) -> list[Json]:
        """The app's deployments, newest first; only those of ``kinds`` (``MANUAL``,
        ``MANUAL_ROLLBACK``...: the ``deployment_types`` filter) when given."""
        return self._pages(
            "listing the app's deployments",
            f"/v2/apps/{_seg(app_id)}/deployments",
            "deployments",
            [("deployment_types", kind) for kind in kinds],
        )

    def get_deployment(self, app_id: str, deployment_id: str) -> Json:
        path = f"/v2/apps/{_seg(app_id)}/deployments/{_seg(deployment_id)}"
        return self._object("reading the deployment", "GET", path, "deployment")

    def create_deployment(self, app_id: str, *, force_build: bool) -> Json:
        path = f"/v2/apps/{_seg(app_id)}/deployments"
        return self._object(
            "creating a deployment", "POST", path, "deployment", body={"force_build": force_build}
        )

    def deployment_logs(self, app_id: str, deployment_id: str, kind: str) -> Json:
        path = f"/v2/apps/{_seg(app_id)}/deployments/{_seg(deployment_id)}/logs"
        return self._json("reading the deployment's logs", "GET", path, params=[("type", kind)])

    # -- rollback ---------------------------------------------------------------------------

    def validate_rollback(self, app_id: str, deployment_id: str, *, skip_pin: bool) -> Json:
        path = f"/v2/apps/{_seg(app_id)}/rollback/validate"
        body = {"deployment_id": deployment_id, "skip_pin": skip_pin}
        return self._json("validating the rollback", "POST", path, body)

    def rollback(self, app_id: str, deployment_id: str, *, skip_pin: bool) -> Json:
        path = f"/v2/apps/{_seg(app_id)}/rollback"
        body = {"deployment_id": deployment_id, "skip_pin": skip_pin}
        return self._object("rolling back", "POST", path, "deployment", body=body)

    def commit_rollback(self, app_id: str) -> None:
        self._send("committing the rollback", "POST", f"/v2/apps/{_seg(app_id)}/rollback/commit")

    def revert_rollback(self, app_id: str) -> Json:
        path = f"/v2/apps/{_seg(app_id)}/rollback/revert"
        return self._object("reverting the rollback", "POST", path, "deployment")

    # -- the session ------------------------------------------------------------------------

    def _object(
        self, what: str, method: str, path: str, key: str, *, body: Json | None = None
    ) -> Json:
        answer = self._json(what, method, path, body)
        found = answer.get(key)
        if not isinstance(found, dict):
            raise ApiError(f"The App Platform API's answer to {what} has no '{key}' object.")
        return found

    def _pages(
        self, what: str, path: str, key: str, query: Sequence[tuple[str, str]] = ()
    ) -> list[Json]:
        found: dict[str, Json] = {}
        page = 1
        while True:
            params = [*query, ("page", str(page)), ("per_page", str(PAGE_SIZE))]
            answer = self._json(what, "GET", path, params=params)
            items = answer.get(key) or []
            if not isinstance(items, list):
                raise ApiError(f"The App Platform API's answer to {what} has no '{key}' list.")
            known = len(found)
            for item in items:
                if isinstance(item, dict):
                    found.setdefault(str(item.get("id", "")), item)
            links = answer.get("links") or {}
            pages = links.get("pages") if isinstance(links, dict) else None
            if (
                not items
                or len(found) == known
                or not (isinstance(pages, dict) and "next" in pages)
            ):
                return list(found.values())
            page += 1

    def _json(
        self,
        what: str,
        method: str,
        path: str,
        body: Json | None = None,
        *,
        params: Sequence[tuple[str, str]] = (),
    ) -> Json:
        response = self._send(what, method, path, body, params=params)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ApiError(
                f"The App Platform API's answer to {what} is not a JSON object "
                f"(HTTP {response.status_code}).",
                status_code=response.status_code,
                operation=what,
            )
        return answer

    def _send(
        self,
        what: str,
        method: str,
        path: str,
        body: Json | None = None,
        *,
        params: Sequence[tuple[str, str]] = (),
    ) -> httpx.Response:
        retryable: Retryable = API_GET if method == "GET" else API_POST  # a PUT deploys

        def build() -> httpx.Request:
            return self._http.build_request(method, path, params=tuple(params) or None, json=body)

        try:
            response = send_with_retries(
                self._http,
                build,
                retryable=retryable,
                label=what,
                max_attempts=self._max_attempts,
                sleep=self._sleep,
                on_retry=self._on_retry,
            )
        except TransportFailure as failure:
            kind = type(failure.error).__name__
            if failure.ambiguous:
                raise ApiAmbiguousError(
                    f"No answer to {what} ({kind}): the App Platform API may have done it.",
                    operation=what,
                    title="App Platform API error",
                ) from None
            raise ApiUnavailableError(
                f"The App Platform API at {self.api_url} could not be reached for {what} "
                f"({kind}, {failure.attempts} attempt(s)). Check api-url and try again.",
                operation=what,
                title="App Platform API unavailable",
            ) from None
        if response.is_success:
            return response
        raise self._status_error(what, response, retryable)

    def _status_error(self, what: str, response: httpx.Response, retryable: Retryable) -> ApiError:
        status = response.status_code
        request_id = response.headers.get("x-request-id", "")
        try:
            detail = response.json()
        except ValueError:
            detail = {}
        message = str(detail.get("message", "")) if isinstance(detail, dict) else ""
        message = self._scrub(message[:500])
        said = f": {message}" if message else ""
        common = {"status_code": status, "request_id": request_id, "operation": what}
        if status == 401:
            return AuthError(
                f"The DigitalOcean token was rejected when {what} (HTTP 401){said}. Check "
                "digitalocean-token (or DIGITALOCEAN_TOKEN): it must be a valid API token.",
                title="DigitalOcean token rejected",
                **common,
            )
        if status == 403:
            return AuthError(
                f"The DigitalOcean token may not do {what} (HTTP 403){said}. Give the token "
                "the app scopes (read, update, create) it needs.",
                title="DigitalOcean token rejected",
                **common,
            )
        if status == 404:
            return NotFoundError(
                f"Not found when {what} (HTTP 404){said}. Check app-id or app-name.",
                title="Not found on App Platform",
                **common,
            )
        if retryable.ambiguous_status(status):
            return ApiAmbiguousError(
                f"HTTP {status} when {what}{said}: the App Platform API may have done it.",
                title="App Platform API error",
                **common,
            )
        return ApiError(
            f"The App Platform API refused {what} (HTTP {status}){said}.",
            title="App Platform API error",
            **common,
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "<token>")


def _seg(value: str) -> str:
    if not value:
        raise ValueError("an empty id in an App Platform path")
    return quote(value, safe="")
