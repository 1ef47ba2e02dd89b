"""Astro as a :class:`~ci_deploy.platform.Platform`: one Deployment and its deploys.

The I/O of a run against Astro: the API client, the blob upload, the image push with the
API token as the registry password, the Deployment's logs, hibernation. What the answers
mean is :mod:`ci_deploy.astro.rules`; this module only sends and translates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qs, urlsplit

from ci_deploy.astro import early, hibernation
from ci_deploy.astro.client import AstroClient
from ci_deploy.astro.early import session_settings
from ci_deploy.astro.logs import LOG_SOURCES, import_problems
from ci_deploy.astro.preview import create_request
from ci_deploy.astro.rules import (
    RULES,
    AstroRules,
    cut_description,
    environment_of,
    finalize_request,
    history_of,
    release_of,
    rollout_state,
)
from ci_deploy.astro.upload import UploadProgress, redact_url, upload_blob
from ci_deploy.astro.wire import (
    DEPLOYMENT_DESCRIPTION_MAX,
    DESCRIPTION_MAX,
    CreateDeployRequest,
    Deploy,
    Deployment,
    GitInfo,
    RollbackRequest,
)
from ci_deploy.errors import AirflowApiError, ApiError, DeployRejectedError, NotFoundError
from ci_deploy.exactly_once import deleted, exactly_once
from ci_deploy.input_rules import DEPLOYMENT_NAME_MAX as NAME_INPUT_MAX
from ci_deploy.platform import (
    Artifact,
    Environment,
    ImportErrors,
    Observation,
    Release,
    Shipment,
)
from ci_deploy.preview import PullRequest, preview_name
from ci_deploy.runner import Runner
from ci_deploy.source import Source
from ci_deploy.timing import Timing

if TYPE_CHECKING:
    from ci_deploy.airflow_api import AirflowClient
    from ci_deploy.bundle import Bundle
    from ci_deploy.image import BuiltImage, ImageBuilder
    from ci_deploy.inputs import Inputs

_Made = TypeVar("_Made", Deploy, Deployment)

LOOKS_AFTER_LOST_ANSWER = (0.0, 2.0, 5.0)
"""Seconds to wait before each look at the history for a create or rollback whose answer
was lost: the API may still be processing it when the first look comes."""


@dataclass(frozen=True)
class AstroSettings:
    """What the inputs say about the Deployment to deploy to, and what its deploys carry."""

    deployment_id: str
    deployment_name: str = ""
    workspace_id: str = ""
    bundle_type: str = ""
    bundle_mount_path: str = ""


class AstroPlatform:
    """One Astro Deployment, behind the platform port."""

    def __init__(
        self,
        client: AstroClient,
        settings: AstroSettings,
        runner: Runner,
        *,
        registry_password: str,
        images: Callable[[], ImageBuilder],
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        request_timeout: float = 30.0,
        opened: list[AirflowClient] | None = None,
    ) -> None:
        self._client = client
        self._settings = settings
        self._runner = runner
        self._registry_password = registry_password
        self._images = images
        self._sleep = sleep
        self._clock = clock
        self._request_timeout = request_timeout
        self._deployment_id = settings.deployment_id
        self._deployment: Deployment | None = None
        self._deploys: dict[str, Deploy] = {}
        self._opened = opened if opened is not None else []
        """The Airflow API clients made (this platform's and its previews'), closed by
        :func:`connect`."""
        self._airflow: AirflowClient | None = None

    @property
    def rules(self) -> AstroRules:
        return RULES

    def locate(self) -> Environment:
        if not self._deployment_id:
            self._deployment_id = self._find_by_name()
        self._deployment = self._client.get_deployment(self._deployment_id)
        return environment_of(self._deployment)

    def _find_by_name(self) -> str:
        name, workspace = self._settings.deployment_name, self._settings.workspace_id
        listed = self._client.list_deployments(names=[name], workspace_id=workspace or None)
        found = [d for d in listed if d.name == name]
        where = f" in workspace {workspace}" if workspace else ""
        if len(found) == 1:
            self._runner.info(f"Deployment '{name}'{where} is {found[0].id}.")
            return found[0].id
        if not found:
            raise NotFoundError(
                f"No Deployment is named '{name}'{where}. Check deployment-name (names are "
                "case-sensitive), or set deployment-id.",
                title="Deployment not found",
            )
        names = "; ".join(f"{d.id} in workspace {d.workspaceId}" for d in found)
        raise DeployRejectedError(
            f"{len(found)} Deployments are named '{name}'{where}: {names}. Set workspace-id "
            "to the right workspace, or set deployment-id.",
            title="Deployment name is ambiguous",
        )

    def history(self) -> list[Release]:
        deploys = self._client.list_deploys(self._deployment_id)
        self._deploys.update((deploy.id, deploy) for deploy in deploys)
        return history_of(deploys)

    # -- a deploy ---------------------------------------------------------------------------

    def create(self, kind: str, description: str, source: Source, marker: str) -> Release:
        request = CreateDeployRequest.model_validate(
            {
                "type": kind,
                "description": marked(description, marker),
                "git": git_info(source),
                "bundleType": self._settings.bundle_type or None,
                "bundleMountPath": self._settings.bundle_mount_path or None,
            }
        )
        known = set(self._deploys)
        deploy = self._exactly_once(
            "creating the deploy",
            lambda: self._client.create_deploy(self._deployment_id, request),
            lambda: self._find_marked(marker, known, rollback=False),
        )
        self._deploys[deploy.id] = deploy
        return release_of(deploy)

    def _exactly_once(
        self,
        what: str,
        send: Callable[[], _Made],
        made: Callable[[], _Made | None],
        *,
        noun: str = "deploy",
        where: str = "the Deployment's deploys",
    ) -> _Made:
        """``send`` once, even when answers are lost (see :func:`exactly_once`)."""
        return exactly_once(
            what,
            send,
            made,
            log=self._runner.info,
            name=lambda found: f"{noun} {found.id}",
            where=where,
        )

    def _find_marked(self, marker: str, known: set[str], *, rollback: bool) -> Deploy | None:
        """A deploy (or a rollback) made since ``known`` whose description carries
        ``marker``, looked for over a short window: the API may still be working on the
        request whose answer was lost."""
        for wait in LOOKS_AFTER_LOST_ANSWER:
            if wait:
                self._sleep(wait)
            for deploy in reversed(self._client.list_deploys(self._deployment_id)):
                if (
                    deploy.id not in known
                    and bool(deploy.rollbackFromId) is rollback
                    and marker in (deploy.description or "")
                ):
                    return self._client.get_deploy(self._deployment_id, deploy.id)
        return None

    def upload(self, release: Release, artifact: Artifact, tarball: Bundle) -> str:
        deploy = self._deploys[release.id]
        url = deploy.bundleUploadUrl if artifact is Artifact.BUNDLE else deploy.dagsUploadUrl
        if not url:
            raise DeployRejectedError(
                f"The API created deploy {deploy.id} without an upload URL, so the files "
                "cannot be uploaded."
            )
        for signature in parse_qs(urlsplit(url).query).get("sig", []):
            self._runner.mask(signature)
        self._runner.info(f"Uploading {tarball.size} bytes to {redact_url(url)}")
        return upload_blob(
            url,
            tarball.path,
            timeout=self._request_timeout,
            sleep=self._sleep,
            on_retry=self._runner.info,
            on_progress=UploadProgress(self._runner.info, self._clock),
        )

    def push(self, release: Release, image: BuiltImage) -> str:
        deploy = self._deploys[release.id]
        if not deploy.imageRepository or not deploy.imageTag:
            raise DeployRejectedError(
                f"The API created deploy {deploy.id} without an image repository and tag, so "
                "the image cannot be pushed."
            )
        self._images().push(
            image, deploy.imageRepository, deploy.imageTag, token=self._registry_password
        )
        return f"{deploy.imageRepository}:{deploy.imageTag}"

    def finalize(self, release: Release, shipment: Shipment) -> Release:
        created = self._deploys[release.id]
        dag_deploys = self._deployment is not None and self._deployment.isDagDeployEnabled
        request = finalize_request(created.type, dag_deploys, shipment)
        answer = self._exactly_once(
            f"finalizing deploy {created.id}",
            lambda: self._client.finalize_deploy(self._deployment_id, created.id, request),
            lambda: self._if_finalized(created.id),
        )
        # What the Deployment must show is what was sent, whatever the answer repeats.
        finalized = answer.model_copy(
            update={
                "type": created.type,
                "dagTarballVersion": request.dagTarballVersion or None,
                "imageTag": created.imageTag,
            }
        )
        self._deploys[created.id] = finalized
        return release_of(finalized)

    def _if_finalized(self, deploy_id: str) -> Deploy | None:
        """The deploy when it is finalized, None when it is still waiting for finalize after
        a few looks (the API may still be working on the finalize whose answer was lost)."""
        for wait in LOOKS_AFTER_LOST_ANSWER:
            if wait:
                self._sleep(wait)
            deploy = self._client.get_deploy(self._deployment_id, deploy_id)
            if deploy.status != "INITIALIZED":
                break
        else:
            return None
        if deploy.status != "DEPLOYED":
            raise DeployRejectedError(
                f"Deploy {deploy_id} is {deploy.status} after its finalize; the Deployment does "
                "not run it. Check the deploy in the Astro UI.",
                title="Deploy not finalized",
            )
        return deploy

    # -- after finalize ---------------------------------------------------------------------

    def observe(self, release: Release) -> Observation:
        return rollout_state(self._client.get_deployment(self._deployment_id), release.versions)

    def import_errors(self, since: datetime, members: Sequence[str]) -> ImportErrors:
        where = f"the {', '.join(LOG_SOURCES)} logs"
        try:
            entries = self._client.get_deployment_logs(
                self._deployment_id, sources=LOG_SOURCES, start=since
            )
        except NotFoundError:
            return ImportErrors(
                {}, where, unreadable="The Deployment's logs are not available from this API"
            )
        except ApiError as exc:
            return ImportErrors({}, where, failed=f"Reading the Deployment's logs failed: {exc}")
        return ImportErrors(import_problems((entry.raw for entry in entries), members), where)

    def airflow(self) -> AirflowClient:
        """Airflow's REST API on the located Deployment, the Astro API token as bearer."""
        if self._airflow is not None:
            return self._airflow
        from ci_deploy.airflow_api import AirflowClient, airflow_major, usable_api_url

        deployment = self._located()
        if not deployment.apiUrl:
            raise AirflowApiError("The Deployment has no Airflow API address (apiUrl)")
        major = airflow_major(deployment.airflowVersion, deployment.apiUrl)
        if major is None:
            raise AirflowApiError(
                f"The Deployment's Airflow version ({deployment.airflowVersion or 'none'}) "
                "says neither Airflow 2 nor 3"
            )
        ui = deployment.webServerUrl or deployment.apiUrl.rstrip("/").rsplit("/api/", 1)[0]
        if "://" not in ui:  # Astro's webServerUrl has no scheme: the API's it is
            ui = f"{urlsplit(deployment.apiUrl).scheme or 'https'}://{ui}"
        self._airflow = AirflowClient(
            usable_api_url(deployment.apiUrl, major),
            self._registry_password,
            major,
            ui_url=ui,
            timeout=self._request_timeout,
            sleep=self._sleep,
            on_retry=self._runner.info,
        )
        self._opened.append(self._airflow)
        return self._airflow

    def roll_back(self, to: Release, description: str, marker: str) -> Release:
        request = RollbackRequest(description=marked(description, marker))
        known = set(self._deploys)
        rollback = self._exactly_once(
            f"rolling back to deploy {to.id}",
            lambda: self._client.rollback_deploy(self._deployment_id, to.id, request),
            lambda: self._find_marked(marker, known, rollback=True),
        )
        self._deploys[rollback.id] = rollback
        # A rollback runs what ``to`` ran: that is what the Deployment must show.
        return replace(release_of(rollback), restores=to.id, versions=to.versions)

    def awake(self, enabled: bool) -> AbstractContextManager[None]:
        return self._awake(enabled)

    # -- previews ---------------------------------------------------------------------------

    def find_environments(self, marker: str) -> list[Environment]:
        template = self._located()
        listed = self._client.list_deployments(workspace_id=template.workspaceId or None)
        return [
            environment_of(deployment)
            for deployment in listed
            if marker in (deployment.description or "") and deployment.id != template.id
        ]

    def preview_name(self, template: Environment, pull_request: PullRequest) -> str:
        return preview_name(template.name, pull_request, NAME_INPUT_MAX)

    def create_environment(
        self,
        template: Environment,
        name: str,
        description: str,
        marker: str,
        variables: Mapping[str, str],
        branch: str,
    ) -> Environment:
        source = self._located()
        if source.id != template.id:
            raise AssertionError("create_environment() copies the located template")
        request = create_request(
            source, name, marked(description, marker, DEPLOYMENT_DESCRIPTION_MAX), variables
        )
        created = self._exactly_once(
            f"creating the preview Deployment '{name}'",
            lambda: self._client.create_deployment(request),
            lambda: self._find_deployment(marker),
            noun="Deployment",
            where="the workspace's Deployments",
        )
        return environment_of(created)

    def _find_deployment(self, marker: str) -> Deployment | None:
        for wait in LOOKS_AFTER_LOST_ANSWER:
            if wait:
                self._sleep(wait)
            found = self.find_environments(f"[{marker}]")
            if found:
                return self._client.get_deployment(found[0].id)
        return None

    def delete_environment(self, environment: Environment) -> bool:
        return deleted(
            lambda: self._client.delete_deployment(environment.id),
            lambda: self._client.get_deployment(environment.id),
        )

    def platform_for(self, environment: Environment) -> AstroPlatform:
        settings = replace(self._settings, deployment_id=environment.id, deployment_name="")
        return AstroPlatform(
            self._client,
            replace(settings, workspace_id=""),
            self._runner,
            registry_password=self._registry_password,
            images=self._images,
            sleep=self._sleep,
            clock=self._clock,
            request_timeout=self._request_timeout,
            opened=self._opened,
        )

    def _located(self) -> Deployment:
        if self._deployment is None:
            raise AssertionError("locate() the template Deployment first")
        return self._deployment

    @contextmanager
    def _awake(self, enabled: bool) -> Iterator[None]:
        if self._deployment is None:
            raise AssertionError("locate() the Deployment first")
        with hibernation.awake(self._client, self._deployment, self._runner, enabled=enabled):
            yield


def marked(description: str, marker: str, limit: int = DESCRIPTION_MAX) -> str:
    """``description`` cut to ``limit`` with room for `` [marker]``, which always ends it."""
    if not marker:
        return cut_description(description, limit)
    tail = f"[{marker}]"
    return f"{cut_description(description, limit - len(tail) - 1)} {tail}".lstrip()


def git_info(source: Source) -> GitInfo | None:
    """CreateDeploy's ``git`` object for ``source``; None outside GitHub without a remote.

    On GitHub the provider is GITHUB (account, repo, commit and author links); otherwise
    GENERIC with the credential-free remote URL. Unknown fields are left out.
    """
    common = {
        "commitSha": source.commit.sha,
        "branch": source.branch or None,
        "authorName": source.author_name or None,
        "beforeCommitSha": source.before or None,
        "path": source.path or None,
    }
    account, _, repo = source.repository.partition("/")
    if account and repo:
        username = source.author_username
        return GitInfo.model_validate(
            {
                "provider": "GITHUB",
                "account": account,
                "repo": repo,
                "commitUrl": source.commit_url,
                "authorUsername": username or None,
                "authorUrl": f"{source.server_url}/{username}" if username else None,
                **common,
            }
        )
    if not source.remote_url:
        return None
    return GitInfo.model_validate({"provider": "GENERIC", "remoteUrl": source.remote_url, **common})


@contextmanager
def connect(
    inputs: Inputs,
    runner: Runner,
    images: Callable[[], ImageBuilder],
    timing: Timing | None = None,
) -> Iterator[AstroPlatform]:
    """The Astro platform for ``inputs``, its HTTP connections closed on the way out."""
    timing = timing or Timing()
    session = session_settings(inputs, runner, timing)
    settings = AstroSettings(
        deployment_id=inputs.deployment_id,
        deployment_name=inputs.deployment_name,
        workspace_id=inputs.workspace_id,
        bundle_type=inputs.bundle_type,
        bundle_mount_path=inputs.bundle_mount_path,
    )
    # the session whose first read went out while the code loaded, when cli started one
    opened: list[AirflowClient] = []
    with AstroClient.over(early.take(session) or session.session()) as client:
        try:
            yield AstroPlatform(
                client,
                settings,
                runner,
                registry_password=session.token,
                images=images,
                sleep=timing.sleep,
                clock=timing.clock,
                request_timeout=timing.request_timeout,
                opened=opened,
            )
        finally:
            for airflow in opened:
                airflow.close()
