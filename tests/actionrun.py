"""Running the real entrypoint against the emulator, for the end-to-end tests."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_deploy.report import OUTPUT_NAMES
from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.ghfiles import WorkflowCommand, parse_workflow_command
from ci_deploy_testkit.github import FakeGitHub
from ci_deploy_testkit.localrun import StepResult, push_event, run_step, runner_environment
from tests.gitrepo import GitRepo
from tests.spec import assert_github_request_matches_spec, assert_request_matches_spec

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "astro-project"
DAG = "dags/example_etl.py"


def example_repo(path: Path) -> GitRepo:
    """A repository at ``path`` holding the example Astro project, committed once."""
    repo = GitRepo(path)
    shutil.copytree(EXAMPLE, repo.path, dirs_exist_ok=True)
    repo.commit("Add the example project")
    return repo


def change(repo: GitRepo, path: str = DAG, text: str = "\n# changed\n") -> str:
    """Commit ``text`` appended to ``path``; returns the commit before."""
    before = repo.head()
    file = repo.path / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text((file.read_text() if file.exists() else "") + text)
    repo.commit(f"Change {path}")
    return before


@dataclass
class Step:
    """One run of the action: its result and its outputs."""

    result: StepResult
    outputs: dict[str, str]

    @property
    def log(self) -> str:
        return self.result.stdout + self.result.stderr

    def commands(self, name: str) -> list[WorkflowCommand]:
        """The workflow commands named ``name`` that the step printed, parsed as the runner does."""
        parsed = (parse_workflow_command(line) for line in self.result.stdout.splitlines())
        return [c for c in parsed if c is not None and c.command == name]

    def titles(self, name: str) -> list[str]:
        return [c.properties.get("title", "") for c in self.commands(name)]


def run_action(
    repo: GitRepo,
    emulator: Emulator,
    inputs: Mapping[str, str] | None = None,
    *,
    event_name: str = "push",
    event: Mapping[str, Any] | None = None,
    token: str | None = None,
    ref: str = "refs/heads/main",
    env: Mapping[str, str] | None = None,
) -> Step:
    """Run the entrypoint in ``repo`` as the runner would, against ``emulator``."""
    environ = step_environment(
        repo, emulator, inputs, event_name=event_name, event=event, token=token, ref=ref, env=env
    )
    return run_in(environ)


def run_in(environ: Mapping[str, str]) -> Step:
    """Run the entrypoint as the runner would, in ``environ`` (``runner_environment``)."""
    result = run_step(environ, timeout=120)
    outputs = result.outputs
    assert set(outputs) == set(OUTPUT_NAMES), "every output is written on every run"
    assert_no_traceback(result.stdout + result.stderr)
    return Step(result, outputs)


def assert_no_traceback(log: str) -> None:
    """The step printed no Python traceback of its own (quoted Airflow logs may hold one)."""
    assert not any(
        line.startswith("Traceback (most recent call last)") for line in log.splitlines()
    )


NO_SETTLE_WINDOW = {"verify-window": "0"}
"""The real-process steps skip the settle window unless a test asks for it: the emulator
runs on the real clock, and its 60 s would be waited out by every test. The window's own
tests (in process on a fake clock, and the end-to-end ones) set ``verify-window``."""


def step_environment(
    repo: GitRepo,
    emulator: Emulator,
    inputs: Mapping[str, str] | None = None,
    *,
    event_name: str = "push",
    event: Mapping[str, Any] | None = None,
    token: str | None = None,
    ref: str = "refs/heads/main",
    env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The runner's environment for a step in ``repo`` against ``emulator``."""
    return runner_environment(
        repo.path,
        repo.path.parent / f"runner-{repo.path.name}",
        {
            "api-url": emulator.api_url,
            "deployment-id": emulator.deployment_id,
            **NO_SETTLE_WINDOW,
            **(inputs or {}),
        },
        event_name=event_name,
        event=event or {},
        sha=repo.head(),
        ref=ref,
        env={"ASTRO_API_TOKEN": emulator.token if token is None else token, **(env or {})},
    )


def run_push(
    repo: GitRepo,
    emulator: Emulator,
    before: str,
    inputs: Mapping[str, str] | None = None,
    *,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Step:
    """Run the action for a push of ``before..HEAD``."""
    return run_action(
        repo, emulator, inputs, event=push_event(before, repo.head()), token=token, env=env
    )


def api_posts(emulator: Emulator) -> list[str]:
    return [r.path for r in emulator.requests if r.method == "POST"]


def assert_requests_match_spec(emulator: Emulator) -> None:
    """Every API request the emulator received validates against the Astro spec."""
    for request in emulator.requests:
        if request.path.startswith("/v1/"):
            assert_request_matches_spec(
                request.method,
                request.path.removeprefix("/v1"),
                request.query,
                request.headers,
                request.body or None,
            )


def assert_github_requests_match_spec(github: FakeGitHub) -> None:
    """Every request the fake GitHub API received validates against the GitHub REST subset."""
    for request in github.requests:
        assert request.path.startswith(github.base_path + "/"), request.path
        assert_github_request_matches_spec(
            request.method,
            request.path.removeprefix(github.base_path),
            request.query,
            request.headers,
            request.body or None,
        )
