"""Pull-request previews, pure: which pull request a run is for, a preview's name and marker,
and which previews a cleanup deletes.

A preview is an environment made from a template for one pull request of one repository.
It is found only by the marker its description carries (``[ci-deploy-preview:owner/repo#12]``),
never by its name, so a Deployment that merely looks alike is never touched. Its name is
readable (``analytics PR #12 3f9a1c``) and unique per repository and pull request: the short
hash of ``owner/repo#12`` keeps two repositories' PR #12 (or two branches called ``x``) apart.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ci_deploy.errors import CiDeployError
from ci_deploy.github import GitHubContext
from ci_deploy.platform import Environment

PREVIEW_ACTIONS: tuple[str, ...] = ("preview", "preview-delete", "preview-cleanup")
PULL_REQUEST_ACTIONS: tuple[str, ...] = ("preview", "preview-delete")
"""The actions that act on the pull request of the event."""

_MARKER = "ci-deploy-preview"
_HASH_LENGTH = 6
_MARKED = re.compile(
    r"\[ci-deploy-preview:(?P<repository>[^\]#\s]+)#(?P<number>[0-9]+)(?:@(?P<template>[^\]\s]+))?\]"
)


class PreviewError(CiDeployError):
    """A preview cannot be made or found for this run."""

    title = "Preview not possible"


@dataclass(frozen=True)
class PullRequest:
    """The pull request a preview is for."""

    repository: str
    """``owner/repo`` of the base repository."""
    number: int
    head_sha: str = ""
    template: str = ""
    """The id of the template Deployment the preview copies: each template of a pull request
    has its own preview (a monorepo's projects)."""
    head_branch: str = ""
    """The pull request's head branch (what an App Platform preview builds from)."""

    @property
    def marker(self) -> str:
        """What the preview's description carries, without brackets."""
        of = f"@{self.template}" if self.template else ""
        return f"{_MARKER}:{self.repository}#{self.number}{of}"

    @property
    def tag(self) -> str:
        """The marker as the description shows it,
        ``[ci-deploy-preview:owner/repo#12@<template id>]``: whole, so #1 never matches #12."""
        return f"[{self.marker}]"

    @property
    def label(self) -> str:
        """``owner/repo#12``."""
        return f"{self.repository}#{self.number}"


def fork_of(context: GitHubContext) -> str:
    """The fork a ``pull_request`` run comes from (``someone/repo``); "" when it is none.

    GitHub gives such runs no secrets, so a preview cannot be made from them.
    """
    if context.event_name != "pull_request":
        return ""
    head = context.event_value("pull_request", "head", "repo", "full_name")
    base = context.event_value("pull_request", "base", "repo", "full_name") or context.repository
    if isinstance(head, str) and head and isinstance(base, str) and head != base:
        return head
    return ""


def fork_error(fork: str) -> PreviewError:
    """The one error a preview run from a fork ends with."""
    return PreviewError(
        f"This pull request comes from the fork {fork}, and GitHub gives workflows run for a "
        "fork's pull request no secrets, so there is no API token (Astro or DigitalOcean) to "
        "make a preview with. Skip the preview step for forks (if: github.event."
        "pull_request.head.repo.full_name == github.repository), or have a maintainer "
        "push the branch to this repository. Do not switch to pull_request_target with a "
        "checkout of the PR's head: that runs the fork's code with your secrets (see the README).",
        title="No preview for a fork's pull request",
    )


def pull_request_of(context: GitHubContext) -> PullRequest:
    """The pull request of a ``pull_request`` run; a PreviewError saying what to do otherwise."""
    number = context.event_value("pull_request", "number") or context.event_value("number")
    if not context.is_pull_request or not isinstance(number, int) or number <= 0:
        raise PreviewError(
            "Previews are for pull requests: run action preview on the pull_request event "
            "(types opened, synchronize, reopened) and preview-delete on closed; this run's "
            f"event is {context.event_name or 'not a GitHub event'}.",
            title="Not a pull request",
        )
    if not context.repository:
        raise PreviewError(
            "GITHUB_REPOSITORY is not set, so the preview cannot be named after its "
            "repository. Run the action from a GitHub workflow.",
            title="No repository",
        )
    head = context.event_value("pull_request", "head", "sha")
    return PullRequest(
        context.repository,
        number,
        head if isinstance(head, str) else "",
        head_branch=context.branch,
    )


def short_hash(pull_request: PullRequest) -> str:
    """Six hex digits of the SHA-256 of ``owner/repo#12@<template id>``: stable, and unlike
    for other repositories, pull requests and templates."""
    of = f"@{pull_request.template}" if pull_request.template else ""
    digest = hashlib.sha256(f"{pull_request.label}{of}".encode()).hexdigest()
    return digest[:_HASH_LENGTH]


def preview_name(template: str, pull_request: PullRequest, limit: int) -> str:
    """``<template> PR #12 3f9a1c``, the template's name cut so the whole fits in ``limit``."""
    tail = f" PR #{pull_request.number} {short_hash(pull_request)}"
    room = max(limit - len(tail), 0)
    head = template.strip()
    if len(head) > room:
        head = head[: max(room - 1, 0)].rstrip() + "…" if room else ""
    return f"{head}{tail}".strip()[:limit]


def preview_description(pull_request: PullRequest, run_url: str) -> str:
    """The preview's description, before the platform appends the marker."""
    made = f" by {run_url}" if run_url else ""
    return (
        f"Preview of pull request #{pull_request.number} of {pull_request.repository}, made"
        f"{made}. ci-deploy deletes it when the pull request is closed."
    )


def repository_tag(repository: str) -> str:
    """What the descriptions of every preview of ``repository`` contain."""
    return f"[{_MARKER}:{repository}#"


def pull_request_marked(description: str, repository: str, template: str = "") -> int | None:
    """The number of the ``repository`` pull request whose marker ``description`` carries
    (for the ``template`` Deployment's previews only, when given)."""
    for match in _MARKED.finditer(description):
        if match.group("repository") == repository and (
            not template or match.group("template") == template
        ):
            return int(match.group("number"))
    return None


@dataclass(frozen=True)
class Stale:
    """A preview whose pull request is not open."""

    environment: Environment
    number: int


def stale_previews(
    previews: Sequence[Environment],
    repository: str,
    open_numbers: Collection[int],
    template: str = "",
) -> list[Stale]:
    """The previews of ``repository`` (of the ``template`` Deployment, when given) whose pull
    request is not among ``open_numbers``.

    Only environments carrying a preview marker of ``repository`` count, whatever their name.
    """
    stale = []
    for environment in previews:
        number = pull_request_marked(environment.description, repository, template)
        if number is not None and number not in open_numbers:
            stale.append(Stale(environment, number))
    return stale


def missing_secrets(secret_keys: Sequence[str], given: Collection[str]) -> tuple[str, ...]:
    """The template's secret variables that ``preview-env`` gives no value for."""
    return tuple(key for key in secret_keys if key not in given)
