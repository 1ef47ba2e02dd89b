"""A small typed client of GitHub's REST API: issue comments, Deployments and their statuses.

:class:`GitHubClient` speaks JSON to one API host, ``GITHUB_API_URL`` as the runner gives it
(``https://api.github.com``, or a GitHub Enterprise Server's ``https://HOST/api/v3``), for one
repository. The token goes only into the ``Authorization`` header of requests to that host:
redirects are not followed, and lists are paged by page number, never by following the
``Link`` header's URLs. Retries follow :mod:`ci_deploy.http`, secondary rate limits included
(a 403 or 429 with ``Retry-After`` or ``X-RateLimit-Remaining: 0`` waits as it says, at most
60 s). :meth:`GitHubClient._send` is the one place where httpx errors, error statuses and
unexpected answers become :class:`GitHubError`; no message holds the token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ci_deploy import __version__
from ci_deploy.errors import CiDeployError
from ci_deploy.github_deployment import DESCRIPTION_MAX, DeploymentState
from ci_deploy.http import API_GET, Retryable, TransportFailure, bearer_client, send_with_retries
from ci_deploy.input_rules import InvalidInput, Run, url
from ci_deploy.text import shorten

__all__ = [
    "DEFAULT_API_URL",
    "GITHUB_READ",
    "GITHUB_WRITE",
    "Comment",
    "Deployment",
    "DeploymentState",
    "DeploymentStatus",
    "GitHubClient",
    "GitHubError",
    "NewDeployment",
    "NewStatus",
    "PullRequest",
]

DEFAULT_API_URL = "https://api.github.com"
PER_PAGE = 100
MAX_PAGES = 30
"""The most pages a list reads (3000 items): a PR's comments, an environment's Deployments."""
_MESSAGE_LIMIT = 300

GITHUB_READ = Retryable(API_GET.statuses, API_GET.errors, rate_limited_403=True)
"""GETs: what any API read retries, and secondary rate limits."""
GITHUB_WRITE = Retryable(
    frozenset({429, 503}),
    (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout),
    idempotent=False,
    rate_limited_403=True,
)
"""POSTs and PATCHes: only what provably was not processed, and secondary rate limits."""


class GitHubError(CiDeployError):
    """A GitHub API call failed. ``status_code`` is 0 when no answer came."""

    title = "GitHub API error"

    def __init__(self, message: str, *, status_code: int = 0) -> None:
        super().__init__(message)
        self.status_code = status_code

    @property
    def forbidden(self) -> bool:
        """Whether the token may not do this (403), or cannot see the repository (404)."""
        return self.status_code in (403, 404)


# --- the wire format ----------------------------------------------------------------------------


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class Comment(_Answer):
    id: int
    body: str | None = None
    html_url: str = ""


class PullRequest(_Answer):
    number: int


class Deployment(_Answer):
    id: int
    sha: str = ""
    ref: str = ""
    environment: str = ""


class DeploymentStatus(_Answer):
    id: int
    state: str


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class NewDeployment(_Request):
    """The body of "create a deployment": never merged, no required status checks."""

    ref: str = Field(min_length=1)
    environment: str = Field(min_length=1)
    description: str = Field(default="", max_length=DESCRIPTION_MAX)
    transient_environment: bool = False
    production_environment: bool | None = None
    auto_merge: bool = False
    required_contexts: list[str] = Field(default_factory=list)


class NewStatus(_Request):
    """The body of "create a deployment status"."""

    state: DeploymentState
    environment_url: str = ""
    log_url: str = ""
    description: str = Field(default="", max_length=DESCRIPTION_MAX)


_M = TypeVar("_M", bound=_Answer)
_T = TypeVar("_T")


# --- the client ----------------------------------------------------------------------------------


class GitHubClient:
    """The calls ci-deploy makes for ``repository`` (``owner/name``) at ``api_url``."""

    def __init__(
        self,
        api_url: str,
        token: str,
        repository: str,
        *,
        timeout: float = 30.0,
        max_attempts: int = 4,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        try:
            self.api_url = url(api_url.strip() or DEFAULT_API_URL, Run(Path(), False))
        except InvalidInput as exc:
            raise GitHubError(f"GITHUB_API_URL {exc}") from None
        owner, _, name = repository.partition("/")
        if not owner or not name or "/" in name:
            raise GitHubError(
                f"GITHUB_REPOSITORY must be owner/name; got {repository!r}: run in a GitHub "
                "workflow, or set GITHUB_REPOSITORY"
            )
        self._repo = f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"
        self._token = token.strip()
        if not self._token:
            raise GitHubError("no GitHub token: set the github-token input or GITHUB_TOKEN")
        self._max_attempts, self._sleep, self._on_retry = max_attempts, sleep, on_retry
        self._http = bearer_client(
            self.api_url,
            self._token,
            timeout=timeout,
            transport=transport,
            headers={
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
                "User-Agent": f"ci-deploy/{__version__}",
            },
        )

    def __repr__(self) -> str:
        return f"GitHubClient(api_url={self.api_url!r}, repo={self._repo!r})"

    def close(self) -> None:
        self._http.close()

    # --- issue comments (a pull request is an issue) ---

    def list_comments(self, issue_number: int) -> list[Comment]:
        """Every comment of the issue or pull request, oldest first."""
        return self._pages(f"{self._repo}/issues/{issue_number}/comments", Comment, "list comments")

    def create_comment(self, issue_number: int, body: str) -> Comment:
        path = f"{self._repo}/issues/{issue_number}/comments"
        return self._call("POST", path, Comment, "create a comment", json={"body": body})

    def update_comment(self, comment_id: int, body: str) -> Comment:
        path = f"{self._repo}/issues/comments/{comment_id}"
        return self._call("PATCH", path, Comment, "update a comment", json={"body": body})

    # --- pull requests ---

    def list_open_pull_numbers(self) -> list[int]:
        """The numbers of the repository's open pull requests."""
        path = f"{self._repo}/pulls"
        pulls = self._pages(path, PullRequest, "list open pull requests", (("state", "open"),))
        return sorted(pull.number for pull in pulls)

    # --- Deployments ---

    def create_deployment(self, deployment: NewDeployment) -> Deployment:
        payload = deployment.model_dump(exclude_none=True)
        path = f"{self._repo}/deployments"
        return self._call("POST", path, Deployment, "create a deployment", json=payload)

    def list_deployments(self, environment: str) -> list[Deployment]:
        """The repository's Deployments to ``environment``, newest first."""
        path = f"{self._repo}/deployments"
        params = (("environment", environment),)
        return self._pages(path, Deployment, "list deployments", params)

    def create_status(self, deployment_id: int, status: NewStatus) -> DeploymentStatus:
        path = f"{self._repo}/deployments/{deployment_id}/statuses"
        payload = status.model_dump(exclude_defaults=True)
        return self._call(
            "POST", path, DeploymentStatus, "create a deployment status", json=payload
        )

    # --- the one boundary ---

    def _pages(
        self,
        path: str,
        model: type[_M],
        what: str,
        params: Sequence[tuple[str, str]] = (),
    ) -> list[_M]:
        items: list[_M] = []
        adapter = TypeAdapter(list[model])  # type: ignore[valid-type]
        for page in range(1, MAX_PAGES + 1):
            query = [*params, ("per_page", str(PER_PAGE)), ("page", str(page))]
            response = self._send("GET", path, what, params=query)
            batch: list[_M] = self._parse(response, what, adapter.validate_json)
            items.extend(batch)
            if len(batch) < PER_PAGE:
                break
        return items

    def _call(self, method: str, path: str, model: type[_M], what: str, *, json: object) -> _M:
        response = self._send(method, path, what, json=json)
        return self._parse(response, what, model.model_validate_json)

    def _send(
        self,
        method: str,
        path: str,
        what: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        json: object = None,
    ) -> httpx.Response:
        retryable = GITHUB_READ if method == "GET" else GITHUB_WRITE

        def build() -> httpx.Request:
            return self._http.build_request(method, path, params=tuple(params) or None, json=json)

        try:
            response = send_with_retries(
                self._http,
                build,
                retryable=retryable,
                label=f"GitHub: {what}",
                max_attempts=self._max_attempts,
                sleep=self._sleep,
                on_retry=self._on_retry,
            )
        except TransportFailure as failure:
            raise GitHubError(
                f"Could not {what}: no answer from the GitHub API at {self.api_url} after "
                f"{failure.attempts} attempt(s) ({type(failure.error).__name__})."
            ) from None
        if response.is_success:
            return response
        raise GitHubError(self._explain(response, what), status_code=response.status_code)

    def _parse(self, response: httpx.Response, what: str, read: Callable[[bytes], _T]) -> _T:
        try:
            return read(response.content)
        except ValidationError:
            raise GitHubError(
                f"Could not {what}: the GitHub API at {self.api_url} sent an answer that is "
                f"not what its documentation describes (HTTP {response.status_code})."
            ) from None

    def _explain(self, response: httpx.Response, what: str) -> str:
        status = response.status_code
        try:
            said = str(response.json().get("message", ""))
        except (ValueError, AttributeError):
            said = ""
        said = shorten(self._scrub(" ".join(said.split())), _MESSAGE_LIMIT)
        answer = f"HTTP {status}{f' ({said})' if said else ''}"
        if status in (401,):
            hint = "the token was rejected: check the github-token input."
        elif status in (403, 404):
            hint = (
                "the token may not do this: give the workflow's job the permission it needs "
                "(pull-requests: write for the PR comment, deployments: write for GitHub "
                "Deployments), or pass a token that has it as github-token."
            )
        elif status == 429 or response.headers.get("X-RateLimit-Remaining") == "0":
            hint = "GitHub's rate limit was reached: run the job again later."
        else:
            hint = "run the job again; if it fails again, see githubstatus.com."
        return f"Could not {what}: the GitHub API answered {answer}; {hint}"

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "<token>") if self._token else text
