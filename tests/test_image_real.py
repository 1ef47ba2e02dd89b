"""ci_deploy.image against the real Docker engine and the real registry ``make test`` starts.

The engine is Debian's ``docker.io`` on its own socket (``DOCKER_HOST``); the registry is
the CNCF distribution registry with htpasswd auth, user ``cli`` and a token as password, as
Astro's registry takes the API token. Images are ``FROM scratch`` (nothing can be pulled
here); a build that runs a command copies the static busybox in as its shell. The token
must appear in no log line, no error message and no exception text.
"""

from __future__ import annotations

import io
import re
import shutil
import socket
import tarfile
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped,unused-ignore]
import pytest

from ci_deploy import engine_stream
from ci_deploy.errors import ImageError, ImageNotFoundError
from ci_deploy.image import RUNTIME_LABEL, BuiltImage, ImageBuilder
from ci_deploy.runner import Runner
from ci_deploy_testkit.ghfiles import parse_workflow_command
from tests.realservices import RealRegistry
from tests.test_image import Log

RUNTIME = "12.1.0"
ANSI = re.compile(r"\x1b\[")


@pytest.fixture(autouse=True)
def _engine(docker_host: str, tmp_path_factory: pytest.TempPathFactory, monkeypatch: Any) -> None:
    """The real engine by ``DOCKER_HOST``; no ~/.docker/config.json of this machine."""
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path_factory.mktemp("docker-config")))


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def builder(log: Log) -> Iterator[ImageBuilder]:
    with ImageBuilder(log=log.info, group=log.group) as made:
        yield made


def scratch_project(path: Path, *, run: str | None = None, label: bool = True) -> Path:
    """A build context: ``FROM scratch``, the runtime label, a DAG file, and with ``run`` a
    static busybox as the shell of a ``RUN`` line."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "dags").mkdir(exist_ok=True)
    (path / "dags" / "hello.py").write_text("print('hello')\n")
    lines = ["FROM scratch"]
    if label:
        lines.append(f"LABEL {RUNTIME_LABEL}={RUNTIME}")
    lines.append("COPY dags /usr/local/airflow/dags")
    if run is not None:
        busybox = shutil.which("busybox")
        assert busybox is not None, "busybox-static is missing: run `make services`"
        shutil.copy(busybox, path / "busybox")
        lines += ["COPY busybox /bin/busybox", 'SHELL ["/bin/busybox", "sh", "-c"]', f"RUN {run}"]
    (path / "Dockerfile").write_text("\n".join(lines) + "\n")
    return path


def unique(name: str) -> str:
    return f"ci-deploy-test/{name}-{uuid.uuid4().hex[:8]}"


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def all_text(exc: BaseException, log: Log) -> str:
    """Everything a user or a log could see of a failure: the log lines, the message and the
    whole formatted exception with its chain."""
    return "\n".join([*log.text(), str(exc), *traceback.format_exception(exc)])


# --- build ------------------------------------------------------------------------------


def test_a_scratch_image_builds_and_its_label_reads_back(
    builder: ImageBuilder, log: Log, tmp_path: Path, docker_host: str
) -> None:
    tag = f"{unique('label')}:1"
    built = builder.build(scratch_project(tmp_path / "project"), tag=tag)
    assert built.reference == tag
    assert built.runtime_version == RUNTIME
    assert builder.check_runtime(built) == RUNTIME
    client = docker.DockerClient(base_url=docker_host)
    try:
        engine = client.images.get(tag)
        assert engine.id == built.image_id
        assert engine.labels[RUNTIME_LABEL] == RUNTIME
        assert engine.attrs["Architecture"] == "amd64"
    finally:
        client.close()
    assert log.groups == ["Building the image"]
    assert f"Built {tag} ({built.image_id.removeprefix('sha256:')[:12]})" in log.text()


def test_an_image_without_the_label_is_refused(builder: ImageBuilder, tmp_path: Path) -> None:
    tag = f"{unique('nolabel')}:1"
    built = builder.build(scratch_project(tmp_path / "project", label=False), tag=tag)
    assert built.runtime_version == ""
    with pytest.raises(ImageError) as caught:
        builder.check_runtime(built)
    assert caught.value.title == "Not an Astro Runtime image"
    assert caught.value.message.startswith(
        f"{tag} is not an Astro Runtime image: the label {RUNTIME_LABEL} is missing; build "
        "FROM an Astro Runtime image"
    )


def test_a_failing_run_reads_without_colour_codes(
    builder: ImageBuilder, log: Log, tmp_path: Path
) -> None:
    """The classic builder wraps RUN's stderr in ANSI colour codes: none reach our text."""
    project = scratch_project(tmp_path / "project", run="echo boom >&2; exit 3")
    with pytest.raises(ImageError) as caught:
        builder.build(project, tag=f"{unique('fails')}:1")
    message = caught.value.message
    assert caught.value.title == "Image build failed"
    assert "returned a non-zero code: 3" in message
    assert "\nboom" in message  # the build log's tail, the RUN's own stderr line
    assert not ANSI.search(message)
    assert not any(ANSI.search(line) for line in log.text())
    assert "boom" in log.text()


def test_the_build_log_streams_into_its_group(
    builder: ImageBuilder, log: Log, tmp_path: Path
) -> None:
    tag = f"{unique('log')}:1"
    project = scratch_project(tmp_path / "project", run="echo first; echo second >&2")
    built = builder.build(project, tag=tag)
    short = built.image_id.removeprefix("sha256:")[:12]
    lines = log.in_group("Building the image")
    assert lines == log.text(), "every build line is inside the group"
    assert lines[0] == f"Building {tag} for linux/amd64 from {project}"  # FROM scratch: no pull
    assert "Step 1/6 : FROM scratch" in lines
    assert "first" in lines
    assert "second" in lines  # the RUN's stderr, its colour codes dropped
    assert f"Successfully built {short}" in lines
    assert f"Successfully tagged {tag}" in lines
    assert lines[-1] == f"Built {tag} ({short})"


def test_a_build_failure_ends_with_the_tail_of_the_log(
    builder: ImageBuilder, log: Log, tmp_path: Path
) -> None:
    run = "for n in $(seq 0 59); do echo pip output line $n; done; exit 1"
    project = scratch_project(tmp_path / "project", run=run)
    tag = f"{unique('tail')}:1"
    with pytest.raises(ImageError) as caught:
        builder.build(project, tag=tag)
    message = caught.value.message
    assert message.startswith(
        f"Building {tag} failed: The command '/bin/busybox sh -c {run}' returned a non-zero "
        "code: 1\nThe last 25 lines of the build log:\n"
    )
    tail = message.split("lines of the build log:\n", 1)[1].splitlines()
    assert tail == log.text()[-engine_stream.LOG_TAIL_LINES :]
    assert tail[-1] == "pip output line 59"
    assert log.current is None, "the group is closed"


def test_build_output_through_a_github_runner_is_never_a_command(tmp_path: Path) -> None:
    """A RUN printing a workflow command: with the real Runner it stays inert text."""
    stream = io.StringIO()
    runner = Runner(environ={"GITHUB_ACTIONS": "true"}, stream=stream)
    project = scratch_project(tmp_path / "project", run="echo ::error::not a real annotation")
    with ImageBuilder(log=runner.info, group=runner.group) as builder:
        builder.build(project, tag=f"{unique('inert')}:1")
    out = stream.getvalue().splitlines()
    commands = [parse_workflow_command(line) for line in out]
    index = out.index("::error::not a real annotation")
    stop = commands[index - 1]
    assert stop is not None and stop.command == "stop-commands"


def test_dockerignore_keeps_files_out_of_the_image(
    builder: ImageBuilder, tmp_path: Path, docker_host: str
) -> None:
    project = scratch_project(tmp_path / "project")
    (project / "Dockerfile").write_text(
        f"FROM scratch\nLABEL {RUNTIME_LABEL}={RUNTIME}\nCOPY . /project/\n"
    )
    (project / ".env").write_text("AIRFLOW_CONN_SECRET=postgres://user:pw@db/x\n")
    (project / ".dockerignore").write_text(".env\n")
    built = builder.build(project, tag=f"{unique('ignore')}:1")
    client = docker.DockerClient(base_url=docker_host)
    try:
        container = client.containers.create(built.image_id, command="none")
        try:
            stream, _ = container.get_archive("/project")
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                names = set(tar.getnames())
        finally:
            container.remove()
    finally:
        client.close()
    assert "project/dags/hello.py" in names
    assert "project/Dockerfile" in names
    assert "project/.env" not in names


# --- existing images --------------------------------------------------------------------


def test_an_existing_image_is_found_by_name_and_by_id(
    builder: ImageBuilder, log: Log, tmp_path: Path
) -> None:
    name = unique("existing")
    built = builder.build(scratch_project(tmp_path / "project"), tag=name)  # tag: latest
    with ImageBuilder(log=log.info, group=log.group) as other:
        assert other.existing(name) == BuiltImage(built.image_id, name, RUNTIME)
        assert other.existing(built.image_id).image_id == built.image_id
    short = built.image_id.removeprefix("sha256:")[:12]
    assert f"Using the image {name} ({short})" in log.text()


def test_a_missing_image_is_named_with_what_to_do(builder: ImageBuilder) -> None:
    name = f"{unique('missing')}:1"
    with pytest.raises(ImageNotFoundError) as caught:
        builder.existing(name)
    assert name in caught.value.message
    assert "load: true" in caught.value.message
    assert caught.value.title == "Image not found"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(ImageNotFoundError, match="No image name given"):
        builder.existing("  ")


# --- push -------------------------------------------------------------------------------


def test_a_push_returns_the_digest_the_registry_serves(
    builder: ImageBuilder, log: Log, tmp_path: Path, real_registry: RealRegistry
) -> None:
    built = builder.build(scratch_project(tmp_path / "project"), tag=f"{unique('push')}:1")
    name = unique("org/deployment")
    repository = f"{real_registry.host}/{name}"
    digest = builder.push(built, repository, "deploy-1", token=real_registry.token)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert real_registry.manifest(name, "deploy-1").digest == digest
    assert f"Pushed {repository}:deploy-1 ({digest})" in log.text()
    assert not any(real_registry.token in line for line in log.text())


def test_a_wrong_token_is_a_clear_login_error_without_the_token(
    builder: ImageBuilder, log: Log, tmp_path: Path, real_registry: RealRegistry
) -> None:
    built = builder.build(scratch_project(tmp_path / "project"), tag=f"{unique('wrong')}:1")
    name = unique("org/deployment")
    wrong = "wrong-" + real_registry.token[::-1]
    with pytest.raises(ImageError) as caught:
        builder.push(built, f"{real_registry.host}/{name}", "deploy-1", token=wrong)
    assert caught.value.title == "Registry login failed"
    assert "check that the token is valid and may deploy to this Deployment" in (
        caught.value.message
    )
    assert "unauthorized" in caught.value.message
    seen = all_text(caught.value, log)
    assert wrong not in seen
    assert real_registry.token not in seen
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert "404" in real_registry.manifest(name, "deploy-1").problem  # nothing was pushed


def test_a_push_of_an_image_the_engine_lost(
    builder: ImageBuilder, tmp_path: Path, real_registry: RealRegistry, docker_host: str
) -> None:
    project = scratch_project(tmp_path / "project")
    (project / "dags" / "own.py").write_text(f"# {uuid.uuid4()}: an image no other test has\n")
    built = builder.build(project, tag=f"{unique('lost')}:1")
    client = docker.DockerClient(base_url=docker_host)
    try:
        client.images.remove(built.image_id, force=True)
    finally:
        client.close()
    with pytest.raises(ImageError, match="No such image") as caught:
        builder.push(built, f"{real_registry.host}/org/lost", "t1", token=real_registry.token)
    assert caught.value.__context__ is None


def test_a_registry_that_does_not_answer_is_a_clear_error(
    builder: ImageBuilder, log: Log, tmp_path: Path, real_registry: RealRegistry
) -> None:
    built = builder.build(scratch_project(tmp_path / "project"), tag=f"{unique('down')}:1")
    target = f"127.0.0.1:{unused_port()}/org/deployment"
    with pytest.raises(ImageError) as caught:
        builder.push(built, target, "deploy-1", token=real_registry.token)
    assert caught.value.title == "Image push failed"
    assert caught.value.message.startswith(f"Pushing {target}:deploy-1 failed: ")
    assert "connection refused" in caught.value.message
    assert real_registry.token not in all_text(caught.value, log)
