"""A fake of the part of GitHub's REST API ci-deploy uses, served on 127.0.0.1.

:class:`FakeGitHub` answers, for any ``owner/name``, under an optional base path (``/api/v3``
as a GitHub Enterprise Server serves it):

- ``GET|POST /repos/{owner}/{repo}/issues/{n}/comments`` and
  ``PATCH /repos/{owner}/{repo}/issues/comments/{id}``;
- ``GET|POST /repos/{owner}/{repo}/deployments`` (``environment`` filter, newest first) and
  ``GET|POST /repos/{owner}/{repo}/deployments/{id}/statuses``.

Lists page by ``per_page`` (at most 100) and ``page``, with a ``Link`` header as GitHub sends.
Tokens carry permissions (:attr:`FakeGitHub.tokens`): an unknown token gets 401; a write
without ``pull-requests: write`` (comments) or ``deployments: write`` (Deployments) gets 403
"Resource not accessible by integration", as the workflow's token without the permission
does. :attr:`FakeGitHub.rate_limited` makes the next requests answer a secondary rate limit
(403 with ``Retry-After``). Every request is recorded in :attr:`FakeGitHub.requests`, as the
emulator records its own (:class:`GitHubRequest`; the path as received, base path included).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ci_deploy_testkit.emulator.wire import RecordedRequest as GitHubRequest

__all__ = ["ALL_PERMISSIONS", "FakeGitHub", "GitHubRequest"]

ALL_PERMISSIONS = frozenset({"pull-requests:write", "deployments:write"})
_STATES = frozenset({"error", "failure", "inactive", "in_progress", "queued", "pending", "success"})
_REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("GET", re.compile(_REPO + r"/issues/(?P<n>[0-9]+)/comments"), "list_comments"),
    ("POST", re.compile(_REPO + r"/issues/(?P<n>[0-9]+)/comments"), "create_comment"),
    ("PATCH", re.compile(_REPO + r"/issues/comments/(?P<id>[0-9]+)"), "update_comment"),
    ("GET", re.compile(_REPO + r"/deployments"), "list_deployments"),
    ("POST", re.compile(_REPO + r"/deployments"), "create_deployment"),
    ("GET", re.compile(_REPO + r"/deployments/(?P<id>[0-9]+)/statuses"), "list_statuses"),
    ("POST", re.compile(_REPO + r"/deployments/(?P<id>[0-9]+)/statuses"), "create_status"),
    ("GET", re.compile(_REPO + r"/pulls"), "list_pulls"),
)


@dataclass
class _Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class _Problem(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class FakeGitHub:
    """The fake API; a context manager that serves on a background thread.

    ``token`` has every permission; add others to :attr:`tokens` (token -> permissions, e.g.
    ``{"deployments:write"}``). State: :attr:`comments` (by ``(repository, issue)``, oldest
    first), :attr:`deployments` and :attr:`statuses` (by deployment id, oldest first).
    """

    def __init__(self, *, base_path: str = "", token: str = "ghs_fake_token") -> None:  # noqa: S107 - a fake
        self.base_path = base_path.rstrip("/")
        self.token = token
        self.tokens: dict[str, frozenset[str]] = {token: ALL_PERMISSIONS}
        self.requests: list[GitHubRequest] = []
        self.comments: dict[tuple[str, int], list[dict[str, Any]]] = {}
        self.deployments: list[dict[str, Any]] = []
        self.statuses: dict[int, list[dict[str, Any]]] = {}
        self.pulls: dict[tuple[str, int], str] = {}
        """The pull requests: (repository, number) -> state ("open" or "closed")."""
        self.rate_limited = 0
        """How many of the next requests answer a secondary rate limit (403, Retry-After: 0)."""
        self._ids = 1000
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._respond)
        self._thread: threading.Thread | None = None

    @property
    def api_url(self) -> str:
        """What ``GITHUB_API_URL`` is set to: ``http://127.0.0.1:<port>[<base path>]``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.base_path}"

    def start(self) -> FakeGitHub:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what tests read ---------------------------------------------------------------

    def comments_of(self, repository: str, issue: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self.comments.get((repository, issue), [])]

    def add_comment(self, repository: str, issue: int, body: str, login: str = "someone") -> None:
        """A comment written by someone else."""
        with self._lock:
            self._new_comment(repository, issue, body, login)

    def statuses_of(self, deployment_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self.statuses.get(deployment_id, [])]

    # -- serving -----------------------------------------------------------------------

    def _respond(self, request: GitHubRequest) -> _Answer:
        with self._lock:
            self.requests.append(request)
            try:
                return self._handle(request)
            except _Problem as problem:
                body = {
                    "message": problem.message,
                    "documentation_url": "https://docs.github.com/rest",
                }
                return _Answer(problem.status, body, problem.headers)

    def _handle(self, request: GitHubRequest) -> _Answer:
        if self.rate_limited > 0:
            self.rate_limited -= 1
            raise _Problem(403, "You have exceeded a secondary rate limit.", {"Retry-After": "0"})
        if not request.path.startswith(self.base_path + "/"):
            raise _Problem(404, "Not Found")
        path = request.path[len(self.base_path) :]
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ").removeprefix("token ").strip()
        if token not in self.tokens:
            raise _Problem(401, "Bad credentials")
        for method, pattern, name in _ROUTES:
            match = pattern.fullmatch(path)
            if match is not None and method == request.method:
                handler: Callable[[GitHubRequest, dict[str, str], frozenset[str]], _Answer]
                handler = getattr(self, f"_{name}")
                return handler(request, match.groupdict(), self.tokens[token])
        raise _Problem(404, "Not Found")

    def _list_comments(
        self, request: GitHubRequest, at: dict[str, str], _perms: frozenset[str]
    ) -> _Answer:
        items = self.comments.get((_repository(at), int(at["n"])), [])
        return _page(request, items)

    def _create_comment(
        self, request: GitHubRequest, at: dict[str, str], perms: frozenset[str]
    ) -> _Answer:
        _need(perms, "pull-requests:write")
        body = _body(request)
        if not isinstance(body.get("body"), str):
            raise _Problem(422, "Invalid request: body is required")
        comment = self._new_comment(
            _repository(at), int(at["n"]), body["body"], "github-actions[bot]"
        )
        return _Answer(201, comment)

    def _update_comment(
        self, request: GitHubRequest, at: dict[str, str], perms: frozenset[str]
    ) -> _Answer:
        _need(perms, "pull-requests:write")
        body = _body(request)
        for (repository, _issue), comments in self.comments.items():
            for comment in comments:
                if repository == _repository(at) and comment["id"] == int(at["id"]):
                    comment["body"] = body["body"]
                    comment["updated_at"] = _now()
                    return _Answer(200, comment)
        raise _Problem(404, "Not Found")

    def _list_deployments(
        self, request: GitHubRequest, at: dict[str, str], _perms: frozenset[str]
    ) -> _Answer:
        query = dict(parse_qsl(request.query))
        items = [
            d
            for d in reversed(self.deployments)
            if d["repository"] == _repository(at)
            and ("environment" not in query or d["environment"] == query["environment"])
        ]
        return _page(request, items)

    def _create_deployment(
        self, request: GitHubRequest, at: dict[str, str], perms: frozenset[str]
    ) -> _Answer:
        _need(perms, "deployments:write")
        body = _body(request)
        if not isinstance(body.get("ref"), str) or not body["ref"]:
            raise _Problem(422, "Invalid request: ref is required")
        deployment = {
            "id": self._next_id(),
            "repository": _repository(at),
            "sha": body["ref"],
            "ref": body["ref"],
            "task": body.get("task", "deploy"),
            "environment": body.get("environment", "production"),
            "description": body.get("description"),
            "transient_environment": body.get("transient_environment", False),
            "production_environment": body.get("production_environment", False),
            "auto_merge": body.get("auto_merge", True),
            "required_contexts": body.get("required_contexts"),
            "created_at": _now(),
        }
        self.deployments.append(deployment)
        self.statuses[deployment["id"]] = []
        return _Answer(201, deployment)

    def _deployment(self, at: dict[str, str]) -> dict[str, Any]:
        for deployment in self.deployments:
            if deployment["id"] == int(at["id"]) and deployment["repository"] == _repository(at):
                return deployment
        raise _Problem(404, "Not Found")

    def _list_pulls(
        self, request: GitHubRequest, at: dict[str, str], _perms: frozenset[str]
    ) -> _Answer:
        state = dict(parse_qsl(request.query)).get("state", "open")
        items = [
            {"number": number, "state": pr_state}
            for (repository, number), pr_state in sorted(self.pulls.items())
            if repository == _repository(at) and state in ("all", pr_state)
        ]
        return _page(request, items)

    def _list_statuses(
        self, request: GitHubRequest, at: dict[str, str], _perms: frozenset[str]
    ) -> _Answer:
        deployment = self._deployment(at)
        return _page(request, list(reversed(self.statuses[deployment["id"]])))

    def _create_status(
        self, request: GitHubRequest, at: dict[str, str], perms: frozenset[str]
    ) -> _Answer:
        _need(perms, "deployments:write")
        deployment = self._deployment(at)
        body = _body(request)
        if body.get("state") not in _STATES:
            raise _Problem(422, "Invalid request: state is not a deployment state")
        status = {
            "id": self._next_id(),
            "state": body["state"],
            "environment": deployment["environment"],
            "environment_url": body.get("environment_url", ""),
            "log_url": body.get("log_url", ""),
            "description": body.get("description", ""),
            "created_at": _now(),
        }
        self.statuses[deployment["id"]].append(status)
        return _Answer(201, status)

    def _new_comment(self, repository: str, issue: int, text: str, login: str) -> dict[str, Any]:
        comment_id = self._next_id()
        comment = {
            "id": comment_id,
            "body": text,
            "user": {"login": login},
            "html_url": f"https://github.com/{repository}/pull/{issue}#issuecomment-{comment_id}",
            "created_at": _now(),
            "updated_at": _now(),
        }
        self.comments.setdefault((repository, issue), []).append(comment)
        return comment

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids


def _repository(at: dict[str, str]) -> str:
    return f"{at['owner']}/{at['repo']}"


def _need(permissions: frozenset[str], permission: str) -> None:
    if permission not in permissions:
        raise _Problem(403, "Resource not accessible by integration")


def _body(request: GitHubRequest) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        raise _Problem(400, "Problems parsing JSON") from None
    if not isinstance(body, dict):
        raise _Problem(400, "Problems parsing JSON")
    return body


def _page(request: GitHubRequest, items: list[dict[str, Any]]) -> _Answer:
    query = dict(parse_qsl(request.query))
    per_page = min(100, int(query.get("per_page", "30")))
    page = max(1, int(query.get("page", "1")))
    chosen = items[(page - 1) * per_page : page * per_page]
    headers = {}
    if page * per_page < len(items):
        headers["Link"] = f'<https://elsewhere.invalid/next?page={page + 1}>; rel="next"'
    return _Answer(200, chosen, headers)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], respond: Callable[[GitHubRequest], _Answer]
    ) -> None:
        self.respond = respond
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = GitHubRequest(
            method=self.command,
            path=parts.path,
            query=parts.query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        answer = self.server.respond(request)
        data = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return
