"""The action's image built and run on this machine, with no image pulled from the internet.

Shared by ``scripts/image_demo.py`` and ``scripts/bench_image.py``. They run inside
``scripts/services.py run --only docker,registry`` (``make image-demo``), which starts a
Docker engine and a registry on loopback and sets ``DOCKER_HOST`` and
``CI_DEPLOY_TEST_REGISTRY``, ``CI_DEPLOY_TEST_REGISTRY_USER``,
``CI_DEPLOY_TEST_REGISTRY_TOKEN``.

No registry on the internet is reachable here, so ``python:3.12-slim`` is replaced by a base
made with ``debootstrap`` from Debian's packages (``bookworm``: Python 3.11, pip, git, CA
certificates), made once and kept as a tarball in ``.image-cache/``, then imported into the
local registry at every run. The Dockerfile's ``BASE`` build argument points at it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from demo import make_workspace

from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.localrun import push_event, runner_environment

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".image-cache"
BASE_TARBALL = CACHE / "base-bookworm.tar"
SUITE = "bookworm"
#: What the action's Dockerfile needs of its base, besides what it installs itself.
BASE_PACKAGES = ("python3", "python3-pip", "python3-venv", "ca-certificates", "git")
#: The CA bundle of this machine: package registries may be reached through its own CAs.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
REGISTRY_VARIABLES = (
    "CI_DEPLOY_TEST_REGISTRY",
    "CI_DEPLOY_TEST_REGISTRY_USER",
    "CI_DEPLOY_TEST_REGISTRY_TOKEN",
)


class ImageKitError(Exception):
    """A step could not be done; the message says which and what to do."""


def say(text: str) -> None:
    print(text, flush=True)


# --- the engine and the registry ------------------------------------------------------


@dataclass(frozen=True)
class Registry:
    """The local registry ``scripts/services.py`` started (``host`` is ``127.0.0.1:<port>``)."""

    host: str
    user: str
    token: str = field(repr=False)


def registry_from(environ: Mapping[str, str]) -> Registry:
    """The registry of ``environ``; an :class:`ImageKitError` naming what is missing."""
    missing = [name for name in ("DOCKER_HOST", *REGISTRY_VARIABLES) if not environ.get(name)]
    if missing:
        raise ImageKitError(
            f"{', '.join(missing)} not set: run this through `make image-demo` (or "
            "`python scripts/services.py run --only docker,registry -- python "
            f"{Path(sys.argv[0]).as_posix()}`), which starts the Docker engine and the registry"
        )
    return Registry(
        environ["CI_DEPLOY_TEST_REGISTRY"],
        environ["CI_DEPLOY_TEST_REGISTRY_USER"],
        environ["CI_DEPLOY_TEST_REGISTRY_TOKEN"],
    )


class Docker:
    """The ``docker`` command against ``DOCKER_HOST``, with a config folder of its own (the
    registry login stays there, deleted on :meth:`close`) and the classic builder."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._config = Path(tempfile.mkdtemp(prefix="ci-deploy-docker-config-"))
        self.environ = {**os.environ, "DOCKER_CONFIG": str(self._config), "DOCKER_BUILDKIT": "0"}
        self.run(
            "login",
            "--username",
            registry.user,
            "--password-stdin",
            registry.host,
            stdin=registry.token,
        )

    def close(self) -> None:
        shutil.rmtree(self._config, ignore_errors=True)

    def run(self, *args: str, stdin: str | None = None, quiet: bool = True) -> str:
        """``docker ARGS``: its stdout; on failure an :class:`ImageKitError` with its end."""
        done = subprocess.run(
            ["docker", *args],
            env=self.environ,
            input=stdin,
            capture_output=quiet,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-15:])
            raise ImageKitError(f"docker {args[0]} failed (exit {done.returncode}):\n{tail}")
        return (done.stdout or "").strip()

    def size(self, image: str) -> int:
        """The image's size in bytes, as ``docker images`` counts it (all its layers)."""
        return int(self.run("image", "inspect", "--format", "{{.Size}}", image))

    def remove(self, *images: str) -> None:
        """Remove the images that are here, forgetting those that are not."""
        present = [image for image in images if self.has(image)]
        if present:
            self.run("rmi", "--force", *present)

    def has(self, image: str) -> bool:
        done = subprocess.run(
            ["docker", "image", "inspect", image],
            env=self.environ,
            capture_output=True,
            check=False,
        )
        return done.returncode == 0


@contextmanager
def docker_session(environ: Mapping[str, str]) -> Iterator[Docker]:
    docker = Docker(registry_from(environ))
    try:
        yield docker
    finally:
        docker.close()


# --- the base image ---------------------------------------------------------------------


def apt_mirror(sources: Sequence[Path] = ()) -> str:
    """The first Debian archive URI in this machine's apt sources (deb822 or one-line)."""
    paths = list(sources) or [
        Path("/etc/apt/sources.list"),
        *sorted(Path("/etc/apt/sources.list.d").glob("*.sources")),
        *sorted(Path("/etc/apt/sources.list.d").glob("*.list")),
    ]
    for path in paths:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            found = re.match(r"\s*(?:URIs:|deb)\s+(\S+)", line)
            if found and "security" not in found.group(1) and "/debian" in found.group(1):
                return found.group(1)
    raise ImageKitError(
        "no Debian mirror found in /etc/apt/sources.list(.d): debootstrap needs one "
        "(a `deb http://.../debian bookworm main` line)"
    )


def make_base_tarball(target: Path = BASE_TARBALL) -> None:
    """debootstrap a minimal bookworm with Python, pip and git, fitted as the Dockerfile's
    base (``/usr/local/bin/python``, pip allowed to install system-wide, this machine's CA
    bundle), into ``target`` (a tar of the root file system)."""
    if shutil.which("debootstrap") is None:
        raise ImageKitError(
            "debootstrap is missing: `apt-get install -y --no-install-recommends debootstrap` "
            "(root), then run again"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=target.parent) as tmp:
        rootfs = Path(tmp) / "rootfs"
        mirror = apt_mirror()
        say(f"Making the base image with debootstrap ({SUITE} from {mirror}); about 1-2 min")
        done = subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                SUITE,
                str(rootfs),
                mirror,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            tail = "\n".join(done.stdout.strip().splitlines()[-15:])
            raise ImageKitError(f"debootstrap failed (exit {done.returncode}):\n{tail}")
        fit_base(rootfs)
        partial = target.with_suffix(".partial")
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True
        )
        partial.replace(target)


def fit_base(rootfs: Path) -> None:
    """What python:3.12-slim has and Debian's python3 lacks, as the Dockerfile expects it."""
    python = rootfs / "usr" / "local" / "bin" / "python"
    python.parent.mkdir(parents=True, exist_ok=True)
    python.unlink(missing_ok=True)
    python.symlink_to("/usr/bin/python3")
    for marker in (rootfs / "usr" / "lib").glob("python3*/EXTERNALLY-MANAGED"):
        marker.unlink()
    if HOST_CA_BUNDLE.is_file():
        bundle = rootfs / "etc" / "ssl" / "certs" / "ca-certificates.crt"
        bundle.unlink(missing_ok=True)
        shutil.copyfile(HOST_CA_BUNDLE, bundle)
    for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for path in (rootfs / leftovers).glob("*"):
            if path.is_file():
                path.unlink()


def base_image(docker: Docker) -> str:
    """The base in the local registry (made first when ``.image-cache/`` has none); its
    reference for ``--build-arg BASE=``."""
    if not BASE_TARBALL.is_file():
        make_base_tarball()
    reference = f"{docker.registry.host}/ci-deploy-base/python:{SUITE}"
    docker.run("import", "--message", f"debootstrap {SUITE}", str(BASE_TARBALL), reference)
    docker.run("push", reference)
    return reference


# --- the action's image ---------------------------------------------------------------


def build(
    docker: Docker,
    tag: str,
    base: str,
    *,
    dockerfile: Path = ROOT / "Dockerfile",
    no_cache: bool = False,
) -> float:
    """``docker build`` of the action (the repository as context) on ``base``; seconds."""
    started = time.monotonic()
    docker.run(
        "build",
        "--quiet",
        "--network",
        "host",
        "--build-arg",
        f"BASE={base}",
        "--file",
        str(dockerfile),
        "--tag",
        tag,
        *(["--no-cache"] if no_cache else []),
        str(ROOT),
    )
    return time.monotonic() - started


def old_dockerfile_on(base: str, text: str) -> Path:
    """A Dockerfile without the ``BASE`` argument (before issue 12) with its FROM on
    ``base``, written into the build context's ignored cache folder."""
    lines = [f"FROM {base}" if line.startswith("FROM ") else line for line in text.splitlines()]
    path = CACHE / "Dockerfile.old"
    CACHE.mkdir(exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


#: The runner's user: the checkout belongs to it, the container runs as root.
RUNNER_UID = 1001


@dataclass(frozen=True)
class ContainerStep:
    """A DAG deploy of the example project by the image, ready to start as the GitHub runner
    starts a container action: ``docker ARGUMENTS`` with ``environ`` (the docker CLI's, plus
    every variable the container gets, passed by name so values such as the token stay off
    the command line); the step's outputs land in ``output_file``."""

    arguments: tuple[str, ...]
    environ: dict[str, str]
    output_file: Path

    def run(self, *, capture: bool) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *self.arguments],
            env=self.environ,
            capture_output=capture,
            text=True,
            check=False,
        )


def container_step(
    docker: Docker, image: str, root: Path, emulator: Emulator, *, as_runner_user: bool = False
) -> ContainerStep:
    """The example project as a two-commit git repository under ``root`` (``make demo``'s),
    the runner's folders beside it, and the ``docker run`` that deploys it to ``emulator``
    (on 127.0.0.1, so host network): the checkout at ``/github/workspace`` (the working
    directory), ``RUNNER_TEMP`` and ``HOME`` under ``/github``, the engine's socket at
    ``/var/run/docker.sock``. ``as_runner_user``: the checkout owned by uid 1001, as on a
    runner (git then needs the image's ``safe.directory``)."""
    workspace, before, after = make_workspace(root)
    if as_runner_user:
        subprocess.run(["chown", "-R", f"{RUNNER_UID}:{RUNNER_UID}", str(workspace)], check=True)
    runner = root / "runner"
    environ = runner_environment(
        workspace,
        runner,
        {"api-url": emulator.api_url, "deployment-id": emulator.deployment_id},
        event=push_event(before, after),
        sha=after,
        env={"ASTRO_API_TOKEN": emulator.token},
    )
    inside = {
        name: (
            "/github/runner_temp" + value[len(str(runner)) :]
            if value.startswith(str(runner))
            else "/github/workspace"
            if value == str(workspace)
            else value
        )
        for name, value in environ.items()
        if name.startswith(("GITHUB_", "INPUT_", "RUNNER_", "ASTRO_")) or name == "CI"
    }
    inside["HOME"] = "/github/home"
    (runner / "home").mkdir(exist_ok=True)
    arguments = ["run", "--rm", "--network", "host", "--workdir", "/github/workspace"]
    for host, mounted in (
        (workspace, "/github/workspace"),
        (runner, "/github/runner_temp"),
        (runner / "home", "/github/home"),
    ):
        arguments += ["--volume", f"{host}:{mounted}"]
    socket = docker_socket(docker.environ)
    if socket:
        arguments += ["--volume", f"{socket}:/var/run/docker.sock"]
    for name in sorted(inside):
        arguments += ["--env", name]
    return ContainerStep(
        (*arguments, image), {**docker.environ, **inside}, Path(environ["GITHUB_OUTPUT"])
    )


def docker_socket(environ: Mapping[str, str]) -> str:
    host = environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else ""


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
