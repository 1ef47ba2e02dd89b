"""The ``ci-deploy`` console command, run as a subprocess outside GitHub Actions."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ci_deploy.cli import main
from ci_deploy_testkit.emulator import Emulator
from tests.gitrepo import GitRepo

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "astro-project"
CI_DEPLOY = Path(sys.executable).parent / "ci-deploy"


def local_environment(**extra: str) -> dict[str, str]:
    """This process's environment without anything a runner would set."""
    prefixes = ("GITHUB_", "INPUT_", "RUNNER_", "ACTIONS_", "ASTRO_")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    environ.update(extra)
    return environ


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(rollout_seconds=0.1) as emu:
        yield emu


def test_console_command_is_installed() -> None:
    done = subprocess.run(
        [str(CI_DEPLOY), "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert done.stdout.strip() == "ci-deploy 0.1.0"


def test_plan_command_with_flags_outside_github(tmp_path: Path, emulator: Emulator) -> None:
    repo = GitRepo(tmp_path / "project")
    shutil.copytree(EXAMPLE, repo.path, dirs_exist_ok=True)
    repo.commit("Add the project")

    done = subprocess.run(
        [
            str(CI_DEPLOY),
            "plan",
            "--api-url",
            emulator.api_url,
            "--deployment-id",
            emulator.deployment_id,
            "--deploy-type",
            "dags-only",
        ],
        cwd=repo.path,
        env=local_environment(ASTRO_API_TOKEN=emulator.token),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "::" not in done.stdout, "no workflow commands outside GitHub"
    assert emulator.token not in done.stdout + done.stderr
    assert "status=planned" in done.stdout
    assert "deploy-type=DAG_ONLY" in done.stdout
    assert "Action: deploy DAG_ONLY" in done.stdout
    assert [r.method for r in emulator.requests] == ["GET", "GET"], "the Deployment, its history"


def test_token_is_not_a_flag(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CI_DEPLOY), "--api-token", "secret-value", "--deployment-id", "d"],
        cwd=tmp_path,
        env=local_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "unrecognized arguments: --api-token" in done.stderr


def test_missing_token_outside_github_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(CI_DEPLOY), "--deployment-id", "d"],
        cwd=tmp_path,
        env=local_environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "Invalid input 'api-token'" in done.stdout
    assert "ASTRO_API_TOKEN" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_emulator_command_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [str(CI_DEPLOY), "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=local_environment(),
    )
    try:
        assert process.stdout is not None
        banner = dict(
            line.split(": ", 1)
            for line in (process.stdout.readline().strip() for _ in range(5))
            if re.match(r"^[a-z-]+: ", line)
        )
        url = (
            f"{banner['api-url']}/organizations/{banner['organization-id']}/deployments/"
            f"{banner['deployment-id']}"
        )
        answer = httpx.get(url, headers={"Authorization": f"Bearer {banner['token']}"}, timeout=5)
        assert answer.status_code == 200
        assert answer.json()["status"] == "HEALTHY"
        assert httpx.get(url, timeout=5).status_code == 401
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_emulator_command_without_the_test_kit_says_how_to_get_it() -> None:
    """The action's image has no test kit: the command says so instead of a traceback."""
    script = (
        "import sys\n"
        "sys.modules['ci_deploy_testkit'] = None  # as if not installed\n"
        "from ci_deploy.cli import main\n"
        "sys.exit(main(['emulator']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=local_environment(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "ci-deploy-testkit package, which is not installed" in done.stderr
    assert "pip install ./testkit" in done.stderr
    assert "Traceback" not in done.stderr


def test_secrets_are_never_flags(tmp_path: Path) -> None:
    for name in ("api-token", "github-token", "preview-env", "digitalocean-token"):
        with pytest.raises(SystemExit):
            main(["deploy", f"--{name}", "x"], {})
