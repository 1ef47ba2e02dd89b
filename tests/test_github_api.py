"""The GitHub REST client, and the building blocks over it, against the fake GitHub API over
real HTTP on 127.0.0.1.

Every request is checked against the GitHub REST API subset by the ``github`` fixture.
"""

from __future__ import annotations

import io

import httpx
import pytest

from ci_deploy.github import GitHubContext
from ci_deploy.github_api import GitHubClient, GitHubError, NewDeployment, NewStatus
from ci_deploy.github_side import GitHubReporter, deactivate_environment
from ci_deploy.platform import Environment
from ci_deploy.pr_comment import marker
from ci_deploy.result import RunResult, Status, Subject
from ci_deploy.runner import Runner
from ci_deploy_testkit.github import FakeGitHub
from tests.actionrun import assert_github_requests_match_spec

REPO = "example/astro-project"


def client(github: FakeGitHub, token: str | None = None, **kwargs: object) -> GitHubClient:
    sleeps: list[float] = []
    return GitHubClient(
        github.api_url,
        github.token if token is None else token,
        REPO,
        sleep=sleeps.append,
        **kwargs,  # type: ignore[arg-type]
    )


def test_comments_are_created_listed_across_pages_and_updated(github: FakeGitHub) -> None:
    for n in range(150):
        github.add_comment(REPO, 7, f"comment {n}")
    gh = client(github)

    created = gh.create_comment(7, "<!-- marker -->\nhello")
    listed = gh.list_comments(7)
    updated = gh.update_comment(created.id, "<!-- marker -->\nagain")

    assert len(listed) == 151 and listed[-1].id == created.id
    assert updated.body == "<!-- marker -->\nagain"
    assert github.comments_of(REPO, 7)[-1]["body"] == "<!-- marker -->\nagain"
    pages = [r.query for r in github.requests if r.method == "GET"]
    assert pages == ["per_page=100&page=1", "per_page=100&page=2"]
    # the Link header points elsewhere: it is never followed, so the token stays home
    assert all(r.headers["authorization"] == f"Bearer {github.token}" for r in github.requests)


def test_deployments_and_statuses(github: FakeGitHub) -> None:
    gh = client(github)
    made = gh.create_deployment(
        NewDeployment(ref="a" * 40, environment="production", description="Astro deploy")
    )
    gh.create_status(
        made.id,
        NewStatus(state="success", environment_url="https://astro/d", log_url="https://run"),
    )

    sent = github.requests[0].json()
    assert sent == {
        "ref": "a" * 40,
        "environment": "production",
        "description": "Astro deploy",
        "transient_environment": False,
        "auto_merge": False,
        "required_contexts": [],
    }
    assert [d.id for d in gh.list_deployments("production")] == [made.id]
    assert gh.list_deployments("staging") == []
    (status,) = github.statuses_of(made.id)
    assert (status["state"], status["environment_url"], status["log_url"]) == (
        "success",
        "https://astro/d",
        "https://run",
    )


def test_a_token_without_the_permission_is_forbidden_and_named_no_where(
    github: FakeGitHub,
) -> None:
    github.tokens["ghs_read_only"] = frozenset()
    gh = client(github, "ghs_read_only")

    with pytest.raises(GitHubError) as caught:
        gh.create_comment(1, "x")

    assert caught.value.status_code == 403 and caught.value.forbidden
    assert "pull-requests: write" in caught.value.message
    assert "ghs_read_only" not in caught.value.message
    assert len(github.requests) == 1  # a plain 403 is final


def test_a_secondary_rate_limit_is_waited_out_as_retry_after_says(github: FakeGitHub) -> None:
    github.rate_limited = 2
    sleeps: list[float] = []
    retries: list[str] = []
    gh = GitHubClient(
        github.api_url, github.token, REPO, sleep=sleeps.append, on_retry=retries.append
    )

    gh.create_comment(3, "x")

    assert sleeps == [0.0, 0.0]
    assert len(retries) == 2 and "HTTP 403" in retries[0]
    assert len(github.comments_of(REPO, 3)) == 1


def test_a_rate_limit_that_lasts_ends_in_an_error_after_the_attempts(github: FakeGitHub) -> None:
    github.rate_limited = 10
    gh = client(github, max_attempts=3)

    with pytest.raises(GitHubError) as caught:
        gh.list_comments(3)

    assert caught.value.status_code == 403
    assert len(github.requests) == 3


def test_github_enterprise_server_base_path() -> None:
    with FakeGitHub(base_path="/api/v3") as ghes:
        gh = GitHubClient(ghes.api_url, ghes.token, REPO)
        gh.create_comment(5, "hello")
        assert [r.path for r in ghes.requests] == [f"/api/v3/repos/{REPO}/issues/5/comments"]
    assert_github_requests_match_spec(ghes)


def test_a_rejected_token_no_answer_and_bad_settings_are_github_errors(
    github: FakeGitHub,
) -> None:
    with pytest.raises(GitHubError) as caught:
        client(github, "ghs_unknown").list_deployments("production")
    assert caught.value.status_code == 401 and "ghs_unknown" not in caught.value.message

    with pytest.raises(GitHubError, match="no answer from the GitHub API"):
        GitHubClient("http://127.0.0.1:9", "t", REPO, max_attempts=1).list_comments(1)
    with pytest.raises(GitHubError, match=r"GITHUB_API_URL .*https"):
        GitHubClient("http://example.com", "t", REPO)
    with pytest.raises(GitHubError, match="GITHUB_REPOSITORY"):
        GitHubClient(github.api_url, "t", "no-slash")


def test_an_answer_that_is_not_json_is_a_github_error() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, text="<html>"))
    gh = GitHubClient("https://api.github.com", "t", REPO, transport=transport)
    with pytest.raises(GitHubError, match="not what its documentation describes"):
        gh.create_comment(1, "x")


# --- the building blocks previews use ------------------------------------------------------------


def test_deactivate_environment_marks_each_of_its_deployments_inactive(github: FakeGitHub) -> None:
    gh = client(github)
    ours = [
        gh.create_deployment(NewDeployment(ref="a" * 40, environment="preview/pr-7")).id
        for _ in range(2)
    ]
    other = gh.create_deployment(NewDeployment(ref="a" * 40, environment="production")).id

    marked = deactivate_environment(gh, "preview/pr-7", "https://run")

    assert marked == 2
    assert [[s["state"] for s in github.statuses_of(d)] for d in ours] == [["inactive"]] * 2
    assert github.statuses_of(other) == []


def test_a_reporter_for_a_preview_records_a_transient_deployment_and_its_own_comment(
    github: FakeGitHub,
) -> None:
    context = GitHubContext(
        event_name="pull_request",
        event={"pull_request": {"number": 7}},
        repository=REPO,
        run_url="https://github.com/o/r/actions/runs/1",
        api_url=github.api_url,
    )
    log = io.StringIO()
    reporter = GitHubReporter(
        lambda: client(github),
        Runner({}, log),
        context,
        comment_target="preview-dep",
        environment="preview/pr-7",
        transient=True,
        notes=lambda result: ["Preview: https://astro/preview-dep"],
    )
    preview = Environment("preview-dep", "p", "https://astro/preview-dep", "HEALTHY", "p", True)

    reporter.deploy_started("b" * 40, preview)
    reporter.finished(RunResult(Status.DEPLOYED, Subject("preview-dep", preview)))

    (deployment,) = github.deployments
    assert deployment["transient_environment"] is True
    assert [s["state"] for s in github.statuses_of(deployment["id"])] == [
        "in_progress",
        "success",
    ]
    (comment,) = github.comments_of(REPO, 7)
    assert comment["body"].startswith(marker("preview-dep"))
    assert "Preview: https://astro/preview-dep" in comment["body"]
