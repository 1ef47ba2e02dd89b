"""The Astro API routes under ``/v1``: authentication, request parsing, the routing table.

Each handler turns one HTTP request into a call on :class:`AstroState` and its result into
JSON. Deploy bodies are validated with the same pydantic models ci-deploy sends (the
hibernation override with a model of the spec's own here), and a validation failure is
answered as Astro does: 400 with one ``fieldErrors`` entry per failed constraint. Query
parameters are checked against the spec's minimums and enums the same way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError, field_validator
from pydantic_core import ErrorDetails

from ci_deploy.astro import wire as models
from ci_deploy_testkit.emulator.logs import LOG_SOURCES, LogSearch
from ci_deploy_testkit.emulator.routing import NoRoute, Route, find_route
from ci_deploy_testkit.emulator.state import AstroState, parse_rfc3339
from ci_deploy_testkit.emulator.wire import (
    ApiProblem,
    RecordedRequest,
    Response,
    json_response,
    parse_query,
    parse_query_lists,
)

ModelT = TypeVar("ModelT", bound=BaseModel)
IntSpec = tuple[int, int, int | None]  # default, minimum, maximum

_DEPLOYMENTS = r"/v1/organizations/(?P<org>[^/]+)/deployments"
_DEPLOYMENT = _DEPLOYMENTS + r"/(?P<dep>[^/]+)"
_DEPLOY = _DEPLOYMENT + r"/deploys/(?P<deploy>[^/]+)"
_HIBERNATION = _DEPLOYMENT + r"/hibernation-override"

# ListDeployments' ``sorts`` values, from the spec's enum
_DEPLOYMENT_SORTS = tuple(
    f"{name}:{order}" for name in ("name", "createdAt", "updatedAt") for order in ("asc", "desc")
)

# pydantic error types -> the validator tags Astro puts in fieldErrors[].code
_FIELD_ERROR_CODES = {
    "missing": "required",
    "literal_error": "oneof",
    "string_too_long": "max",
    "string_too_short": "min",
    "extra_forbidden": "unknown",
    "value_error": "invalid",
    "bool_type": "boolean",
}


class HibernationOverrideBody(BaseModel):
    """The spec's OverrideDeploymentHibernationBody: ``isHibernating`` is required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    isHibernating: StrictBool
    overrideUntil: str | None = None

    @field_validator("overrideUntil")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rfc3339(value)
        return value


class AstroApi:
    """Answers ``/v1`` requests from ``state``, for bearer tokens that ``accepts``."""

    def __init__(self, state: AstroState, accepts: Callable[[str], bool]) -> None:
        self._state = state
        self._accepts = accepts
        self._routes = [
            Route("GET", re.compile(_DEPLOYMENTS), self.list_deployments),
            Route("POST", re.compile(_DEPLOYMENTS), self.create_deployment),
            Route("GET", re.compile(_DEPLOYMENT), self.get_deployment),
            Route("DELETE", re.compile(_DEPLOYMENT), self.delete_deployment),
            Route("POST", re.compile(_HIBERNATION), self.set_hibernation),
            Route("DELETE", re.compile(_HIBERNATION), self.delete_hibernation),
            Route("GET", re.compile(_DEPLOYMENT + "/logs"), self.get_deployment_logs),
            Route("GET", re.compile(_DEPLOYMENT + "/deploys"), self.list_deploys),
            Route("POST", re.compile(_DEPLOYMENT + "/deploys"), self.create_deploy),
            Route("GET", re.compile(_DEPLOY), self.get_deploy),
            Route("POST", re.compile(_DEPLOY + "/finalize"), self.finalize_deploy),
            Route("POST", re.compile(_DEPLOY + "/rollback"), self.rollback_deploy),
        ]

    def handle(self, request: RecordedRequest) -> Response:
        try:
            self._authenticate(request)
            handler, params = self._route(request)
            return handler(request, **params)
        except ApiProblem as problem:
            return problem.response()

    # -- handlers --------------------------------------------------------------------

    def list_deployments(self, request: RecordedRequest, org: str) -> Response:
        query = parse_query_lists(request.query)
        paging = _query_ints(_last_values(query), offset=(0, 0, None), limit=(20, 0, None))
        sorts = query.get("sorts", [])
        errors = [
            _field_error_of(
                "oneof", "sorts", f"sorts must be one of {', '.join(_DEPLOYMENT_SORTS)}"
            )
            for sort in sorts
            if sort not in _DEPLOYMENT_SORTS
        ]
        if errors:
            raise ApiProblem(400, "invalid query parameters", errors)
        page = self._state.list_deployments(
            org,
            deployment_ids=query.get("deploymentIds", []),
            names=query.get("names", []),
            workspace_ids=query.get("workspaceIds", []),
            sorts=sorts,
            **paging,
        )
        return json_response(200, page)

    def get_deployment(self, request: RecordedRequest, org: str, dep: str) -> Response:
        return json_response(200, self._state.deployment_json(org, dep))

    def create_deployment(self, request: RecordedRequest, org: str) -> Response:
        body = _body(request, models.CreateDeploymentRequest)
        return json_response(200, self._state.create_deployment(org, body))

    def delete_deployment(self, request: RecordedRequest, org: str, dep: str) -> Response:
        self._state.delete_deployment(org, dep)
        return Response(204)

    def set_hibernation(self, request: RecordedRequest, org: str, dep: str) -> Response:
        body = _body(request, HibernationOverrideBody)
        until = None if body.overrideUntil is None else parse_rfc3339(body.overrideUntil)
        override = self._state.set_hibernation_override(org, dep, body.isHibernating, until)
        return json_response(200, override)

    def delete_hibernation(self, request: RecordedRequest, org: str, dep: str) -> Response:
        self._state.delete_hibernation_override(org, dep)
        return Response(204)

    def get_deployment_logs(self, request: RecordedRequest, org: str, dep: str) -> Response:
        if not self._state.logs_available_for(dep):
            raise _no_route(request)  # as an API without the endpoint answers
        search = _log_search(request.query)
        return json_response(200, self._state.deployment_logs(org, dep, search))

    def list_deploys(self, request: RecordedRequest, org: str, dep: str) -> Response:
        query = parse_query(request.query)
        paging = _query_ints(query, offset=(0, 0, None), limit=(20, 0, 1000))
        return json_response(200, self._state.list_deploys(org, dep, **paging))

    def create_deploy(self, request: RecordedRequest, org: str, dep: str) -> Response:
        body = _body(request, models.CreateDeployRequest)
        return json_response(200, self._state.create_deploy(org, dep, body))

    def get_deploy(self, request: RecordedRequest, org: str, dep: str, deploy: str) -> Response:
        return json_response(200, self._state.get_deploy(org, dep, deploy))

    def finalize_deploy(
        self, request: RecordedRequest, org: str, dep: str, deploy: str
    ) -> Response:
        body = _body(request, models.FinalizeDeployRequest)
        # The registry password on Astro is the API token: the one this request carries.
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        return json_response(200, self._state.finalize_deploy(org, dep, deploy, body, token))

    def rollback_deploy(
        self, request: RecordedRequest, org: str, dep: str, deploy: str
    ) -> Response:
        body = _body(request, models.RollbackRequest)
        return json_response(200, self._state.rollback_deploy(org, dep, deploy, body))

    # -- plumbing --------------------------------------------------------------------

    def _authenticate(self, request: RecordedRequest) -> None:
        header = request.headers.get("authorization")
        if header is None:
            raise ApiProblem(401, "no Authorization header: send 'Authorization: Bearer <token>'")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not self._accepts(token.strip()):
            raise ApiProblem(401, "the API token is invalid or expired")

    def _route(self, request: RecordedRequest) -> tuple[Callable[..., Response], dict[str, str]]:
        try:
            return find_route(self._routes, request)
        except NoRoute as no_route:
            if no_route.allowed:
                allowed = ", ".join(no_route.allowed)
                raise ApiProblem(
                    405, f"{request.method} is not allowed on this path (allowed: {allowed})"
                ) from None
            raise _no_route(request) from None


def _no_route(request: RecordedRequest) -> ApiProblem:
    return ApiProblem(404, f"no API route for {request.method} {request.path}")


def _body(request: RecordedRequest, model: type[ModelT]) -> ModelT:
    """The JSON body validated with ``model``; 400 with fieldErrors when it does not fit."""
    if not request.body:
        raise ApiProblem(400, "a JSON request body is required ({} is fine)")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiProblem(400, f"Content-Type must be application/json, not {content_type!r}")
    try:
        payload = json.loads(request.body)
    except ValueError:
        raise ApiProblem(400, "the request body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise ApiProblem(400, "the request body must be a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        errors = [_field_error(error) for error in exc.errors()]
        raise ApiProblem(
            400, f"invalid request body: {len(errors)} field error(s)", errors
        ) from None


def _field_error(error: ErrorDetails) -> dict[str, str]:
    field = ".".join(str(part) for part in error["loc"]) or "body"
    message = error["msg"].removeprefix("Value error, ")
    return {
        "code": _FIELD_ERROR_CODES.get(error["type"], error["type"]),
        "field": field,
        "message": message,
    }


def _field_error_of(code: str, field: str, message: str) -> dict[str, str]:
    return {"code": code, "field": field, "message": message}


def _query_ints(query: dict[str, str], **spec: IntSpec) -> dict[str, int]:
    """Integer query parameters by ``name=(default, minimum, maximum)``; 400 when out of range."""
    errors: list[dict[str, str]] = []
    values = _collect_ints(query, errors, spec)
    if errors:
        raise ApiProblem(400, "invalid query parameters", errors)
    return values


def _collect_ints(
    query: dict[str, str], errors: list[dict[str, str]], spec: dict[str, IntSpec]
) -> dict[str, int]:
    """The valid integer parameters of ``spec``; a field error in ``errors`` for the others."""
    values: dict[str, int] = {}
    for name, (default, minimum, maximum) in spec.items():
        raw = query.get(name)
        try:
            value = default if raw is None else int(raw)
        except ValueError:
            errors.append(_field_error_of("type", name, f"{name} must be an integer"))
            continue
        if value < minimum:
            errors.append(_field_error_of("min", name, f"{name} must be >= {minimum}"))
        elif maximum is not None and value > maximum:
            errors.append(_field_error_of("max", name, f"{name} must be <= {maximum}"))
        else:
            values[name] = value
    return values


def _last_values(query: dict[str, list[str]]) -> dict[str, str]:
    """One value per parameter, the last, for parameters that are not lists."""
    return {name: values[-1] for name, values in query.items()}


def _log_search(raw_query: str) -> LogSearch:
    """GetDeploymentLogs' query, checked as the spec says; 400 with field errors otherwise."""
    query = parse_query_lists(raw_query)
    single = _last_values(query)
    errors: list[dict[str, str]] = []
    sources = query.get("sources", [])
    if not sources:
        errors.append(_field_error_of("required", "sources", "give at least one log source"))
    errors += [
        _field_error_of("oneof", "sources", f"sources must be one of {', '.join(LOG_SOURCES)}")
        for source in sources
        if source not in LOG_SOURCES
    ]
    ints = _collect_ints(
        single,
        errors,
        {
            "limit": (500, 1, None),
            "offset": (0, 0, None),
            "range": (3600, 60, None),
            "maxNumResults": (10000, 1, None),
        },
    )
    window: dict[str, float] = {}
    for name in ("startDate", "endDate"):
        if name in single:
            try:
                window[name] = parse_rfc3339(single[name])
            except ValueError as exc:
                errors.append(_field_error_of("datetime", name, str(exc)))
    if ("startDate" in single) != ("endDate" in single):
        missing = "endDate" if "startDate" in single else "startDate"
        errors.append(
            _field_error_of("required_with", missing, "startDate and endDate go together")
        )
    elif len(window) == 2 and window["startDate"] > window["endDate"]:
        errors.append(_field_error_of("gtefield", "endDate", "endDate is before startDate"))
    if errors:
        raise ApiProblem(400, "invalid query parameters", errors)
    return LogSearch(
        sources=frozenset(sources),
        start=window.get("startDate"),
        end=window.get("endDate"),
        range_seconds=ints["range"],
        search_text=single.get("searchText") or None,
        offset=ints["offset"],
        limit=ints["limit"],
        max_results=ints["maxNumResults"],
        search_id=single.get("searchId") or None,
    )
