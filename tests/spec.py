"""Contract checks: validate requests against the Astro API spec, and the GitHub REST API
subset, with openapi-core.

The Astro spec is ``/work/shared/api/astro-openapi-v1.yaml`` (two levels above this
checkout), or the file named by ``CI_DEPLOY_SPEC``; the GitHub one is
``github-rest-subset.json`` beside it, or ``CI_DEPLOY_GITHUB_SPEC``. Each is loaded once per
session; a missing spec fails the test, it never skips it. Paths are given relative to the
API base URL and are checked as if sent to the spec's server, ``https://api.astronomer.io/v1``
or ``https://api.github.com``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

__all__ = [
    "SPEC_SERVER",
    "assert_github_request_matches_spec",
    "assert_httpx_request_matches_spec",
    "assert_request_matches_spec",
]

SPEC_ENV = "CI_DEPLOY_SPEC"
GITHUB_SPEC_ENV = "CI_DEPLOY_GITHUB_SPEC"
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
    assert_request_matches_spec(
        request.method,
        raw_path[len(base_path) :],
        url.query.decode("ascii"),
        dict(request.headers.items()),
        request.content or None,
    )


def _explain(exc: Exception) -> str:
    """openapi-core's message with the schema errors of its cause, if any."""
    text = f"{type(exc).__name__}: {exc}"
    cause = exc.__cause__
    schema_errors = getattr(cause, "schema_errors", None) or ()
    details = [getattr(err, "message", str(err)) for err in schema_errors]
    if not details and cause is not None:
        details = [f"{type(cause).__name__}: {cause}"]
    return text + "".join(f"\n  - {detail}" for detail in details)
