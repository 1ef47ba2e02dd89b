"""App Platform as a :class:`~ci_deploy.platform.PinningPlatform`: one app and its deployments.

The I/O of a run against App Platform: the API client, the app spec read from the
repository, the image push to DigitalOcean Container Registry (the token as the registry
password). What the answers mean is :mod:`ci_deploy.digitalocean.rules`.

App Platform starts a deployment the moment it is asked, so :meth:`create` only notes what
the release will be, and :meth:`finalize` makes it (after the image was pushed): an app
update with the spec, or a new deployment. Every write is sent exactly once: a lost answer
is resolved by reading the app back (the new deployment it shows, the pin it has or lost).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ci_deploy.digitalocean import rules
from ci_deploy.digitalocean.client import AppsApi, AppsClient
from ci_deploy.digitalocean.preview import preview_app_name, preview_spec
from ci_deploy.digitalocean.rules import AppsRules, Json
from ci_deploy.errors import ApiAmbiguousError, ApiError, DeployRejectedError, NotFoundError
from ci_deploy.exactly_once import OutcomeUnknownError, deleted, exactly_once
from ci_deploy.platform import (
    Artifact,
    Environment,
    ImportErrors,
    Observation,
    Release,
    ReleaseState,
    RollbackCheck,
    Shipment,
)
from ci_deploy.runner import Runner
from ci_deploy.source import Source
from ci_deploy.timing import Timing

if TYPE_CHECKING:
    from ci_deploy.bundle import Bundle
    from ci_deploy.image import BuiltImage, ImageBuilder
    from ci_deploy.inputs import Inputs
    from ci_deploy.preview import PullRequest

LOOKS_AFTER_LOST_ANSWER = (0.0, 2.0, 5.0)
"""Seconds before each read-back of a write whose answer was lost."""

MANUAL = ("MANUAL",)
"""The deployment types a create or an app update makes (a push's are ``DEPLOY_ON_PUSH``)."""
ROLLBACK = ("MANUAL_ROLLBACK",)
"""The deployment type a rollback makes (with ``cloned_from`` the deployment it restores)."""
REVERT = ("MANUAL_ROLLBACK", "MANUAL")
"""The types a revert's deployment may have: never a push's, which a pinned app refuses."""

PENDING_ID = ""
"""The id of a release noted by :meth:`AppsPlatform.create` and made by finalize."""


@dataclass(frozen=True)
class AppsSettings:
    """What the inputs say about the app: its id or name, and the spec file."""

    app_id: str = ""
    app_name: str = ""
    spec_file: Path | None = None
    """The app spec in the checkout (``app-spec`` under root-folder); None when absent."""
    spec_path: str = ".do/app.yaml"
    """``app-spec`` as given, relative to root-folder (the change it is found as)."""
    registry: str = ""
    """``docr-registry``: the account's container registry, where images are pushed."""
    preview: PreviewOf | None = None
    """Set on a preview's platform: the spec it deploys is made a preview's."""


@dataclass(frozen=True)
class PreviewOf:
    """What makes a spec a preview's: its marker and the pull request's head branch."""

    tag: str
    branch: str


class AppsPlatform:
    """One App Platform app, behind the platform port."""

    def __init__(
        self,
        client: AppsApi,
        settings: AppsSettings,
        runner: Runner,
        *,
        registry_password: str,
        images: Callable[[], ImageBuilder],
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client, self._settings, self._runner = client, settings, runner
        self._registry_password, self._images, self._sleep = registry_password, images, sleep
        self._app_id = settings.app_id
        self._app: Json | None = None
        self._pushed: dict[str, tuple[str, str]] = {}  # release id -> (tag, digest)
        self._seen_active: set[str] = set()  # releases observed ACTIVE: now settling

    @property
    def rules(self) -> AppsRules:
        spec = self._app.get("spec", {}) if self._app else {}
        file_spec = self._file_spec()
        image = bool(rules.docr_images(file_spec if file_spec is not None else spec))
        return AppsRules(
            spec_path=self._settings.spec_path, image=image, registry=self._settings.registry
        )

    def locate(self) -> Environment:
        if not self._app_id:
            self._app_id = self._find_by_name()
        self._app = self._client.get_app(self._app_id)
        return rules.environment_of(self._app)

    def _find_by_name(self) -> str:
        name = self._settings.app_name
        found = [a for a in self._client.list_apps() if (a.get("spec") or {}).get("name") == name]
        if not found:
            raise NotFoundError(
                f"No app is named '{name}'. Check app-name, or set app-id.",
                title="App not found",
            )
        return str(found[0]["id"])

    def history(self) -> list[Release]:
        return rules.history_of(self._client.list_deployments(self._app_id))

    # -- a deployment -----------------------------------------------------------------------

    def create(self, kind: str, description: str, source: Source, marker: str) -> Release:
        return Release(
            id=PENDING_ID,
            kind=kind,
            state=ReleaseState.PENDING,
            created_at=datetime.now(UTC),
            commit=source.commit.sha,
            description=description,
        )

    def upload(self, release: Release, artifact: Artifact, tarball: Bundle) -> str:
        raise DeployRejectedError(f"App Platform takes no {artifact.noun} upload.")

    def push(self, release: Release, image: BuiltImage) -> str:
        spec = self._target_spec()
        repository = rules.image_repository(spec, self._settings.registry)
        if not repository:
            raise DeployRejectedError(
                "The app spec has no component with an image from DigitalOcean Container "
                "Registry (image.registry_type: DOCR), so the image has nowhere to go.",
            )
        tag = (release.commit or "latest")[:12]
        digest = self._images().push(image, repository, tag, token=self._registry_password)
        self._pushed[release.id] = (tag, digest)
        return f"{repository}@{digest}" if digest else f"{repository}:{tag}"

    def finalize(self, release: Release, shipment: Shipment) -> Release:
        if release.kind == rules.DEPLOYMENT:
            before = self._ids(MANUAL)
            deployment = self._exactly_once(
                "creating the deployment",
                lambda: self._client.create_deployment(self._app_id, force_build=True),
                lambda: self._made_since(before, MANUAL, "creating the deployment"),
            )
        else:
            spec = self._target_spec()
            if release.kind == rules.IMAGE:
                tag, digest = self._pushed.get(release.id, ("", ""))
                spec = rules.with_image(spec, tag, digest)
            deployment = self._update(spec)
        made = rules.release_of(deployment, release.kind)
        self._runner.info(f"Deployment {made.id} started ({release.kind}).")
        return replace(made, commit=made.commit or release.commit)

    def _update(self, spec: Json) -> Json:
        """Validate ``spec``, show its diff, update the app with it (exactly once); the
        deployment that follows."""
        current = (self._app or {}).get("spec") or {}
        with self._runner.group("The app spec's change"):
            for line in rules.spec_diff(current, spec) or ["(no change)"]:
                self._runner.info(line)
        try:
            self._client.propose(spec, self._app_id)
        except ApiError as exc:
            if not 400 <= exc.status_code < 500 or exc.status_code in (401, 403, 404, 429):
                raise
            raise DeployRejectedError(
                f"App Platform rejects the app spec: {exc.message} Fix "
                f"{self._settings.spec_path}; the app was not changed.",
                title="Invalid app spec",
            ) from None

        what = "updating the app's spec"
        before = self._ids(MANUAL)

        def update() -> Json:
            self._app = self._client.update_app(self._app_id, spec)
            found = self._made_since(before, MANUAL, what)
            if found is None:
                raise DeployRejectedError(
                    "The app was updated with the spec, but no deployment followed. Check the "
                    "app's deployments in the control panel.",
                    title="No deployment after the update",
                )
            return found

        return self._exactly_once(what, update, lambda: self._made_since(before, MANUAL, what))

    def _target_spec(self) -> Json:
        """The spec to deploy: the repository's when it has one, else the app's; on a
        preview, the repository's made a preview's (its own variables kept)."""
        current = dict((self._app or {}).get("spec") or {})
        file_spec = self._file_spec()
        if file_spec is None:
            return current
        preview = self._settings.preview
        if preview is None:
            return file_spec
        kept = [  # the preview's own secrets, set from preview-env when it was made
            e
            for e in current.get("envs") or ()
            if isinstance(e, dict) and e.get("type") == "SECRET"
        ]
        return preview_spec(
            file_spec, str(current.get("name", "")), preview.tag, preview.branch, {}, kept
        )

    def _file_spec(self) -> Json | None:
        path = self._settings.spec_file
        if path is None or not path.is_file():
            return None
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise DeployRejectedError(
                f"The app spec {self._settings.spec_path} could not be read: {exc}. Fix the file.",
                title="Invalid app spec",
            ) from None
        if not isinstance(loaded, dict):
            raise DeployRejectedError(
                f"The app spec {self._settings.spec_path} is not a YAML mapping. Fix the file.",
                title="Invalid app spec",
            )
        return loaded

    def _ids(self, kinds: Sequence[str]) -> set[str]:
        """The ids of the app's deployments of ``kinds``, read just before a write: what
        the write makes is the one of its kind that is not among them."""
        return {str(d.get("id", "")) for d in self._client.list_deployments(self._app_id, kinds)}

    def _made_since(
        self, before: set[str], kinds: Sequence[str], what: str, cloned_from: str = ""
    ) -> Json | None:
        """The deployment ``what`` made: the one new deployment of ``kinds`` (and cloned
        from ``cloned_from``, for a rollback) not in ``before``, looked for over a short
        window; None when none appears. A push's deployment (``DEPLOY_ON_PUSH``) is never
        taken for it. Two or more new ones cannot be told apart: the outcome is unknown."""
        for wait in LOOKS_AFTER_LOST_ANSWER:
            if wait:
                self._sleep(wait)
            new = [
                d
                for d in self._client.list_deployments(self._app_id, kinds)
                if d.get("id")
                and str(d["id"]) not in before
                and (not cloned_from or d.get("cloned_from") == cloned_from)
            ]
            if len(new) == 1:
                return new[0]
            if new:
                ids = ", ".join(str(d["id"]) for d in new)
                raise OutcomeUnknownError(
                    f"Whether {what} was done is unknown: its answer was lost, and {len(new)} "
                    f"new deployments ({ids}) appeared meanwhile, so which one is this run's "
                    "cannot be told (another run, or a person, deployed at the same time). "
                    "Nothing was sent again. Check the app's deployments in the control panel; "
                    "let one run deploy an app at a time (a concurrency group).",
                    operation=what,
                    title="App Platform outcome unknown",
                )
        return None

    def _exactly_once(
        self, what: str, send: Callable[[], Json], made: Callable[[], Json | None]
    ) -> Json:
        return exactly_once(
            what,
            send,
            made,
            log=self._runner.info,
            name=lambda found: f"deployment {found.get('id')}",
            where="the app",
            title="App Platform API error",
        )

    # -- after the deployment started -------------------------------------------------------

    def observe(self, release: Release) -> Observation:
        """One look at ``release``: its rollout (:func:`rules.observation_of`) until it was
        seen ``ACTIVE``, then whether it stays so (:func:`rules.settled_observation`: the
        settle window after the rollout). One read of the deployment; the app is read only
        when a newer deployment superseded it."""
        deployment = self._client.get_deployment(self._app_id, release.id)
        newer: Json = {}
        if deployment.get("phase") == "SUPERSEDED":
            app = self._client.get_app(self._app_id)
            newer = app.get("in_progress_deployment") or app.get("active_deployment") or {}
        settling = release.id in self._seen_active
        if settling:
            seen = rules.settled_observation(deployment, newer)
        else:
            seen = rules.observation_of(deployment, str(newer.get("id", "")))
            if seen.done:
                self._seen_active.add(release.id)
        if seen.failed and deployment.get("phase") == "ERROR":
            tail = self._log_tail(release.id, kinds=("RUN", "DEPLOY") if settling else None)
            if tail:
                with self._runner.group(f"The end of deployment {release.id}'s log"):
                    for line in tail:
                        self._runner.info(line)
        return seen

    def _log_tail(
        self, deployment_id: str, lines: int = 20, kinds: Sequence[str] | None = None
    ) -> list[str]:
        """The last lines of the failed deployment's first log of ``kinds`` that has any
        (build, else deploy, by default; run, else deploy, for one that failed after it was
        ``ACTIVE``), fetched from the URLs the API gives (without the token); [] when there
        are none."""
        import httpx

        for kind in kinds or ("BUILD", "DEPLOY"):
            try:
                answer = self._client.deployment_logs(self._app_id, deployment_id, kind)
            except ApiError:
                continue
            urls = [u for u in answer.get("historic_urls") or () if isinstance(u, str)]
            if answer.get("live_url"):
                urls.append(str(answer["live_url"]))
            for url in urls[:1]:
                try:
                    text = httpx.get(url, timeout=10, follow_redirects=False).text
                except httpx.HTTPError:
                    continue
                found = text.splitlines()[-lines:]
                if found:
                    return [f"[{kind.lower()}] {line}" for line in found]
        return []

    def import_errors(self, since: datetime, members: Sequence[str]) -> ImportErrors:
        return ImportErrors({}, "", unreadable="App Platform has no Airflow import errors to read")

    def roll_back(self, to: Release, description: str, marker: str) -> Release:
        return self.roll_back_pinned(to, pin=False)

    def awake(self, enabled: bool) -> AbstractContextManager[None]:
        return nullcontext()

    # -- previews: one app per pull request -------------------------------------------------

    def find_environments(self, marker: str) -> list[Environment]:
        return [
            rules.environment_of(app)
            for app in self._client.list_apps()
            if marker in rules.marker_of(app.get("spec") or {}) and app.get("id") != self._app_id
        ]

    def preview_name(self, template: Environment, pull_request: PullRequest) -> str:
        return preview_app_name(pull_request)

    def create_environment(
        self,
        template: Environment,
        name: str,
        description: str,
        marker: str,
        variables: Mapping[str, str],
        branch: str,
    ) -> Environment:
        """A new app from the repository's spec (the template app's when the repository has
        none), made a preview's; ``description`` goes to the log (apps have none)."""
        source = self._target_spec()
        spec = preview_spec(source, name, f"[{marker}]", branch, variables)
        self._runner.info(description)
        app = exactly_once(
            f"creating the app '{name}'",
            lambda: self._client.create_app(spec),
            lambda: next(iter(self._marked_apps(f"[{marker}]")), None),
            log=self._runner.info,
            name=lambda found: f"app {found.get('id')}",
            where="the account's apps",
            title="App Platform API error",
        )
        return rules.environment_of(app)

    def _marked_apps(self, marker: str) -> list[Json]:
        return [
            app
            for app in self._client.list_apps()
            if marker in rules.marker_of(app.get("spec") or {})
        ]

    def delete_environment(self, environment: Environment) -> bool:
        return deleted(
            lambda: self._client.delete_app(environment.id),
            lambda: self._client.get_app(environment.id),
        )

    def platform_for(self, environment: Environment) -> AppsPlatform:
        preview = PreviewOf(environment.description, self._preview_branch(environment))
        settings = replace(self._settings, app_id=environment.id, app_name="", preview=preview)
        return AppsPlatform(
            self._client,
            settings,
            self._runner,
            registry_password=self._registry_password,
            images=self._images,
            sleep=self._sleep,
        )

    def _preview_branch(self, environment: Environment) -> str:
        """The branch the preview's git components build (the pull request's head)."""
        app = self._client.get_app(environment.id)
        for component in rules.components(app.get("spec") or {}):
            for source in ("github", "gitlab", "bitbucket", "git"):
                branch = (component.get(source) or {}).get("branch")
                if branch:
                    return str(branch)
        return ""

    # -- the rollback: validate -> roll back (pins) -> commit / revert ----------------------

    def validate_rollback(self, to: Release, *, pin: bool) -> RollbackCheck:
        answer = self._client.validate_rollback(self._app_id, to.id, skip_pin=not pin)
        return rules.rollback_check(answer)

    def roll_back_pinned(self, to: Release, *, pin: bool) -> Release:
        what = f"rolling back to deployment {to.id}"
        before = self._ids(ROLLBACK)
        deployment = self._exactly_once(
            what,
            lambda: self._client.rollback(self._app_id, to.id, skip_pin=not pin),
            lambda: self._made_since(before, ROLLBACK, what, cloned_from=to.id),
        )
        made = rules.release_of(deployment, "rollback")
        return replace(made, is_rollback=True, restores=to.id, commit=made.commit or to.commit)

    def commit_rollback(self) -> None:
        try:
            self._client.commit_rollback(self._app_id)
        except ApiAmbiguousError:
            if self._client.get_app(self._app_id).get("pinned_deployment"):
                raise

    def revert_rollback(self) -> Release:
        what = "reverting the rollback"
        before = self._ids(REVERT)

        def reverted() -> Json | None:
            if self._client.get_app(self._app_id).get("pinned_deployment"):
                return None
            return self._made_since(before, REVERT, what)

        deployment = self._exactly_once(
            what,
            lambda: self._client.revert_rollback(self._app_id),
            reverted,
        )
        made = rules.release_of(deployment, "revert")
        return made


def settings_of(inputs: Inputs) -> AppsSettings:
    """What the inputs say about the app."""
    return AppsSettings(
        app_id=inputs.app_id,
        app_name=inputs.app_name,
        spec_file=inputs.root_path / inputs.app_spec,
        spec_path=inputs.app_spec,
        registry=inputs.docr_registry,
    )


@contextmanager
def connect(
    inputs: Inputs,
    runner: Runner,
    images: Callable[[], ImageBuilder],
    timing: Timing | None = None,
) -> Iterator[AppsPlatform]:
    """The App Platform platform for ``inputs``, its HTTP connections closed on the way out."""
    timing = timing or Timing()
    token = inputs.digitalocean_token.get_secret_value()
    with AppsClient(
        inputs.api_url,
        token,
        on_retry=runner.info,
        sleep=timing.sleep,
        timeout=timing.request_timeout,
    ) as client:
        yield AppsPlatform(
            client,
            settings_of(inputs),
            runner,
            registry_password=token,
            images=images,
            sleep=timing.sleep,
        )
