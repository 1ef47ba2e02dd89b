"""What the emulator's handlers take and give: recorded requests, responses, error shapes.

The API answers errors as Astro does, JSON ``{"message", "requestId", "statusCode",
"fieldErrors"?}``; the blob host answers as Azure Storage does, XML
``<Error><Code/><Message/></Error>`` with the code repeated in ``x-ms-error-code``.
Handlers raise :class:`ApiProblem` or :class:`BlobProblem` and the server turns them
into those answers.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote
from xml.sax.saxutils import escape

AZURE_VERSION = "2023-11-03"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the emulator received it, API or blob.

    ``query`` is the raw query string (without ``?``), ``headers`` has lower-case names.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Response:
    """An answer to write: status, headers in order, body bytes."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


def new_request_id() -> str:
    """A fresh request id, as the API puts in every error."""
    return str(uuid.uuid4())


def json_response(
    status: int, payload: Any, *, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    """A JSON answer."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Response(status, (("Content-Type", "application/json"), *headers), body)


class ApiProblem(Exception):
    """An API error answer: ``status`` with the Astro Error JSON body."""

    def __init__(
        self, status: int, message: str, field_errors: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.field_errors = field_errors

    def response(self) -> Response:
        request_id = new_request_id()
        payload: dict[str, Any] = {
            "message": self.message,
            "requestId": request_id,
            "statusCode": self.status,
        }
        if self.field_errors:
            payload["fieldErrors"] = self.field_errors
        return json_response(self.status, payload, headers=(("X-Request-Id", request_id),))


class BlobProblem(Exception):
    """A blob host error answer: ``status`` with an Azure Storage XML error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> Response:
        request_id = new_request_id()
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f"<Error><Code>{escape(self.code)}</Code>"
            f"<Message>{escape(self.message)}\nRequestId:{request_id}</Message></Error>"
        ).encode()
        headers = (
            ("Content-Type", "application/xml"),
            ("x-ms-error-code", self.code),
            ("x-ms-request-id", request_id),
            ("x-ms-version", AZURE_VERSION),
        )
        return Response(self.status, headers, body)


def parse_query(query: str) -> dict[str, str]:
    """The parameters of a raw query string; the last of repeated names wins.

    Percent-escapes are decoded but ``+`` stays ``+``: Azure block ids are base64. The API
    decodes its list parameters with :func:`parse_query_lists` instead.
    """
    params: dict[str, str] = {}
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            params[unquote(name)] = unquote(value)
    return params


def parse_query_lists(query: str) -> dict[str, list[str]]:
    """Every value of every parameter, in order, decoded as the Astro API (Go) decodes them.

    Repeated names make a list (``names=a&names=b``), the spec's array style; ``+`` is a
    space, as in any form-encoded query.
    """
    params: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(name, []).append(value)
    return params
