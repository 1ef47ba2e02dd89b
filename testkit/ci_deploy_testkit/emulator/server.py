"""The emulator's HTTP server, and :class:`Emulator`, the handle tests and the demo hold.

One ``ThreadingHTTPServer`` on a background thread serves three things on one port:

- ``/v1/...``: the Astro API calls of a deploy, plus listing Deployments, hibernation
  overrides and Deployment logs (see :mod:`ci_deploy_testkit.emulator.api`);
- ``/blob/...``: an Azure-like blob host for the deploys' upload URLs
  (see :mod:`ci_deploy_testkit.emulator.blob`);
- ``/ui/deployments/<id>``: a page for the Deployment's ``uiUrl``.

Every request is recorded in :attr:`Emulator.requests` before anything else happens, then
:attr:`Emulator.faults` may answer it instead or drop it, then it is handled under one lock;
a slow fault then waits, outside that lock, before the answer goes out.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any

from ci_deploy_testkit.emulator.api import AstroApi
from ci_deploy_testkit.emulator.blob import BlobHost
from ci_deploy_testkit.emulator.faults import Fault, Faults
from ci_deploy_testkit.emulator.state import WORKSPACE_ID, AstroState
from ci_deploy_testkit.emulator.ui import deployment_page
from ci_deploy_testkit.emulator.wire import (
    ApiProblem,
    BlobProblem,
    RecordedRequest,
    Response,
    json_response,
)

DEMO_ORGANIZATION_ID = "emulator-org"
DEMO_DEPLOYMENT_ID = "emulator-deployment"

_TOKEN_ISSUED_AT = 1767225600  # 2026-01-01T00:00:00Z: fixed, so tokens are reproducible
_AZURE_FAULT_CODES = {408: "OperationTimedOut", 500: "InternalError", 503: "ServerBusy"}
_UI_PATH = re.compile(r"/ui/deployments/([^/]+)")

Log = Callable[[str], None]


def make_token(organization_id: str, workspace_id: str = WORKSPACE_ID) -> str:
    """An unsigned JWT-shaped API token for ``organization_id``.

    ``header.payload.signature``, each base64url without padding; the payload's
    ``permissions`` claim holds ``organizationId:<id>`` and ``workspaceId:<id>`` as a real
    Astro token's does. The signature is the text ``emulator``: nothing verifies it.
    """
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {
        "sub": "emulator-api-token",
        "iat": _TOKEN_ISSUED_AT,
        "permissions": [f"organizationId:{organization_id}", f"workspaceId:{workspace_id}"],
    }
    parts = [json.dumps(part, separators=(",", ":")).encode() for part in (header, payload)]
    return ".".join(_base64url(part) for part in [*parts, b"emulator"])


class Emulator:
    """A local Astro API and blob host with one seeded organization and Deployment.

    The socket is bound on construction (``port=0`` picks a free port), so URLs are known
    before :meth:`start`. Use it as a context manager::

        with Emulator(rollout_seconds=0.2) as emu:
            client = httpx.Client(base_url=emu.api_url, headers={
                "Authorization": f"Bearer {emu.token}"})

    ``rollout_seconds`` is how long a Deployment stays ``DEPLOYING`` after a finalize or
    rollback, measured on ``clock`` (monotonic seconds; a test can share a fake clock with
    the code under test, so rollouts advance only when that code sleeps); ``wall_clock``
    (epoch seconds) stamps deploys, versions, logs and hibernation overrides. ``log``, if
    given, gets one line per request (method, path, status; never the query, which holds
    upload signatures).

    What tests read and steer: :attr:`requests` (every request, in arrival order),
    :attr:`blobs` (uploads by version id), :attr:`faults`, :attr:`tokens` (the accepted
    bearer tokens; add to it), :attr:`unhealthy_after_finalize`,
    :attr:`unhealthy_after_rollback`, :attr:`rollout_seconds`, :attr:`logs_available`,
    :attr:`import_errors_after_finalize`, :meth:`record_push` (the fake registry),
    :meth:`add_log`, and :meth:`deployment` / :meth:`deploys` / :meth:`logs` /
    :meth:`hibernation_override` for the state behind the API.

    Images: a Deployment's ``imageRepository`` is ``127.0.0.1:<port>/<org>/<deployment>``
    (registry host = the emulator's address, though no registry is served there). An
    image deploy finalizes only once :meth:`record_push` has recorded its
    ``imageRepository:imageTag``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rollout_seconds: float = 1.0,
        log: Log | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.clock, self.wall_clock = clock, wall_clock
        self.organization_id = DEMO_ORGANIZATION_ID
        self.deployment_id = DEMO_DEPLOYMENT_ID
        self.token = make_token(DEMO_ORGANIZATION_ID)
        self.tokens: set[str] = {self.token}
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self._server = _Server((host, port), self._respond, log)
        advertised = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104
        self.base_url = f"http://{advertised}:{self.port}"
        self._state = AstroState(
            self.base_url,
            DEMO_ORGANIZATION_ID,
            rollout_seconds=rollout_seconds,
            clock=clock,
            wall_clock=wall_clock,
        )
        self._state.add_deployment(DEMO_DEPLOYMENT_ID, name="emulator")
        self._state.seed_history(DEMO_DEPLOYMENT_ID)
        self._routes: tuple[tuple[str, Callable[[RecordedRequest], Response]], ...] = (
            ("/v1/", AstroApi(self._state, lambda token: token in self.tokens).handle),
            ("/blob/", BlobHost(self._state).handle),
            ("/ui/", self._ui),
        )
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stopping = threading.Event()  # wakes the handlers of slow faults on stop()
        self._late: list[tuple[RecordedRequest, tuple[str, str]]] = []  # late faults' requests

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Emulator:
        """Serve on a background thread. Returns ``self``."""
        if self._thread is not None or self._closed:
            raise RuntimeError("an Emulator can be started once")
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # how soon stop() returns
            name=f"ci-deploy-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and release the port. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        self._server.close_connections()
        self._server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def api_url(self) -> str:
        """The API base URL clients use, ``http://127.0.0.1:<port>/v1``."""
        return f"{self.base_url}/v1"

    # -- state -----------------------------------------------------------------------

    @property
    def blobs(self) -> dict[str, bytes]:
        """Every committed upload by its ``x-ms-version-id`` (the live dict)."""
        return self._state.blobs

    @property
    def unhealthy_after_finalize(self) -> bool:
        """When set, rollouts started from now on end UNHEALTHY on the old DAG version."""
        return self._state.unhealthy_after_finalize

    @unhealthy_after_finalize.setter
    def unhealthy_after_finalize(self, value: bool) -> None:
        with self._state.lock:
            self._state.unhealthy_after_finalize = value

    @property
    def unhealthy_after_rollback(self) -> bool:
        """When set, rollbacks started from now on end UNHEALTHY on the old versions.

        :attr:`unhealthy_after_finalize` does not apply to rollbacks; this does.
        """
        return self._state.unhealthy_after_rollback

    @unhealthy_after_rollback.setter
    def unhealthy_after_rollback(self, value: bool) -> None:
        with self._state.lock:
            self._state.unhealthy_after_rollback = value

    @property
    def rollout_seconds(self) -> float:
        """How long rollouts (finalize, rollback) and wake-ups from hibernation take."""
        return self._state.rollout_seconds

    @rollout_seconds.setter
    def rollout_seconds(self, value: float) -> None:
        with self._state.lock:
            self._state.rollout_seconds = value

    @property
    def logs_available(self) -> bool:
        """False makes GET ``.../logs`` answer 404, as an API without the endpoint would.

        It applies to every Deployment that has no own setting
        (``update_deployment(id, logs_available=...)``).
        """
        return self._state.logs_available

    @logs_available.setter
    def logs_available(self, value: bool) -> None:
        with self._state.lock:
            self._state.logs_available = value

    @property
    def import_errors_after_finalize(self) -> list[str]:
        """DAG file paths (``dags/broken.py``) that every finalize reports as broken.

        On each finalize, each path gets a dag-processor log line like Airflow's,
        ``Broken DAG: [/usr/local/airflow/dags/broken.py] Traceback ... SyntaxError: ...``,
        timestamped just after the finalize. The live list: append to it or assign it.
        """
        return self._state.import_errors_after_finalize

    @import_errors_after_finalize.setter
    def import_errors_after_finalize(self, paths: list[str]) -> None:
        with self._state.lock:
            self._state.import_errors_after_finalize = list(paths)

    def add_deployment(self, deployment_id: str, **fields: Any) -> None:
        """Add a Deployment to the demo organization, like the demo one but with ``fields``.

        For example ``add_deployment("no-dags", isDagDeployEnabled=False)`` or
        ``add_deployment("dev", isDevelopmentMode=True, hibernating=True)``. Its ``name``
        is its id unless given. It has no deploy history. ``fields`` take the settings of
        :meth:`update_deployment` too.
        """
        with self._state.lock:
            self._state.add_deployment(deployment_id, **fields)

    def update_deployment(self, deployment_id: str, **fields: Any) -> None:
        """Overwrite fields of a Deployment's JSON, e.g. ``isDevelopmentMode=True``.

        Two names are settings, not JSON fields:

        - ``hibernating=True|False``: what the Deployment's hibernation schedule says
          now (development Deployments only, ValueError otherwise). It is applied at
          once, unless an active override says otherwise: ``True`` makes the
          Deployment ``HIBERNATING`` now; ``False`` begins waking it, which takes
          :attr:`rollout_seconds`.
        - ``logs_available=True|False|None``: this Deployment's logs endpoint exists,
          answers 404, or follows :attr:`logs_available`.
        """
        with self._state.lock:
            self._state.update_deployment(deployment_id, **fields)

    def update_deploy(self, deployment_id: str, deploy_id: str, **fields: Any) -> None:
        """Overwrite fields of a deploy's JSON, e.g. ``createdAt="2020-01-01T00:00:00Z"``."""
        with self._state.lock:
            self._state.update_deploy(deployment_id, deploy_id, **fields)

    def hibernation_override(self, deployment_id: str) -> dict[str, Any] | None:
        """The Deployment's hibernation override as its JSON shows it, or None.

        ``{"isActive", "isHibernating", "overrideUntil"?}``; an override whose
        ``overrideUntil`` has passed stays, inactive, until deleted or replaced.
        """
        with self._state.lock:
            return self._state.hibernation_override(deployment_id)

    def record_push(self, repository: str, tag: str) -> None:
        """Record that image ``repository:tag`` was pushed (a fake Docker engine calls this)."""
        with self._state.lock:
            self._state.record_push(repository, tag)

    @property
    def pushed_images(self) -> set[str]:
        """The images :meth:`record_push` recorded, as ``repository:tag`` (a copy)."""
        with self._state.lock:
            return set(self._state.pushed_images)

    def add_log(
        self, deployment_id: str, source: str, message: str, *, at: datetime | None = None
    ) -> None:
        """Add a log line of ``source`` (scheduler, dag-processor, ...) at ``at`` (now)."""
        with self._state.lock:
            self._state.add_log(
                deployment_id, source, message, None if at is None else at.timestamp()
            )

    def logs(self, deployment_id: str) -> list[dict[str, Any]]:
        """Every log entry of the Deployment, oldest first, as DeploymentLogEntry JSON."""
        with self._state.lock:
            return self._state.logs_json(deployment_id)

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        """A copy of the Deployment's JSON, as GET returns it now."""
        with self._state.lock:
            return self._state.deployment_by_id(deployment_id)

    def deployments(self) -> list[dict[str, Any]]:
        """Copies of every Deployment's JSON, in creation order, as GET returns them now."""
        with self._state.lock:
            return self._state.deployments_json()

    def delete_deployment(self, deployment_id: str) -> None:
        """Delete a Deployment by hand, as someone in the Astro UI would."""
        with self._state.lock:
            self._state.delete_deployment(self.organization_id, deployment_id)

    def deploys(self, deployment_id: str) -> list[dict[str, Any]]:
        """Copies of the Deployment's deploys, oldest first (the API lists them unsorted)."""
        with self._state.lock:
            return self._state.deploys_json(deployment_id)

    # -- serving ---------------------------------------------------------------------

    def _respond(self, request: RecordedRequest) -> Response | None:
        """The answer to ``request``; None to close the connection without one."""
        with self._state.lock:
            self.requests.append(request)
        self._handle_late(request)
        fault = self.faults.take(request.method, request.path)
        if fault is not None and fault.until is not None:
            with self._state.lock:
                self._late.append((request, fault.until))
            return None  # handled later, by _handle_late
        if fault is not None and fault.status is not None:
            return _fault_response(fault, request.path)
        if fault is not None and not fault.processed:
            return None  # dropped before processing
        try:
            with self._state.lock:
                response = self._dispatch(request)
        except Exception as exc:  # an emulator bug: answer it instead of hanging the client
            traceback.print_exc()
            response = ApiProblem(500, f"emulator error: {exc!r}").response()
        if fault is None:
            return response
        if fault.slow and not self._stopping.wait(fault.delay):  # outside the state lock
            return response
        return None  # dropped after processing, or stopped while answering late

    def _handle_late(self, request: RecordedRequest) -> None:
        """Handle the held requests of late faults that ``request`` releases; their answers
        go nowhere (their clients are gone)."""
        with self._state.lock:
            due = [
                held
                for held, (method, regex) in self._late
                if method in ("*", request.method.upper()) and re.search(regex, request.path)
            ]
            self._late = [entry for entry in self._late if entry[0] not in due]
            for held in due:
                self._dispatch(held)

    def _dispatch(self, request: RecordedRequest) -> Response:
        for prefix, handle in self._routes:
            if request.path.startswith(prefix):
                return handle(request)
        return ApiProblem(404, f"no route for {request.method} {request.path}").response()

    def _ui(self, request: RecordedRequest) -> Response:
        match = _UI_PATH.fullmatch(request.path)
        if request.method != "GET" or match is None or not self._state.has_deployment(match[1]):
            return ApiProblem(404, f"no page at {request.path}").response()
        page = deployment_page(
            self._state.deployment_by_id(match[1]),
            self._state.deploys_json(match[1]),
        )
        return Response(200, (("Content-Type", "text/html; charset=utf-8"),), page)


def serve(host: str = "127.0.0.1", port: int = 8765, rollout_seconds: float = 1.0) -> int:
    """Run an emulator until SIGINT or SIGTERM; for ``ci-deploy emulator``. Main thread only.

    Prints the API URL, organization, Deployment and token to use, one ``name: value`` a
    line, then a log line per request on stderr. Returns the exit code: 0, or 1 when the
    port cannot be bound.
    """
    try:
        emulator = Emulator(host, port, rollout_seconds=rollout_seconds, log=_log_to_stderr)
    except OSError as exc:
        print(f"ci-deploy emulator: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with emulator:
            print(
                "ci-deploy emulator: a local Astro API and blob host (Ctrl+C to stop)\n"
                f"api-url: {emulator.api_url}\n"
                f"organization-id: {emulator.organization_id}\n"
                f"deployment-id: {emulator.deployment_id}\n"
                f"token: {emulator.token}",
                flush=True,
            )
            while not stopping.wait(0.2):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("ci-deploy emulator: stopped", file=sys.stderr, flush=True)
    return 0


class _Server(ThreadingHTTPServer):
    """The HTTP server; it tracks open connections so :meth:`close_connections` can cut them."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        respond: Callable[[RecordedRequest], Response | None],
        log: Log | None,
    ) -> None:
        self.respond = respond
        self.log = log
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Reads one request into a :class:`RecordedRequest` and writes the server's answer."""

    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "ci-deploy-emulator"
    timeout = 60.0  # seconds an idle keep-alive connection is kept

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            body = self._read_body(headers)
        except ValueError:
            self.send_error(400, "Bad Content-Length or chunk size")
            return
        request = RecordedRequest(self.command, path, query, headers, body)
        response = self.server.respond(request)
        if response is None:
            self.close_connection = True
            self._log(request, "dropped")
            return
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:  # the client left first (e.g. it timed out on a slow fault)
            self.close_connection = True
            self._log(request, "client gone")
            return
        self._log(request, str(response.status))

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() != "chunked":
            length = int(headers.get("content-length") or 0)
            if length < 0:
                raise ValueError("negative Content-Length")
            return self.rfile.read(length)
        chunks: list[bytes] = []
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def _log(self, request: RecordedRequest, outcome: str) -> None:
        if self.server.log is not None:
            self.server.log(f"{request.method} {request.path} -> {outcome}")

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's own access log; :meth:`_log` writes ours."""


def _fault_response(fault: Fault, path: str) -> Response:
    status = fault.status or 500
    extra = (("Retry-After", fault.retry_after),) if fault.retry_after else ()
    if fault.body is not None:
        return json_response(status, fault.body, headers=extra)
    if path.startswith("/blob/"):
        code = _AZURE_FAULT_CODES.get(status, "EmulatedFault")
        response = BlobProblem(status, code, f"Emulated fault: HTTP {status}.").response()
    else:
        response = ApiProblem(status, f"emulated fault: HTTP {status}").response()
    return replace(response, headers=response.headers + extra)


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _log_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
