"""The Astro API routes under ``/v1``: authentication, request parsing, the routing table.

Each handler turns one HTTP request into a call on :class:`AstroState` and its result into
JSON. Bodies are validated with the same pydantic models ci-deploy sends, and a
validation failure is answered as Astro does: 400 with one ``fieldErrors`` entry per
failed constraint.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import unquote

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ci_deploy import models
from ci_deploy.emulator.state import AstroState
from ci_deploy.emulator.wire import (
    ApiProblem,
    RecordedRequest,
    Response,
    json_response,
    parse_query,
)

ModelT = TypeVar("ModelT", bound=BaseModel)

_DEPLOYMENT = r"/v1/organizations/(?P<org>[^/]+)/deployments/(?P<dep>[^/]+)"
_DEPLOY = _DEPLOYMENT + r"/deploys/(?P<deploy>[^/]+)"

# pydantic error types -> the validator tags Astro puts in fieldErrors[].code
_FIELD_ERROR_CODES = {
    "missing": "required",
    "literal_error": "oneof",
    "string_too_long": "max",
    "string_too_short": "min",
    "extra_forbidden": "unknown",
    "value_error": "invalid",
}


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Response]


class AstroApi:
    """Answers ``/v1`` requests from ``state``, for bearer tokens that ``accepts``."""

    def __init__(self, state: AstroState, accepts: Callable[[str], bool]) -> None:
        self._state = state
        self._accepts = accepts
        self._routes = [
            Route("GET", re.compile(_DEPLOYMENT), self.get_deployment),
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

    def get_deployment(self, request: RecordedRequest, org: str, dep: str) -> Response:
        return json_response(200, self._state.deployment_json(org, dep))

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
        return json_response(200, self._state.finalize_deploy(org, dep, deploy, body))

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
        allowed: list[str] = []
        for route in self._routes:
            match = route.pattern.fullmatch(request.path)
            if match is None:
                continue
            if route.method == request.method:
                return route.handler, {k: unquote(v) for k, v in match.groupdict().items()}
            allowed.append(route.method)
        if allowed:
            raise ApiProblem(
                405, f"{request.method} is not allowed on this path (allowed: {', '.join(allowed)})"
            )
        raise ApiProblem(404, f"no API route for {request.method} {request.path}")


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


def _query_ints(query: dict[str, str], **spec: tuple[int, int, int | None]) -> dict[str, int]:
    """Integer query parameters by ``name=(default, minimum, maximum)``; 400 when out of range."""
    values: dict[str, int] = {}
    errors: list[dict[str, str]] = []
    for name, (default, minimum, maximum) in spec.items():
        raw = query.get(name)
        try:
            value = default if raw is None else int(raw)
        except ValueError:
            errors.append({"code": "type", "field": name, "message": f"{name} must be an integer"})
            continue
        if value < minimum:
            errors.append({"code": "min", "field": name, "message": f"{name} must be >= {minimum}"})
        elif maximum is not None and value > maximum:
            errors.append({"code": "max", "field": name, "message": f"{name} must be <= {maximum}"})
        else:
            values[name] = value
    if errors:
        raise ApiProblem(400, "invalid query parameters", errors)
    return values
