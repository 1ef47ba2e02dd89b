"""App Platform runs say App Platform's words: no Astro word in the log, the annotations
(workflow commands in the log) or the summary of a dry run, a deploy, a failed deploy left in
place, a rollback; in process, the real AppsPlatform over an app in memory."""

from __future__ import annotations

import re

import pytest

from ci_deploy_testkit.github import FakeGitHub
from tests.actionrun import Step, change
from tests.fake_apps import FakeApps
from tests.gitrepo import GitRepo
from tests.inprocess import run_in_process
from tests.test_do_run import APP, DO_TOKEN, apps, run
from tests.test_github_run import REPO, pr_event

__all__ = ["apps"]

#: Astro's words, where App Platform says its own: the platform, its environment noun (a
#: "Deployment", not GitHub's), its release noun before an id, its states, its UI, Airflow.
ASTRO_WORDS = re.compile(
    r"Astro|Airflow|DEPLOYED|INITIALIZED|\bDAG|Ships: nothing$"
    r"|(?<!GitHub )\bDeployments?\b(?! dep-| \| `dep-)"
    r"|\b[Dd]eploys? dep-|rollback deploy\b|new deploy\b"
)


def assert_app_platform_words(step: Step) -> None:
    """No Astro word in the log (annotations included) or the summary."""
    shown = step.log + "\n" + step.result.summary
    found = [
        f"{word.group()!r} in {line}"
        for line in shown.splitlines()
        if (word := ASTRO_WORDS.search(line)) and not line.startswith("::add-mask ::")
    ]
    assert not found, "\n".join(found)


def test_a_dry_run_says_app_platform_words(repo: GitRepo, apps: FakeApps) -> None:
    change(repo)
    step = run(repo, apps, {"dry-run": "true"})
    assert step.result.returncode == 0, step.log
    assert "Action: deploy deployment" in step.log
    assert_app_platform_words(step)


def test_a_deploy_says_app_platform_words(repo: GitRepo, apps: FakeApps) -> None:
    change(repo)
    step = run(repo, apps)
    assert step.result.returncode == 0, step.log
    assert_app_platform_words(step)


def test_a_failed_deploy_left_in_place_names_the_control_panel(
    repo: GitRepo, apps: FakeApps
) -> None:
    apps.outcomes = ["ERROR"]
    change(repo)
    step = run(repo, apps, {"rollback-on-failure": "false"})
    assert step.result.returncode == 1
    assert "check the app in the DigitalOcean control panel" in step.log
    assert_app_platform_words(step)


@pytest.mark.parametrize("pin", ["commit", "hold"])
def test_a_failed_deploy_rolled_back_says_app_platform_words(
    repo: GitRepo, apps: FakeApps, pin: str
) -> None:
    apps.outcomes = ["ERROR"]
    change(repo)
    step = run(repo, apps, {"rollback-pin": pin})
    assert step.result.returncode == 1
    assert step.outputs["rolled-back"] == "true"
    assert_app_platform_words(step)


def test_an_on_demand_rollback_says_app_platform_words(repo: GitRepo, apps: FakeApps) -> None:
    before = change(repo)
    assert run(repo, apps, before=before).result.returncode == 0
    step = run(repo, apps, {"action": "rollback"})
    assert step.result.returncode == 0, step.log
    assert_app_platform_words(step)
    dry = run(repo, apps, {"action": "rollback", "dry-run": "true"})
    assert_app_platform_words(dry)


def test_a_pr_comment_and_github_deployment_of_an_app_platform_deploy(
    repo: GitRepo, apps: FakeApps, github: FakeGitHub
) -> None:
    base = change(repo)
    apps.commit = repo.head()
    step = run_in_process(
        repo.path,
        {**APP, "github-token": github.token, "environment": "staging"},
        factory=apps.factory(),
        event_name="pull_request",
        event=pr_event(repo, base),
        ref="refs/pull/7/merge",
        env={"DIGITALOCEAN_TOKEN": DO_TOKEN, "GITHUB_API_URL": github.api_url},
    )
    assert step.result.returncode == 0, step.log
    assert_app_platform_words(step)

    (comment,) = github.comments_of(REPO, 7)
    text = comment["body"]
    assert "## ✅ Deployed to App Platform" in text
    assert "| App | [web](https://cloud.digitalocean.com/apps/app-1) |" in text
    assert "| Deployment | `dep-2` |" in text
    found = [line for line in text.splitlines() if ASTRO_WORDS.search(line)]
    assert not found, found

    (deployment,) = github.deployments
    assert (deployment["sha"], deployment["environment"]) == (repo.head(), "staging")
    assert deployment["description"] == "App Platform app web"
    statuses = github.statuses_of(deployment["id"])
    page = "https://cloud.digitalocean.com/apps/app-1"
    assert [(s["state"], s["environment_url"], s["description"]) for s in statuses] == [
        ("in_progress", page, "Deploying to App Platform"),
        ("success", page, "App Platform deployment dep-2 (deployment) is running"),
    ]


def test_warnings_of_a_successful_on_demand_rollback_go_to_the_summary(
    repo: GitRepo, apps: FakeApps
) -> None:
    before = change(repo)
    assert run(repo, apps, before=before).result.returncode == 0
    apps.warnings = [{"code": "image_source_missing_digest", "message": "no digest"}]
    step = run(repo, apps, {"action": "rollback"})
    assert step.result.returncode == 0, step.log
    assert "Rollback warning" in step.titles("warning")
    assert "Rollback warnings: image_source_missing_digest: no digest." in step.result.summary


def test_wait_false_is_not_waiting_for_the_revert(repo: GitRepo, apps: FakeApps) -> None:
    apps.outcomes = ["ERROR"]
    change(repo)
    run(repo, apps, {"rollback-pin": "hold"})
    reverted = run(repo, apps, {"action": "rollback-revert", "wait": "false"})
    assert reverted.result.returncode == 0, reverted.log
    assert apps.pinned == ""
    assert "Waiting for" not in reverted.log
    assert apps.by_id("dep-4")["phase"] != "ACTIVE"  # started, not waited for
    assert "not waited for (wait: false)" in reverted.log
    assert (reverted.outputs["status"], reverted.outputs["deploy-id"]) == ("reverted", "dep-4")
    assert_app_platform_words(reverted)
