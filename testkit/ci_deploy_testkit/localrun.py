"""Run the action on this machine the way the GitHub runner starts it.

The demo and the end-to-end tests use this: it writes an event payload, sets every declared
input as an ``INPUT_*`` variable (defaults included, as the runner does), points
``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY`` at fresh files, runs ``entrypoint.py`` as a
subprocess in the workspace, and reads back what the step wrote.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_deploy.inputs import INPUTS
from ci_deploy_testkit.ghfiles import parse_output_text

ENTRYPOINT = Path(__file__).resolve().parents[2] / "entrypoint.py"

#: Variables of the developer's shell that must not leak into a simulated step (also those of
#: the real services ``make test`` starts: a step gets ``DOCKER_HOST`` only when it is passed).
_SCRUBBED_PREFIXES = (
    "GITHUB_",
    "INPUT_",
    "RUNNER_",
    "ACTIONS_",
    "ASTRO_",
    "DOCKER_",
    "CI_DEPLOY_TEST_",
)


@dataclass(frozen=True)
class StepResult:
    """What one run of the action left behind."""

    returncode: int
    stdout: str
    stderr: str
    output_file: str
    summary: str

    @property
    def outputs(self) -> dict[str, str]:
        """The step outputs, read with the runner's file-command grammar."""
        return parse_output_text(self.output_file)


def runner_environment(
    workspace: Path,
    temp: Path,
    inputs: Mapping[str, str],
    *,
    event_name: str = "push",
    event: Mapping[str, Any] | None = None,
    sha: str = "",
    ref: str = "refs/heads/main",
    repository: str = "example/astro-project",
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment the runner gives a container action, for ``inputs`` and ``event``."""
    unknown = set(inputs) - set(INPUTS)
    if unknown:
        raise ValueError(f"not inputs of the action: {sorted(unknown)}")
    temp.mkdir(parents=True, exist_ok=True)
    event_path = temp / "event.json"
    event_path.write_text(json.dumps(event or {}), encoding="utf-8")
    output_path, summary_path = temp / "github_output", temp / "step_summary.md"
    output_path.write_text("", encoding="utf-8")
    summary_path.write_text("", encoding="utf-8")

    environ = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    environ.update(
        {
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_EVENT_NAME": event_name,
            "GITHUB_EVENT_PATH": str(event_path),
            "GITHUB_REPOSITORY": repository,
            "GITHUB_SHA": sha,
            "GITHUB_REF": ref,
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": "1",
            "GITHUB_ACTOR": "octocat",
            "GITHUB_OUTPUT": str(output_path),
            "GITHUB_STEP_SUMMARY": str(summary_path),
            "RUNNER_TEMP": str(temp),
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name, default in INPUTS.items():
        environ[f"INPUT_{name.upper()}"] = inputs.get(name, default)
    environ.update(env or {})
    return environ


def _command() -> list[str]:
    # The real entrypoint when running from a checkout; the installed package otherwise.
    if ENTRYPOINT.is_file():
        return [sys.executable, str(ENTRYPOINT)]
    return [sys.executable, "-m", "ci_deploy"]


def run_step(environ: Mapping[str, str], *, timeout: float = 300.0) -> StepResult:
    """Run ``entrypoint.py`` in ``environ`` (from :func:`runner_environment`)."""
    return finish_step(start_step(environ), environ, timeout=timeout)


def start_step(environ: Mapping[str, str]) -> subprocess.Popen[str]:
    """Start ``entrypoint.py`` in ``environ`` without waiting (to cancel it, for example)."""
    return subprocess.Popen(
        _command(),
        cwd=environ["GITHUB_WORKSPACE"],
        env=dict(environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_step(
    process: subprocess.Popen[str], environ: Mapping[str, str], *, timeout: float = 300.0
) -> StepResult:
    """Wait for a started step and read back what it wrote."""
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return StepResult(
        returncode=process.returncode,
        stdout=stdout,
        stderr=stderr,
        output_file=Path(environ["GITHUB_OUTPUT"]).read_text(encoding="utf-8"),
        summary=Path(environ["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8"),
    )


def push_event(
    before: str, after: str, *, repository: str = "example/astro-project"
) -> dict[str, Any]:
    """A push event payload for ``before..after``, shaped like GitHub's."""
    owner, name = repository.split("/", 1)
    return {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "created": before == "0" * 40,
        "deleted": False,
        "forced": False,
        "head_commit": {
            "id": after,
            "message": "Update DAGs",
            "author": {"name": "Mona Lisa", "email": "mona@example.com", "username": "mona"},
        },
        "repository": {"full_name": repository, "name": name, "owner": {"login": owner}},
        "sender": {"login": "mona"},
    }


def pull_request_event(
    number: int,
    head_sha: str,
    base_sha: str,
    *,
    action: str = "opened",
    branch: str = "feature",
    repository: str = "example/astro-project",
    head_repository: str | None = None,
) -> dict[str, Any]:
    """A pull_request event payload, shaped like GitHub's; ``head_repository`` names a fork."""
    owner, name = repository.split("/", 1)
    head_repo = head_repository or repository
    return {
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "state": "closed" if action == "closed" else "open",
            "user": {"login": "mona"},
            "head": {"ref": branch, "sha": head_sha, "repo": {"full_name": head_repo}},
            "base": {"ref": "main", "sha": base_sha, "repo": {"full_name": repository}},
        },
        "repository": {"full_name": repository, "name": name, "owner": {"login": owner}},
        "sender": {"login": "mona"},
    }
