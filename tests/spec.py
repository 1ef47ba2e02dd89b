"""Contract checks: validate requests against the Astro API spec with openapi-core.

The spec is ``/work/shared/api/astro-openapi-v1.yaml`` (two levels above this checkout),
or the file named by ``CI_DEPLOY_SPEC``. It is loaded once per session; a missing spec
fails the test, it never skips it. Paths are given relative to the API base URL and are
checked as if sent to the spec's server, ``https://api.astronomer.io/v1``.
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

__all__ = ["SPEC_SERVER", "assert_httpx_request_matches_spec", "assert_request_matches_spec"]

SPEC_ENV = "CI_DEPLOY_SPEC"
SPEC_SERVER = "https://api.astronomer.io/v1"
_SERVER_HOST = "https://api.astronomer.io"
_SERVER_PATH = "/v1"


def spec_path() -> Path:
    """Where the spec is: ``$CI_DEPLOY_SPEC``, else ``<checkout>/../shared/api/...``."""
    override = os.environ.get(SPEC_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "shared/api/astro-openapi-v1.yaml"


@functools.cache
def _load(path: Path) -> OpenAPI:
    if not path.is_file():
        raise AssertionError(
            f"The Astro API spec is missing at {path}: the contract tests need it. "
            f"Set {SPEC_ENV} to the path of astro-openapi-v1.yaml."
        )
    return OpenAPI.from_file_path(str(path))


def openapi() -> OpenAPI:
    """The loaded spec (cached per path for the session)."""
    return _load(spec_path())


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
    header = Headers(list(headers.items()))
    request = _SpecRequest(
        host_url=_SERVER_HOST,
        path=_SERVER_PATH + "/" + path.lstrip("/"),
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
        openapi().validate_request(request)
    except Exception as exc:
        raise AssertionError(
            f"{method.upper()} {path}{'?' + query if query else ''} does not match the "
            f"Astro API spec: {_explain(exc)}"
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
