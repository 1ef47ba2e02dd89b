"""Pull-request previews end to end: the real entrypoint, started as the runner starts it,
against the emulator on 127.0.0.1 and a fake Docker engine (the first deploy to a preview
builds and pushes the image). Every API request is checked against the spec (the
``emulator`` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ci_deploy.preview import PullRequest
from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.github import FakeGitHub
from ci_deploy_testkit.localrun import pull_request_event
from tests.actionrun import Step, change, example_repo, run_action
from tests.fake_docker import FakeDockerEngine
from tests.gitrepo import GitRepo

REPO = "example/astro-project"
SECRET = "preview-db-secret-value"


@pytest.fixture
def docker(emulator: Emulator) -> Iterator[FakeDockerEngine]:
    with FakeDockerEngine(on_push=emulator.record_push) as engine:
        yield engine


@pytest.fixture
def template(emulator: Emulator) -> dict[str, Any]:
    """The emulator's Deployment as a template with worker queues and a secret variable."""
    emulator.update_deployment(
        emulator.deployment_id,
        name="analytics",
        schedulerSize="MEDIUM",
        defaultTaskPodCpu="0.5",
        defaultTaskPodMemory="1Gi",
        workerQueues=[
            {
                "id": "q1",
                "name": "default",
                "isDefault": True,
                "astroMachine": "A10",
                "minWorkerCount": 1,
                "maxWorkerCount": 5,
                "workerConcurrency": 10,
                "podCpu": "2",
                "podMemory": "4Gi",
            }
        ],
        environmentVariables=[
            {"key": "PLAIN", "isSecret": False, "value": "1", "updatedAt": "2026-01-01T00:00:00Z"},
            {"key": "DB_PASSWORD", "isSecret": True, "updatedAt": "2026-01-01T00:00:00Z"},
        ],
    )
    return emulator.deployment(emulator.deployment_id)


def pr_run(
    repo: GitRepo,
    emulator: Emulator,
    docker: FakeDockerEngine,
    action: str,
    *,
    number: int = 5,
    repository: str = REPO,
    inputs: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Step:
    event = pull_request_event(
        number, repo.head(), repo.first, action=action, branch="fix/x", repository=repository
    )
    step_inputs = {
        "action": "preview-delete" if action == "closed" else "preview",
        **({} if action == "closed" else {"preview-env": f"DB_PASSWORD={SECRET}"}),
        **(inputs or {}),
    }
    return run_action(
        repo,
        emulator,
        step_inputs,
        event_name="pull_request",
        event=event,
        ref=f"refs/pull/{number}/merge",
        env={
            "DOCKER_HOST": docker.base_url,
            "GITHUB_REPOSITORY": repository,
            "GITHUB_HEAD_REF": "fix/x",
            **(env or {}),
        },
    )


def previews(emulator: Emulator) -> list[dict[str, Any]]:
    return [d for d in emulator.deployments() if d["id"] != emulator.deployment_id]


def pr_repo(path: Path) -> GitRepo:
    repo = example_repo(path)
    repo.first = repo.head()  # type: ignore[attr-defined]
    change(repo)
    return repo


def test_a_previews_whole_life_open_push_push_close(
    tmp_path: Path, emulator: Emulator, docker: FakeDockerEngine, template: dict[str, Any]
) -> None:
    repo = pr_repo(tmp_path / "workspace")
    emulator.rollout_seconds = 1.0  # the preview is CREATING for a second: the run waits

    opened = pr_run(repo, emulator, docker, "opened")

    assert opened.result.returncode == 0, opened.log
    [preview] = previews(emulator)
    pr = PullRequest(REPO, 5, template=template["id"])
    assert preview["description"].endswith(pr.tag)
    assert preview["name"].startswith("analytics PR #5 ")
    assert preview["isDevelopmentMode"] is True
    assert preview["isHighAvailability"] is False
    assert (preview["schedulerSize"], preview["defaultTaskPodCpu"]) == ("MEDIUM", "0.5")
    assert preview["workerQueues"][0]["astroMachine"] == "A10"
    variables = {v["key"]: v for v in preview["environmentVariables"]}
    assert variables["PLAIN"]["value"] == "1"
    assert variables["DB_PASSWORD"]["isSecret"] is True
    assert "not made yet" in opened.log
    assert SECRET not in opened.log.replace(f"::add-mask ::{SECRET}", "")
    out = opened.outputs
    assert out["preview-deployment-id"] == preview["id"]
    assert out["preview-name"] == preview["name"]
    assert out["deployment-url"] == preview["uiUrl"]
    assert (out["status"], out["deploy-type"], out["base-source"]) == (
        "deployed",
        "IMAGE_AND_DAG",
        "none",
    )
    [first] = emulator.deploys(preview["id"])
    assert first["status"] == "DEPLOYED"
    assert len(emulator.deploys(template["id"])) == 1, "the template got no deploy"

    emulator.update_deployment(preview["id"], hibernating=True)  # asleep between pushes
    change(repo)
    pushed = pr_run(repo, emulator, docker, "synchronize")

    assert pushed.result.returncode == 0, pushed.log
    assert [p["id"] for p in previews(emulator)] == [preview["id"]]
    assert (pushed.outputs["deploy-type"], pushed.outputs["base-source"]) == (
        "DAG_ONLY",
        "deployed",
    )
    assert pushed.outputs["preview-deployment-id"] == preview["id"]
    assert "The Deployment is hibernating: waking it with a hibernation override." in pushed.log
    assert emulator.hibernation_override(preview["id"]) is None, "the schedule applies again"

    change(repo, "requirements.txt", "\n# pinned\n")
    again = pr_run(repo, emulator, docker, "synchronize")

    assert again.result.returncode == 0, again.log
    assert again.outputs["deploy-type"] in ("IMAGE_ONLY", "IMAGE_AND_DAG")
    assert len(emulator.deploys(preview["id"])) == 3
    creates = [
        r for r in emulator.requests if r.method == "POST" and r.path.endswith("deployments")
    ]
    assert len(creates) == 1, "the preview was created once"

    closed = pr_run(repo, emulator, docker, "closed")

    assert closed.result.returncode == 0, closed.log
    assert previews(emulator) == []
    assert closed.outputs["status"] == "deleted"
    assert closed.outputs["preview-deployment-id"] == preview["id"]
    assert emulator.deployment(template["id"])["status"] == "HEALTHY"


def test_a_second_repositorys_pull_request_with_the_same_number_gets_its_own_preview(
    tmp_path: Path, emulator: Emulator, docker: FakeDockerEngine, template: dict[str, Any]
) -> None:
    ours = pr_repo(tmp_path / "ours")
    theirs = pr_repo(tmp_path / "theirs")

    first = pr_run(ours, emulator, docker, "opened")
    second = pr_run(theirs, emulator, docker, "opened", repository="other/astro-project")

    assert first.result.returncode == 0, first.log
    assert second.result.returncode == 0, second.log
    made = {p["id"]: p for p in previews(emulator)}
    assert len(made) == 2
    assert first.outputs["preview-deployment-id"] != second.outputs["preview-deployment-id"]
    assert first.outputs["preview-name"] != second.outputs["preview-name"]

    closed = pr_run(theirs, emulator, docker, "closed", repository="other/astro-project")

    assert closed.result.returncode == 0, closed.log
    assert [p["id"] for p in previews(emulator)] == [first.outputs["preview-deployment-id"]]


def test_a_preview_deleted_by_hand_between_runs_is_recreated(
    tmp_path: Path, emulator: Emulator, docker: FakeDockerEngine, template: dict[str, Any]
) -> None:
    repo = pr_repo(tmp_path / "workspace")
    opened = pr_run(repo, emulator, docker, "opened")
    assert opened.result.returncode == 0, opened.log
    emulator.delete_deployment(opened.outputs["preview-deployment-id"])

    change(repo)
    pushed = pr_run(repo, emulator, docker, "synchronize")

    assert pushed.result.returncode == 0, pushed.log
    [preview] = previews(emulator)
    assert preview["id"] != opened.outputs["preview-deployment-id"]
    assert pushed.outputs["preview-deployment-id"] == preview["id"]
    assert (pushed.outputs["deploy-type"], pushed.outputs["base-source"]) == (
        "IMAGE_AND_DAG",
        "none",
    )


def test_closing_a_pull_request_without_a_preview_is_a_notice(
    tmp_path: Path, emulator: Emulator, docker: FakeDockerEngine
) -> None:
    repo = pr_repo(tmp_path / "workspace")

    closed = pr_run(repo, emulator, docker, "closed")

    assert closed.result.returncode == 0, closed.log
    assert closed.titles("notice") == ["No preview"]
    assert closed.outputs["status"] == "skipped"
    assert [d["id"] for d in emulator.deployments()] == [emulator.deployment_id]


def test_a_forks_pull_request_is_one_clear_error(
    tmp_path: Path, emulator: Emulator, docker: FakeDockerEngine
) -> None:
    repo = pr_repo(tmp_path / "workspace")
    event = pull_request_event(9, repo.head(), repo.first, head_repository="someone/astro-project")

    step = run_action(
        repo, emulator, {"action": "preview"}, event_name="pull_request", event=event, token=""
    )

    assert step.result.returncode == 1
    assert step.titles("error") == ["No preview for a fork's pull request"]
    assert previews(emulator) == []
    assert not [r for r in emulator.requests if r.path.startswith("/v1/")]


def test_a_previews_life_on_github_one_comment_and_a_transient_environment(
    tmp_path: Path,
    emulator: Emulator,
    docker: FakeDockerEngine,
    template: dict[str, Any],
    github: FakeGitHub,
) -> None:
    repo = pr_repo(tmp_path / "workspace")
    on_github = {"github-token": github.token}
    env = {"GITHUB_API_URL": github.api_url}

    opened = pr_run(repo, emulator, docker, "opened", inputs=on_github, env=env)
    change(repo)
    pushed = pr_run(repo, emulator, docker, "synchronize", inputs=on_github, env=env)
    closed = pr_run(repo, emulator, docker, "closed", inputs=on_github, env=env)

    for step in (opened, pushed, closed):
        assert step.result.returncode == 0, step.log
        assert step.titles("warning") == [], step.log
    preview_url = opened.outputs["deployment-url"]
    # one GitHub Deployment per deploy, to the PR's own transient environment
    made = github.deployments
    assert [(d["environment"], d["transient_environment"]) for d in made] == [
        ("preview/pr-5", True),
        ("preview/pr-5", True),
    ]
    assert [d["sha"] for d in made] == [opened_sha(opened), repo.head()]
    for deployment in made:
        states = [(s["state"], s["environment_url"]) for s in github.statuses_of(deployment["id"])]
        assert states[:2] == [("in_progress", preview_url), ("success", preview_url)]
        assert states[2:] == [("inactive", "")], "the deleted preview's environment is inactive"
    # one living comment, updated by every run, last saying the preview was deleted
    [comment] = github.comments_of(REPO, 5)
    assert "## 🗑️ Preview deleted" in comment["body"]
    assert opened.outputs["preview-deployment-id"] in comment["body"]


def opened_sha(step: Step) -> str:
    """The commit a run deployed, from its summary's commit row."""
    [line] = [row for row in step.result.summary.splitlines() if row.startswith("| Commit |")]
    return line.split("/commit/")[1].split(")")[0]


def test_a_scheduled_cleanup_asks_github_which_pull_requests_are_open(
    tmp_path: Path,
    emulator: Emulator,
    docker: FakeDockerEngine,
    template: dict[str, Any],
    github: FakeGitHub,
) -> None:
    repo = pr_repo(tmp_path / "workspace")
    for number in (5, 6):
        made = pr_run(repo, emulator, docker, "opened", number=number)
        assert made.result.returncode == 0, made.log
    github.pulls[(REPO, 5)] = "closed"
    github.pulls[(REPO, 6)] = "open"

    step = run_action(
        repo,
        emulator,
        {"action": "preview-cleanup", "github-token": github.token},
        event_name="schedule",
        env={"GITHUB_API_URL": github.api_url, "GITHUB_REPOSITORY": REPO},
    )

    assert step.result.returncode == 0, step.log
    assert "Asking GitHub for the repository's open pull requests." in step.log
    [left] = previews(emulator)
    assert left["description"].endswith(PullRequest(REPO, 6, template=template["id"]).tag)
    assert step.outputs["status"] == "deleted"
    assert [r.path for r in github.requests] == [f"/repos/{REPO}/pulls"]


def test_a_cleanup_github_cannot_answer_deletes_nothing(
    tmp_path: Path,
    emulator: Emulator,
    docker: FakeDockerEngine,
    template: dict[str, Any],
    github: FakeGitHub,
) -> None:
    repo = pr_repo(tmp_path / "workspace")
    made = pr_run(repo, emulator, docker, "opened")
    assert made.result.returncode == 0, made.log

    step = run_action(
        repo,
        emulator,
        {"action": "preview-cleanup", "github-token": "ghs_unknown"},
        event_name="schedule",
        env={"GITHUB_API_URL": github.api_url, "GITHUB_REPOSITORY": REPO},
    )

    assert step.result.returncode == 1
    assert step.titles("error") == ["GitHub API error"]
    assert "ghs_unknown" not in step.log.replace("::add-mask ::ghs_unknown", "")
    assert len(previews(emulator)) == 1, "without the open pull requests nothing is deleted"


def test_closing_one_pull_request_leaves_a_shared_environment_of_others_active(
    tmp_path: Path,
    emulator: Emulator,
    docker: FakeDockerEngine,
    template: dict[str, Any],
    github: FakeGitHub,
) -> None:
    # environment named by the workflow, shared by every PR: not this preview's to retire
    repo = pr_repo(tmp_path / "workspace")
    on_github = {"github-token": github.token, "environment": "preview"}
    env = {"GITHUB_API_URL": github.api_url}
    for number in (5, 6):
        made = pr_run(repo, emulator, docker, "opened", number=number, inputs=on_github, env=env)
        assert made.result.returncode == 0, made.log

    closed = pr_run(repo, emulator, docker, "closed", number=5, inputs=on_github, env=env)

    assert closed.result.returncode == 0, closed.log
    assert [d["transient_environment"] for d in github.deployments] == [False, False]
    for deployment in github.deployments:
        states = [s["state"] for s in github.statuses_of(deployment["id"])]
        assert states == ["in_progress", "success"], "no PR's deployment was marked inactive"


def test_each_template_of_one_pull_request_has_its_own_preview(
    tmp_path: Path, emulator: Emulator, docker: FakeDockerEngine, template: dict[str, Any]
) -> None:
    # a monorepo's two projects, each with its template Deployment, previewed from one PR
    emulator.add_deployment("tmpl-b", name="marketing")
    repo = pr_repo(tmp_path / "workspace")
    other = {"deployment-id": "tmpl-b"}

    sales = pr_run(repo, emulator, docker, "opened")
    marketing = pr_run(repo, emulator, docker, "opened", inputs=other)

    assert sales.result.returncode == 0, sales.log
    assert marketing.result.returncode == 0, marketing.log
    assert sales.outputs["preview-deployment-id"] != marketing.outputs["preview-deployment-id"]
    assert marketing.outputs["preview-name"].startswith("marketing PR #5 ")

    closed = pr_run(repo, emulator, docker, "closed", inputs=other)

    assert closed.result.returncode == 0, closed.log
    left = [p["id"] for p in previews(emulator) if p["id"] != "tmpl-b"]
    assert left == [sales.outputs["preview-deployment-id"]]
