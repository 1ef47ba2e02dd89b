"""The GitHub context (environment and event payload) and the deploy's ``git`` object."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ci_deploy.astro.wire import GitInfo
from ci_deploy.errors import CiDeployError
from ci_deploy.gitrepo import strip_credentials
from ci_deploy.source import CommitInfo

DEFAULT_SERVER_URL = "https://github.com"
_PULL_REQUEST_EVENTS = frozenset({"pull_request", "pull_request_target"})


def _get(data: Any, *keys: str) -> Any:
    """``data[k1][k2]...``, or None as soon as a level is missing or not a mapping."""
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _text(value: Any) -> str | None:
    """``value`` when it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class GitHubContext:
    """What the runner tells the action about the run (all strings "" when unknown)."""

    event_name: str = ""
    event: Mapping[str, Any] = field(default_factory=dict, repr=False)
    repository: str = ""
    sha: str = ""
    ref: str = ""
    head_ref: str = ""
    server_url: str = DEFAULT_SERVER_URL
    run_url: str = ""
    actor: str = ""
    workspace: str = ""

    @property
    def is_pull_request(self) -> bool:
        """Whether the run was triggered by a pull request event."""
        return self.event_name in _PULL_REQUEST_EVENTS

    @property
    def branch(self) -> str:
        """The branch: the PR's head branch, ``<b>`` of ``refs/heads/<b>``, else ""."""
        if self.is_pull_request:
            return self.head_ref or _text(_get(self.event, "pull_request", "head", "ref")) or ""
        if self.ref.startswith("refs/heads/"):
            return self.ref.removeprefix("refs/heads/")
        return ""

    def _push_sha(self, key: str) -> str | None:
        value = _text(self.event.get(key))
        if value is None or value.strip("0") == "":
            return None
        return value

    @property
    def push_before(self) -> str | None:
        """The push event's ``before`` sha; None when missing or all zeros (new branch)."""
        return self._push_sha("before")

    @property
    def push_after(self) -> str | None:
        """The push event's ``after`` sha; None when missing or all zeros (deleted branch)."""
        return self._push_sha("after")


def _load_event(path: str) -> Mapping[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            event = json.load(fh)
    except (OSError, UnicodeDecodeError) as exc:
        raise CiDeployError(
            f"cannot read the GitHub event file GITHUB_EVENT_PATH={path}: {exc}",
            title="GitHub event unreadable",
        ) from exc
    except json.JSONDecodeError as exc:
        raise CiDeployError(
            f"the GitHub event file GITHUB_EVENT_PATH={path} is not valid JSON: {exc}",
            title="GitHub event unreadable",
        ) from exc
    if not isinstance(event, dict):
        raise CiDeployError(
            f"the GitHub event file GITHUB_EVENT_PATH={path} does not hold a JSON object",
            title="GitHub event unreadable",
        )
    return event


def load_context(environ: Mapping[str, str]) -> GitHubContext:
    """Read the ``GITHUB_*`` variables and the event payload they point to.

    An unset ``GITHUB_EVENT_PATH`` gives an empty event; a set one that cannot be read or
    parsed is a CiDeployError.
    """
    event_path = environ.get("GITHUB_EVENT_PATH", "")
    event = _load_event(event_path) if event_path else {}
    repository = environ.get("GITHUB_REPOSITORY", "").strip()
    server_url = (environ.get("GITHUB_SERVER_URL", "").strip() or DEFAULT_SERVER_URL).rstrip("/")
    run_id = environ.get("GITHUB_RUN_ID", "").strip()
    run_url = f"{server_url}/{repository}/actions/runs/{run_id}" if repository and run_id else ""
    return GitHubContext(
        event_name=environ.get("GITHUB_EVENT_NAME", ""),
        event=event,
        repository=repository,
        sha=environ.get("GITHUB_SHA", ""),
        ref=environ.get("GITHUB_REF", ""),
        head_ref=environ.get("GITHUB_HEAD_REF", ""),
        server_url=server_url,
        run_url=run_url,
        actor=environ.get("GITHUB_ACTOR", ""),
        workspace=environ.get("GITHUB_WORKSPACE", ""),
    )


def _author_username(ctx: GitHubContext, head_commit: Any) -> str | None:
    username = _text(_get(head_commit, "author", "username"))
    if username is None and ctx.is_pull_request:
        username = _text(_get(ctx.event, "pull_request", "user", "login"))
    return username or _text(_get(ctx.event, "sender", "login"))


def git_info(
    ctx: GitHubContext, commit: CommitInfo, root_folder: str, remote_url: str | None
) -> GitInfo | None:
    """The CreateDeploy ``git`` object for ``commit``; None outside GitHub without a remote.

    With ``ctx.repository`` the provider is GITHUB (account, repo, commit and author
    links); otherwise GENERIC with the credential-free ``remote_url``. Unknown fields are
    None, so ``model_dump(exclude_none=True)`` stays minimal. The event's ``head_commit``
    is used only when it is the deployed commit.
    """
    head_commit = _get(ctx.event, "head_commit")
    head_id = _text(_get(head_commit, "id"))
    if head_id is not None and head_id != commit.sha:
        head_commit = None
    author_name = _text(_get(head_commit, "author", "name")) or _text(commit.author_name)
    path = posixpath.normpath(root_folder.strip() or ".")
    common: dict[str, Any] = {
        "commitSha": commit.sha,
        "branch": ctx.branch or None,
        "authorName": author_name,
        "beforeCommitSha": ctx.push_before,
        "path": None if path == "." else path,
    }
    account, _, repo = ctx.repository.partition("/")
    if account and repo:
        username = _author_username(ctx, head_commit)
        base = ctx.server_url.rstrip("/") or DEFAULT_SERVER_URL
        return GitInfo(
            provider="GITHUB",
            account=account,
            repo=repo,
            commitUrl=f"{base}/{account}/{repo}/commit/{commit.sha}",
            authorUsername=username,
            authorUrl=f"{base}/{username}" if username else None,
            **common,
        )
    if not remote_url:
        return None
    return GitInfo(provider="GENERIC", remoteUrl=strip_credentials(remote_url), **common)
