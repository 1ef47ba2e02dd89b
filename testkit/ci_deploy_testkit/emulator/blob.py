"""The blob host under ``/blob/``: Azure Put Blob, Put Block and Put Block List on SAS URLs.

Only the URLs the API handed out in ``dagsUploadUrl`` / ``bundleUploadUrl`` exist, and only
with their own ``sig``. Like Azure, it answers errors in XML with ``x-ms-error-code``, and
each committed blob gets a fresh ``x-ms-version-id``, the version a finalize names.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from xml.etree import ElementTree

from ci_deploy_testkit.emulator.state import AstroState, UploadTarget
from ci_deploy_testkit.emulator.wire import (
    AZURE_VERSION,
    BlobProblem,
    RecordedRequest,
    Response,
    new_request_id,
    parse_query,
)

Operation = Callable[[RecordedRequest, dict[str, str], UploadTarget], Response]

_BLOCK_KINDS = frozenset({"Latest", "Committed", "Uncommitted"})


class BlobHost:
    """Answers ``/blob/...`` requests against the upload targets in ``state``."""

    def __init__(self, state: AstroState) -> None:
        self._state = state
        self._operations: dict[str | None, Operation] = {
            None: self.put_blob,
            "block": self.put_block,
            "blocklist": self.put_block_list,
        }

    def handle(self, request: RecordedRequest) -> Response:
        try:
            if "authorization" in request.headers:
                raise BlobProblem(
                    400,
                    "InvalidAuthenticationInfo",
                    "Authentication information is not given in the correct format: a SAS "
                    "URL takes no Authorization header.",
                )
            query = parse_query(request.query)
            target = self._state.upload_target(request.path)
            if target is None or not hmac.compare_digest(query.get("sig", ""), target.sig):
                raise BlobProblem(
                    403,
                    "AuthenticationFailed",
                    "Server failed to authenticate the request. Make sure the value of "
                    "the sig query parameter is formed correctly.",
                )
            if request.method != "PUT":
                raise BlobProblem(
                    405, "UnsupportedHttpVerb", "The resource doesn't support the HTTP verb."
                )
            if "content-length" not in request.headers:
                raise BlobProblem(
                    411, "MissingContentLengthHeader", "The Content-Length header is required."
                )
            operation = self._operations.get(query.get("comp"))
            if operation is None:
                raise BlobProblem(
                    400, "InvalidQueryParameterValue", "The comp query parameter is not valid."
                )
            return operation(request, query, target)
        except BlobProblem as problem:
            return problem.response()

    def put_blob(
        self, request: RecordedRequest, query: dict[str, str], target: UploadTarget
    ) -> Response:
        blob_type = request.headers.get("x-ms-blob-type")
        if blob_type is None:
            raise BlobProblem(
                400,
                "MissingRequiredHeader",
                "An HTTP header that's mandatory for this request is not specified: "
                "x-ms-blob-type.",
            )
        if blob_type != "BlockBlob":
            raise BlobProblem(
                400, "InvalidHeaderValue", "The emulator stores block blobs only (BlockBlob)."
            )
        return _created(self._state.store_upload(target, request.body))

    def put_block(
        self, request: RecordedRequest, query: dict[str, str], target: UploadTarget
    ) -> Response:
        block_id = query.get("blockid", "")
        try:
            valid = 0 < len(base64.b64decode(block_id, validate=True)) <= 64
        except binascii.Error:
            valid = False
        if not valid:
            raise BlobProblem(
                400,
                "InvalidQueryParameterValue",
                "blockid must be base64 of 1 to 64 bytes.",
            )
        target.staged[block_id] = request.body
        return _created(None)

    def put_block_list(
        self, request: RecordedRequest, query: dict[str, str], target: UploadTarget
    ) -> Response:
        entries = _block_list(request.body)
        data, committed = target.assemble(entries)
        return _created(self._state.store_upload(target, data, committed))


def _block_list(body: bytes) -> list[tuple[str, str]]:
    """The ``(kind, block id)`` entries of a ``<BlockList>`` document."""
    invalid = BlobProblem(400, "InvalidXmlDocument", "XML specified is not syntactically valid.")
    try:
        # Only local test clients can reach the emulator, and expat refuses entity bombs.
        root = ElementTree.fromstring(body)  # noqa: S314
    except ElementTree.ParseError:
        raise invalid from None
    if root.tag != "BlockList" or any(child.tag not in _BLOCK_KINDS for child in root):
        raise invalid
    return [(child.tag, (child.text or "").strip()) for child in root]


def _created(version: str | None) -> Response:
    headers = [
        ("ETag", f'"0x{new_request_id().replace("-", "")[:15].upper()}"'),
        ("x-ms-request-id", new_request_id()),
        ("x-ms-version", AZURE_VERSION),
        ("x-ms-request-server-encrypted", "true"),
    ]
    if version is not None:
        headers.append(("x-ms-version-id", version))
    return Response(201, tuple(headers))
