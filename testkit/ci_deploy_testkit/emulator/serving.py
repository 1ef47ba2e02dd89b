"""Serving an emulated API: the HTTP server on a background thread, every request recorded,
faults applied, then the request handled under the emulator's lock.

:class:`ServedApi` is the base of the emulators (Astro's, App Platform's): it binds the
socket on construction (``port=0`` picks a free port, so URLs are known before
:meth:`~ServedApi.start`), serves on a background thread, and is a context manager. Every
request is recorded in :attr:`ServedApi.requests` before anything else happens, then
:attr:`ServedApi.faults` may answer it instead or drop it, then it is handled under
:attr:`ServedApi.lock`; a slow fault then waits, outside that lock, before the answer goes
out. A subclass says how a request is handled (:meth:`~ServedApi._dispatch`) and how a
fault's status is answered (:meth:`~ServedApi._fault_response`).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import traceback
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from ci_deploy_testkit.emulator.faults import Fault, Faults
from ci_deploy_testkit.emulator.wire import ApiProblem, RecordedRequest, Response

Log = Callable[[str], None]


class ServedApi:
    """An API served on ``host:port`` from a background thread; subclass it."""

    thread_name = "ci-deploy-emulator"

    def __init__(self, host: str, port: int, log: Log | None) -> None:
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.record_bodies = True  # False: requests are recorded with an empty body
        self._server = Server((host, port), self._respond, log)
        advertised = "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104
        self.base_url = f"http://{advertised}:{self.port}"
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stopping = threading.Event()  # wakes the handlers of slow faults on stop()
        self._late: list[tuple[RecordedRequest, tuple[str, str]]] = []  # late faults' requests

    @property
    def lock(self) -> threading.RLock:
        """The lock every request is handled under (the state's)."""
        raise NotImplementedError

    def _dispatch(self, request: RecordedRequest) -> Response:
        """The answer to a request, under :attr:`lock`."""
        raise NotImplementedError

    def _fault_response(self, fault: Fault, path: str) -> Response:
        """The answer a fault with a status gives, without handling the request."""
        raise NotImplementedError

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Serve on a background thread. Returns ``self``."""
        if self._thread is not None or self._closed:
            raise RuntimeError(f"a {type(self).__name__} can be started once")
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # how soon stop() returns
            name=f"{self.thread_name}:{self.port}",
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

    def __enter__(self) -> Self:
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

    # -- serving ---------------------------------------------------------------------

    def _respond(self, request: RecordedRequest) -> Response | None:
        """The answer to ``request``; None to close the connection without one."""
        with self.lock:
            self.requests.append(request if self.record_bodies else replace(request, body=b""))
        self._handle_late(request)
        fault = self.faults.take(request.method, request.path)
        if fault is not None and fault.until is not None:
            with self.lock:
                self._late.append((request, fault.until))
            return None  # handled later, by _handle_late
        if fault is not None and fault.status is not None:
            return self._fault_response(fault, request.path)
        if fault is not None and not fault.processed:
            return None  # dropped before processing
        try:
            with self.lock:
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
        with self.lock:
            due = [
                held
                for held, (method, regex) in self._late
                if method in ("*", request.method.upper()) and re.search(regex, request.path)
            ]
            self._late = [entry for entry in self._late if entry[0] not in due]
            for held in due:
                self._dispatch(held)


class Server(ThreadingHTTPServer):
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

    server: Server
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
