"""``action: matrix`` and deploys fed by the config file, in process against the emulator.

A monorepo holds two Astro projects, ``projects/sales`` and ``projects/marketing``; the
config file maps ``main`` to the production Deployments and ``develop`` to sales' staging
one. The real Astro client talks to the emulator (three Deployments, each its own deploy
history) on a fake clock; every request is checked against the spec at teardown.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.github import FakeGitHub
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import Step, api_posts
from tests.gitrepo import GitRepo
from tests.inprocess import run_action
from tests.monorepo import CONFIG, add_deployments, edit, monorepo


@pytest.fixture
def emulator(astro: Emulator) -> Emulator:
    add_deployments(astro)
    return astro


def matrix(repo: GitRepo, emulator: Emulator, before: str, ref: str = "refs/heads/main") -> Step:
    return run_action(
        repo,
        emulator,
        {"action": "matrix", "deployment-id": ""},
        event=push_event(before, repo.head()),
        ref=ref,
    )


def listed(step: Step) -> list[str]:
    return [entry["deployment"] for entry in json.loads(step.outputs["matrix"])["include"]]


def test_a_change_in_one_project_lists_only_its_deployment(
    tmp_path: Path, emulator: Emulator
) -> None:
    repo = monorepo(tmp_path / "workspace")
    before = edit(repo, "sales")

    step = matrix(repo, emulator, before)

    assert step.result.returncode == 0, step.log
    assert json.loads(step.outputs["matrix"]) == {
        "include": [
            {
                "deployment": "dep-sales",
                "deployment-id": "dep-sales",
                "deployment-name": "",
                "root-folder": "projects/sales",
                "description": "Sales DAGs",
            }
        ]
    }
    assert (step.outputs["matrix-count"], step.outputs["status"]) == ("1", "planned")
    assert api_posts(emulator) == [], "a matrix run creates nothing"
    assert all(emulator.deploys(d) == [] for d in ("dep-sales", "dep-marketing"))
    assert "| Deployment dep-marketing (projects/marketing) | no | skip:" in step.result.summary
    assert "(projects/sales) | no | deployed from develop only |" in step.result.summary


def test_develop_feeds_the_staging_deployment(tmp_path: Path, emulator: Emulator) -> None:
    repo = monorepo(tmp_path / "workspace")
    before = edit(repo, "sales")
    edit(repo, "marketing")

    step = matrix(repo, emulator, before, ref="refs/heads/develop")

    assert step.result.returncode == 0, step.log
    assert listed(step) == ["sales staging"]
    assert json.loads(step.outputs["matrix"])["include"][0]["deployment-name"] == "sales staging"


def test_each_deployment_is_compared_with_the_commit_it_runs(
    tmp_path: Path, emulator: Emulator
) -> None:
    """The base of each entry is its own deploy's: a change an earlier run never deployed to
    sales is listed, though the event's own range touches only marketing."""
    repo = monorepo(tmp_path / "workspace")
    first = repo.head()
    seeded = run_action(
        repo,
        emulator,
        {"deployment-id": "dep-sales", "deploy-type": "dags-only"},
        event=push_event("0" * 40, first),
    )
    assert seeded.outputs["status"] == "deployed", seeded.log
    edit(repo, "sales")  # pushed, but its run failed before it deployed anything
    before = edit(repo, "marketing")

    step = matrix(repo, emulator, before)

    assert step.result.returncode == 0, step.log
    assert listed(step) == ["dep-sales", "dep-marketing"]
    assert f"Comparing with deploy {emulator.deploys('dep-sales')[0]['id']}" in step.log


def test_the_deploy_job_deploys_its_entry_to_the_right_deployment(
    tmp_path: Path, emulator: Emulator
) -> None:
    repo = monorepo(tmp_path / "workspace")
    before = edit(repo, "sales")
    (entry,) = json.loads(matrix(repo, emulator, before).outputs["matrix"])["include"]

    # The next job: deployment-id and deployment-name from the matrix entry, as in the README.
    step = run_action(
        repo,
        emulator,
        {"deployment-id": entry["deployment-id"], "deployment-name": entry["deployment-name"]},
        event=push_event(before, repo.head()),
    )

    assert step.result.returncode == 0, step.log
    assert (step.outputs["status"], step.outputs["deploy-type"]) == ("deployed", "DAG_ONLY")
    assert "Options from .astro/ci-deploy.yaml deployments[0]: description, root-folder" in (
        step.log
    )
    (deploy,) = emulator.deploys("dep-sales")
    assert (deploy["id"], deploy["status"]) == (step.outputs["deploy-id"], "DEPLOYED")
    assert str(deploy["description"]).startswith("Sales DAGs")
    assert emulator.deploys("dep-marketing") == emulator.deploys("dep-sales-staging") == []
    (blob,) = emulator.blobs.values()
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        names = tar.getnames()
    assert "dags/sales_dag.py" in names
    assert "dags/marketing_dag.py" not in names


def test_a_bad_config_file_is_one_clear_error_naming_the_file_and_field(
    tmp_path: Path, emulator: Emulator
) -> None:
    repo = monorepo(
        tmp_path / "workspace",
        CONFIG.replace("deploy-type: dags-only", "deploy-type: dag-only"),
    )
    before = edit(repo, "sales")

    step = matrix(repo, emulator, before)

    assert step.result.returncode == 1
    (error,) = step.commands("error")
    assert error.properties == {
        "title": "Invalid .astro/ci-deploy.yaml",
        "file": ".astro/ci-deploy.yaml",
    }
    assert error.message == (
        "deployments[2].deploy-type: must be one of infer, dags-only, image-and-dags,"
        " image-only, bundle; got 'dag-only'"
    )
    assert (step.outputs["status"], step.outputs["matrix"]) == ("failed", "")
    assert emulator.requests == [], "nothing was asked of any Deployment"


def test_an_entrys_option_that_does_not_fit_the_steps_inputs_names_the_entry(
    tmp_path: Path, emulator: Emulator
) -> None:
    repo = monorepo(
        tmp_path / "workspace", CONFIG.replace("description: Sales DAGs", "bundle-type: dbt")
    )
    before = edit(repo, "sales")

    step = matrix(repo, emulator, before)

    assert step.result.returncode == 1
    (error,) = step.commands("error")
    assert error.message == (
        "deployments[0].bundle-type: is only used with deploy-type: bundle; deploy-type is"
        " infer: remove bundle-type or set deploy-type to bundle"
    )
    assert emulator.requests == []


def test_a_deployment_that_cannot_be_read_fails_the_matrix_naming_it(
    tmp_path: Path, emulator: Emulator
) -> None:
    repo = monorepo(tmp_path / "workspace", CONFIG.replace("dep-marketing", "dep-gone"))
    before = edit(repo, "marketing")
    edit(repo, "sales")

    step = matrix(repo, emulator, before)

    assert step.result.returncode == 1
    assert step.titles("error") == ["Matrix incomplete"]
    assert "Deployment dep-gone (projects/marketing):" in step.commands("error")[0].message
    assert listed(step) == ["dep-sales"], "the others are still decided"
    assert api_posts(emulator) == []


def test_a_deploy_whose_deployment_has_no_entry_takes_only_the_steps_inputs(
    tmp_path: Path, emulator: Emulator
) -> None:
    repo = monorepo(tmp_path / "workspace")
    before = edit(repo, "sales")

    step = run_action(
        repo,
        emulator,
        {"deployment-id": "dep-sales-staging", "root-folder": "projects/sales"},
        event=push_event(before, repo.head()),
    )

    assert step.result.returncode == 0, step.log
    assert "Options from" not in step.log
    assert step.outputs["deploy-type"] == "DAG_ONLY"


def test_a_config_file_named_by_the_step_must_exist(tmp_path: Path, emulator: Emulator) -> None:
    repo = monorepo(tmp_path / "workspace")

    step = run_action(repo, emulator, {"deployment-id": "dep-sales", "config": "ci/astro.yaml"})

    assert step.result.returncode == 1
    (error,) = step.commands("error")
    assert error.message.startswith("the file does not exist, and the config input names it")
    assert emulator.requests == []


def test_a_matrix_on_a_pull_request_writes_no_comment_for_its_entries(
    tmp_path: Path, astro: Emulator, github: FakeGitHub
) -> None:
    add_deployments(astro)
    repo = monorepo(tmp_path / "workspace")
    before = edit(repo, "sales")
    edit(repo, "marketing")
    event = {
        "number": 7,
        "pull_request": {
            "number": 7,
            "base": {"sha": before, "ref": "main"},
            "head": {"sha": repo.head(), "ref": "feature/x"},
        },
    }

    step = run_action(
        repo,
        astro,
        {"action": "matrix", "deployment-id": "", "github-token": github.token},
        event_name="pull_request",
        event=event,
        ref="refs/pull/7/merge",
        env={"GITHUB_API_URL": github.api_url},
    )

    assert step.result.returncode == 0, step.log
    assert step.outputs["matrix-count"] == "2"
    assert github.requests == [], "an entry's plan is no Deployment's PR comment"
