"""App Platform previews end to end: the real entrypoint, started as the runner starts it,
against the App Platform emulator (every request checked against the DO spec by the
``do_emulator`` fixture) and the fake GitHub API: a preview's whole life (open, push, close)
with its PR comment and ``preview/pr-<n>`` GitHub Deployments, a second repository's PR with
the same number, a preview deleted by hand between runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ci_deploy.digitalocean.preview import preview_app_name
from ci_deploy.digitalocean.rules import MARKER_ENV
from ci_deploy.preview import PullRequest
from ci_deploy_testkit.do_emulator import DEMO_REPO, AppPlatformEmulator
from ci_deploy_testkit.github import FakeGitHub
from ci_deploy_testkit.localrun import pull_request_event, runner_environment
from tests.actionrun import NO_SETTLE_WINDOW, Step, change, example_repo, run_in
from tests.gitrepo import GitRepo

REPO = "example/astro-project"
BRANCH = "fix/x"


def pr_run(
    repo: GitRepo,
    emu: AppPlatformEmulator,
    action: str,
    *,
    number: int = 5,
    repository: str = REPO,
    github: FakeGitHub | None = None,
) -> Step:
    """The action as the runner starts it for a ``pull_request`` event."""
    emu.set_branch_head(DEMO_REPO, BRANCH, repo.head())  # what a build of the branch records
    inputs = {
        "platform": "digitalocean",
        "api-url": emu.api_url,
        "app-id": emu.app_id,
        "action": "preview-delete" if action == "closed" else "preview",
        **({"github-token": github.token} if github else {}),
        **NO_SETTLE_WINDOW,
    }
    environ = runner_environment(
        repo.path,
        repo.path.parent / f"runner-{repo.path.name}-{action}-{len(emu.requests)}",
        inputs,
        event_name="pull_request",
        event=pull_request_event(
            number, repo.head(), repo.first, action=action, branch=BRANCH, repository=repository
        ),
        sha=repo.head(),
        ref=f"refs/pull/{number}/merge",
        repository=repository,
        env={
            "DIGITALOCEAN_TOKEN": emu.token,
            "GITHUB_HEAD_REF": BRANCH,
            **({"GITHUB_API_URL": github.api_url} if github else {}),
        },
    )
    return run_in(environ)


def pr_repo(path: Path) -> GitRepo:
    repo = example_repo(path)
    repo.first = repo.head()  # type: ignore[attr-defined]
    change(repo)
    return repo


def previews(emu: AppPlatformEmulator) -> list[dict[str, Any]]:
    return [a for a in emu.apps() if a["id"] != emu.app_id]


def marker(app: dict[str, Any]) -> str:
    return next(e["value"] for e in app["spec"]["envs"] if e["key"] == MARKER_ENV)


def test_a_previews_whole_life_open_push_close_with_its_comment_and_github_deployments(
    tmp_path: Path, do_emulator: AppPlatformEmulator, github: FakeGitHub
) -> None:
    repo = pr_repo(tmp_path / "workspace")

    opened = pr_run(repo, do_emulator, "opened", github=github)

    assert opened.result.returncode == 0, opened.log
    [preview] = previews(do_emulator)
    pr = PullRequest(REPO, 5, template=do_emulator.app_id)
    assert preview["spec"]["name"] == preview_app_name(pr)
    assert marker(preview) == pr.tag
    assert preview["spec"]["services"][0]["github"]["branch"] == BRANCH
    assert opened.outputs["preview-deployment-id"] == preview["id"]
    assert opened.outputs["status"] == "deployed"
    opened_sha = repo.head()

    change(repo)
    pushed = pr_run(repo, do_emulator, "synchronize", github=github)

    assert pushed.result.returncode == 0, pushed.log
    assert [p["id"] for p in previews(do_emulator)] == [preview["id"]]
    active = do_emulator.app(preview["id"])["active_deployment"]
    assert active["services"][0]["source_commit_hash"] == repo.head()
    assert (pushed.outputs["status"], pushed.outputs["deploy-id"]) == ("deployed", active["id"])

    closed = pr_run(repo, do_emulator, "closed", github=github)

    assert closed.result.returncode == 0, closed.log
    assert previews(do_emulator) == []
    assert closed.outputs["status"] == "deleted"
    assert do_emulator.app()["active_deployment"], "the template is untouched"
    for step in (opened, pushed, closed):
        assert step.titles("warning") == [], step.log
        assert do_emulator.token not in step.result.stdout.replace(
            f"::add-mask ::{do_emulator.token}", ""
        )
    made = github.deployments
    assert [(d["environment"], d["transient_environment"]) for d in made] == [
        ("preview/pr-5", True),
        ("preview/pr-5", True),
    ]
    assert [d["sha"] for d in made] == [opened_sha, repo.head()]
    for deployment in made:
        states = [s["state"] for s in github.statuses_of(deployment["id"])]
        assert states == ["in_progress", "success", "inactive"]
    [comment] = github.comments_of(REPO, 5)
    assert "## 🗑️ Preview deleted" in comment["body"]
    assert preview["id"] in comment["body"]


def test_a_second_repositorys_pull_request_with_the_same_number_gets_its_own_app(
    tmp_path: Path, do_emulator: AppPlatformEmulator
) -> None:
    ours = pr_repo(tmp_path / "ours")
    theirs = pr_repo(tmp_path / "theirs")

    first = pr_run(ours, do_emulator, "opened")
    second = pr_run(theirs, do_emulator, "opened", repository="other/astro-project")

    assert first.result.returncode == 0, first.log
    assert second.result.returncode == 0, second.log
    assert len(previews(do_emulator)) == 2
    assert first.outputs["preview-name"] != second.outputs["preview-name"]

    closed = pr_run(theirs, do_emulator, "closed", repository="other/astro-project")

    assert closed.result.returncode == 0, closed.log
    assert [p["id"] for p in previews(do_emulator)] == [first.outputs["preview-deployment-id"]]


def test_a_preview_deleted_by_hand_between_runs_is_made_again(
    tmp_path: Path, do_emulator: AppPlatformEmulator
) -> None:
    repo = pr_repo(tmp_path / "workspace")
    opened = pr_run(repo, do_emulator, "opened")
    assert opened.result.returncode == 0, opened.log
    do_emulator.delete_app(opened.outputs["preview-deployment-id"])  # in the control panel

    change(repo)
    pushed = pr_run(repo, do_emulator, "synchronize")

    assert pushed.result.returncode == 0, pushed.log
    [preview] = previews(do_emulator)
    assert preview["id"] != opened.outputs["preview-deployment-id"]
    assert preview["spec"]["name"] == opened.outputs["preview-name"], "the name is free again"
    assert pushed.outputs["preview-deployment-id"] == preview["id"]
    assert pushed.outputs["status"] == "deployed"

    closed = pr_run(repo, do_emulator, "closed")
    again = pr_run(repo, do_emulator, "closed")

    assert closed.outputs["status"] == "deleted"
    assert (again.result.returncode, again.outputs["status"]) == (0, "skipped")
    assert again.titles("notice") == ["No preview"]
