"""A fake Docker Engine API on 127.0.0.1, enough for the real Docker SDK to build, inspect,
tag and push.

    with FakeDockerEngine() as fake:
        client = docker.DockerClient(base_url=fake.base_url)    # or DOCKER_HOST=fake.base_url
        ...
        fake.build_params, fake.build_context_files, fake.pushes[0].auth

Endpoints (each also under the ``/v1.xx`` prefix the SDK adds): ``GET|HEAD /_ping``,
``GET /version``, ``GET /info``, ``POST /build``, ``GET /images/{name}/json``,
``POST /images/{name}/tag``, ``POST /images/{name}/push``; anything else is a 404 like the
engine's. Streams are chunked JSON lines, as the engine sends them (the SDK only streams a
chunked answer). Every request is recorded in :attr:`FakeDockerEngine.calls`.

The real engine and registry ``make test`` starts cover builds and pushes
(``tests/test_image_real.py``, ``tests/test_image_e2e.py``); this fake stays for what they
cannot be made to produce here (``tests/test_image.py`` says which), and for runs whose
image is not the point: in process on a fake clock (``tests/test_astro_run.py``) and a
preview's whole life (``tests/test_preview_e2e.py``).

Knobs (plain attributes, set them before the call): :attr:`labels` (labels of built images
and of :meth:`add_image`'s default), :attr:`build_error`, :attr:`build_log`,
:attr:`push_error`, :attr:`registry_password`, :attr:`http_errors`, :attr:`on_push`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "API_VERSION",
    "DEFAULT_LABELS",
    "BuildRecord",
    "EngineCall",
    "FakeDockerEngine",
    "FakeImage",
    "PushRecord",
]

API_VERSION = "1.45"
RUNTIME_LABEL = "io.astronomer.docker.runtime.version"
DEFAULT_LABELS: Mapping[str, str] = {RUNTIME_LABEL: "3.0-1"}

_VERSION_PREFIX = re.compile(r"^/v\d+\.\d+(?=/)")
_IMAGE_PATH = re.compile(r"^/images/(?P<name>.+)/(?P<op>json|tag|push)$")


@dataclass(frozen=True)
class EngineCall:
    """One request the engine received."""

    method: str
    path: str
    """Without the query and without the ``/v1.xx`` prefix, percent-decoded."""
    version: str
    """The API version prefix (``"1.45"``), or ``""`` when the path had none."""
    query: dict[str, list[str]]
    auth: dict[str, Any] | None
    """The decoded ``X-Registry-Auth`` header, when one came."""


@dataclass
class FakeImage:
    id: str
    repo_tags: list[str]
    labels: dict[str, str] | None


@dataclass(frozen=True)
class BuildRecord:
    tag: str
    """``t``, as sent (``""`` when none)."""
    params: dict[str, Any]
    """``tag``, ``platform``, ``pull``, ``rm``, ``dockerfile``, ``nocache`` (booleans parsed)."""
    context_files: tuple[str, ...]
    """The member names of the tar context, in tar order."""
    dockerfile: str
    """The Dockerfile's text from the context (``""`` when missing)."""
    image_id: str
    """The built image's id, ``""`` when the build failed."""


@dataclass(frozen=True)
class PushRecord:
    repository: str
    tag: str
    auth: dict[str, Any] | None
    """The decoded ``X-Registry-Auth`` (``{"username": ..., "password": ...}``)."""
    digest: str
    """The digest reported, ``""`` when the push failed."""


def _bool(values: list[str] | None) -> bool:
    if not values:
        return False
    return values[-1].lower() in ("1", "true", "yes")


def _normalize(name: str) -> str:
    """``name`` with ``:latest`` when it has neither tag nor digest."""
    if "@" in name or ":" in name.rsplit("/", 1)[-1]:
        return name
    return f"{name}:latest"


def _instructions(dockerfile: str) -> list[str]:
    steps: list[str] = []
    pending = ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        steps.append((pending + line).strip())
        pending = ""
    if pending.strip():
        steps.append(pending.strip())
    return steps


@dataclass
class _Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    stream: list[dict[str, Any]] | None = None
    after_stream: Callable[[], list[dict[str, Any]]] | None = None


class FakeDockerEngine:
    """The fake engine. A context manager: ``with FakeDockerEngine() as fake: ...``."""

    def __init__(
        self,
        *,
        labels: Mapping[str, str] | None = DEFAULT_LABELS,
        on_push: Callable[[str, str], None] | None = None,
    ) -> None:
        self.labels: dict[str, str] | None = dict(labels) if labels is not None else None
        """Labels of the images builds make (None: no labels at all)."""
        self.build_error: str | None = None
        """When set, builds stream their steps and then fail with this error line."""
        self.build_log: list[str] = []
        """Extra build output lines, streamed after the steps (before an error or success)."""
        self.push_error: str | None = None
        """When set, pushes fail with this error line after the layers are prepared."""
        self.registry_password: str | None = None
        """When set, pushes whose auth is not ``{"username": "cli", "password": this}`` fail
        with ``unauthorized: authentication required``."""
        self.http_errors: dict[str, tuple[int, str]] = {}
        """``{"build"|"inspect"|"tag"|"push"|"version": (status, message)}``: answer that
        operation with an HTTP error ``{"message": message}`` instead."""
        self.on_push: Callable[[str, str], None] | None = on_push
        """Called with (repository, tag) when a push succeeds, before the digest is sent."""
        self.layers = 3

        self.calls: list[EngineCall] = []
        self.builds: list[BuildRecord] = []
        self.pushes: list[PushRecord] = []
        self.tags: list[tuple[str, str, str]] = []
        """``(source image id, repository, tag)`` per successful tag call."""
        self.images: dict[str, FakeImage] = {}
        """By id."""

        self._lock = threading.RLock()
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeDockerEngine:
        handler = type("Handler", (_Handler,), {"engine": self})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeDockerEngine:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "the fake engine is not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``tcp://127.0.0.1:<port>``: for ``docker.DockerClient(base_url=...)`` and
        ``DOCKER_HOST``."""
        return f"tcp://127.0.0.1:{self.port}"

    # --- shortcuts for assertions -------------------------------------------------------

    @property
    def build_params(self) -> dict[str, Any]:
        """The last build's parameters."""
        assert self.builds, "no build was requested"
        return self.builds[-1].params

    @property
    def build_context_files(self) -> tuple[str, ...]:
        """The names in the last build's tar context."""
        assert self.builds, "no build was requested"
        return self.builds[-1].context_files

    def endpoints(self) -> list[str]:
        """``"METHOD /path"`` of every call, in order."""
        with self._lock:
            return [f"{call.method} {call.path}" for call in self.calls]

    # --- images ---------------------------------------------------------------------------

    def add_image(self, name: str, *, labels: Mapping[str, str] | None = DEFAULT_LABELS) -> str:
        """Put an image named ``name`` in the engine (as a workflow step would); its id."""
        with self._lock:
            image_id = self._new_id(name.encode())
            self.images[image_id] = FakeImage(
                image_id, [_normalize(name)], dict(labels) if labels is not None else None
            )
            return image_id

    def find(self, name: str) -> FakeImage | None:
        """The image ``name`` refers to: an id, an id prefix (12+ hex) or a repo:tag."""
        with self._lock:
            if name in self.images:
                return self.images[name]
            bare = name.removeprefix("sha256:")
            if re.fullmatch(r"[0-9a-f]{12,64}", bare):
                for image_id, image in self.images.items():
                    if image_id.removeprefix("sha256:").startswith(bare):
                        return image
            wanted = _normalize(name)
            for image in self.images.values():
                if wanted in image.repo_tags:
                    return image
            return None

    def _new_id(self, seed: bytes) -> str:
        self._counter += 1
        return "sha256:" + hashlib.sha256(seed + str(self._counter).encode()).hexdigest()

    def _tag_image(self, image: FakeImage, reference: str) -> None:
        reference = _normalize(reference)
        for other in self.images.values():
            if reference in other.repo_tags:
                other.repo_tags.remove(reference)
        image.repo_tags.append(reference)

    # --- request handling ---------------------------------------------------------------

    def _record(self, call: EngineCall) -> None:
        with self._lock:
            self.calls.append(call)

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], auth: Any, body: bytes
    ) -> _Response:
        if method in ("GET", "HEAD") and path == "/_ping":
            return _Response(body=b"OK", content_type="text/plain; charset=utf-8")
        if method == "GET" and path == "/version":
            return self._error_or("version") or _json(_VERSION)
        if method == "GET" and path == "/info":
            return _json({"ID": "fake", "OSType": "linux", "Architecture": "x86_64"})
        if method == "POST" and path == "/build":
            return self._error_or("build") or self._build(query, body)
        match = _IMAGE_PATH.match(path)
        if match:
            name, op = match.group("name"), match.group("op")
            if method == "GET" and op == "json":
                return self._error_or("inspect") or self._inspect(name)
            if method == "POST" and op == "tag":
                return self._error_or("tag") or self._tag(name, query)
            if method == "POST" and op == "push":
                return self._error_or("push") or self._push(name, query, auth)
        return _message(404, "page not found")

    def _error_or(self, operation: str) -> _Response | None:
        if operation in self.http_errors:
            status, message = self.http_errors[operation]
            return _message(status, message)
        return None

    def _build(self, query: dict[str, list[str]], body: bytes) -> _Response:
        tag = (query.get("t") or [""])[-1]
        dockerfile_name = (query.get("dockerfile") or ["Dockerfile"])[-1]
        params: dict[str, Any] = {
            "tag": tag,
            "platform": (query.get("platform") or [""])[-1],
            "pull": _bool(query.get("pull")),
            "rm": _bool(query.get("rm")),
            "nocache": _bool(query.get("nocache")),
            "dockerfile": dockerfile_name,
        }
        names: list[str] = []
        dockerfile = ""
        try:
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as archive:
                for member in archive:
                    names.append(member.name)
                    if member.name.lstrip("./") == dockerfile_name and member.isfile():
                        extracted = archive.extractfile(member)
                        if extracted is not None:
                            dockerfile = extracted.read().decode("utf-8", "replace")
        except tarfile.TarError as exc:
            return _message(400, f"the build context is not a tar archive: {exc}")

        lines: list[dict[str, Any]] = []
        steps = _instructions(dockerfile)
        if not dockerfile:
            message = f"Cannot locate specified Dockerfile: {dockerfile_name}"
            lines.append({"errorDetail": {"message": message}, "error": message})
        for number, step in enumerate(steps, start=1):
            lines.append({"stream": f"Step {number}/{len(steps)} : {step}\n"})
            if number == 1 and params["pull"] and step.upper().startswith("FROM"):
                base = step.split()[-1]
                repository, _, base_tag = _normalize(base).rpartition(":")
                lines.append({"status": f"Pulling from {repository}", "id": base_tag})
                for layer in ("aaaaaaaaaaaa", "bbbbbbbbbbbb"):
                    lines.append({"status": "Pulling fs layer", "progressDetail": {}, "id": layer})
                    for current in (100, 200, 300):
                        lines.append(
                            {
                                "status": "Downloading",
                                "progressDetail": {"current": current, "total": 300},
                                "progress": "[=====>   ]",
                                "id": layer,
                            }
                        )
                    lines.append({"status": "Pull complete", "progressDetail": {}, "id": layer})
                lines.append({"status": f"Status: Image is up to date for {base}"})
            lines.append({"stream": f" ---> {hashlib.sha256(step.encode()).hexdigest()[:12]}\n"})
        lines.extend({"stream": f"{line}\n"} for line in self.build_log)

        image_id = ""
        if self.build_error is not None:
            lines.append(
                {"errorDetail": {"code": 1, "message": self.build_error}, "error": self.build_error}
            )
        elif dockerfile:
            with self._lock:
                image_id = self._new_id(body)
                image = FakeImage(image_id, [], dict(self.labels) if self.labels else None)
                self.images[image_id] = image
                for value in query.get("t") or []:
                    self._tag_image(image, value)
            lines.append({"aux": {"ID": image_id}})
            lines.append({"stream": f"Successfully built {image_id[7:19]}\n"})
            lines.extend({"stream": f"Successfully tagged {t}\n"} for t in query.get("t") or [])
        with self._lock:
            self.builds.append(BuildRecord(tag, params, tuple(names), dockerfile, image_id))
        return _Response(stream=lines)

    def _inspect(self, name: str) -> _Response:
        image = self.find(name)
        if image is None:
            return _message(404, f"No such image: {name}")
        return _json(
            {
                "Id": image.id,
                "RepoTags": list(image.repo_tags),
                "RepoDigests": [],
                "Os": "linux",
                "Architecture": "amd64",
                "Config": {"Labels": image.labels, "Env": ["PATH=/usr/bin"]},
                "Size": 123456,
            }
        )

    def _tag(self, name: str, query: dict[str, list[str]]) -> _Response:
        image = self.find(name)
        if image is None:
            return _message(404, f"No such image: {name}")
        repository = (query.get("repo") or [""])[-1]
        tag = (query.get("tag") or ["latest"])[-1] or "latest"
        if not repository:
            return _message(400, "repository name must have at least one component")
        with self._lock:
            self._tag_image(image, f"{repository}:{tag}")
            self.tags.append((image.id, repository, tag))
        return _Response(status=201, body=b"", content_type="text/plain")

    def _push(self, repository: str, query: dict[str, list[str]], auth: Any) -> _Response:
        tag = (query.get("tag") or ["latest"])[-1] or "latest"
        image = self.find(f"{repository}:{tag}")
        if image is None:
            with self._lock:
                self.pushes.append(PushRecord(repository, tag, auth, ""))
            return _message(404, f"An image does not exist locally with the tag: {repository}")
        layers = [
            hashlib.sha256(f"{image.id}/{n}".encode()).hexdigest()[:12] for n in range(self.layers)
        ]
        lines: list[dict[str, Any]] = [
            {"status": f"The push refers to repository [{repository}]"},
        ]
        lines.extend({"status": "Preparing", "progressDetail": {}, "id": id_} for id_ in layers)
        failure = self.push_error
        wanted = {"username": "cli", "password": self.registry_password}
        if failure is None and self.registry_password is not None and auth != wanted:
            failure = "unauthorized: authentication required"
        if failure is not None:
            with self._lock:
                self.pushes.append(PushRecord(repository, tag, auth, ""))
            lines.append({"errorDetail": {"message": failure}, "error": failure})
            return _Response(stream=lines)
        lines.extend({"status": "Waiting", "progressDetail": {}, "id": id_} for id_ in layers[1:])
        for id_ in layers:
            for current in (512, 1024, 2048):
                lines.append(
                    {
                        "status": "Pushing",
                        "progressDetail": {"current": current, "total": 2048},
                        "progress": "[=====>   ]",
                        "id": id_,
                    }
                )
            lines.append({"status": "Pushed", "progressDetail": {}, "id": id_})
        digest = "sha256:" + hashlib.sha256(f"{image.id}|{repository}:{tag}".encode()).hexdigest()

        def finish() -> list[dict[str, Any]]:
            # Runs while the stream is open, like a registry accepting the manifest.
            if self.on_push is not None:
                try:
                    self.on_push(repository, tag)
                except Exception as exc:  # a broken hook shows up as a failed push
                    message = f"fake engine: on_push failed: {exc}"
                    return [{"errorDetail": {"message": message}, "error": message}]
            with self._lock:
                self.pushes.append(PushRecord(repository, tag, auth, digest))
            return [
                {"status": f"{tag}: digest: {digest} size: 1234"},
                {"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": 1234}},
            ]

        return _Response(stream=lines, after_stream=finish)


_VERSION: dict[str, Any] = {
    "Platform": {"Name": "Fake Docker Engine"},
    "Version": "27.0.0-fake",
    "ApiVersion": API_VERSION,
    "MinAPIVersion": "1.24",
    "Os": "linux",
    "Arch": "amd64",
    "KernelVersion": "6.0.0",
    "GoVersion": "go1.22",
    "GitCommit": "fake",
}


def _json(data: Any, status: int = 200) -> _Response:
    return _Response(status=status, body=json.dumps(data).encode())


def _message(status: int, message: str) -> _Response:
    return _json({"message": message}, status)


def _decode_auth(header: str | None) -> dict[str, Any] | None:
    if header is None:
        return None
    padded = header.strip() + "=" * (-len(header.strip()) % 4)
    try:
        decoded = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError):
        return {"_undecodable": header}
    return decoded if isinstance(decoded, dict) else {"_undecodable": header}


class _Handler(BaseHTTPRequestHandler):
    engine: FakeDockerEngine
    protocol_version = "HTTP/1.1"
    timeout = 30  # an idle keep-alive connection's thread ends after this

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self, method: str) -> None:
        engine = self.engine
        parts = urlsplit(self.path)
        raw_path = unquote(parts.path)
        prefix = _VERSION_PREFIX.match(raw_path)
        version = prefix.group(0)[2:] if prefix else ""
        path = raw_path[prefix.end() :] if prefix else raw_path
        query = parse_qs(parts.query, keep_blank_values=True)
        auth = _decode_auth(self.headers.get("X-Registry-Auth"))
        body = self._read_body()
        engine._record(EngineCall(method, path, version, query, auth))
        response = engine.handle(method, path, query, auth, body)
        if response.stream is None:
            self.send_response(response.status)
            self._common_headers(response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(response.body)
            return
        self.send_response(response.status)
        self._common_headers("application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._chunks(response.stream)
        if response.after_stream is not None:
            self._chunks(response.after_stream())
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _chunks(self, lines: Iterable[dict[str, Any]]) -> None:
        for line in lines:
            data = json.dumps(line).encode() + b"\r\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    def _common_headers(self, content_type: str) -> None:
        self.send_header("Content-Type", content_type)
        self.send_header("Api-Version", API_VERSION)
        self.send_header("Docker-Experimental", "false")
        self.send_header("Ostype", "linux")
        self.send_header("Server", "Docker/27.0.0-fake (linux)")


def sdk_loaded_after(script: str) -> list[str]:
    """Which of the Docker SDK and requests a fresh interpreter has loaded after ``script``."""
    check = f"{script}\nimport sys\nprint([m for m in ('docker', 'requests') if m in sys.modules])"
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return list(eval(done.stdout.strip().splitlines()[-1]))  # noqa: S307 - our own list literal
