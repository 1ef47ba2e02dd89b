"""App Platform's error answers: JSON ``{"id", "message", "request_id"}``, as DigitalOcean
answers every error. Handlers raise :class:`DoProblem`; the server turns it into that."""

from __future__ import annotations

from ci_deploy_testkit.emulator.wire import Response, json_response, new_request_id


class DoProblem(Exception):
    """An API error answer: ``status`` with DigitalOcean's error JSON (``id`` is its kind:
    ``not_found``, ``unauthorized``, ``bad_request``, ``conflict``, ...)."""

    def __init__(self, status: int, error_id: str, message: str) -> None:
        super().__init__(f"{status} {error_id}: {message}")
        self.status = status
        self.error_id = error_id
        self.message = message

    def response(self, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        request_id = new_request_id()
        body = {"id": self.error_id, "message": self.message, "request_id": request_id}
        return json_response(self.status, body, headers=headers)
