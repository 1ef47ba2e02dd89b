"""The platform port: what a run needs of the place it deploys to, in words every platform has.

An *environment* is what a run deploys to (Astro: a Deployment; App Platform: an app); a
*release* is one deploy to it (Astro: a deploy; App Platform: a deployment). A run reads the
environment and its release history, creates a release, ships its artifacts, finalizes it,
observes the rollout, reads Airflow's import errors, and rolls back to an earlier release.

The types here are plain frozen data; :class:`Platform` is the ``typing.Protocol`` an
implementation satisfies (:mod:`ci_deploy.astro` is the first, a fake in memory backs the
orchestration tests). What a platform decides purely (which kind of release a change needs,
what it ships, what its rollout must show) is its :class:`ReleaseRules`; what it does over the
network is the rest of :class:`Platform`. Nothing here names a platform.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ci_deploy.changeset import ChangeSet
from ci_deploy.source import Source
from ci_deploy.text import capitalized

if TYPE_CHECKING:
    from ci_deploy.bundle import Bundle
    from ci_deploy.image import BuiltImage
    from ci_deploy.preview import PullRequest
    from ci_deploy.verification import AirflowImportError, Dag, DagRun

__all__ = [
    "ASTRO",
    "Airflow",
    "AirflowPlatform",
    "Artifact",
    "Decision",
    "Environment",
    "ImportErrors",
    "Observation",
    "PinningPlatform",
    "Platform",
    "PreviewPlatform",
    "Refusal",
    "Release",
    "ReleaseRules",
    "ReleaseState",
    "RollbackCheck",
    "Shipment",
    "Words",
]


class Artifact(StrEnum):
    """What a release ships."""

    DAGS = "dags"
    """The DAG tarball (the DAGs folder, its name as the members' prefix)."""
    BUNDLE = "bundle"
    """The project folder's contents, as a bundle archive (for example a dbt project)."""
    IMAGE = "image"
    """The container image built from the project."""

    @property
    def noun(self) -> str:
        """What it is, for messages: "the DAG tarball"."""
        return _NOUNS[self]

    @property
    def version_name(self) -> str:
        """What its version is called, for messages: "DAG version", "image tag"."""
        return _VERSION_NAMES[self]


_NOUNS = {
    Artifact.DAGS: "the DAG tarball",
    Artifact.BUNDLE: "the bundle",
    Artifact.IMAGE: "the image",
}
_VERSION_NAMES = {
    Artifact.DAGS: "DAG version",
    Artifact.BUNDLE: "bundle version",
    Artifact.IMAGE: "image tag",
}


class ReleaseState(StrEnum):
    """Where a release stands in the history."""

    PENDING = "pending"
    """Created, not finalized: the environment does not run it."""
    LIVE = "live"
    """Finalized: the environment runs it, or ran it until a later release."""
    FAILED = "failed"


@dataclass(frozen=True)
class Release:
    """One release in an environment's history.

    ``versions`` are the versions of what it shipped that a rollout must show (the DAG
    tarball's version, the image tag): the environment runs this release when it runs
    these. ``restores`` is, for a rollback, the id of the earlier release whose code it
    brought back ("" when it is no rollback, or that release is not known).
    """

    id: str
    kind: str
    state: ReleaseState
    created_at: datetime
    commit: str = ""
    description: str = ""
    is_rollback: bool = False
    restores: str = ""
    versions: Mapping[Artifact, str] = field(default_factory=dict)

    def commit_label(self) -> str:
        """``commit <sha12>``, or that none is recorded."""
        return f"commit {self.commit[:12]}" if self.commit else "no commit recorded"


@dataclass(frozen=True)
class Words:
    """How a platform names things in the messages, the plan and the summary of a run.

    The defaults are Astro's, the first platform's, word for word; another platform gives
    its own (App Platform: an "app" runs "deployments", "ACTIVE" ones, seen in the
    DigitalOcean control panel)."""

    platform: str = "Astro"
    """The platform's name: "Deployed to {platform}"."""
    environment: str = "Deployment"
    """What a run deploys to, as a noun after "the": "the Deployment", "the app"."""
    release: str = "deploy"
    """One release, as a noun before its id: "deploy X", "deployment X"."""
    live: str = "DEPLOYED"
    """The state of a release that ran: "no earlier DEPLOYED deploy"."""
    ui: str = "the Astro UI"
    """Where a person looks at the environment: "check the Deployment in the Astro UI"."""
    ships_nothing: str = "nothing"
    """What a release that uploads no artifact ships (App Platform builds the commit itself)."""
    file_kinds: tuple[str, str] | None = ("DAG", "image")
    """The two kinds of relevant files it tells apart ("2 DAG, 1 image, 0 not relevant");
    None when it does not (App Platform: "3 relevant, 0 not relevant")."""

    @property
    def the_environment(self) -> str:
        """ "the Deployment", "the app"."""
        return f"the {self.environment}"

    def counted(self, changes: ChangeSet) -> str:
        """The changed files counted by kind: "2 DAG, 1 image, 0 not relevant"."""
        ignored = f"{len(changes.ignored_files)} not relevant"
        if self.file_kinds is None:
            return f"{len(changes.dag_files) + len(changes.image_files)} relevant, {ignored}"
        dag, image = self.file_kinds
        return f"{len(changes.dag_files)} {dag}, {len(changes.image_files)} {image}, {ignored}"

    def relevant_files(self, changes: ChangeSet) -> list[tuple[str, tuple[str, ...]]]:
        """The relevant changed files, grouped as the platform tells them apart:
        ("DAG files", ...), ("Image files", ...); or ("Relevant files", ...)."""
        if self.file_kinds is None:
            both = tuple(sorted((*changes.dag_files, *changes.image_files)))
            return [("Relevant files", both)]
        dag, image = self.file_kinds
        return [
            (f"{capitalized(dag)} files", changes.dag_files),
            (f"{capitalized(image)} files", changes.image_files),
        ]


ASTRO = Words()
"""Astro's words, the defaults."""


@dataclass(frozen=True)
class Environment:
    """What a run deploys to, as read at its start."""

    id: str
    name: str
    url: str
    """Its page in the platform's UI; "" when there is none."""
    status: str
    """The platform's own word for its state, for the log."""
    summary: str
    """One line for the log: name, id, status and what matters for a deploy."""
    dag_deploys: bool
    """Whether the DAG files can be deployed on their own, without an image."""
    running: Mapping[Artifact, str] = field(default_factory=dict)
    """The versions it runs now (Astro: its DAG tarball version and image tag); a release
    runs when its ``versions`` are among these. Empty when the platform does not say."""
    description: str = ""
    """Its description; a preview's carries the marker it is found by."""
    secret_keys: tuple[str, ...] = ()
    """The names of its secret variables, whose values cannot be read back."""
    creating: bool = False
    """Whether it is still being made, and cannot take a release yet."""
    words: Words = ASTRO
    """How its platform names things in messages (Astro's by default)."""
    pinned: str = ""
    """The release it is pinned to by a rollback that was neither committed nor reverted
    (App Platform); "" when it is not pinned. A pinned environment takes no new release."""

    @property
    def platform(self) -> str:
        """The platform's name for messages: "Astro", "App Platform"."""
        return self.words.platform


@dataclass(frozen=True)
class Observation:
    """One look at a rollout: finished, failed, or neither yet; ``summary`` says what was seen."""

    done: bool
    failed: bool
    summary: str


@dataclass(frozen=True)
class Shipment:
    """What was shipped for a release: each artifact's version (uploads) or reference (image)."""

    versions: Mapping[Artifact, str]


@dataclass(frozen=True)
class ImportErrors:
    """Airflow's import errors of the shipped files: each tarball member (``dags/x.py``)
    with Airflow's message, and ``where`` they were read ("the scheduler logs").

    ``unreadable`` says why they could not be read ("" when they were): nothing was checked.
    """

    problems: Mapping[str, str]
    where: str
    unreadable: str = ""
    failed: str = ""
    """Why reading them failed ("" when it did not): nothing was checked, and that is worth
    a warning, where ``unreadable`` (the platform has no such logs) is only a notice."""


@dataclass(frozen=True)
class Refusal:
    """Why an environment cannot take a kind of release: an error title and message."""

    title: str
    message: str


@dataclass(frozen=True)
class Decision:
    """What a change needs: a release ``kind``, or None to skip; ``reason`` says why."""

    kind: str | None
    reason: str
    warnings: tuple[str, ...] = ()


class ReleaseRules(Protocol):
    """A platform's pure rules: no I/O, so a plan is made and tested without a server."""

    def decide(
        self,
        requested: str,
        changes: ChangeSet | None,
        environment: Environment,
        *,
        force: bool,
        no_base_reason: str,
    ) -> Decision:
        """The kind of release the ``deploy-type`` input and the changes call for.

        ``changes`` is None when there is no commit to compare with.
        """
        ...

    def refusal(self, kind: str, environment: Environment) -> Refusal | None:
        """Why ``environment`` cannot take a release of ``kind``; None when it can."""
        ...

    def artifacts(self, kind: str, environment: Environment) -> frozenset[Artifact]:
        """What a release of ``kind`` ships to ``environment``."""
        ...

    def rollout_shows(self, kind: str, artifacts: frozenset[Artifact]) -> frozenset[Artifact]:
        """Whose versions the environment must show before a release of ``kind`` counts as
        running (an empty set: the environment is healthy on it)."""
        ...


class Platform(Protocol):
    """What a run does to one environment. Methods raise :class:`~ci_deploy.errors.CiDeployError`
    subclasses whose messages say what to do; none ever holds a secret."""

    @property
    def rules(self) -> ReleaseRules:
        """The platform's pure rules."""
        ...

    def locate(self) -> Environment:
        """Find the environment the inputs name, and read it."""
        ...

    def history(self) -> Sequence[Release]:
        """Every release of the environment, oldest first."""
        ...

    def create(self, kind: str, description: str, source: Source, marker: str) -> Release:
        """Create a release of ``kind``, exactly once even when an answer is lost.

        ``marker`` is unique to the run: the release's description carries it, so a create
        whose answer was lost is found in the history instead of being made twice. A platform
        whose releases start the moment they are made (App Platform) returns a release with
        an empty ``id`` and makes it in :meth:`finalize`, after the artifacts were shipped.
        """
        ...

    def upload(self, release: Release, artifact: Artifact, tarball: Bundle) -> str:
        """Upload ``tarball`` (read from its spool file) as ``artifact`` of ``release``; return
        the version to finalize with."""
        ...

    def push(self, release: Release, image: BuiltImage) -> str:
        """Push ``image`` for ``release``; return the reference pushed."""
        ...

    def finalize(self, release: Release, shipment: Shipment) -> Release:
        """Finalize ``release`` with what was shipped; the environment starts running it.

        Exactly once: when the answer is lost, the release is read back, and finalized
        again only when it was not.
        """
        ...

    def observe(self, release: Release) -> Observation:
        """Look once at how far the environment is in running ``release``."""
        ...

    def import_errors(self, since: datetime, members: Sequence[str]) -> ImportErrors:
        """Airflow's import errors, reported since ``since``, of the tarball ``members``."""
        ...

    def roll_back(self, to: Release, description: str, marker: str) -> Release:
        """Return the environment to the earlier release ``to``; the rollback release.

        Exactly once, like :meth:`create`: the rollback's description carries ``marker``.
        """
        ...

    def awake(self, enabled: bool) -> AbstractContextManager[None]:
        """Keep a sleeping environment awake inside the block when ``enabled``, and put back
        what was there before on every way out."""
        ...


@runtime_checkable
class PreviewPlatform(Platform, Protocol):
    """A platform that can also hold preview environments (one per pull request).

    Previews are found only by a ``marker`` their description carries, never by a name that
    merely looks alike. :meth:`locate` reads the template; the preview's own releases go
    through the platform :meth:`platform_for` gives.
    """

    def find_environments(self, marker: str) -> Sequence[Environment]:
        """The environments near the template (Astro: in its workspace) whose description
        contains ``marker``, the template itself excepted."""
        ...

    def preview_name(self, template: Environment, pull_request: PullRequest) -> str:
        """The name of ``pull_request``'s preview of ``template``, in the platform's rules for
        names, unique per repository, pull request and template."""
        ...

    def create_environment(
        self,
        template: Environment,
        name: str,
        description: str,
        marker: str,
        variables: Mapping[str, str],
        branch: str,
    ) -> Environment:
        """Create an environment from ``template``'s settings, carrying ``[marker]`` (Astro:
        its description ends in it), with the secret ``variables`` set, building from the pull
        request's head ``branch`` where the platform builds from git; exactly once, like a
        release."""
        ...

    def delete_environment(self, environment: Environment) -> bool:
        """Delete ``environment``; False when it was already gone."""
        ...

    def platform_for(self, environment: Environment) -> Platform:
        """The platform over ``environment`` (a preview), for its releases."""
        ...


@dataclass(frozen=True)
class RollbackCheck:
    """The platform's verdict on a rollback before it is made: ``valid``, else the ``code``
    and ``reason`` why not; ``warnings`` of a valid one (each ``code: message``)."""

    valid: bool
    code: str = ""
    reason: str = ""
    warnings: tuple[str, ...] = ()


@runtime_checkable
class PinningPlatform(Platform, Protocol):
    """A platform whose rollback is validated first and pins the environment until it is
    committed (kept) or reverted (undone): App Platform's ``validate -> rollback -> commit /
    revert``. ``pin`` False rolls back without pinning (committed at once)."""

    def validate_rollback(self, to: Release, *, pin: bool) -> RollbackCheck:
        """Whether the environment can be rolled back to ``to``; changes nothing."""
        ...

    def roll_back_pinned(self, to: Release, *, pin: bool) -> Release:
        """Roll back to ``to`` (exactly once); the rollback release, which pins the
        environment when ``pin``."""
        ...

    def commit_rollback(self) -> None:
        """Keep the rollback the environment is pinned to, and unpin it (exactly once)."""
        ...

    def revert_rollback(self) -> Release:
        """Undo the rollback the environment is pinned to: a new release of the spec from
        before it, and unpin; that release."""
        ...


class Airflow(Protocol):
    """Airflow's own REST API on one environment: what the verification gates read and do.

    Every method raises :class:`~ci_deploy.errors.AirflowApiError` when the API cannot be
    reached or refuses (transport errors, 5xx after retries, 401, 403, 404 of a list): the
    gates then fall back or skip, saying so. Messages never hold the token.
    """

    @property
    def major(self) -> int:
        """Airflow's major version: 2 (``/api/v1``) or 3 (``/api/v2``)."""
        ...

    def import_errors(self) -> Sequence[AirflowImportError]:
        """Every import error Airflow has now, all pages."""
        ...

    def dags(self) -> Sequence[Dag]:
        """Every DAG Airflow knows, all pages."""
        ...

    def dag(self, dag_id: str) -> Dag | None:
        """One DAG; None when Airflow has no DAG of that id."""
        ...

    def set_paused(self, dag_id: str, paused: bool) -> None:
        """Pause or unpause a DAG."""
        ...

    def trigger(self, dag_id: str, conf: Mapping[str, object]) -> DagRun:
        """Trigger a run of ``dag_id`` with ``conf``; the run made."""
        ...

    def dag_run(self, dag_id: str, run_id: str) -> DagRun:
        """Read a DAG run again."""
        ...

    def failed_tasks(self, dag_id: str, run_id: str) -> tuple[str, ...]:
        """The ids of the run's task instances whose state is ``failed`` (or
        ``upstream_failed``)."""
        ...

    def bundle_version(self, dag_id: str) -> str | None:
        """The bundle version the DAG's latest version was parsed from (Airflow 3's DAG
        versions); None on Airflow 2, or when Airflow has no version of it."""
        ...

    def run_link(self, dag_id: str, run_id: str) -> str:
        """The Airflow UI's page of a run ("" when the UI's address is not known)."""
        ...


@runtime_checkable
class AirflowPlatform(Platform, Protocol):
    """A platform whose environments serve Airflow's REST API (Astro): the verification
    gates read import errors and trigger smoke runs through it."""

    def airflow(self) -> Airflow:
        """The Airflow API of the located environment; AirflowApiError (saying why) when it
        has none that may be asked (no API address, or one the token must not go to)."""
        ...
