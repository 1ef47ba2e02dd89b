"""The App Platform routes under ``/v2/apps``: authentication, request parsing, routing.

Each handler turns one HTTP request into a call on :class:`AppsState` and its result into
JSON shaped as DigitalOcean's spec says. Bodies and query parameters are checked as the API
checks them (a bad one is a 400 naming the field); the tests check separately that every
request a client sent validates against the spec itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ci_deploy_testkit.do_emulator.state import AppsState, Deployment
from ci_deploy_testkit.do_emulator.wire import DoProblem
from ci_deploy_testkit.emulator.routing import NoRoute, Route, find_route
from ci_deploy_testkit.emulator.wire import (
    RecordedRequest,
    Response,
    json_response,
    parse_query_lists,
)

_APPS = r"/v2/apps"
_APP = _APPS + r"/(?P<app>[^/]+)"
_DEPLOYMENTS = _APP + r"/deployments"
_DEPLOYMENT = _DEPLOYMENTS + r"/(?P<dep>[^/]+)"
_ROLLBACK = _APP + r"/rollback"

DEPLOYMENT_TYPES = (
    "MANUAL",
    "DEPLOY_ON_PUSH",
    "MAINTENANCE",
    "MANUAL_ROLLBACK",
    "AUTO_ROLLBACK",
    "UPDATE_DATABASE_TRUSTED_SOURCES",
    "AUTOSCALED",
)
LOG_TYPES = ("UNSPECIFIED", "BUILD", "DEPLOY", "RUN", "RUN_RESTARTED", "AUTOSCALE_EVENT")
RATE_LIMIT = 5000


class AppsApi:
    """Answers ``/v2/apps`` requests from ``state``, for bearer tokens that ``accepts``."""

    def __init__(self, state: AppsState, accepts: Callable[[str], bool]) -> None:
        self._state = state
        self._accepts = accepts
        routes: list[tuple[str, str, Callable[..., Response]]] = [
            ("POST", _APPS + "/propose", self.propose),
            ("GET", _APPS, self.list_apps),
            ("POST", _APPS, self.create_app),
            ("GET", _APP, self.get_app),
            ("PUT", _APP, self.update_app),
            ("DELETE", _APP, self.delete_app),
            ("GET", _APP + "/logs", self.active_logs),
            ("GET", _DEPLOYMENTS, self.list_deployments),
            ("POST", _DEPLOYMENTS, self.create_deployment),
            ("GET", _DEPLOYMENT, self.get_deployment),
            ("POST", _DEPLOYMENT + "/cancel", self.cancel_deployment),
            ("GET", _DEPLOYMENT + "/logs", self.deployment_logs),
            ("POST", _ROLLBACK, self.roll_back),
            ("POST", _ROLLBACK + "/validate", self.validate_rollback),
            ("POST", _ROLLBACK + "/commit", self.commit_rollback),
            ("POST", _ROLLBACK + "/revert", self.revert_rollback),
        ]
        self._routes = [Route(m, re.compile(p), h) for m, p, h in routes]

    def handle(self, request: RecordedRequest) -> Response:
        try:
            self._authenticate(request)
            handler, params = self._route(request)
            return handler(request, **params)
        except DoProblem as problem:
            return problem.response()

    # -- apps ------------------------------------------------------------------------

    def list_apps(self, request: RecordedRequest) -> Response:
        page, per_page = _paging(request)
        apps = list(self._state.apps.values())
        chosen = apps[(page - 1) * per_page : page * per_page]
        body: dict[str, Any] = {"apps": [self._state.app_json(app) for app in chosen]}
        body.update(_page_links(self._state.base_url, request, page, per_page, len(apps)))
        return json_response(200, body)

    def create_app(self, request: RecordedRequest) -> Response:
        body = _body(request)
        app = self._state.create_app(_spec(body))
        return json_response(200, {"app": self._state.app_json(app)})

    def get_app(self, request: RecordedRequest, app: str) -> Response:
        return json_response(200, {"app": self._state.app_json(self._state.app(app))})

    def update_app(self, request: RecordedRequest, app: str) -> Response:
        body = _body(request)
        all_sources = _bool(body, "update_all_source_versions")
        updated = self._state.update_app(app, _spec(body), all_sources)
        return json_response(200, {"app": self._state.app_json(updated)})

    def delete_app(self, request: RecordedRequest, app: str) -> Response:
        self._state.delete_app(app)
        return json_response(200, {"id": app})

    def propose(self, request: RecordedRequest) -> Response:
        body = _body(request)
        app_id = body.get("app_id")
        if app_id is not None and not isinstance(app_id, str):
            raise DoProblem(400, "bad_request", "app_id must be a string")
        return json_response(200, self._state.propose(_spec(body), app_id))

    # -- deployments -----------------------------------------------------------------

    def list_deployments(self, request: RecordedRequest, app: str) -> Response:
        page, per_page = _paging(request)
        kinds = parse_query_lists(request.query).get("deployment_types", [])
        unknown = [kind for kind in kinds if kind not in DEPLOYMENT_TYPES]
        if unknown:
            raise DoProblem(
                400,
                "bad_request",
                f"deployment_types: {unknown[0]!r} is not one of {', '.join(DEPLOYMENT_TYPES)}",
            )
        listed = self._state.list_deployments(app, kinds)
        chosen = listed[(page - 1) * per_page : page * per_page]
        body: dict[str, Any] = {"deployments": [self._state.deployment_json(d) for d in chosen]}
        body.update(_page_links(self._state.base_url, request, page, per_page, len(listed)))
        return json_response(200, body)

    def create_deployment(self, request: RecordedRequest, app: str) -> Response:
        body = _body(request)
        deployment = self._state.create_deployment(app, _bool(body, "force_build"))
        return self._deployment(deployment)

    def get_deployment(self, request: RecordedRequest, app: str, dep: str) -> Response:
        return self._deployment(self._state.deployment(app, dep))

    def cancel_deployment(self, request: RecordedRequest, app: str, dep: str) -> Response:
        return self._deployment(self._state.cancel(app, dep))

    def deployment_logs(self, request: RecordedRequest, app: str, dep: str) -> Response:
        return self._logs(request, self._state.deployment(app, dep))

    def active_logs(self, request: RecordedRequest, app: str) -> Response:
        found = self._state.app(app)
        active = [
            d
            for d in self._state.list_deployments(found.id, ())
            if self._state.phase(d) == "ACTIVE"
        ]
        if not active:
            raise DoProblem(404, "not_found", "the app has no active deployment")
        return self._logs(request, active[0])

    # -- rollbacks -------------------------------------------------------------------

    def validate_rollback(self, request: RecordedRequest, app: str) -> Response:
        target, _ = _rollback_body(request)
        return json_response(200, self._state.validate_rollback(app, target))

    def roll_back(self, request: RecordedRequest, app: str) -> Response:
        target, skip_pin = _rollback_body(request)
        return self._deployment(self._state.roll_back(app, target, skip_pin))

    def commit_rollback(self, request: RecordedRequest, app: str) -> Response:
        self._state.commit_rollback(app)
        return Response(200)

    def revert_rollback(self, request: RecordedRequest, app: str) -> Response:
        return self._deployment(self._state.revert_rollback(app))

    # -- plumbing --------------------------------------------------------------------

    def _deployment(self, deployment: Deployment) -> Response:
        return json_response(200, {"deployment": self._state.deployment_json(deployment)})

    def _logs(self, request: RecordedRequest, deployment: Deployment) -> Response:
        values = parse_query_lists(request.query).get("type", [])
        if not values or values[-1] not in LOG_TYPES:
            raise DoProblem(400, "bad_request", f"type is required, one of {', '.join(LOG_TYPES)}")
        kind = values[-1]
        url = f"{self._state.base_url}/logs/{deployment.app_id}/{deployment.id}/{kind}"
        if self._state.logs_finished(deployment) and kind != "RUN":
            return json_response(200, {"historic_urls": [url]})
        return json_response(200, {"live_url": url})

    def _authenticate(self, request: RecordedRequest) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not self._accepts(token.strip()):
            raise DoProblem(401, "unauthorized", "Unable to authenticate you.")

    def _route(self, request: RecordedRequest) -> tuple[Callable[..., Response], dict[str, str]]:
        try:
            return find_route(self._routes, request)
        except NoRoute as no_route:
            if no_route.allowed:
                allowed = ", ".join(no_route.allowed)
                raise DoProblem(
                    405,
                    "method_not_allowed",
                    f"{request.method} is not allowed on this path (allowed: {allowed})",
                ) from None
            raise DoProblem(
                404, "not_found", f"no API route for {request.method} {request.path}"
            ) from None


def _body(request: RecordedRequest) -> dict[str, Any]:
    """The JSON object body; 400 when there is none or it is not JSON."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise DoProblem(
            400, "bad_request", f"Content-Type must be application/json, not {content_type!r}"
        )
    try:
        payload = json.loads(request.body or b"null")
    except ValueError:
        raise DoProblem(400, "bad_request", "the request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise DoProblem(400, "bad_request", "the request body must be a JSON object")
    return payload


def _spec(body: dict[str, Any]) -> dict[str, Any]:
    spec = body.get("spec")
    if not isinstance(spec, dict):
        raise DoProblem(400, "bad_request", "spec is required: an app spec object")
    return spec


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise DoProblem(400, "bad_request", f"{name} must be a boolean")
    return value


def _rollback_body(request: RecordedRequest) -> tuple[str, bool]:
    body = _body(request)
    target = body.get("deployment_id")
    if not isinstance(target, str) or not target:
        raise DoProblem(
            400, "bad_request", "deployment_id is required: the deployment to roll back to"
        )
    return target, _bool(body, "skip_pin")


def _paging(request: RecordedRequest) -> tuple[int, int]:
    query = {name: values[-1] for name, values in parse_query_lists(request.query).items()}
    values: list[int] = []
    for name, default, maximum in (("page", 1, None), ("per_page", 20, 200)):
        try:
            value = int(query.get(name, default))
        except ValueError:
            raise DoProblem(400, "bad_request", f"{name} must be an integer") from None
        if value < 1 or (maximum is not None and value > maximum):
            limit = f"1 to {maximum}" if maximum else "at least 1"
            raise DoProblem(400, "bad_request", f"{name} must be {limit}, got {value}")
        values.append(value)
    return values[0], values[1]


def _page_links(
    base_url: str, request: RecordedRequest, page: int, per_page: int, total: int
) -> dict[str, Any]:
    """``links.pages`` (first/prev/next/last, absolute URLs on this host) and ``meta.total``."""
    last = max(1, -(-total // per_page))
    base = f"{base_url}{request.path}?per_page={per_page}&page="
    pages: dict[str, str] = {}
    if page > 1:
        pages.update(first=f"{base}1", prev=f"{base}{page - 1}")
    if page < last:
        pages.update(next=f"{base}{page + 1}", last=f"{base}{last}")
    return {"links": {"pages": pages}, "meta": {"total": total}}
