"""The GitHub context (the runner's variables and the event payload), and a release's source."""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ci_deploy.errors import CiDeployError
from ci_deploy.source import CommitInfo, Source, is_null_sha, strip_credentials

DEFAULT_SERVER_URL = "https://github.com"
DEFAULT_API_URL = "https://api.github.com"
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
    api_url: str = DEFAULT_API_URL
    """``GITHUB_API_URL``: where GitHub's REST API is (a GitHub Enterprise Server's too)."""

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

    def event_value(self, *keys: str) -> Any:
        """``event[k1][k2]...``, or None as soon as a level is missing or not a mapping."""
        return _get(self.event, *keys)

    @property
    def pull_number(self) -> int | None:
        """The pull request's number on a pull request event, else None."""
        if not self.is_pull_request:
            return None
        number = _get(self.event, "pull_request", "number")
        if not isinstance(number, int):
            number = self.event.get("number")
        return number if isinstance(number, int) and number > 0 else None

    @property
    def push_before(self) -> str | None:
        """The push event's ``before`` sha; None when missing or all zeros (new branch)."""
        value = _text(self.event.get("before"))
        return None if value is None or is_null_sha(value) else value


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
        api_url=(environ.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL).rstrip("/"),
    )


def _author_username(ctx: GitHubContext, head_commit: Any) -> str:
    username = _text(_get(head_commit, "author", "username"))
    if username is None and ctx.is_pull_request:
        username = _text(_get(ctx.event, "pull_request", "user", "login"))
    return username or _text(_get(ctx.event, "sender", "login")) or ""


def source_of(
    ctx: GitHubContext, commit: CommitInfo, root_folder: str, remote_url: str | None
) -> Source:
    """Where ``commit`` comes from: its repository, branch, author and project folder.

    The event's ``head_commit`` is used only when it is the deployed commit. Outside GitHub
    the repository is named by ``remote_url``, credentials stripped.
    """
    head_commit = _get(ctx.event, "head_commit")
    head_id = _text(_get(head_commit, "id"))
    if head_id is not None and head_id != commit.sha:
        head_commit = None
    path = posixpath.normpath(root_folder.strip() or ".")
    account, _, repo = ctx.repository.partition("/")
    on_github = bool(account and repo)
    return Source(
        commit=commit,
        repository=ctx.repository if on_github else "",
        server_url=ctx.server_url.rstrip("/") or DEFAULT_SERVER_URL,
        branch=ctx.branch,
        before=ctx.push_before or "",
        author_name=_text(_get(head_commit, "author", "name")) or commit.author_name,
        author_username=_author_username(ctx, head_commit) if on_github else "",
        path="" if path == "." else path,
        remote_url="" if on_github else strip_credentials(remote_url or ""),
    )
