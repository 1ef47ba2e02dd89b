"""The real components the tests run against: a Docker engine, a registry and Azurite.

One place installs, starts and stops them::

    python scripts/services.py install
    python scripts/services.py run [--only docker,registry,azurite] [--env-file PATH] -- CMD ARGS...

``install`` apt-installs what is missing of ``docker.io``, ``docker-registry``,
``apache2-utils`` and ``busybox-static`` (``install --image`` adds ``debootstrap``, for
``make image-demo``; root needed: otherwise a clear error naming the missing tools and the
command to run), and Azurite from ``package.json`` /
``package-lock.json`` (``npm ci``: every package pinned with its integrity hash).

``run`` starts the selected services (default all) in a fresh state directory under the
system temp, all on loopback: ``dockerd`` on its own unix socket (no bridge, no iptables,
overlay2), the CNCF registry with htpasswd auth (user ``cli``, a random token as password, as
Astro's registry) on 127.0.0.1:<free port>, and Azurite's blob service on 127.0.0.1:<free port>.
It waits until each answers (a service that cannot start is an error with its log's tail and
exit code 1, never a silent skip), runs CMD with these variables added, and stops every
service by its PID, umounts what dockerd leaves mounted and removes the state directory on
exit, on failure and on SIGINT/SIGTERM; the exit code is CMD's:

- ``DOCKER_HOST``: ``unix:///…/docker.sock``
- ``CI_DEPLOY_TEST_REGISTRY`` (``127.0.0.1:<port>``), ``CI_DEPLOY_TEST_REGISTRY_USER``
  (``cli``), ``CI_DEPLOY_TEST_REGISTRY_TOKEN``
- ``CI_DEPLOY_TEST_AZURITE_BLOB``: ``http://127.0.0.1:<port>/devstoreaccount1`` (Azurite's
  well-known development account and key)

``--env-file`` also writes them as ``KEY=value`` lines (mode 0600), for a shell that runs
tests by hand while ``run -- sleep infinity`` keeps the services up.

Standard library only: ``make`` runs it with the system Python, before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent

SERVICES = ("docker", "registry", "azurite")
"""What ``run`` can start, in the order it starts them."""

REGISTRY_USER = "cli"
"""The registry's user, as on Astro's registry (the API token is the password)."""

AZURITE_ACCOUNT = "devstoreaccount1"
"""Azurite's well-known development account (its key is published with Azurite)."""

PACKAGES = {
    "dockerd": "docker.io",
    "docker-registry": "docker-registry",
    "htpasswd": "apache2-utils",
    "busybox": "busybox-static",
}
"""The tool each Debian package brings; ``busybox`` must be a static build (tests copy it
into ``FROM scratch`` images as their shell)."""

IMAGE_PACKAGES = {"debootstrap": "debootstrap"}
"""What ``install --image`` adds: ``debootstrap`` makes the base the action's own image is
built on by ``make image-demo`` (nothing can be pulled here); the tests do not need it."""

START_TIMEOUT = 60.0
"""Seconds a service has to answer after it was started."""

STOP_TIMEOUT = 20.0
"""Seconds a service has to exit after SIGTERM before it is killed."""

LOG_TAIL = 30
"""Lines of a service's log shown when it cannot start."""


class ServiceError(Exception):
    """A service could not be installed or started; the message says what to do."""


# --- the command line ----------------------------------------------------------------------


@dataclass(frozen=True)
class Install:
    """``services.py install [--image]``."""

    image: bool = False
    """Also what building the action's image here needs (:data:`IMAGE_PACKAGES`)."""


@dataclass(frozen=True)
class Run:
    """``services.py run``: the services to start and the command to run with them."""

    services: tuple[str, ...]
    command: tuple[str, ...]
    env_file: Path | None = None


def parse_args(argv: Sequence[str]) -> Install | Run:
    """The command ``argv`` (without the program name) asks for; SystemExit (2) with a
    message naming the wrong argument otherwise."""
    parser = argparse.ArgumentParser(
        prog="services.py",
        description="Install, start and stop the real Docker engine, registry and Azurite.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    install_cmd = commands.add_parser(
        "install", help="install what is missing (root and apt the first time)"
    )
    install_cmd.add_argument(
        "--image", action="store_true", help="also debootstrap, for make image-demo"
    )
    run = commands.add_parser("run", help="start the services, run CMD, stop them")
    run.add_argument(
        "--only",
        default=",".join(SERVICES),
        metavar="LIST",
        help=f"comma-separated, of {', '.join(SERVICES)} (default: all)",
    )
    run.add_argument("--env-file", type=Path, help="also write the variables to this file")
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    args = parser.parse_args(list(argv))
    if args.command == "install":
        return Install(image=args.image)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in only if name not in SERVICES]
    if unknown or not only:
        parser.error(
            f"--only {args.only!r}: expected a comma-separated list of {', '.join(SERVICES)}"
        )
    command = list(args.cmd)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        parser.error("run needs a command after --, e.g. run -- pytest -q")
    return Run(
        services=tuple(name for name in SERVICES if name in only),
        command=tuple(command),
        env_file=args.env_file,
    )


# --- what the services are given and give (pure) -------------------------------------------


def registry_config(root: Path, port: int, htpasswd: Path) -> str:
    """The registry's configuration: files under ``root``, 127.0.0.1:``port``, htpasswd."""
    return (
        "version: 0.1\n"
        "log:\n"
        "  level: warn\n"
        "storage:\n"
        "  filesystem:\n"
        f"    rootdirectory: {root}\n"
        "  delete:\n"
        "    enabled: true\n"
        "http:\n"
        f"  addr: 127.0.0.1:{port}\n"
        "auth:\n"
        "  htpasswd:\n"
        "    realm: ci-deploy-test-registry\n"
        f"    path: {htpasswd}\n"
    )


def htpasswd_command(path: Path, user: str = REGISTRY_USER) -> list[str]:
    """``htpasswd`` making ``path`` with ``user``'s bcrypt hash; the password is read from
    stdin (``-i``), never from the command line."""
    return ["htpasswd", "-B", "-c", "-i", str(path), user]


def dockerd_command(state: Path) -> list[str]:
    """``dockerd`` with everything of its own under ``state``: loopback only, no iptables."""
    return [
        "dockerd",
        "--data-root",
        str(state / "docker-data"),
        "--exec-root",
        str(state / "docker-exec"),
        "--pidfile",
        str(state / "docker.pid"),
        "-H",
        f"unix://{state / 'docker.sock'}",
        "--storage-driver=overlay2",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
    ]


def azurite_command(azurite: Path, state: Path, port: int) -> list[str]:
    """Azurite's blob service on 127.0.0.1:``port`` with its files under ``state``."""
    return [
        str(azurite),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(state / "azurite"),
        "--disableTelemetry",
        "--loose",
        "--skipApiVersionCheck",
        "--silent",
    ]


@dataclass(frozen=True)
class Endpoints:
    """Where the started services answer; None for those not started."""

    docker_socket: Path | None = None
    registry_port: int | None = None
    registry_token: str | None = None
    azurite_port: int | None = None


def service_env(endpoints: Endpoints) -> dict[str, str]:
    """The variables the command is given for the services that were started."""
    env: dict[str, str] = {}
    if endpoints.docker_socket is not None:
        env["DOCKER_HOST"] = f"unix://{endpoints.docker_socket}"
    if endpoints.registry_port is not None and endpoints.registry_token is not None:
        env["CI_DEPLOY_TEST_REGISTRY"] = f"127.0.0.1:{endpoints.registry_port}"
        env["CI_DEPLOY_TEST_REGISTRY_USER"] = REGISTRY_USER
        env["CI_DEPLOY_TEST_REGISTRY_TOKEN"] = endpoints.registry_token
    if endpoints.azurite_port is not None:
        env["CI_DEPLOY_TEST_AZURITE_BLOB"] = (
            f"http://127.0.0.1:{endpoints.azurite_port}/{AZURITE_ACCOUNT}"
        )
    return env


def env_file_text(env: Mapping[str, str]) -> str:
    """``KEY=value`` lines, one a variable, in name order (values are URLs, paths, hex)."""
    return "".join(f"{key}={env[key]}\n" for key in sorted(env))


def mounts_under(mountinfo: str, directory: Path) -> list[Path]:
    """The mount points in ``/proc/self/mountinfo`` text at or under ``directory``, deepest
    first (the order to umount them in)."""
    prefix = str(directory).rstrip("/") + "/"
    found: list[Path] = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = fields[4].replace("\\040", " ")
        if point == prefix.rstrip("/") or point.startswith(prefix):
            found.append(Path(point))
    return sorted(set(found), key=lambda path: (-len(path.parts), str(path)))


def is_static_elf(header: bytes) -> bool:
    """True for a 64-bit little-endian ELF executable without an interpreter (statically
    linked); ``header`` holds at least its program headers."""
    if header[:6] != b"\x7fELF\x02\x01" or len(header) < 64:
        return False
    (phoff,) = struct.unpack_from("<Q", header, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
    for index in range(phnum):
        offset = phoff + index * phentsize
        if offset + 4 > len(header):
            return False
        (kind,) = struct.unpack_from("<I", header, offset)
        if kind == 3:  # PT_INTERP: a dynamic loader
            return False
    return True


def missing_packages(
    which: Callable[[str], str | None],
    static: Callable[[str], bool],
    packages: Mapping[str, str] = PACKAGES,
) -> dict[str, str]:
    """The tools of ``packages`` that are missing, each with the Debian package that brings
    it."""
    missing: dict[str, str] = {}
    for tool, package in packages.items():
        path = which(tool)
        if path is None or (tool == "busybox" and not static(path)):
            missing[tool] = package
    return missing


def apt_command(packages: Sequence[str]) -> list[str]:
    """The ``apt-get`` command installing ``packages``."""
    return ["apt-get", "install", "-y", "--no-install-recommends", *packages]


def processes_using(directory: Path, proc: Path = Path("/proc")) -> list[int]:
    """PIDs of the processes whose command line names a path under ``directory`` (a
    service's own children, such as dockerd's containerd, after it was stopped)."""
    needle = str(directory).encode()
    pids: list[int] = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if needle in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return sorted(pids)


# --- install ------------------------------------------------------------------------------


def static_file(path: str) -> bool:
    """True when ``path`` is a statically linked executable."""
    with open(path, "rb") as file:
        return is_static_elf(file.read(4096))


def azurite_binary() -> Path:
    """Azurite's blob service as ``npm ci`` installs it from package-lock.json."""
    return ROOT / "node_modules" / ".bin" / "azurite-blob"


def azurite_pinned() -> str:
    """The Azurite version package.json pins."""
    package = json.loads((ROOT / "package.json").read_text())
    return str(package["devDependencies"]["azurite"])


def azurite_installed() -> str | None:
    """The Azurite version in node_modules; None when there is none."""
    try:
        package = json.loads((ROOT / "node_modules" / "azurite" / "package.json").read_text())
    except (OSError, ValueError):
        return None
    return str(package.get("version"))


def install(*, image: bool = False) -> None:
    """Install what is missing (with ``image``, :data:`IMAGE_PACKAGES` too); ServiceError
    saying what to run when that needs root."""
    wanted = {**PACKAGES, **IMAGE_PACKAGES} if image else PACKAGES
    missing = missing_packages(shutil.which, static_file, wanted)
    if missing:
        packages = sorted(set(missing.values()))
        command = " ".join(apt_command(packages))
        if os.geteuid() != 0:
            raise ServiceError(
                f"missing: {', '.join(sorted(missing))}; installing them needs root: "
                f"run `sudo {command}` (or `sudo make services`)"
            )
        print(f"services: {command}", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        done = subprocess.run(apt_command(packages), env=env, check=False)
        if done.returncode != 0:
            raise ServiceError(
                f"`{command}` failed (exit code {done.returncode}); run `apt-get update` "
                "and try again"
            )
        still = missing_packages(shutil.which, static_file, wanted)
        if still:
            raise ServiceError(f"still missing after apt-get: {', '.join(sorted(still))}")
    if not azurite_binary().exists() or azurite_installed() != azurite_pinned():
        if shutil.which("npm") is None:
            raise ServiceError("npm is missing: install Node.js 18+ with npm, then run again")
        npm = ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"]
        print(f"services: {' '.join(npm)}", flush=True)
        if subprocess.run(npm, cwd=ROOT, check=False).returncode != 0:
            raise ServiceError(f"`{' '.join(npm)}` failed in {ROOT}")
        (ROOT / "node_modules" / ".installed").touch()


# --- run ----------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when this script dies (even by SIGKILL)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Service:
    """A started service: its process and its log."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def tail(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-LOG_TAIL:]) or "(empty log)"


@dataclass
class Services:
    """The services started in one state directory; :meth:`stop` ends them all."""

    state: Path
    started: list[Service] = field(default_factory=list)

    def start(self, name: str, command: list[str], *, stdin: bytes | None = None) -> Service:
        log = self.state / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # this script is single-threaded
            )
        service = Service(name, process, log)
        self.started.append(service)
        return service

    def stop(self) -> None:
        """Stop every service by PID (SIGTERM, then SIGKILL), what they left running, umount
        what they left mounted, and remove the state directory."""
        for service in reversed(self.started):
            _stop(service.process.pid, service.process.wait)
        for pid in processes_using(self.state):
            _stop(pid, None)
        self.started.clear()
        with contextlib.suppress(OSError):
            mountinfo = Path("/proc/self/mountinfo").read_text()
            for point in mounts_under(mountinfo, self.state):
                subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)
        shutil.rmtree(self.state, ignore_errors=True)


def _stop(pid: int, wait: Callable[[float], int] | None) -> None:
    """SIGTERM ``pid``, wait up to :data:`STOP_TIMEOUT`, then SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        if wait is not None:
            wait(STOP_TIMEOUT)
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        if wait is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                wait(0.1)
                return
        elif not _alive(pid):
            return
        else:
            time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if wait is not None:
        wait(STOP_TIMEOUT)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _wait_until(service: Service, ready: Callable[[], bool], what: str) -> None:
    """Poll ``ready`` until it is true; ServiceError with the log's tail when the service
    exits or does not answer within :data:`START_TIMEOUT`."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        code = service.process.poll()
        if code is not None:
            raise ServiceError(
                f"{service.name} exited with code {code} before {what}; "
                f"the last lines of {service.log.name}:\n{service.tail()}"
            )
        if ready():
            return
        if time.monotonic() > deadline:
            raise ServiceError(
                f"{service.name} did not answer within {START_TIMEOUT:.0f} s ({what}); "
                f"the last lines of {service.log.name}:\n{service.tail()}"
            )
        time.sleep(0.05)


def _docker_ready(sock_path: Path) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(2)
                sock.connect(str(sock_path))
                sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                return sock.recv(64).startswith(b"HTTP/1.0 200")
        except OSError:
            return False

    return ready


def _http_ready(url: str) -> Callable[[], bool]:
    """Ready when ``url`` gives any HTTP answer (401 and 403 too: auth is on)."""

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (a loopback http URL)
                return True
        except urllib.error.HTTPError:
            return True
        except (urllib.error.URLError, OSError):
            return False

    return ready


def start_services(services: Services, names: Sequence[str]) -> Endpoints:
    """Start ``names`` in ``services.state``; ServiceError when one cannot start."""
    state = services.state
    missing = missing_packages(shutil.which, static_file)
    needs = {"docker": ["dockerd", "busybox"], "registry": ["docker-registry", "htpasswd"]}
    lacking = [tool for name in names for tool in needs.get(name, []) if tool in missing]
    if lacking:
        raise ServiceError(f"missing: {', '.join(lacking)}; run `make services` (root, apt) first")
    endpoints = Endpoints()
    if "docker" in names:
        sock_path = state / "docker.sock"
        service = services.start("dockerd", dockerd_command(state))
        _wait_until(service, _docker_ready(sock_path), f"answering on {sock_path}")
        endpoints = Endpoints(docker_socket=sock_path)
    if "registry" in names:
        token = secrets.token_hex(24)
        htpasswd = state / "htpasswd"
        made = subprocess.run(
            htpasswd_command(htpasswd), input=token.encode(), capture_output=True, check=False
        )
        if made.returncode != 0:
            raise ServiceError(
                f"htpasswd failed (exit code {made.returncode}): "
                f"{made.stderr.decode(errors='replace').strip()}"
            )
        port = free_port()
        config = state / "registry.yml"
        config.write_text(registry_config(state / "registry", port, htpasswd))
        service = services.start("registry", ["docker-registry", "serve", str(config)])
        _wait_until(service, _http_ready(f"http://127.0.0.1:{port}/v2/"), f"on port {port}")
        endpoints = Endpoints(endpoints.docker_socket, port, token)
    if "azurite" in names:
        binary = azurite_binary()
        if not binary.exists():
            raise ServiceError(f"{binary} is missing; run `make services` first (npm ci)")
        (state / "azurite").mkdir()
        port = free_port()
        service = services.start("azurite", azurite_command(binary, state, port))
        url = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}?comp=list"
        _wait_until(service, _http_ready(url), f"on port {port}")
        endpoints = Endpoints(
            endpoints.docker_socket, endpoints.registry_port, endpoints.registry_token, port
        )
    return endpoints


class _Stopped(Exception):
    """SIGINT or SIGTERM arrived."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise _Stopped(signum)


def run(command: Run) -> int:
    """Start the services, run the command with their variables, stop them; the command's
    exit code (1 when a service cannot start, 128+N on signal N)."""
    state = Path(tempfile.mkdtemp(prefix="ci-deploy-services-"))
    services = Services(state)
    child: subprocess.Popen[bytes] | None = None
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in handled}
    try:
        started = time.monotonic()
        env = service_env(start_services(services, command.services))
        print(
            f"services: {', '.join(command.services)} up in "
            f"{time.monotonic() - started:.1f} s ({state})",
            file=sys.stderr,
            flush=True,
        )
        if command.env_file is not None:
            descriptor = os.open(command.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(descriptor, 0o600)  # the token is in it
            with os.fdopen(descriptor, "w") as file:
                file.write(env_file_text(env))
        child = subprocess.Popen(command.command, env={**os.environ, **env})
        code = child.wait()
        return 128 - code if code < 0 else code
    except _Stopped as stopped:
        for sig in handled:
            signal.signal(sig, signal.SIG_IGN)
        if child is not None and child.poll() is None:
            child.send_signal(stopped.signum)
            try:
                child.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        print(f"services: {stopped}: stopping the services", file=sys.stderr, flush=True)
        return 128 + stopped.signum
    except ServiceError as exc:
        print(f"services: error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        # Nothing interrupts the clean-up; a second Ctrl-C is ignored until it is done.
        for sig in handled:
            signal.signal(sig, signal.SIG_IGN)
        services.stop()
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: Sequence[str] | None = None) -> int:
    command = parse_args(sys.argv[1:] if argv is None else argv)
    if isinstance(command, Install):
        try:
            install(image=command.image)
        except ServiceError as exc:
            print(f"services: error: {exc}", file=sys.stderr)
            return 1
        return 0
    return run(command)


if __name__ == "__main__":
    sys.exit(main())
