"""The GitHub context, a release's source, and the CreateDeploy ``git`` object made from it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ci_deploy.astro.platform import git_info as astro_git_info
from ci_deploy.astro.wire import CreateDeployRequest, GitInfo
from ci_deploy.errors import CiDeployError
from ci_deploy.github import GitHubContext, load_context, source_of
from ci_deploy.gitrepo import head_commit, open_repo, remote_url
from ci_deploy.source import CommitInfo, Source
from tests.gitrepo import AUTHOR_NAME, GitRepo

BEFORE = "a" * 40
AFTER = "b" * 40
ZEROS = "0" * 40

COMMIT = CommitInfo(
    sha=AFTER, subject="Edit a DAG", author_name="Local Name", author_email="local@example.com"
)


def push_event(before: str = BEFORE, after: str = AFTER, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "ref": "refs/heads/main",
        "before": before,
        "after": after,
        "head_commit": {
            "id": after,
            "message": "Edit a DAG",
            "author": {"name": "Ada Lovelace", "email": "ada@example.com", "username": "ada"},
        },
        "sender": {"login": "pusher"},
        "repository": {"full_name": "acme/airflow"},
    }
    event.update(extra)
    return event


def environ(tmp_path: Path, event: dict[str, Any] | None, **overrides: str) -> dict[str, str]:
    env = {
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REPOSITORY": "acme/airflow",
        "GITHUB_SHA": AFTER,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_HEAD_REF": "",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_RUN_ID": "4242",
        "GITHUB_ACTOR": "ada",
        "GITHUB_WORKSPACE": "/github/workspace",
    }
    if event is not None:
        path = tmp_path / "event.json"
        path.write_text(json.dumps(event), encoding="utf-8")
        env["GITHUB_EVENT_PATH"] = str(path)
    env.update(overrides)
    return env


# --- load_context ----------------------------------------------------------------------


def test_context_from_a_push_event(tmp_path: Path) -> None:
    ctx = load_context(environ(tmp_path, push_event()))
    assert ctx.event_name == "push"
    assert ctx.repository == "acme/airflow"
    assert ctx.sha == AFTER
    assert ctx.ref == "refs/heads/main"
    assert ctx.branch == "main"
    assert ctx.push_before == BEFORE
    assert ctx.server_url == "https://github.com"
    assert ctx.run_url == "https://github.com/acme/airflow/actions/runs/4242"
    assert ctx.event["head_commit"]["id"] == AFTER


def test_push_before_all_zeros_is_none(tmp_path: Path) -> None:
    ctx = load_context(environ(tmp_path, push_event(before=ZEROS)))
    assert ctx.push_before is None


def test_pull_request_branch_comes_from_head_ref(tmp_path: Path) -> None:
    event = {
        "number": 7,
        "pull_request": {
            "head": {"ref": "feature/x", "sha": AFTER},
            "base": {"ref": "main", "sha": BEFORE},
            "user": {"login": "contributor"},
        },
        "sender": {"login": "contributor"},
    }
    ctx = load_context(
        environ(
            tmp_path,
            event,
            GITHUB_EVENT_NAME="pull_request",
            GITHUB_REF="refs/pull/7/merge",
            GITHUB_HEAD_REF="feature/x",
        )
    )
    assert ctx.branch == "feature/x"
    assert ctx.push_before is None
    # Without GITHUB_HEAD_REF, the payload's head ref still names the branch.
    no_head_ref = load_context(
        environ(tmp_path, event, GITHUB_EVENT_NAME="pull_request", GITHUB_REF="refs/pull/7/merge")
    )
    assert no_head_ref.branch == "feature/x"


@pytest.mark.parametrize(
    ("ref", "branch"),
    [
        ("refs/heads/main", "main"),
        ("refs/heads/release/2.x", "release/2.x"),
        ("refs/tags/v1.0", ""),
        ("", ""),
    ],
)
def test_branch_from_ref(ref: str, branch: str) -> None:
    assert GitHubContext(event_name="workflow_dispatch", ref=ref).branch == branch


def test_defaults_without_github(tmp_path: Path) -> None:
    ctx = load_context({})
    assert ctx == GitHubContext()
    assert ctx.event == {}
    assert ctx.server_url == "https://github.com"
    assert ctx.run_url == ""
    assert ctx.push_before is None


def test_custom_server_url_and_empty_event_path(tmp_path: Path) -> None:
    ctx = load_context(
        environ(tmp_path, None, GITHUB_SERVER_URL="https://ghe.example.com/", GITHUB_EVENT_PATH="")
    )
    assert ctx.event == {}
    assert ctx.server_url == "https://ghe.example.com"
    assert ctx.run_url == "https://ghe.example.com/acme/airflow/actions/runs/4242"


def test_unreadable_event_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CiDeployError, match="cannot read the GitHub event file"):
        load_context(environ(tmp_path, None, GITHUB_EVENT_PATH=str(tmp_path / "missing.json")))


@pytest.mark.parametrize(("content", "match"), [("{not json", "not valid JSON"), ("[1]", "object")])
def test_invalid_event_file_is_an_error(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "event.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CiDeployError, match=match):
        load_context(environ(tmp_path, None, GITHUB_EVENT_PATH=str(path)))


# --- the source, as Astro's git object ----------------------------------------------------


def git_info(
    ctx: GitHubContext, commit: CommitInfo, root_folder: str, remote_url: str | None
) -> GitInfo | None:
    return astro_git_info(source_of(ctx, commit, root_folder, remote_url))


def test_source_of_a_push_on_github(tmp_path: Path) -> None:
    ctx = load_context(environ(tmp_path, push_event()))
    source = source_of(ctx, COMMIT, "astro/", "https://x:secret@github.com/acme/airflow.git")
    assert source == Source(
        commit=COMMIT,
        repository="acme/airflow",
        branch="main",
        before=BEFORE,
        author_name="Ada Lovelace",
        author_username="ada",
        path="astro",
    )
    assert source.commit_url == f"https://github.com/acme/airflow/commit/{AFTER}"


def test_git_info_for_github_fills_every_field(tmp_path: Path) -> None:
    ctx = load_context(environ(tmp_path, push_event()))
    info = git_info(ctx, COMMIT, "astro", "https://x:secret@github.com/acme/airflow.git")
    assert info == GitInfo(
        provider="GITHUB",
        account="acme",
        repo="airflow",
        branch="main",
        commitSha=AFTER,
        commitUrl=f"https://github.com/acme/airflow/commit/{AFTER}",
        authorName="Ada Lovelace",
        authorUsername="ada",
        authorUrl="https://github.com/ada",
        beforeCommitSha=BEFORE,
        path="astro",
    )
    assert info.remoteUrl is None
    # The request model accepts it, i.e. the GITHUB rules hold.
    body = CreateDeployRequest(type="DAG_ONLY", git=info).model_dump(exclude_none=True)
    assert set(body["git"]) == {
        "provider",
        "account",
        "repo",
        "branch",
        "commitSha",
        "commitUrl",
        "authorName",
        "authorUsername",
        "authorUrl",
        "beforeCommitSha",
        "path",
    }


def test_git_info_minimal_without_event(tmp_path: Path) -> None:
    ctx = load_context(environ(tmp_path, None, GITHUB_EVENT_NAME="workflow_dispatch"))
    info = git_info(ctx, COMMIT, ".", None)
    assert info is not None
    assert info.model_dump(exclude_none=True) == {
        "provider": "GITHUB",
        "account": "acme",
        "repo": "airflow",
        "branch": "main",
        "commitSha": AFTER,
        "commitUrl": f"https://github.com/acme/airflow/commit/{AFTER}",
        "authorName": "Local Name",
    }


def test_git_info_new_branch_push_has_no_before(tmp_path: Path) -> None:
    ctx = load_context(environ(tmp_path, push_event(before=ZEROS)))
    info = git_info(ctx, COMMIT, "./", None)
    assert info is not None
    assert info.beforeCommitSha is None
    assert info.path is None


def test_git_info_ignores_a_head_commit_that_is_not_the_deployed_one(tmp_path: Path) -> None:
    ctx = load_context(environ(tmp_path, push_event()))
    other = CommitInfo(sha="c" * 40, subject="s", author_name="Local Name", author_email="l@x")
    info = git_info(ctx, other, ".", None)
    assert info is not None
    assert info.authorName == "Local Name"
    assert info.authorUsername == "pusher"  # falls back to the sender
    assert info.commitUrl == f"https://github.com/acme/airflow/commit/{'c' * 40}"


def test_git_info_pull_request_author_is_the_pr_user(tmp_path: Path) -> None:
    event = {
        "pull_request": {"head": {"ref": "feature/x"}, "user": {"login": "contributor"}},
        "sender": {"login": "someone-else"},
    }
    ctx = load_context(
        environ(tmp_path, event, GITHUB_EVENT_NAME="pull_request", GITHUB_HEAD_REF="feature/x")
    )
    info = git_info(ctx, COMMIT, "astro/", None)
    assert info is not None
    assert info.branch == "feature/x"
    assert info.authorUsername == "contributor"
    assert info.authorUrl == "https://github.com/contributor"
    assert info.authorName == "Local Name"
    assert info.path == "astro"


def test_git_info_generic_strips_credentials() -> None:
    ctx = GitHubContext(ref="refs/heads/dev")
    info = git_info(ctx, COMMIT, "astro", "https://user:tok3n@gitlab.example.com/grp/proj.git")
    assert info is not None
    assert info.model_dump(exclude_none=True) == {
        "provider": "GENERIC",
        "remoteUrl": "https://gitlab.example.com/grp/proj.git",
        "branch": "dev",
        "commitSha": AFTER,
        "authorName": "Local Name",
        "path": "astro",
    }
    assert "tok3n" not in info.model_dump_json()
    CreateDeployRequest(type="DAG_ONLY", git=info)  # the GENERIC rules hold


def test_git_info_generic_without_remote_is_none() -> None:
    assert git_info(GitHubContext(), COMMIT, ".", None) is None
    assert git_info(GitHubContext(), COMMIT, ".", "") is None


def test_git_info_from_a_real_repository(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write("dags/a.py", "A = 1\n")
    sha = repo.commit("Add a DAG")
    repo.set_remote("origin", "https://bot:pw@example.com/acme/airflow.git")
    opened = open_repo(repo.path)
    info = git_info(GitHubContext(), head_commit(opened), ".", remote_url(opened))
    assert info == GitInfo(
        provider="GENERIC",
        remoteUrl="https://example.com/acme/airflow.git",
        commitSha=sha,
        authorName=AUTHOR_NAME,
    )


def test_pull_number_and_the_api_url(tmp_path: Path) -> None:
    pr = {"number": 9, "pull_request": {"number": 9}}
    on_pr = load_context(environ(tmp_path, pr, GITHUB_EVENT_NAME="pull_request"))
    ghes = load_context(environ(tmp_path, pr, GITHUB_API_URL="https://ghes.example.com/api/v3/"))

    assert on_pr.pull_number == 9 and on_pr.api_url == "https://api.github.com"
    assert ghes.pull_number is None, "not a pull request event"
    assert ghes.api_url == "https://ghes.example.com/api/v3"
    only_number = {"number": 3}
    assert (
        load_context(
            environ(tmp_path, only_number, GITHUB_EVENT_NAME="pull_request_target")
        ).pull_number
        == 3
    )
