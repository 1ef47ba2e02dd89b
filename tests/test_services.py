"""scripts/services.py: its pure parts, then a real ``run --only registry`` in a subprocess.

The subprocess test starts the real registry (``make test`` has installed it) and checks the
child got the variables, that the registry answered with the token, and that nothing of it
is left running or on disk afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from scripts import services
from scripts.services import Endpoints, Install, Run

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "services.py"


# --- the command line ----------------------------------------------------------------------


def test_install_parses() -> None:
    assert services.parse_args(["install"]) == Install()


def test_run_defaults_to_every_service_and_drops_the_separator() -> None:
    assert services.parse_args(["run", "--", "pytest", "-q", "--", "x"]) == Run(
        services=("docker", "registry", "azurite"), command=("pytest", "-q", "--", "x")
    )


def test_run_only_keeps_the_start_order_and_the_env_file(tmp_path: Path) -> None:
    parsed = services.parse_args(
        ["run", "--only", "azurite, registry", "--env-file", str(tmp_path / "e"), "--", "true"]
    )
    assert parsed == Run(
        services=("registry", "azurite"), command=("true",), env_file=tmp_path / "e"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--only", "docker,redis", "--", "true"], "--only 'docker,redis': expected"),
        (["run", "--only", ",", "--", "true"], "expected a comma-separated list"),
        (["run", "--"], "run needs a command after --"),
        (["run"], "run needs a command after --"),
        ([], "the following arguments are required"),
    ],
)
def test_bad_arguments_exit_2_naming_them(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        services.parse_args(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


# --- what the services are given -----------------------------------------------------------


def test_registry_config_is_loopback_with_htpasswd(tmp_path: Path) -> None:
    config = yaml.safe_load(
        services.registry_config(tmp_path / "store", 5123, tmp_path / "htpasswd")
    )
    assert config["version"] == 0.1
    assert config["storage"]["filesystem"] == {"rootdirectory": str(tmp_path / "store")}
    assert config["http"] == {"addr": "127.0.0.1:5123"}
    assert config["auth"]["htpasswd"]["path"] == str(tmp_path / "htpasswd")


def test_dockerd_keeps_everything_under_its_state_directory(tmp_path: Path) -> None:
    command = services.dockerd_command(tmp_path)
    assert command[0] == "dockerd"
    assert f"unix://{tmp_path}/docker.sock" in command
    for flag in ("--iptables=false", "--ip6tables=false", "--bridge=none"):
        assert flag in command
    for option in ("--data-root", "--exec-root", "--pidfile"):
        assert command[command.index(option) + 1].startswith(f"{tmp_path}/")


def test_azurite_listens_on_loopback_without_telemetry(tmp_path: Path) -> None:
    command = services.azurite_command(Path("azurite-blob"), tmp_path, 10123)
    assert command[command.index("--blobHost") + 1] == "127.0.0.1"
    assert command[command.index("--blobPort") + 1] == "10123"
    assert command[command.index("--location") + 1] == str(tmp_path / "azurite")
    for flag in ("--disableTelemetry", "--loose", "--skipApiVersionCheck"):
        assert flag in command


def test_the_variables_name_only_what_was_started() -> None:
    socket_path = Path("/tmp/s/docker.sock")
    assert services.service_env(Endpoints(docker_socket=socket_path)) == {
        "DOCKER_HOST": "unix:///tmp/s/docker.sock"
    }
    assert services.service_env(Endpoints(registry_port=5001, registry_token="t0k")) == {
        "CI_DEPLOY_TEST_REGISTRY": "127.0.0.1:5001",
        "CI_DEPLOY_TEST_REGISTRY_USER": "cli",
        "CI_DEPLOY_TEST_REGISTRY_TOKEN": "t0k",
    }
    assert services.service_env(Endpoints(azurite_port=10000)) == {
        "CI_DEPLOY_TEST_AZURITE_BLOB": "http://127.0.0.1:10000/devstoreaccount1"
    }


def test_env_file_is_sorted_key_value_lines() -> None:
    text = services.env_file_text({"B": "2", "A": "unix:///x"})
    assert text == "A=unix:///x\nB=2\n"


def test_htpasswd_reads_the_token_from_stdin_and_verifies(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    token = "a-secret-token-never-on-argv"
    command = services.htpasswd_command(path)
    assert token not in " ".join(command)
    assert "-i" in command
    assert "-B" in command  # bcrypt: what the registry accepts
    subprocess.run(command, input=token.encode(), check=True, capture_output=True)
    user, digest = path.read_text().strip().split(":", 1)
    assert user == "cli"
    assert digest.startswith("$2y$")
    assert token not in path.read_text()

    def verify(password: str) -> int:
        check = ["htpasswd", "-v", "-i", str(path), "cli"]
        return subprocess.run(check, input=password.encode(), capture_output=True).returncode

    assert verify(token) == 0
    assert verify(token + "x") != 0


# --- install: what is missing --------------------------------------------------------------


def test_missing_names_each_tool_with_its_package() -> None:
    present = {"dockerd": "/usr/sbin/dockerd", "busybox": "/bin/busybox"}
    missing = services.missing_packages(present.get, lambda path: True)
    assert missing == {"docker-registry": "docker-registry", "htpasswd": "apache2-utils"}


def test_debootstrap_is_only_needed_to_build_the_image() -> None:
    everything = dict.fromkeys(services.PACKAGES, "/usr/bin/tool")
    assert services.missing_packages(everything.get, lambda path: True) == {}
    wanted = {**services.PACKAGES, **services.IMAGE_PACKAGES}
    assert services.missing_packages(everything.get, lambda path: True, wanted) == {
        "debootstrap": "debootstrap"
    }
    assert services.parse_args(["install", "--image"]) == Install(image=True)


def test_a_dynamic_busybox_counts_as_missing() -> None:
    everything = dict.fromkeys(services.PACKAGES, "/usr/bin/tool")
    assert services.missing_packages(everything.get, lambda path: False) == {
        "busybox": "busybox-static"
    }
    assert services.missing_packages(everything.get, lambda path: True) == {}


def test_static_elf_is_told_from_a_dynamic_one() -> None:
    busybox = shutil.which("busybox")
    assert busybox is not None, "busybox-static is missing: run `make services`"
    assert services.static_file(busybox)
    assert not services.static_file(sys.executable)  # CPython has a dynamic loader
    assert not services.is_static_elf(b"#!/bin/sh\necho not an ELF\n")


def test_apt_installs_only_the_named_packages() -> None:
    assert services.apt_command(["docker.io"]) == [
        "apt-get",
        "install",
        "-y",
        "--no-install-recommends",
        "docker.io",
    ]


def test_mounts_under_the_state_directory_deepest_first() -> None:
    mountinfo = (
        "22 1 8:1 / / rw - ext4 /dev/vda rw\n"
        "80 22 0:4 net:[1] /tmp/s/docker-exec/netns/default rw - nsfs nsfs rw\n"
        "81 22 0:50 / /tmp/s/docker-data/overlay2/abc/merged rw - overlay overlay rw\n"
        "82 22 0:51 / /tmp/s rw - tmpfs tmpfs rw\n"
        "83 22 0:52 / /tmp/s2/other rw - tmpfs tmpfs rw\n"
    )
    assert services.mounts_under(mountinfo, Path("/tmp/s")) == [
        Path("/tmp/s/docker-data/overlay2/abc/merged"),
        Path("/tmp/s/docker-exec/netns/default"),
        Path("/tmp/s"),
    ]


def test_installed_azurite_is_the_pinned_one() -> None:
    """``make test`` ran ``npm ci``: node_modules holds the version package.json pins, and
    package-lock.json pins every package with an integrity hash."""
    import json

    assert services.azurite_installed() == services.azurite_pinned() == "3.37.0"
    lock = json.loads((ROOT / "package-lock.json").read_text())
    packages = {name: entry for name, entry in lock["packages"].items() if name}
    assert packages["node_modules/azurite"]["version"] == "3.37.0"
    unpinned = [name for name, entry in packages.items() if "integrity" not in entry]
    assert unpinned == []


# --- a real run ---------------------------------------------------------------------------

CHILD = """
import os, sys, urllib.request, base64
env = {k: v for k, v in os.environ.items() if k.startswith(("CI_DEPLOY_TEST_", "DOCKER_HOST"))}
print(sorted(env))
auth = base64.b64encode(f"{env['CI_DEPLOY_TEST_REGISTRY_USER']}:"
                        f"{env['CI_DEPLOY_TEST_REGISTRY_TOKEN']}".encode()).decode()
request = urllib.request.Request(f"http://{env['CI_DEPLOY_TEST_REGISTRY']}/v2/",
                                 headers={"Authorization": f"Basic {auth}"})
with urllib.request.urlopen(request, timeout=5) as answer:
    print("registry", answer.status)
print("pid", os.getppid())
sys.exit(5)
"""


def _services(*args: str) -> list[str]:
    """The command running services.py with ``args``."""
    return [sys.executable, str(SCRIPT), *args]


def _processes_naming(text: str) -> list[int]:
    return services.processes_using(Path(text))


def _clean_env() -> dict[str, str]:
    """This test's environment without the variables ``make test`` gave it."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CI_DEPLOY_TEST_") and key != "DOCKER_HOST"
    }


def test_run_gives_the_child_the_variables_and_leaves_nothing_behind(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    done = subprocess.run(
        _services(
            "run",
            "--only",
            "registry",
            "--env-file",
            str(env_file),
            "--",
            sys.executable,
            "-c",
            CHILD,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        env=_clean_env(),
    )
    assert done.returncode == 5, done.stderr  # the child's exit code
    lines = done.stdout.splitlines()
    assert lines[0] == str(
        [
            "CI_DEPLOY_TEST_REGISTRY",
            "CI_DEPLOY_TEST_REGISTRY_TOKEN",
            "CI_DEPLOY_TEST_REGISTRY_USER",
        ]
    )
    assert lines[1] == "registry 200"
    written = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
    assert written["CI_DEPLOY_TEST_REGISTRY_USER"] == "cli"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    token = written["CI_DEPLOY_TEST_REGISTRY_TOKEN"]
    assert len(token) >= 32
    assert token not in done.stderr + done.stdout
    state = Path(done.stderr.split("(", 1)[1].split(")", 1)[0])
    assert state.name.startswith("ci-deploy-services-")
    assert not state.exists()
    assert _processes_naming(str(state)) == []


def test_sigterm_stops_the_child_and_the_services(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = f"import pathlib, time; pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    process = subprocess.Popen(
        _services("run", "--only", "registry", "--", sys.executable, "-c", child),
        stderr=subprocess.PIPE,
        text=True,
        env=_clean_env(),
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM
    assert "SIGTERM: stopping the services" in err
    state = Path(err.split("(", 1)[1].split(")", 1)[0])
    assert not state.exists()
    assert _processes_naming(str(state)) == []


def _registry_run(tmp_path: Path, *, path: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    """``services.py run --only registry`` with ``PATH``; its result, and whether the command
    after ``--`` ran."""
    marker = tmp_path / "ran"
    done = subprocess.run(
        _services(
            "run", "--only", "registry", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')"
        ),
        capture_output=True,
        text=True,
        timeout=60,
        env={**_clean_env(), "PATH": path},
    )
    return done, marker.exists()


def test_a_service_that_cannot_start_fails_loudly(tmp_path: Path) -> None:
    """No registry binary on PATH: exit code 1 and what to run, the command never runs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    done, ran = _registry_run(tmp_path, path=str(bin_dir))
    assert done.returncode == 1
    assert "services: error: missing: docker-registry, htpasswd; run `make services`" in (
        done.stderr
    )
    assert not ran


def test_a_service_that_exits_fails_with_its_log_tail(tmp_path: Path) -> None:
    """A registry that exits at once: exit code 1, its exit code and its log's last lines."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker-registry"
    fake.write_text(
        "#!/bin/sh\necho 'listen tcp 127.0.0.1: bind: address already in use'\nexit 3\n"
    )
    fake.chmod(0o755)
    done, ran = _registry_run(tmp_path, path=f"{bin_dir}:{os.environ['PATH']}")
    assert done.returncode == 1
    assert not ran
    assert "services: error: registry exited with code 3 before on port" in done.stderr
    assert "the last lines of registry.log:\nlisten tcp 127.0.0.1: bind: address already" in (
        done.stderr
    )


def test_a_test_needing_a_service_fails_without_it_never_skips() -> None:
    """Run outside ``make test``, a real-engine test fails with the way to run it."""
    test = "tests/test_image_real.py::test_a_scratch_image_builds_and_its_label_reads_back"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=_clean_env(),
    )
    assert done.returncode == 1, done.stdout
    assert "1 error" in done.stdout
    assert "skipped" not in done.stdout
    assert (
        "DOCKER_HOST is not set: run the tests through `make test`, which starts the real "
        "Docker engine, registry and Azurite"
    ) in done.stdout
