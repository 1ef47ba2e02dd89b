"""What a run tells GitHub itself: the living PR comment and GitHub Deployments.

:class:`GitHubSide` is what :func:`ci_deploy.run.run` calls: :meth:`~GitHubSide.deploy_started`
just before a deploy's release is created, :meth:`~GitHubSide.finished` with the run's result.
:func:`connect` makes the real one over :class:`~ci_deploy.github_api.GitHubClient` (the
client made on first use, so a run that needs nothing from GitHub sends nothing to it, and
the client's module imported on first use: such a run never loads it).

Nothing here can fail a run: a GitHub error (403 for a missing permission included) becomes
a warning annotation that says what to do, and the deploy's own result decides the exit code.
:func:`keep_comment` and :func:`deactivate_environment` are the building blocks, for the
preview lifecycle too.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ci_deploy import pr_comment
from ci_deploy.github import GitHubContext
from ci_deploy.github_deployment import final_state, shorten_description
from ci_deploy.inputs import Inputs
from ci_deploy.platform import Environment
from ci_deploy.result import RunResult
from ci_deploy.runner import Runner
from ci_deploy.timing import Timing

if TYPE_CHECKING:
    from ci_deploy.github_api import Comment, GitHubClient, NewStatus

__all__ = [
    "GitHubReporter",
    "GitHubSide",
    "NoGitHub",
    "connect",
    "deactivate_environment",
    "keep_comment",
    "open_pull_requests",
]


class GitHubSide(Protocol):
    """What a run tells GitHub; never raises."""

    def deploy_started(self, sha: str, environment: Environment) -> None:
        """A release of ``sha`` is about to be created on ``environment``."""

    def finished(self, result: RunResult) -> None:
        """The run ended with ``result``."""


class NoGitHub:
    """A run that tells GitHub nothing."""

    def deploy_started(self, sha: str, environment: Environment) -> None:
        pass

    def finished(self, result: RunResult) -> None:
        pass


def keep_comment(client: GitHubClient, number: int, target: str, body: str) -> Comment:
    """Update the PR's living comment of ``target`` in place, or create it when there is none.

    When several carry the marker (two runs created one each at the same time), the oldest is
    updated: the same one on every later run.
    """
    for comment in client.list_comments(number):
        if pr_comment.is_ours(comment.body, target):
            return client.update_comment(comment.id, body)
    return client.create_comment(number, body)


def deactivate_environment(client: GitHubClient, environment: str, log_url: str = "") -> int:
    """Mark every GitHub Deployment to ``environment`` inactive (a preview was deleted).

    Returns how many were marked.
    """
    from ci_deploy.github_api import NewStatus

    deployments = client.list_deployments(environment)
    for deployment in deployments:
        client.create_status(
            deployment.id,
            NewStatus(
                state="inactive",
                log_url=log_url,
                description=shorten_description(f"{environment} was deleted"),
            ),
        )
    return len(deployments)


class GitHubReporter:
    """The GitHub side of one run (see :func:`connect`)."""

    def __init__(
        self,
        make_client: Callable[[], GitHubClient],
        runner: Runner,
        context: GitHubContext,
        *,
        comment_target: str = "",
        environment: str = "",
        transient: bool = False,
        notes: Callable[[RunResult], Sequence[str]] = lambda result: (),
    ) -> None:
        """``comment_target`` names the PR comment's target ("" for no comment),
        ``environment`` the GitHub environment of the GitHub Deployment ("" for none),
        ``transient`` whether that environment goes away (a preview's), ``notes`` what the
        comment adds under the summary."""
        self._make_client, self._runner, self._context = make_client, runner, context
        self._target, self._environment, self._transient = comment_target, environment, transient
        self._notes = notes
        self._client: GitHubClient | None = None
        self._deployment_id: int | None = None
        self._environment_url = ""

    def deploy_started(self, sha: str, environment: Environment) -> None:
        if not self._environment:
            return
        self._environment_url = environment.url
        words = environment.words

        def start(client: GitHubClient) -> None:
            from ci_deploy.github_api import NewDeployment

            made = client.create_deployment(
                NewDeployment(
                    ref=sha,
                    environment=self._environment,
                    description=shorten_description(
                        f"{words.platform} {words.environment} {environment.name or environment.id}"
                    ),
                    transient_environment=self._transient,
                )
            )
            self._deployment_id = made.id
            client.create_status(
                made.id, self._status("in_progress", f"Deploying to {words.platform}")
            )
            self._runner.info(
                f"GitHub Deployment {made.id} to environment {self._environment!r}: in progress"
            )

        self._guarded("GitHub Deployment not recorded", start)

    def finished(self, result: RunResult) -> None:
        deleted = result.previews_deleted
        if self._transient and self._environment and deleted and deleted.deleted:
            self._deactivate(dry_run=deleted.dry_run)
        deployment_id = self._deployment_id
        if deployment_id is not None:

            def finish(client: GitHubClient) -> None:
                state, description = final_state(result)
                client.create_status(deployment_id, self._status(state, description))
                self._runner.info(f"GitHub Deployment {deployment_id}: {state}")

            self._guarded("GitHub Deployment not updated", finish)
        number = self._context.pull_number
        if self._target and number is not None:

            def comment(client: GitHubClient) -> None:
                text = pr_comment.body(result, self._context, self._target, self._notes(result))
                # the runner masks its log, not a comment: the masked values go here too
                written = keep_comment(client, number, self._target, self._runner.redact(text))
                self._runner.info(f"PR comment: {written.html_url or written.id}")

            self._guarded("PR comment not written", comment)
        if self._client is not None:
            self._client.close()
            self._client = None

    def _deactivate(self, *, dry_run: bool) -> None:
        """The preview was deleted: its environment's GitHub Deployments become inactive."""
        environment = self._environment
        if dry_run:
            self._runner.info(f"Dry run: GitHub environment {environment!r} left as it is.")
            return

        def deactivate(client: GitHubClient) -> None:
            marked = deactivate_environment(client, environment, self._context.run_url)
            self._runner.info(
                f"GitHub environment {environment!r}: {marked} deployment(s) inactive"
            )

        self._guarded("GitHub environment not marked inactive", deactivate)

    def _status(self, state: str, description: str) -> NewStatus:
        from ci_deploy.github_api import NewStatus

        return NewStatus.model_validate(
            {
                "state": state,
                "environment_url": self._environment_url,
                "log_url": self._context.run_url,
                "description": description,
            }
        )

    def _guarded(self, title: str, action: Callable[[GitHubClient], None]) -> None:
        """Do ``action`` with the client; any failure is a warning titled ``title``."""
        from ci_deploy.github_api import GitHubError

        try:
            if self._client is None:
                self._client = self._make_client()
            action(self._client)
        except GitHubError as exc:
            self._runner.warning(
                f"{exc.message} The deploy's own result is not affected.", title=title
            )
        except Exception as exc:  # a bug must not fail a deploy that went well
            self._runner.debug(traceback.format_exc())
            self._runner.warning(
                f"Unexpected error ({type(exc).__name__}); the deploy's own result is not "
                "affected. Please report this as a bug.",
                title=title,
            )


def open_pull_requests(
    inputs: Inputs, context: GitHubContext, runner: Runner, timing: Timing
) -> tuple[int, ...]:
    """The repository's open pull requests, asked of GitHub with ``github-token``; GitHubError
    (a CiDeployError: the caller cannot go on without them) when GitHub cannot say."""
    client = _client(inputs.github_token.get_secret_value(), context, runner, timing)
    try:
        return tuple(client.list_open_pull_numbers())
    finally:
        client.close()


def _client(token: str, context: GitHubContext, runner: Runner, timing: Timing) -> GitHubClient:
    """The GitHub client for ``token``; GitHubError without one."""
    from ci_deploy.github_api import GitHubClient, GitHubError

    if not token:
        raise GitHubError(
            "No GitHub token: set the github-token input (the workflow's token is its "
            "default) or the GITHUB_TOKEN environment variable."
        )
    return GitHubClient(
        context.api_url,
        token,
        context.repository,
        timeout=timing.request_timeout,
        sleep=timing.sleep,
        on_retry=runner.info,
    )


def connect(inputs: Inputs, context: GitHubContext, runner: Runner, timing: Timing) -> GitHubSide:
    """The GitHub side of a run: the PR comment on pull request events (unless
    ``pr-comment: false``), and a GitHub Deployment when ``environment`` is set.

    A preview (``action: preview`` / ``preview-delete``) has its own comment, and its GitHub
    Deployments go to ``preview/pr-<n>`` (a transient environment, marked inactive when the
    preview is deleted) unless ``environment`` names another; that automatic environment needs
    a GitHub token at hand, an explicit one warns without it.
    """
    token = inputs.github_token.get_secret_value()
    # the comment is about the environment the inputs name: a Deployment, or an app
    target = inputs.deployment_id or inputs.deployment_name or inputs.app_id or inputs.app_name
    number = context.pull_number
    environment, transient = inputs.environment, False
    if inputs.action in ("preview", "preview-delete"):
        target = f"preview of {target}"
        if not environment and token and number is not None:
            # the PR's own environment: transient, marked inactive when the preview goes
            environment, transient = f"preview/pr-{number}", True
    wants_comment = inputs.pr_comment and number is not None and inputs.action != "matrix"
    if not wants_comment and not environment:
        return NoGitHub()

    def make_client() -> GitHubClient:
        return _client(token, context, runner, timing)

    return GitHubReporter(
        make_client,
        runner,
        context,
        comment_target=target if wants_comment else "",
        environment=environment,
        transient=transient,
    )
