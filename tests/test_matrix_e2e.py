"""``action: matrix`` then the deploy job, through the real entrypoint as the runner starts
it, against the emulator on 127.0.0.1 (three Deployments, each its own history)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import Step, api_posts, run_action
from tests.gitrepo import GitRepo
from tests.monorepo import CONFIG, add_deployments, edit, monorepo


@pytest.fixture
def deployments(emulator: Emulator) -> Emulator:
    add_deployments(emulator)
    return emulator


def plan(
    repo: GitRepo, emulator: Emulator, event: dict[str, Any], ref: str = "refs/heads/main"
) -> Step:
    """The matrix job's step."""
    return run_action(
        repo, emulator, {"action": "matrix", "deployment-id": ""}, event=event, ref=ref
    )


def test_the_matrix_job_lists_the_changed_project_and_the_deploy_job_deploys_it(
    tmp_path: Path, deployments: Emulator
) -> None:
    repo = monorepo(tmp_path / "workspace")
    before = edit(repo, "marketing")
    event = push_event(before, repo.head())

    planned = plan(repo, deployments, event)

    assert planned.result.returncode == 0, planned.log
    (entry,) = json.loads(planned.outputs["matrix"])["include"]
    assert (entry["deployment"], entry["root-folder"], entry["deploy-type"]) == (
        "dep-marketing",
        "projects/marketing",
        "dags-only",
    )
    assert planned.outputs["matrix-count"] == "1"
    assert api_posts(deployments) == []

    # The deploy job of the README's example: one matrix entry, the step as the runner runs it.
    step = run_action(
        repo,
        deployments,
        {"deployment-id": entry["deployment-id"], "deployment-name": entry["deployment-name"]},
        event=event,
    )

    assert step.result.returncode == 0, step.log
    assert (step.outputs["status"], step.outputs["deploy-type"]) == ("deployed", "DAG_ONLY")
    (deploy,) = deployments.deploys("dep-marketing")
    assert deploy["id"] == step.outputs["deploy-id"]
    assert deployments.deploys("dep-sales") == deployments.deploys("dep-sales-staging") == []


def test_develop_lists_staging_and_a_bad_config_fails_naming_file_and_field(
    tmp_path: Path, deployments: Emulator
) -> None:
    repo = monorepo(tmp_path / "workspace")
    before = edit(repo, "sales")
    event = push_event(before, repo.head())

    staging = plan(repo, deployments, event, ref="refs/heads/develop")
    assert staging.result.returncode == 0, staging.log
    assert [e["deployment-name"] for e in json.loads(staging.outputs["matrix"])["include"]] == [
        "sales staging"
    ]

    (repo.path / ".astro" / "ci-deploy.yaml").write_text(
        CONFIG.replace("branches: main", "branches: main\n    wait-timeout: forever")
    )
    requests = len(deployments.requests)
    bad = plan(repo, deployments, event)

    assert bad.result.returncode == 1
    (error,) = bad.commands("error")
    assert error.properties["title"] == "Invalid .astro/ci-deploy.yaml"
    assert error.message == (
        "deployments[2].wait-timeout: must be a duration such as 90, 90s, 5m or 1h; got 'forever'"
    )
    assert len(deployments.requests) == requests, "nothing was asked of any Deployment"
