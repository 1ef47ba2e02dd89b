"""Pull-request previews, in process against the in-memory platform: every path of the
preview actions, and the pure rules of names, markers and cleanups."""

from __future__ import annotations

from typing import Any

from ci_deploy.github import GitHubContext
from ci_deploy.platform import Environment
from ci_deploy.preview import (
    PullRequest,
    fork_of,
    preview_name,
    pull_request_marked,
    short_hash,
    stale_previews,
)
from ci_deploy_testkit.localrun import pull_request_event
from tests.actionrun import Step, change
from tests.fakes import FakeClock, FakePlatform
from tests.gitrepo import GitRepo
from tests.inprocess import run_in_process

TEMPLATE = "dep-1"
"""The id of the in-memory platform's Deployment, the previews' template."""
REPO = "example/astro-project"
SECRET = "hunter2-preview-secret"


def preview(
    repo: GitRepo,
    platform: FakePlatform,
    inputs: dict[str, str] | None = None,
    *,
    number: int = 12,
    action: str = "opened",
    event: dict[str, Any] | None = None,
    clock: FakeClock | None = None,
) -> Step:
    run_action = {"closed": "preview-delete"}.get(action, "preview")
    return run_in_process(
        repo.path,
        # the GitHub side (comment, GitHub Deployment) is tests/test_github_run.py's
        {"action": run_action, "pr-comment": "false", **(inputs or {})},
        platform=platform,
        clock=clock,
        event_name="pull_request",
        event=event or pull_request_event(number, repo.head(), repo.head(), action=action),
    )


def error(step: Step) -> str:
    [message] = [c.message for c in step.commands("error") if not c.properties.get("file")]
    return message


# --- the pure rules ----------------------------------------------------------------------------


def test_a_preview_name_is_readable_stable_and_unique_per_repository_and_pull_request() -> None:
    pr = PullRequest(REPO, 12)
    name = preview_name("analytics", pr, 256)
    assert name == f"analytics PR #12 {short_hash(pr)}"
    assert preview_name("analytics", PullRequest(REPO, 12), 256) == name
    assert preview_name("analytics", PullRequest("other/astro-project", 12), 256) != name
    assert preview_name("analytics", PullRequest(REPO, 13), 256) != name


def test_a_long_template_name_is_cut_and_the_pull_request_and_hash_kept() -> None:
    pr = PullRequest(REPO, 12345)
    name = preview_name("x" * 300, pr, 256)
    assert len(name) == 256
    assert name.endswith(f"… PR #12345 {short_hash(pr)}")


def test_markers_are_whole_so_pull_request_1_never_matches_12() -> None:
    assert PullRequest(REPO, 1).tag not in f"x {PullRequest(REPO, 12).tag}"
    assert pull_request_marked(f"text {PullRequest(REPO, 12).tag}", REPO) == 12
    assert pull_request_marked(f"text {PullRequest('other/repo', 12).tag}", REPO) is None
    # each template of a pull request has its own preview: its own marker and name
    sales, marketing = (
        PullRequest(REPO, 12, template="dep-a"),
        PullRequest(REPO, 12, template="dep-b"),
    )
    assert sales.tag != marketing.tag and sales.tag not in marketing.tag
    assert pull_request_marked(f"x {sales.tag}", REPO, "dep-a") == 12
    assert pull_request_marked(f"x {sales.tag}", REPO, "dep-b") is None
    assert preview_name("analytics", sales, 256) != preview_name("analytics", marketing, 256)


def test_a_cleanup_deletes_only_marked_previews_of_closed_pull_requests() -> None:
    def env(id: str, description: str) -> Environment:
        return Environment(id, id, "", "HEALTHY", "", True, description=description)

    previews = [
        env("open", PullRequest(REPO, 3).tag),
        env("closed", PullRequest(REPO, 4).tag),
        env("other-repo", PullRequest("other/repo", 4).tag),
        env("look-alike", "analytics PR #4, made by hand"),
    ]
    stale = stale_previews(previews, REPO, {3})
    assert [(s.environment.id, s.number) for s in stale] == [("closed", 4)]


def test_fork_of_tells_a_forks_pull_request() -> None:
    event = pull_request_event(3, "a" * 40, "b" * 40, head_repository="someone/astro-project")
    assert fork_of(GitHubContext("pull_request", event, REPO)) == "someone/astro-project"
    same = pull_request_event(3, "a" * 40, "b" * 40)
    assert fork_of(GitHubContext("pull_request", same, REPO)) == ""


# --- action: preview ---------------------------------------------------------------------------


def test_a_new_preview_is_created_waited_for_and_given_a_full_deploy(repo: GitRepo) -> None:
    platform = FakePlatform()
    clock = FakeClock()

    step = preview(repo, platform, clock=clock)

    assert step.result.returncode == 0, step.log
    [made] = platform.previews.values()
    env = made.environment
    pr = PullRequest(REPO, 12, template=TEMPLATE)
    assert env.name == f"analytics PR #12 {short_hash(pr)}"
    assert env.description.endswith(pr.tag)
    assert "Preview of pull request #12 of example/astro-project" in env.description
    assert "The preview is CREATING, not made yet" in step.log
    assert clock.sleeps, "the run waited while the preview was being made"
    # the deploy went to the preview, everything (no commit to compare with), woken
    assert [r.kind for r in made.deploys()] == ["IMAGE_AND_DAG"]
    assert platform.deploys() == []
    assert made.awake_calls == ["wake True", "restore True"]
    assert step.outputs["status"] == "deployed"
    assert step.outputs["preview-deployment-id"] == env.id
    assert step.outputs["preview-name"] == env.name
    assert step.outputs["deployment-url"] == env.url
    assert step.outputs["base-source"] == "none"
    assert "(created)" in step.result.summary


def test_a_second_run_reuses_the_preview_and_compares_with_what_it_runs(repo: GitRepo) -> None:
    platform = FakePlatform()
    first = preview(repo, platform)
    assert first.result.returncode == 0, first.log
    change(repo)

    second = preview(repo, platform, action="synchronize")

    assert second.result.returncode == 0, second.log
    [made] = platform.previews.values()
    assert platform.names().count("create_environment") == 1
    assert [r.kind for r in made.deploys()] == ["IMAGE_AND_DAG", "DAG_ONLY"]
    assert second.outputs["base-source"] == "deployed"
    assert second.outputs["preview-deployment-id"] == made.environment.id
    assert "(reused)" in second.result.summary


def test_a_preview_still_creating_past_wait_timeout_fails_and_deploys_nothing(
    repo: GitRepo,
) -> None:
    platform = FakePlatform(creating_looks_of_new=1000)

    step = preview(repo, platform, {"wait-timeout": "60s"})

    assert step.result.returncode == 1
    [made] = platform.previews.values()
    assert "is still CREATING after 60s (wait-timeout)" in error(step)
    assert "run the job again later (it reuses the preview)" in error(step)
    assert made.deploys() == []
    assert step.outputs["preview-deployment-id"] == made.environment.id


def test_secret_variables_come_from_preview_env_masked_and_missing_ones_are_named(
    repo: GitRepo,
) -> None:
    platform = FakePlatform()
    platform.environment = Environment(
        "dep-1", "analytics", "u", "HEALTHY", "s", True, secret_keys=("DB_PASSWORD", "API_KEY")
    )

    step = preview(repo, platform, {"preview-env": f"DB_PASSWORD={SECRET}\n"})

    assert step.result.returncode == 0, step.log
    [made] = platform.previews
    assert platform.created_variables[made] == {"DB_PASSWORD": SECRET}
    assert "secret variables cannot be read back" in step.log
    assert "DB_PASSWORD, API_KEY" in step.log
    assert step.titles("warning") == ["Secret variables not set"]
    [warning] = step.commands("warning")
    assert "API_KEY" in warning.message
    assert "DB_PASSWORD" not in warning.message
    assert "`API_KEY`" in step.result.summary
    masks = [c.message for c in step.commands("add-mask")]
    assert SECRET in masks
    assert step.log.count(SECRET) == 1, "the value is printed only to be masked"


def test_a_dry_run_without_a_preview_creates_nothing(repo: GitRepo) -> None:
    platform = FakePlatform()

    step = preview(repo, platform, {"dry-run": "true"})

    assert step.result.returncode == 0, step.log
    assert platform.previews == {}
    assert step.outputs["status"] == "planned"
    assert step.outputs["preview-deployment-id"] == ""
    assert step.outputs["preview-name"].startswith("analytics PR #12 ")
    assert step.titles("notice") == ["Preview planned"]


def test_two_previews_with_one_marker_is_an_error_naming_them(repo: GitRepo) -> None:
    platform = FakePlatform()
    tag = PullRequest(REPO, 12, template=TEMPLATE).tag
    platform.add_environment("a", "one", f"x {tag}")
    platform.add_environment("b", "two", f"y {tag}")

    step = preview(repo, platform)

    assert step.result.returncode == 1
    assert "2 Deployments carry the preview marker of example/astro-project#12" in error(step)
    assert "'one' (a); 'two' (b)" in error(step)
    assert "create_environment" not in platform.names()


def test_a_look_alike_name_is_not_a_preview(repo: GitRepo) -> None:
    platform = FakePlatform()
    name = preview_name("analytics", PullRequest(REPO, 12, template=TEMPLATE), 256)
    look_alike = platform.add_environment("by-hand", name, "made by hand")

    step = preview(repo, platform)

    assert step.result.returncode == 0, step.log
    assert len(platform.previews) == 2
    assert look_alike.deploys() == []


def test_a_preview_from_a_fork_is_one_clear_error_before_the_inputs(repo: GitRepo) -> None:
    platform = FakePlatform()
    event = pull_request_event(7, repo.head(), repo.head(), head_repository="someone/astro-project")

    step = run_in_process(
        repo.path,
        {"action": "preview"},
        platform=platform,
        event_name="pull_request",
        event=event,
        token="",
    )

    assert step.result.returncode == 1
    assert step.titles("error") == ["No preview for a fork's pull request"]
    assert "fork someone/astro-project" in error(step)
    assert "pull_request_target" in error(step)
    assert platform.calls == []


def test_a_preview_outside_a_pull_request_says_which_event_to_use(repo: GitRepo) -> None:
    platform = FakePlatform()

    step = run_in_process(repo.path, {"action": "preview"}, platform=platform)

    assert step.result.returncode == 1
    assert "run action preview on the pull_request event" in error(step)
    assert platform.previews == {}


# --- action: preview-delete, preview-cleanup ---------------------------------------------------


def test_closing_deletes_the_preview_and_a_missing_one_is_a_notice(repo: GitRepo) -> None:
    platform = FakePlatform()
    assert preview(repo, platform).result.returncode == 0
    [made] = platform.previews.values()

    closed = preview(repo, platform, action="closed")

    assert closed.result.returncode == 0, closed.log
    assert platform.previews == {}
    assert closed.outputs["status"] == "deleted"
    assert closed.outputs["preview-deployment-id"] == made.environment.id
    again = preview(repo, platform, action="closed")
    assert again.result.returncode == 0
    assert again.titles("notice") == ["No preview"]
    assert again.outputs["status"] == "skipped"


def test_delete_touches_only_the_marked_preview_of_this_pull_request(repo: GitRepo) -> None:
    platform = FakePlatform()
    name = preview_name("analytics", PullRequest(REPO, 12, template=TEMPLATE), 256)
    platform.add_environment("look-alike", name, "made by hand")
    platform.add_environment("pr-1", "p1", PullRequest(REPO, 1, template=TEMPLATE).tag)
    platform.add_environment("pr-12", "p12", PullRequest(REPO, 12, template=TEMPLATE).tag)

    step = preview(repo, platform, action="closed")

    assert step.result.returncode == 0, step.log
    assert sorted(platform.previews) == ["look-alike", "pr-1"]


def cleanup(repo: GitRepo, platform: FakePlatform, **inputs: str) -> Step:
    return run_in_process(
        repo.path,
        {"action": "preview-cleanup", **{k.replace("_", "-"): v for k, v in inputs.items()}},
        platform=platform,
        event_name="schedule",
    )


def test_cleanup_deletes_previews_of_pull_requests_not_open(repo: GitRepo) -> None:
    platform = FakePlatform()
    for number in (1, 2, 3):
        platform.add_environment(
            f"pr-{number}", f"p{number}", PullRequest(REPO, number, template=TEMPLATE).tag
        )
    platform.add_environment("other", "o", PullRequest("other/repo", 1, template=TEMPLATE).tag)

    dry = cleanup(repo, platform, open_pull_requests="[2]", dry_run="true")
    assert dry.result.returncode == 0, dry.log
    assert len(platform.previews) == 4
    assert dry.outputs["status"] == "planned"
    assert dry.titles("notice") == ["Preview delete planned"] * 2

    step = cleanup(repo, platform, open_pull_requests="[2]")
    assert step.result.returncode == 0, step.log
    assert sorted(platform.previews) == ["other", "pr-2"]
    assert step.outputs["status"] == "deleted"
    assert "p1 (`pr-1`)<br>p3 (`pr-3`)" in step.result.summary
