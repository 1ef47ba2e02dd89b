"""Previews: find or make a pull request's preview and wait until it can take a deploy; delete
it when the pull request closes; delete the previews of closed pull requests.

The template is the environment the inputs name (:meth:`Platform.locate`). A preview is
found only by the marker its description carries (:mod:`ci_deploy.preview`). Once ready,
the deploy to it is an ordinary run through :meth:`PreviewPlatform.platform_for`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ci_deploy.errors import DeployRejectedError
from ci_deploy.github import GitHubContext
from ci_deploy.inputs import Inputs
from ci_deploy.platform import Environment, Platform, PreviewPlatform
from ci_deploy.preview import (
    PreviewError,
    PullRequest,
    missing_secrets,
    preview_description,
    pull_request_marked,
    pull_request_of,
    repository_tag,
    stale_previews,
)
from ci_deploy.result import PreviewReady, PreviewsDeleted, Subject
from ci_deploy.stages import Scope
from ci_deploy.waiting import Wait

TIDY_ACTIONS = ("preview-delete", "preview-cleanup")
"""The preview actions that only delete: they need no checkout."""


def preview_platform(platform: Platform) -> PreviewPlatform:
    """``platform`` as one that holds previews; DeployRejectedError when it cannot."""
    if not isinstance(platform, PreviewPlatform):
        raise DeployRejectedError(
            "This platform cannot make preview environments.", title="Previews not supported"
        )
    return platform


def preview_deploy_inputs(inputs: Inputs) -> Inputs:
    """The inputs of a deploy to a preview: compared with the commit the preview runs
    (nothing, the first time: a full deploy), woken when it hibernates."""
    return replace(inputs, compare_to="deployed", wake_on_deploy=True)


class Previews:
    """The preview actions of one run."""

    def __init__(
        self,
        inputs: Inputs,
        context: GitHubContext,
        scope: Scope,
        *,
        open_pulls: Callable[[], tuple[int, ...]] = tuple,
    ) -> None:
        """``open_pulls`` asks GitHub for the open pull requests (``preview-cleanup`` without
        ``open-pull-requests``)."""
        self.inputs, self.context, self.scope = inputs, context, scope
        self._open_pulls = open_pulls
        self.platform = preview_platform(scope.platform)
        self.runner, self.journal = scope.runner, scope.journal

    # -- action: preview ---------------------------------------------------------------------

    def prepare(self) -> tuple[Inputs, Scope] | None:
        """Find or make the pull request's preview and wait until it is ready; the inputs and
        scope of the deploy to it (None in a dry run that found none: nothing to plan)."""
        template = self._template()
        pull_request = replace(pull_request_of(self.context), template=template.id)
        found = self.platform.find_environments(pull_request.tag)
        if len(found) > 1:
            names = "; ".join(f"'{e.name}' ({e.id})" for e in found)
            raise PreviewError(
                f"{len(found)} Deployments carry the preview marker of {pull_request.label}: "
                f"{names}. Delete all but one of them (in the Astro UI, or App Platform's control "
                "panel), then run again.",
                title="Several previews of one pull request",
            )
        variables = {key: value.get_secret_value() for key, value in self.inputs.preview_env}
        missing: tuple[str, ...] = ()
        if found:
            preview = found[0]
            self.runner.info(f"Preview of {pull_request.label}: {preview.summary}")
        else:
            name = self.platform.preview_name(template, pull_request)
            missing = self._say_secrets(template, variables)
            if self.inputs.dry_run:
                planned = Environment("", name, "", "", "", template.dag_deploys)
                self.journal.add(PreviewReady(planned, planned=True, missing_secrets=missing))
                self.runner.notice(
                    f"Dry run: would create the preview '{name}' from '{template.name}' and "
                    "deploy everything to it. Nothing was created.",
                    title="Preview planned",
                )
                return None
            preview = self._create(template, name, pull_request, variables)
        self.journal.add(PreviewReady(preview, created=not found, missing_secrets=missing))
        target = self.platform.platform_for(preview)
        ready = self._wait_until_ready(target, preview)
        self.journal.add(PreviewReady(ready, created=not found, missing_secrets=missing))
        on_preview = replace(
            self.inputs,
            deployment_id=ready.id,
            deployment_name="",
            workspace_id="",
            # a new preview gets the run's own deploy, which the PR comment and the GitHub
            # Deployment record, also where the platform deployed it when it made it (App
            # Platform builds an app the moment it is created)
            force=self.inputs.force or not found,
        )
        return on_preview, replace(self.scope, platform=target)

    def _template(self) -> Environment:
        template = self.platform.locate()
        self.runner.info(f"Template: {template.summary}")
        return template

    def _say_secrets(self, template: Environment, variables: dict[str, str]) -> tuple[str, ...]:
        """Log the template's secret variables; warn of those preview-env does not set."""
        if not template.secret_keys:
            return ()
        self.runner.info(
            "The template's secret variables cannot be read back, so they are not copied: "
            f"{', '.join(template.secret_keys)}. preview-env sets their values."
        )
        missing = missing_secrets(template.secret_keys, variables)
        if missing:
            self.runner.warning(
                f"The preview has no value for the template's secret variables "
                f"{', '.join(missing)}: set them in preview-env (KEY=value lines, from "
                "secrets), or the DAGs that read them fail in the preview.",
                title="Secret variables not set",
            )
        return missing

    def _create(
        self,
        template: Environment,
        name: str,
        pull_request: PullRequest,
        variables: dict[str, str],
    ) -> Environment:
        self.runner.info(f"Creating the preview '{name}' from '{template.name}'.")
        preview = self.platform.create_environment(
            template,
            name,
            preview_description(pull_request, self.context.run_url),
            pull_request.marker,
            variables,
            pull_request.head_branch,
        )
        self.runner.info(f"Created the preview: {preview.summary}")
        return preview

    def _wait_until_ready(self, target: Platform, preview: Environment) -> Environment:
        """Poll the preview until it is made (bounded by wait-timeout)."""
        timeout = self.inputs.wait_timeout
        wait = Wait(self.scope.timing, timeout, self.runner.info)
        current = target.locate()
        while current.creating:
            wait.seen(f"the preview is {current.status}, not made yet")
            if not wait.pause():
                raise PreviewError(
                    f"The preview '{preview.name}' ({preview.id}) is still {current.status} "
                    f"after {timeout:.0f}s (wait-timeout). Nothing was deployed to it; run the "
                    "job again later (it reuses the preview), or raise wait-timeout.",
                    title="Preview not ready",
                )
            current = target.locate()
        return current

    # -- action: preview-delete, preview-cleanup ---------------------------------------------

    def tidy(self) -> None:
        """``preview-delete`` or ``preview-cleanup``."""
        if self.inputs.action == "preview-delete":
            self.delete()
        else:
            self.clean_up()

    def delete(self) -> None:
        """Delete the pull request's preview; a missing one is a notice."""
        template = self._template()
        pull_request = replace(pull_request_of(self.context), template=template.id)
        found = self.platform.find_environments(pull_request.tag)
        if not found:
            self.runner.notice(
                f"No preview of {pull_request.label} to delete: it was deleted already, or "
                "never made. Nothing to do.",
                title="No preview",
            )
        self._delete(list(found))

    def clean_up(self) -> None:
        """Delete the previews whose pull request is not open."""
        repository = self.context.repository
        if not repository:
            raise PreviewError(
                "GITHUB_REPOSITORY is not set, so the previews of this repository cannot be "
                "told apart. Run the action from a GitHub workflow.",
                title="No repository",
            )
        template = self._template()
        previews = self.platform.find_environments(repository_tag(repository))
        open_numbers = self.inputs.open_pull_requests
        if open_numbers is None:
            self.runner.info("Asking GitHub for the repository's open pull requests.")
            open_numbers = self._open_pulls()
        previews = [
            p for p in previews if pull_request_marked(p.description, repository, template.id)
        ]
        stale = stale_previews(previews, repository, open_numbers, template.id)
        self.runner.info(
            f"{len(previews)} preview(s) of {repository} from '{template.name}'; {len(stale)} of"
            " them for a pull "
            f"request that is not open (open: {', '.join(map(str, open_numbers)) or 'none'})."
        )
        self._delete([s.environment for s in stale])

    def _delete(self, previews: list[Environment]) -> None:
        dry_run = self.inputs.dry_run
        deleted = []
        for preview in previews:
            if len(previews) == 1:
                self.journal.add(Subject(preview.id, preview))
            if dry_run:
                self.runner.notice(
                    f"Dry run: would delete the preview '{preview.name}' ({preview.id}).",
                    title="Preview delete planned",
                )
                deleted.append(preview)
            elif self.platform.delete_environment(preview):
                self.runner.info(f"Deleted the preview '{preview.name}' ({preview.id}).")
                deleted.append(preview)
            else:
                self.runner.info(f"The preview '{preview.name}' ({preview.id}) was gone already.")
        self.journal.add(PreviewsDeleted(tuple(deleted), dry_run=dry_run))
