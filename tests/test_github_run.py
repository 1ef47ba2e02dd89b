"""The GitHub side of a run, in process: the living PR comment and GitHub Deployments.

The real Astro platform against the emulator (fake clock) and the real GitHub client against
the fake GitHub API, both over HTTP on 127.0.0.1; every request to either must match its
spec (the ``astro`` and ``github`` fixtures check at teardown).
"""

from __future__ import annotations

from typing import Any

import pytest

from ci_deploy.pr_comment import marker
from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.github import FakeGitHub
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import DAG, Step, change
from tests.gitrepo import GitRepo
from tests.inprocess import run_action

REPO = "example/astro-project"
RUN_URL = "https://github.com/example/astro-project/actions/runs/1"


@pytest.fixture
def emulator(astro: Emulator) -> Emulator:
    return astro


def pr_event(repo: GitRepo, base: str, number: int = 7) -> dict[str, Any]:
    return {
        "number": number,
        "pull_request": {
            "number": number,
            "base": {"sha": base, "ref": "main"},
            "head": {"sha": repo.head(), "ref": "feature/x"},
        },
    }


def on_pr(
    repo: GitRepo,
    emulator: Emulator,
    github: FakeGitHub,
    base: str,
    inputs: dict[str, str] | None = None,
    *,
    token: str | None = None,
    number: int = 7,
) -> Step:
    """A dry run on a pull request, the workflow's token given as github-token."""
    return run_action(
        repo,
        emulator,
        {"dry-run": "true", "github-token": token or github.token, **(inputs or {})},
        event_name="pull_request",
        event=pr_event(repo, base, number),
        ref=f"refs/pull/{number}/merge",
        env={"GITHUB_API_URL": github.api_url},
    )


def on_push(
    repo: GitRepo,
    emulator: Emulator,
    github: FakeGitHub,
    before: str,
    inputs: dict[str, str] | None = None,
    *,
    token: str | None = None,
) -> Step:
    return run_action(
        repo,
        emulator,
        {"github-token": token or github.token, **(inputs or {})},
        event=push_event(before, repo.head()),
        env={"GITHUB_API_URL": github.api_url},
    )


# --- the living PR comment ----------------------------------------------------------------------


def test_a_pr_run_creates_the_comment_and_the_next_updates_the_same_one(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    github.add_comment(REPO, 7, "Looks good to me")
    base = change(repo)
    first = on_pr(repo, emulator, github, base)
    change(repo, text="\n# again\n")
    second = on_pr(repo, emulator, github, base)

    assert (first.result.returncode, second.result.returncode) == (0, 0), second.log
    comments = github.comments_of(REPO, 7)
    assert comments[0]["body"] == "Looks good to me"
    ours = [c for c in comments if c["body"].startswith(marker(emulator.deployment_id))]
    assert len(ours) == 1, "exactly one comment per PR and Deployment"
    body = ours[0]["body"]
    assert "Deploy plan (dry run)" in body and "`DAG_ONLY`" in body
    assert f"<code>{DAG}</code>" in body, "the files by class"
    assert f"[Workflow run]({RUN_URL})" in body
    assert f"commit `{repo.head()[:12]}`" in body, "the second run's commit"
    assert emulator.deployment(emulator.deployment_id)["uiUrl"] in body
    assert [r.method for r in github.requests] == ["GET", "POST", "GET", "PATCH"]
    assert "PR comment: https://github.com/example/astro-project/pull/7" in second.log


def test_each_deployment_keeps_its_own_comment_on_a_pr(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    emulator.add_deployment("staging-deployment")
    base = change(repo)
    on_pr(repo, emulator, github, base)
    on_pr(repo, emulator, github, base, {"deployment-id": "staging-deployment"})
    on_pr(repo, emulator, github, base)

    bodies = [c["body"] for c in github.comments_of(REPO, 7)]
    assert [b.split("\n", 1)[0] for b in bodies] == [
        marker(emulator.deployment_id),
        marker("staging-deployment"),
    ]


def test_a_token_without_pull_requests_write_is_a_warning_and_the_run_is_green(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    github.tokens["ghs_read_only"] = frozenset()
    base = change(repo)

    step = on_pr(repo, emulator, github, base, token="ghs_read_only")

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "planned"
    (warning,) = [c for c in step.commands("warning") if "PR comment" in c.properties["title"]]
    assert "HTTP 403" in warning.message and "pull-requests: write" in warning.message
    assert github.comments_of(REPO, 7) == []


def test_pr_comment_false_sends_nothing_to_github(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    base = change(repo)
    step = on_pr(repo, emulator, github, base, {"pr-comment": "false"})
    assert step.result.returncode == 0
    assert github.requests == []


def test_a_secondary_rate_limit_is_waited_out(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    github.rate_limited = 1
    base = change(repo)
    step = on_pr(repo, emulator, github, base)
    assert step.result.returncode == 0
    assert "GitHub: list comments: HTTP 403, retrying in 0.0 s" in step.log
    assert len(github.comments_of(REPO, 7)) == 1


def test_without_a_github_token_the_comment_is_a_warning(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    base = change(repo)
    step = run_action(
        repo,
        emulator,
        {"dry-run": "true"},  # github-token keeps its unexpanded default; no GITHUB_TOKEN
        event_name="pull_request",
        event=pr_event(repo, base),
        env={"GITHUB_API_URL": github.api_url},
    )
    assert step.result.returncode == 0
    assert "No GitHub token" in " ".join(c.message for c in step.commands("warning"))
    assert github.requests == []


def test_a_failed_run_says_so_in_the_comment(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    base = change(repo)
    step = on_pr(repo, emulator, github, base, {"deployment-id": "no-such-deployment"})
    assert step.result.returncode == 1
    (comment,) = github.comments_of(REPO, 7)
    assert comment["body"].startswith(marker("no-such-deployment"))
    assert "Deploy failed" in comment["body"]
    # the step's own report first: a slow GitHub never delays it, nor a cancel cuts it off
    assert step.log.index("::error title=Not found on Astro") < step.log.index("PR comment:")


# --- GitHub Deployments -------------------------------------------------------------------------


def test_a_deploy_with_an_environment_is_a_github_deployment_in_progress_then_success(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    before = change(repo)
    step = on_push(repo, emulator, github, before, {"environment": "production"})

    assert step.result.returncode == 0, step.log
    (deployment,) = github.deployments
    assert (deployment["sha"], deployment["environment"]) == (repo.head(), "production")
    assert (deployment["auto_merge"], deployment["required_contexts"]) == (False, [])
    assert deployment["transient_environment"] is False
    statuses = github.statuses_of(deployment["id"])
    ui = emulator.deployment(emulator.deployment_id)["uiUrl"]
    assert [(s["state"], s["environment_url"], s["log_url"]) for s in statuses] == [
        ("in_progress", ui, RUN_URL),
        ("success", ui, RUN_URL),
    ]
    assert step.outputs["deploy-id"] in statuses[-1]["description"]
    # in_progress went out before the Astro deploy was created, success after its rollout
    log = step.log
    assert log.index(": in progress") < log.index("Created deploy") < log.index(": success")


def test_a_failed_rollout_that_was_rolled_back_is_a_failure_status(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    emulator.unhealthy_after_finalize = True
    before = change(repo)
    step = on_push(repo, emulator, github, before, {"environment": "production"})

    assert step.result.returncode == 1
    assert step.outputs["status"] == "rolled-back"
    (deployment,) = github.deployments
    states = [s["state"] for s in github.statuses_of(deployment["id"])]
    assert states == ["in_progress", "failure"]
    assert "rolled back" in github.statuses_of(deployment["id"])[-1]["description"]


def test_skips_and_dry_runs_make_no_github_deployment(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    before = change(repo, "README.md", "\nnot relevant\n")
    skipped = on_push(repo, emulator, github, before, {"environment": "production"})
    before = change(repo)
    planned = on_push(
        repo, emulator, github, before, {"environment": "production", "dry-run": "true"}
    )

    assert (skipped.outputs["status"], planned.outputs["status"]) == ("skipped", "planned")
    assert github.requests == []


def test_a_token_without_deployments_write_is_a_warning_and_the_deploy_goes_on(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    github.tokens["ghs_no_deployments"] = frozenset({"pull-requests:write"})
    before = change(repo)
    step = on_push(
        repo, emulator, github, before, {"environment": "production"}, token="ghs_no_deployments"
    )
    assert step.result.returncode == 0
    assert step.outputs["status"] == "deployed"
    assert "GitHub Deployment not recorded" in step.titles("warning")
    assert "GitHub Deployment not updated" not in step.titles("warning")
    assert github.deployments == []
