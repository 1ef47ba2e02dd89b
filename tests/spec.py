"""Contract checks: validate requests against the Astro API spec, the GitHub REST API
subset and DigitalOcean's App Platform spec, with openapi-core.

The Astro spec is ``/work/shared/api/astro-openapi-v1.yaml`` (two levels above this
checkout), or the file named by ``CI_DEPLOY_SPEC``; the GitHub one is
``github-rest-subset.json`` beside it, or ``CI_DEPLOY_GITHUB_SPEC``; the App Platform one
``digitalocean-apps-openapi.yaml``, or ``CI_DEPLOY_DO_SPEC``. Each is loaded once per
session; a missing spec fails the test, it never skips it. Paths are given relative to the
API base URL and are checked as if sent to the spec's server, ``https://api.astronomer.io/v1``,
``https://api.github.com`` or ``https://api.digitalocean.com`` (App Platform paths start
with ``/v2``). App Platform answers can be checked too (:func:`assert_do_response_matches_spec`),
and the Airflow REST API's, v1 (Airflow 2) and v2 (Airflow 3), both ways: requests sent to an
``apiUrl`` or received by the emulator, and the emulator's answers.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from ci_deploy_testkit.emulator.wire import RecordedRequest

__all__ = [
    "SPEC_SERVER",
    "airflow_openapi",
    "assert_airflow_request_matches_spec",
    "assert_airflow_requests_match_spec",
    "assert_airflow_response_matches_spec",
    "assert_do_request_matches_spec",
    "assert_do_requests_match_spec",
    "assert_do_response_matches_spec",
    "assert_emulated_airflow_requests_match_spec",
    "assert_github_request_matches_spec",
    "assert_httpx_request_matches_spec",
    "assert_request_matches_spec",
]

SPEC_ENV = "CI_DEPLOY_SPEC"
GITHUB_SPEC_ENV = "CI_DEPLOY_GITHUB_SPEC"
DO_SPEC_ENV = "CI_DEPLOY_DO_SPEC"
DO_SERVER = "https://api.digitalocean.com"
SPEC_SERVER = "https://api.astronomer.io/v1"
_SERVER_HOST = "https://api.astronomer.io"
_SERVER_PATH = "/v1"


def spec_path(env: str = SPEC_ENV, name: str = "astro-openapi-v1.yaml") -> Path:
    """Where a spec is: ``$<env>``, else ``<checkout>/../shared/api/<name>``."""
    override = os.environ.get(env)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "shared/api" / name


@functools.cache
def _load(path: Path, env: str, name: str) -> OpenAPI:
    if not path.is_file():
        raise AssertionError(
            f"The {name} spec is missing at {path}: the contract tests need it. "
            f"Set {env} to the path of {path.name}."
        )
    return OpenAPI.from_file_path(str(path))


def openapi() -> OpenAPI:
    """The loaded Astro spec (cached per path for the session)."""
    return _load(spec_path(), SPEC_ENV, "Astro API")


def github_openapi() -> OpenAPI:
    """The loaded GitHub REST API subset (cached per path for the session)."""
    return _load(
        spec_path(GITHUB_SPEC_ENV, "github-rest-subset.json"), GITHUB_SPEC_ENV, "GitHub REST API"
    )


def do_openapi() -> OpenAPI:
    """The loaded App Platform spec (cached per path for the session)."""
    return _load(
        spec_path(DO_SPEC_ENV, "digitalocean-apps-openapi.yaml"), DO_SPEC_ENV, "App Platform API"
    )


AIRFLOW_SPECS = {
    2: ("CI_DEPLOY_AIRFLOW2_SPEC", "airflow-2.10.5-rest-api-v1.yaml"),
    3: ("CI_DEPLOY_AIRFLOW3_SPEC", "airflow-3.3.2-rest-api-v2.yaml"),
}
"""Airflow's REST API specs by major version: ``/api/v1`` (Airflow 2), ``/api/v2`` (3)."""


def airflow_openapi(major: int) -> OpenAPI:
    """The loaded Airflow REST API spec of Airflow ``major`` (2 or 3), cached per session."""
    env, name = AIRFLOW_SPECS[major]
    return _load(spec_path(env, name), env, f"Airflow {major} REST API")


def assert_airflow_request_matches_spec(
    major: int,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes | None,
) -> None:
    """:func:`assert_request_matches_spec` for Airflow ``major``'s REST API; ``path`` is
    relative to the Deployment's ``apiUrl`` (``/importErrors``, ``/dags/x/dagRuns``)."""
    api = "/api/v1" if major == 2 else "/api/v2"
    _validate(
        airflow_openapi(major),
        f"Airflow {major} REST API",
        f"http://localhost{api}",
        method,
        path,
        query,
        headers,
        body,
    )


def assert_airflow_requests_match_spec(
    major: int, requests: Iterable[httpx.Request], api_url: str
) -> None:
    """Every request sent to Airflow's API at ``api_url`` validates against Airflow
    ``major``'s spec (and went to that host and path, nowhere else)."""
    for request in requests:
        assert_airflow_request_matches_spec(
            major,
            request.method,
            _path_under(request, api_url),
            request.url.query.decode("ascii"),
            dict(request.headers.items()),
            request.content or None,
        )


@dataclass
class _SpecRequest:
    """A request in the shape openapi-core's ``Request`` protocol reads."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters


def assert_request_matches_spec(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes | None,
) -> None:
    """Fail with openapi-core's explanation unless the request is valid for the spec.

    ``path`` is relative to the API base (``/organizations/o/deployments/d``), still
    percent-encoded; ``query`` is the raw query string without ``?``.
    """
    _validate(
        openapi(), "Astro API", _SERVER_HOST + _SERVER_PATH, method, path, query, headers, body
    )


def assert_github_request_matches_spec(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes | None,
) -> None:
    """:func:`assert_request_matches_spec` for the GitHub REST API subset (``path`` relative
    to ``GITHUB_API_URL``, e.g. ``/repos/o/r/deployments``)."""
    _validate(
        github_openapi(),
        "GitHub REST API",
        "https://api.github.com",
        method,
        path,
        query,
        headers,
        body,
    )


def assert_do_requests_match_spec(requests: Iterable[RecordedRequest]) -> None:
    """Every App Platform API request (``/v2/...``) among ``requests`` (an emulator's)
    validates against the App Platform spec."""
    for request in requests:
        if request.path.startswith("/v2/"):
            assert_do_request_matches_spec(
                request.method, request.path, request.query, request.headers, request.body or None
            )


def assert_do_request_matches_spec(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes | None,
) -> None:
    """:func:`assert_request_matches_spec` for the App Platform API (``path`` relative to
    ``api-url``, e.g. ``/v2/apps/<id>/deployments``)."""
    _validate(do_openapi(), "App Platform API", DO_SERVER, method, path, query, headers, body)


@dataclass
class _SpecResponse:
    """A response in the shape openapi-core's ``Response`` protocol reads."""

    status_code: int
    content_type: str
    headers: Headers
    data: bytes


def assert_do_response_matches_spec(response: httpx.Response) -> None:
    """Fail unless an App Platform answer (a request sent to a server at the root, such as
    the emulator) is one the spec allows for its request."""
    _validate_response(
        do_openapi(), "App Platform API", DO_SERVER, response.request.url.path, response
    )


def _validate_response(
    spec: OpenAPI, name: str, host_url: str, path: str, response: httpx.Response
) -> None:
    """Fail unless ``response`` is an answer ``spec`` allows for its request, sent to
    ``host_url`` + ``path``."""
    request = response.request
    header = Headers(list(request.headers.items()))
    spec_request = _SpecRequest(
        host_url=host_url,
        path=path,
        method=request.method.lower(),
        body=request.content or None,
        content_type=header.get("Content-Type", ""),
        parameters=RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=header,
            cookie=ImmutableMultiDict(),
        ),
    )
    spec_response = _SpecResponse(
        response.status_code,
        response.headers.get("content-type", ""),
        Headers(list(response.headers.items())),
        response.content,
    )
    try:
        with warnings.catch_warnings():  # Airflow 3's OAuth2 scheme, which it cannot check
            warnings.filterwarnings("ignore", "Unsupported scheme type", UserWarning)
            spec.validate_response(spec_request, spec_response)
    except Exception as exc:
        raise AssertionError(
            f"the answer {response.status_code} to {request.method} {request.url.path} does "
            f"not match the {name} spec: {_explain(exc)}"
        ) from exc


_AIRFLOW_API = re.compile(r"/api/v([12])(?=/|$)")
_MAJORS = {"1": 2, "2": 3}  # /api/v1: Airflow 2, /api/v2: Airflow 3


def assert_emulated_airflow_requests_match_spec(requests: Iterable[RecordedRequest]) -> None:
    """Every Airflow API request among ``requests`` (an emulator's, at
    ``/airflow/<deployment>/api/v1|v2/...``) validates against the spec of its version."""
    for request in requests:
        match = _AIRFLOW_API.search(request.path)
        if not request.path.startswith("/airflow/") or match is None:
            continue
        with warnings.catch_warnings():  # Airflow 3's OAuth2 scheme, which it cannot check
            warnings.filterwarnings("ignore", "Unsupported scheme type", UserWarning)
            assert_airflow_request_matches_spec(
                _MAJORS[match[1]],
                request.method,
                request.path[match.end() :],
                request.query,
                request.headers,
                request.body or None,
            )


def assert_airflow_response_matches_spec(response: httpx.Response) -> None:
    """Fail unless an Airflow API answer is one the right spec allows for its request.

    The spec is chosen by the ``/api/v1`` or ``/api/v2`` in the request's path, and what
    comes before it (the emulator's ``/airflow/<deployment>``, Astro's host prefix) is
    dropped, as a server at that ``apiUrl`` would see it.
    """
    request = response.request
    match = _AIRFLOW_API.search(request.url.path)
    assert match is not None, f"{request.url.path} is not an Airflow REST API path"
    major = _MAJORS[match[1]]
    path = request.url.path[match.start() :]  # v1: its spec's server is /api/v1
    _validate_response(
        airflow_openapi(major), f"Airflow {major} REST API", "http://localhost", path, response
    )


def _validate(
    spec: OpenAPI,
    name: str,
    server: str,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes | None,
) -> None:
    url = httpx.URL(server)
    header = Headers(list(headers.items()))
    request = _SpecRequest(
        host_url=f"{url.scheme}://{url.netloc.decode('ascii')}",
        path=url.raw_path.decode("ascii").rstrip("/") + "/" + path.lstrip("/"),
        method=method.lower(),
        body=body,
        content_type=header.get("Content-Type", ""),
        parameters=RequestParameters(
            query=ImmutableMultiDict(parse_qsl(query, keep_blank_values=True)),
            header=header,
            cookie=ImmutableMultiDict(),
        ),
    )
    try:
        spec.validate_request(request)
    except Exception as exc:
        raise AssertionError(
            f"{method.upper()} {path}{'?' + query if query else ''} does not match the "
            f"{name} spec: {_explain(exc)}"
        ) from exc


def assert_httpx_request_matches_spec(request: httpx.Request, api_url: str) -> None:
    """:func:`assert_request_matches_spec` for a request sent to the API at ``api_url``."""
    assert_request_matches_spec(
        request.method,
        _path_under(request, api_url),
        request.url.query.decode("ascii"),
        dict(request.headers.items()),
        request.content or None,
    )


def _path_under(request: httpx.Request, api_url: str) -> str:
    """The request's raw path relative to ``api_url``; it must have been sent there."""
    base = httpx.URL(api_url.rstrip("/") + "/")
    url = request.url
    assert (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port), (
        f"{request.method} {url.copy_with(query=None)} was not sent to the API at {api_url}"
    )
    raw_path = url.raw_path.split(b"?", 1)[0].decode("ascii")
    base_path = base.raw_path.decode("ascii").rstrip("/")
    assert raw_path.startswith(base_path + "/"), (
        f"{request.method} {raw_path} is outside the API base path {base_path or '/'}"
    )
    return raw_path[len(base_path) :]


def _explain(exc: Exception) -> str:
    """openapi-core's message with the schema errors of its cause, if any."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    schema_errors = getattr(cause, "schema_errors", None) or ()
    details = [getattr(err, "message", str(err)) for err in schema_errors]
    if not details and cause is not None:
        details = [f"{type(cause).__name__}: {cause}"]
    return text + "".join(f"\n  - {detail}" for detail in details)
