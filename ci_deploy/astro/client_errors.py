"""How the Astro API client turns a failed call into an :class:`~ci_deploy.errors.ApiError`.

:class:`~ci_deploy.astro.client_core.ApiSession` calls these at its one boundary: no answer
(:class:`~ci_deploy.http.TransportFailure`), an error status, or an answer that is not the
expected model. Each message says what was attempted, what the API answered, and what to do.
Text that came from the wire (the message, field errors, request id) is scrubbed of the token
*before* it is shortened, and shortening redacts any other credential it recognises (a bearer
token, a SAS signature) before it cuts, so a cut never leaves part of one behind.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from ci_deploy.errors import (
    ApiAmbiguousError,
    ApiError,
    ApiUnavailableError,
    AuthError,
    NotFoundError,
)
from ci_deploy.http import Retryable, TransportFailure
from ci_deploy.text import shorten

if TYPE_CHECKING:  # pydantic loads with the models, after the run's first request
    from pydantic import BaseModel, ValidationError

__all__ = [
    "CHECK_HIBERNATION",
    "CHECK_HISTORY",
    "Call",
    "check_token",
    "status_error",
    "unexpected_answer",
    "unreachable",
]

CHECK_HISTORY = "check the Deployment's deploy history before running the job again."
CHECK_HIBERNATION = (
    "check the Deployment's hibernation settings in the Astro UI before running the job again."
)
_AMBIGUOUS = "The API may or may not have processed the request, so it was not retried:"

_TEXT_LIMIT = 200
"""How much of an error answer that is not the API's Error JSON is shown."""
_MESSAGE_LIMIT = 500
"""How much of the Error JSON's ``message`` is shown."""
_FIELD_LIMIT = 200
"""How much of each of the Error JSON's ``fieldErrors`` is shown."""
_REQUEST_ID_LIMIT = 100
"""How much of a request id is shown."""
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-._~+/=")

Scrub = Callable[[str], str]
"""Takes the token out of a text."""


@dataclass(frozen=True)
class Call:
    """One API call: its spec operation, what it does in words, and what it looks for."""

    operation: str  # the spec's operationId
    description: str  # "Create deploy on Deployment 'd1'"
    permission: str  # the spec's x-permission
    retryable: Retryable
    not_found: str  # "Deployment 'd1' in organization 'o1'"
    ids: str = "organization and Deployment ids"  # what to check after a 404
    tokens: str = "a Deployment API token of this Deployment, or a Workspace API token"
    check: str = CHECK_HISTORY  # what to check after an ambiguous failure


def check_token(token: str) -> None:
    """Reject tokens that cannot be sent in a header (without echoing them)."""
    if not token:
        raise AuthError("The Astro API token is empty: set 'api-token' / ASTRO_API_TOKEN.")
    if not set(token) <= _TOKEN_CHARS:
        raise AuthError(
            "The Astro API token contains characters a token cannot hold (spaces, quotes or "
            "control characters): check that 'api-token' / ASTRO_API_TOKEN holds just the token."
        )


def unreachable(call: Call, failure: TransportFailure, api_url: str, scrub: Scrub) -> ApiError:
    """The error for a call that got no answer: ambiguous for a write that may have gone out."""
    error = scrub(f"{type(failure.error).__name__}: {failure.error}")
    if failure.ambiguous:
        return ApiAmbiguousError(
            f"{call.description} failed: no answer from the Astro API at {api_url} "
            f"({error}). {_AMBIGUOUS} {call.check}",
            operation=call.operation,
        )
    tried = f"tried {_times(failure.attempts)}; last error " if failure.retryable else ""
    return ApiUnavailableError(
        f"{call.description} failed: could not reach the Astro API at {api_url} "
        f"({tried}{error}). Check the API URL and the runner's network, then run the job "
        "again.",
        operation=call.operation,
    )


def status_error(
    call: Call,
    response: httpx.Response,
    *,
    organization_id: str,
    max_attempts: int,
    scrub: Scrub,
) -> ApiError:
    """The error for an answer with an error status, of the class the status calls for."""
    status = response.status_code
    detail = _ErrorBody.from_response(response, scrub)
    reason = httpx.codes.get_reason_phrase(status)
    what = f"{call.description} failed: HTTP {status} {reason}"
    if 300 <= status < 400:
        what += f": a redirect{_redirect_target(response)}"
    else:
        what += detail.suffix()
    error_class, advice = _advice(call, status, organization_id, max_attempts)
    return error_class(
        _sentences(what, advice),
        status_code=status,
        request_id=detail.request_id,
        operation=call.operation,
        title="Astro API permission missing" if status == 403 else None,
    )


def unexpected_answer(
    call: Call,
    response: httpx.Response,
    model: type[BaseModel],
    error: ValidationError,
    api_url: str,
) -> ApiError:
    """The error for a successful answer that is not a valid ``model``.

    Only pydantic's locations and messages are shown, never the input (which may hold an
    upload URL).
    """
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
        for err in error.errors(include_url=False, include_input=False)[:5]
    )
    return ApiError(
        f"{call.description} failed: the Astro API answered something unexpected "
        f"(HTTP {response.status_code}, not a valid {model.__name__}: {problems}). "
        f"Check that the API URL {api_url} is the Astro API.",
        status_code=response.status_code,
        request_id=_request_id_header(response),
        operation=call.operation,
    )


def _advice(
    call: Call, status: int, organization_id: str, max_attempts: int
) -> tuple[type[ApiError], str]:
    """The exception class for an error status, and what the user should do."""
    if call.retryable.status(status):
        return ApiUnavailableError, (
            f"Tried {_times(max_attempts)}: the Astro API is busy or unavailable; "
            "run the job again later."
        )
    if status == 401:
        return AuthError, (
            "The Astro API rejected the token: 'api-token' / ASTRO_API_TOKEN must be a "
            f"valid, unexpired Astro API token for organization '{organization_id}'."
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
            "Redirects are not followed, so the token is never sent elsewhere: check the API URL."
        )
    if call.retryable.ambiguous_status(status):
        return ApiAmbiguousError, f"{_AMBIGUOUS} {call.check}"
    return ApiError, ""


@dataclass(frozen=True)
class _ErrorBody:
    """What an error answer said: the API's Error JSON, or the start of its text."""

    message: str
    request_id: str
    field_errors: tuple[str, ...] = ()

    @classmethod
    def from_response(cls, response: httpx.Response, scrub: Scrub) -> _ErrorBody:
        """What ``response`` said, each part scrubbed of the token and then shortened."""

        def shown(text: str, limit: int) -> str:
            return shorten(scrub(text), limit)

        header_id = shown(_request_id_header(response), _REQUEST_ID_LIMIT)
        try:
            data = json.loads(response.content)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return cls(shown(response.text, _TEXT_LIMIT), header_id)
        field_errors = tuple(
            shown(f"{item.get('field', '?')}: {item.get('message', '')}", _FIELD_LIMIT)
            for item in data.get("fieldErrors") or []
            if isinstance(item, dict)
        )
        message = data.get("message")
        if isinstance(message, str) and message:
            text = shown(message, _MESSAGE_LIMIT)
        else:
            text = shown(response.text, _TEXT_LIMIT)
        body_id = data.get("requestId")
        if isinstance(body_id, str) and body_id:
            return cls(text, shown(body_id, _REQUEST_ID_LIMIT), field_errors)
        return cls(text, header_id, field_errors)

    def suffix(self) -> str:
        """``: <message> [fieldErrors: ...] (requestId: ...)``, leaving out empty parts."""
        text = f": {self.message}" if self.message else ""
        if self.field_errors:
            text += f" [fieldErrors: {'; '.join(self.field_errors)}]"
        if self.request_id:
            text += f" (requestId: {self.request_id})"
        return text


def _request_id_header(response: httpx.Response) -> str:
    """The answer's ``X-Request-Id``, or ""."""
    return str(response.headers.get("X-Request-Id", ""))


def _sentences(first: str, then: str) -> str:
    """``first``, closed with a full stop if needed, followed by ``then``."""
    if not then:
        return first
    stop = "" if first.endswith((".", "!", "?")) else "."
    return f"{first}{stop} {then}"


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _redirect_target(response: httpx.Response) -> str:
    location = response.headers.get("Location")
    if not location:
        return ""
    parts = urlsplit(location)
    return f" to {parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else ""
