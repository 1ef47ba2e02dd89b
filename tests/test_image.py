"""ci_deploy.image: the real Docker SDK against the fake engine of tests/fake_docker.py, for
what the real engine and registry of ``tests/test_image_real.py`` cannot be made to show here.

Builds, labels, the build log and its tail, ``.dockerignore``, existing and missing images,
pushes, a refused login, an image lost before its push and a registry that does not answer
are tested on the real engine. What stays here, and why:

- the requests themselves: the build's parameters (``platform``, ``pull``, ``rm``) and
  context, the API version, the registry auth sent with the push and with nothing else (a
  real engine shows only the outcome);
- pulling Astro Runtime bases (no registry is reachable from these machines);
- the engine failing: HTTP 500 on build, inspect and push (with the token in its text),
  a registry error that echoes the token, a push failing for a reason other than auth;
- push progress throttling (it needs progress ticks the test controls).

Everything runs on 127.0.0.1; the token must appear in no log line and no error.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped,unused-ignore]
import pytest

from ci_deploy import engine_stream
from ci_deploy.errors import ImageError, ImageNotFoundError
from ci_deploy.image import BuiltImage, ImageBuilder
from tests.fake_docker import FakeDockerEngine, sdk_loaded_after

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "astro-project"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.s1gn4ture-ONLY-in-the-header"
REPOSITORY = "images.astronomer.cloud/cm0abc123/dep-42"
RUNTIME_3 = "astrocrpublic.azurecr.io/runtime:3.0-1"


# --- helpers ------------------------------------------------------------------------------


@dataclass
class Log:
    """What the builder logged, and in which group each line was."""

    lines: list[tuple[str | None, str]] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    current: str | None = None

    def info(self, line: str) -> None:
        self.lines.append((self.current, line))

    @contextlib.contextmanager
    def group(self, title: str) -> Iterator[None]:
        assert self.current is None, "groups do not nest"
        self.groups.append(title)
        self.current = title
        try:
            yield
        finally:
            self.current = None

    def text(self) -> list[str]:
        return [line for _, line in self.lines]

    def in_group(self, title: str) -> list[str]:
        return [line for group, line in self.lines if group == title]


@pytest.fixture(autouse=True)
def _no_docker_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: Any) -> None:
    """No ~/.docker/config.json of this machine, no DOCKER_HOST of the environment."""
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path_factory.mktemp("docker-config")))
    for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> Iterator[FakeDockerEngine]:
    with FakeDockerEngine() as engine:
        yield engine


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def builder(fake: FakeDockerEngine, log: Log) -> Iterator[ImageBuilder]:
    def client() -> Any:
        return docker.DockerClient(base_url=fake.base_url, timeout=10)

    with ImageBuilder(log=log.info, group=log.group, client_factory=client) as made:
        yield made


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example Astro project."""
    target = tmp_path / "project"
    shutil.copytree(EXAMPLE, target)
    return target


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def assert_no_token(log: Log, *texts: str) -> None:
    for line in log.text():
        assert TOKEN not in line
    for text in texts:
        assert TOKEN not in text


# --- build --------------------------------------------------------------------------------


def test_build_sends_the_project_for_linux_amd64_and_pulls_runtime_bases(
    fake: FakeDockerEngine, builder: ImageBuilder, project: Path, log: Log
) -> None:
    built = builder.build(project, tag="ci-deploy/project:abc123")

    assert len(fake.builds) == 1
    assert fake.build_params["platform"] == "linux/amd64"
    assert fake.build_params["pull"] is True
    assert fake.build_params["rm"] is True
    assert fake.build_params["tag"] == "ci-deploy/project:abc123"
    files = set(fake.build_context_files)
    assert {
        "Dockerfile",
        "requirements.txt",
        "packages.txt",
        "dags/example_etl.py",
        "dags/utils/notify.py",
        "include/sql/daily_orders.sql",
    } <= files
    assert fake.builds[0].dockerfile == (EXAMPLE / "Dockerfile").read_text()

    image = fake.find("ci-deploy/project:abc123")
    assert image is not None
    assert built == BuiltImage(
        image_id=image.id, reference="ci-deploy/project:abc123", runtime_version="3.0-1"
    )
    assert builder.check_runtime(built) == "3.0-1"
    # The SDK asked the version without a prefix, then used the /v1.45 API.
    assert fake.calls[0].path == "/version"
    assert all(call.version == "1.45" for call in fake.calls[1:])
    assert fake.endpoints()[1:] == [
        "POST /build",
        f"GET /images/{image.id}/json",
    ]


def test_build_does_not_pull_when_a_base_is_not_a_runtime_image(
    fake: FakeDockerEngine, builder: ImageBuilder, project: Path
) -> None:
    (project / "Dockerfile").write_text(
        f"FROM python:3.12-slim AS deps\nRUN pip wheel pandas\nFROM {RUNTIME_3}\n"
    )
    builder.build(project, tag="project:1")
    assert fake.build_params["pull"] is False
    assert fake.build_params["platform"] == "linux/amd64"


def test_build_log_is_streamed_into_the_group(
    fake: FakeDockerEngine, builder: ImageBuilder, project: Path, log: Log
) -> None:
    fake.build_log = ["Collecting pandas", "partial line without end"]
    builder.build(project, tag="project:1")

    assert log.groups == ["Building the image"]
    lines = log.in_group("Building the image")
    assert lines == log.text(), "every build line is inside the group"
    assert lines[0].startswith("Building project:1 for linux/amd64 from ")
    assert "pulling the newest Astro Runtime base image" in lines[0]
    assert f"Step 1/1 : FROM {RUNTIME_3}" in lines
    assert "Collecting pandas" in lines
    assert any(line.startswith("Successfully built ") for line in lines)
    assert "Successfully tagged project:1" in lines
    assert lines[-1].startswith("Built project:1 (")
    # Pull progress: a line per layer status change, not one per progress tick.
    assert lines.count("aaaaaaaaaaaa: Downloading") == 1
    assert lines.count("aaaaaaaaaaaa: Pull complete") == 1
    assert not any("Downloading" in line and "of" in line for line in lines)


def test_build_failure_reported_by_http_status(
    fake: FakeDockerEngine, builder: ImageBuilder, project: Path
) -> None:
    fake.http_errors["build"] = (500, "dockerfile parse error line 3: unknown instruction: PIP")
    with pytest.raises(ImageError, match="unknown instruction: PIP") as caught:
        builder.build(project, tag="project:1")
    assert "(HTTP 500)" in caught.value.message


def test_build_rejects_an_invalid_tag_before_sending(
    fake: FakeDockerEngine, builder: ImageBuilder, project: Path
) -> None:
    with pytest.raises(ImageError, match="invalid reference format"):
        builder.build(project, tag="Not A Valid:Tag")
    assert fake.builds == []


def test_build_without_dockerfile(
    fake: FakeDockerEngine, builder: ImageBuilder, tmp_path: Path
) -> None:
    with pytest.raises(ImageError, match="no Dockerfile in"):
        builder.build(tmp_path, tag="project:1")
    assert fake.calls == [], "the engine is not even contacted"


@pytest.mark.parametrize(
    "run",
    [
        "RUN --mount=type=secret,id=pip_conf pip install -r requirements.txt",
        "RUN --mount=id=token,type=secret cat /run/secrets/token",
        "RUN \\\n  --mount=type=secret,id=x \\\n  true",
    ],
)
def test_build_secrets_are_refused(
    fake: FakeDockerEngine, builder: ImageBuilder, project: Path, run: str
) -> None:
    (project / "Dockerfile").write_text(f"FROM {RUNTIME_3}\n{run}\n")
    with pytest.raises(ImageError) as caught:
        builder.build(project, tag="project:1")
    message = caught.value.message
    assert "build secrets" in message
    assert "docker/build-push-action" in message
    assert "'image-name'" in message
    assert caught.value.title == "Build secrets not supported"
    assert fake.calls == []


def test_other_buildkit_flags_are_refused(
    fake: FakeDockerEngine, builder: ImageBuilder, project: Path
) -> None:
    (project / "Dockerfile").write_text(
        f"FROM {RUNTIME_3}\nRUN --mount=type=cache,target=/root/.cache pip install x\n"
    )
    with pytest.raises(ImageError, match=r"RUN --mount, which needs BuildKit") as caught:
        builder.build(project, tag="project:1")
    assert "'image-name'" in caught.value.message
    assert fake.calls == []


def test_no_engine_explains_the_socket(log: Log, project: Path) -> None:
    port = closed_port()
    builder = ImageBuilder(
        log=log.info,
        group=log.group,
        client_factory=lambda: docker.DockerClient(base_url=f"tcp://127.0.0.1:{port}", timeout=5),
    )
    with pytest.raises(ImageError) as caught:
        builder.build(project, tag="project:1")
    message = caught.value.message
    assert "/var/run/docker.sock" in message
    assert "DOCKER_HOST" in message
    assert "'image-name'" in message
    assert caught.value.title == "Docker engine not reachable"
    assert log.groups == []


def test_no_engine_at_docker_host(log: Log, project: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{closed_port()}")
    with pytest.raises(ImageError, match=r"/var/run/docker\.sock"):
        ImageBuilder(log=log.info, group=log.group).existing("project:1")


# --- existing images and the runtime label -----------------------------------------------


@pytest.mark.parametrize("engine_says", ["Image not found", "No such image: x", "boom"])
def test_other_inspect_failures_are_not_taken_for_a_missing_image(
    fake: FakeDockerEngine, builder: ImageBuilder, engine_says: str
) -> None:
    fake.add_image("project:1")
    fake.http_errors["inspect"] = (500, engine_says)
    with pytest.raises(ImageError) as caught:
        builder.existing("project:1")
    assert not isinstance(caught.value, ImageNotFoundError)
    assert caught.value.title == "Image error"
    assert caught.value.message == (
        f"Could not inspect the image project:1: {engine_says} (HTTP 500)"
    )


def test_a_failed_engine_connection_while_inspecting(log: Log) -> None:
    # With a fixed API version the client is made without asking the engine anything.
    url = f"tcp://127.0.0.1:{closed_port()}"
    builder = ImageBuilder(
        log=log.info,
        group=log.group,
        client_factory=lambda: docker.DockerClient(base_url=url, version="1.45", timeout=5),
    )
    with builder, pytest.raises(ImageError) as caught:
        builder.existing("project:1")
    assert not isinstance(caught.value, ImageNotFoundError)
    assert caught.value.message.startswith(
        "The connection to the Docker engine failed while inspecting project:1: "
    )


# --- push ---------------------------------------------------------------------------------


@pytest.fixture
def built(fake: FakeDockerEngine, builder: ImageBuilder) -> BuiltImage:
    fake.add_image("project:1")
    return builder.existing("project:1")


def test_push_tags_then_pushes_with_the_token_as_registry_auth(
    fake: FakeDockerEngine, builder: ImageBuilder, built: BuiltImage, log: Log
) -> None:
    pushed: list[tuple[str, str]] = []
    fake.on_push = lambda repository, tag: pushed.append((repository, tag))
    start = len(fake.calls)

    digest = builder.push(built, REPOSITORY, "deploy-2024-05-01T10-00", token=TOKEN)

    assert fake.endpoints()[start:] == [
        f"POST /images/{built.image_id}/tag",
        f"POST /images/{REPOSITORY}/push",
    ]
    assert fake.tags == [(built.image_id, REPOSITORY, "deploy-2024-05-01T10-00")]
    assert len(fake.pushes) == 1
    push = fake.pushes[0]
    assert (push.repository, push.tag) == (REPOSITORY, "deploy-2024-05-01T10-00")
    assert push.auth == {"username": "cli", "password": TOKEN}
    assert fake.calls[-1].auth == {"username": "cli", "password": TOKEN}
    assert fake.calls[-1].query == {"tag": ["deploy-2024-05-01T10-00"]}
    assert all(call.auth is None for call in fake.calls[:-1]), "the token goes to push only"
    assert digest == push.digest
    assert digest.startswith("sha256:")
    assert pushed == [(REPOSITORY, "deploy-2024-05-01T10-00")]

    title = f"Pushing the image to {REPOSITORY}:deploy-2024-05-01T10-00"
    assert title in log.groups
    lines = log.in_group(title)
    assert lines[0].startswith("Tagged project:1 (")
    assert f"The push refers to repository [{REPOSITORY}]" in lines
    assert lines[-1] == f"Pushed {REPOSITORY}:deploy-2024-05-01T10-00 ({digest})"
    layers = [line.split(":")[0] for line in lines if line.endswith(": Preparing")]
    assert len(layers) == fake.layers
    for layer in layers:
        statuses = [line for line in lines if line.startswith(f"{layer}: ")]
        assert statuses[-2:] == [f"{layer}: Pushing", f"{layer}: Pushed"]
        assert len(statuses) == len(set(statuses)), "one line per status change"
    assert_no_token(log)


def test_push_progress_is_throttled_not_per_tick(
    fake: FakeDockerEngine,
    builder: ImageBuilder,
    built: BuiltImage,
    log: Log,
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(engine_stream, "_PROGRESS_INTERVAL", 0.0)
    builder.push(built, REPOSITORY, "t1", token=TOKEN)
    progress = [line for line in log.text() if " of " in line]
    # Three ticks per layer: the first is the status change, the next two show progress.
    assert len(progress) == 2 * fake.layers
    assert any(line.endswith(": Pushing 2.0 KiB of 2.0 KiB") for line in progress)


def test_push_error_that_echoes_the_token_is_redacted(
    fake: FakeDockerEngine, builder: ImageBuilder, built: BuiltImage, log: Log
) -> None:
    fake.push_error = f"denied: requested access to the resource is denied (token {TOKEN})"
    with pytest.raises(ImageError) as caught:
        builder.push(built, REPOSITORY, "t1", token=TOKEN)
    assert "(token ***)" in caught.value.message
    assert caught.value.title == "Registry login failed"
    assert_no_token(log, caught.value.message)


def test_push_failure_that_is_not_about_auth(
    fake: FakeDockerEngine, builder: ImageBuilder, built: BuiltImage, log: Log
) -> None:
    fake.push_error = "blob upload unknown to registry"
    with pytest.raises(ImageError) as caught:
        builder.push(built, REPOSITORY, "t1", token=TOKEN)
    assert caught.value.title == "Image push failed"
    assert "blob upload unknown" in caught.value.message
    assert "login" not in caught.value.message


def test_push_http_error_keeps_no_chain_to_the_request(
    fake: FakeDockerEngine, builder: ImageBuilder, built: BuiltImage, log: Log
) -> None:
    """The SDK's exception holds the request with X-Registry-Auth: it must not be chained."""
    fake.http_errors["push"] = (500, f"registry exploded near {TOKEN}")
    with pytest.raises(ImageError) as caught:
        builder.push(built, REPOSITORY, "t1", token=TOKEN)
    error = caught.value
    assert "registry exploded near ***" in error.message
    assert "(HTTP 500)" in error.message
    assert error.__cause__ is None and error.__context__ is None
    assert_no_token(log, error.message)


def test_push_needs_a_token(builder: ImageBuilder, built: BuiltImage) -> None:
    with pytest.raises(ImageError, match="token"):
        builder.push(built, REPOSITORY, "t1", token="")


# --- the Docker SDK is imported on first use ------------------------------------------------


@pytest.mark.parametrize(
    "module", ["ci_deploy.image", "ci_deploy.dockerfile", "ci_deploy.engine_stream"]
)
def test_importing_the_module_does_not_import_the_docker_sdk(module: str) -> None:
    """A DAG-only run never pays for the Docker SDK (and requests) it does not use."""
    assert sdk_loaded_after(f"import {module}") == []
