"""End to end: the real entrypoint, started as the runner starts it, against the Astro
emulator and the fake GitHub API, both on 127.0.0.1.

What only a real process shows: ``GITHUB_API_URL`` and the event file read from the runner's
environment, the token masked, the warning annotation as the runner parses it, the exit code.
Every request to GitHub must match the REST API subset (the ``github`` fixture).
"""

from __future__ import annotations

from typing import Any

from ci_deploy.pr_comment import marker
from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.github import FakeGitHub
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import Step, change, run_action
from tests.gitrepo import GitRepo

REPO = "example/astro-project"
RUN_URL = "https://github.com/example/astro-project/actions/runs/1"


def on_pr(repo: GitRepo, emulator: Emulator, github: FakeGitHub, base: str, token: str) -> Step:
    event: dict[str, Any] = {
        "number": 12,
        "pull_request": {
            "number": 12,
            "base": {"sha": base, "ref": "main"},
            "head": {"sha": repo.head(), "ref": "feature/x"},
        },
    }
    return run_action(
        repo,
        emulator,
        {"dry-run": "true", "github-token": token},
        event_name="pull_request",
        event=event,
        ref="refs/pull/12/merge",
        env={"GITHUB_API_URL": github.api_url},
    )


def test_a_pr_run_creates_the_comment_a_second_updates_it_and_the_token_is_masked(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    base = change(repo)
    first = on_pr(repo, emulator, github, base, github.token)
    change(repo, text="\n# again\n")
    second = on_pr(repo, emulator, github, base, github.token)

    assert (first.result.returncode, second.result.returncode) == (0, 0), second.log
    (comment,) = github.comments_of(REPO, 12)
    assert comment["body"].startswith(marker(emulator.deployment_id))
    assert f"commit `{repo.head()[:12]}`" in comment["body"]
    assert "Deploy plan (dry run)" in comment["body"]
    assert github.token in [c.message for c in first.commands("add-mask")]
    assert [r.method for r in github.requests] == ["GET", "POST", "GET", "PATCH"]


def test_a_token_without_pull_requests_write_gives_a_warning_and_a_green_run(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    github.tokens["ghs_read_only"] = frozenset()
    base = change(repo)

    step = on_pr(repo, emulator, github, base, "ghs_read_only")

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "planned"
    assert step.titles("warning") == ["PR comment not written"]
    assert "pull-requests: write" in step.commands("warning")[0].message
    assert github.comments_of(REPO, 12) == []


def test_a_deploy_to_production_is_a_github_deployment_with_its_statuses(
    repo: GitRepo, emulator: Emulator, github: FakeGitHub
) -> None:
    def deploy(text: str) -> Step:
        before = change(repo, text=text)
        return run_action(
            repo,
            emulator,
            {"environment": "production", "github-token": github.token},
            event=push_event(before, repo.head()),
            env={"GITHUB_API_URL": github.api_url},
        )

    ok = deploy("\n# changed\n")
    emulator.unhealthy_after_finalize = True
    failed = deploy("\n# broken\n")

    assert (ok.result.returncode, failed.result.returncode) == (0, 1), failed.log
    first, second = github.deployments
    assert (first["environment"], second["sha"]) == ("production", repo.head())
    ui = emulator.deployment(emulator.deployment_id)["uiUrl"]
    for deployment, last in ((first, "success"), (second, "failure")):
        statuses = github.statuses_of(deployment["id"])
        assert [(s["state"], s["environment_url"], s["log_url"]) for s in statuses] == [
            ("in_progress", ui, RUN_URL),
            (last, ui, RUN_URL),
        ]
