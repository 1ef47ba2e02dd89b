"""Test doubles for the orchestration: a fake clock, an in-memory platform, a fake image builder.

:class:`FakePlatform` implements the platform port in memory with Astro's rules, so every
path of a run (each deploy type, skip, timeout, UNHEALTHY, import errors, rollbacks, lost
history, cancellation) runs in process in milliseconds. It records every call; faults are
scripted per method. :class:`FakeClock` gives a run's :class:`~ci_deploy.timing.Timing`:
sleeping advances it, nothing really sleeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ci_deploy.astro.rules import RULES, AstroRules
from ci_deploy.bundle import Bundle
from ci_deploy.errors import AirflowApiError, ImageError
from ci_deploy.image import BuiltImage
from ci_deploy.input_rules import DEPLOYMENT_NAME_MAX
from ci_deploy.inputs import Inputs
from ci_deploy.platform import (
    Artifact,
    Environment,
    ImportErrors,
    Observation,
    Platform,
    Release,
    ReleaseState,
    Shipment,
)
from ci_deploy.preview import PullRequest, preview_name
from ci_deploy.runner import Runner
from ci_deploy.source import Source
from ci_deploy.timing import Timing
from ci_deploy.verification import AirflowImportError, Dag, DagRun

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    """Monotonic seconds that only move when something sleeps (or a test advances them)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[float], None] | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(self.now)

    def wall(self) -> datetime:
        return EPOCH + timedelta(seconds=self.now)

    def timing(self, request_timeout: float | None = None) -> Timing:
        """A run's Timing on this clock; ``request_timeout`` (real seconds) if given."""
        timing = Timing(clock=self, sleep=self.sleep, now=self.wall)
        if request_timeout is None:
            return timing
        return replace(timing, request_timeout=request_timeout)


@dataclass
class Rollout:
    """How the environment takes a release: done after ``polls`` looks, or never;
    ``unhealthy_from``: the look from which a done release turns UNHEALTHY (0: never)."""

    polls: int = 1
    outcome: str = "healthy"  # healthy, unhealthy, stuck
    unhealthy_from: int = 0


@dataclass
class FakePlatform:
    """An environment and its releases in memory, behind the platform port."""

    environment: Environment = field(
        default_factory=lambda: Environment(
            id="dep-1",
            name="analytics",
            url="https://cloud.example/dep-1",
            status="HEALTHY",
            summary="Deployment 'analytics' (dep-1): status HEALTHY.",
            dag_deploys=True,
        )
    )
    releases: list[Release] = field(default_factory=list)
    rollout: Rollout = field(default_factory=Rollout)
    rollback_rollout: Rollout = field(default_factory=Rollout)
    import_problems: dict[str, str] = field(default_factory=dict)
    logs_readable: bool = True
    faults: dict[str, Exception] = field(default_factory=dict)
    """Method name -> the error it raises (once)."""
    on_call: dict[str, Callable[[], None]] = field(default_factory=dict)
    """Method name -> a hook run when it is called (e.g. to cancel the run there)."""
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    sources: dict[str, Source] = field(default_factory=dict)
    uploads: dict[str, bytes] = field(default_factory=dict)
    spooled: list[Path] = field(default_factory=list)
    """The spool files the uploads were read from."""
    awake_calls: list[str] = field(default_factory=list)
    shows: dict[Artifact, str] = field(default_factory=dict)
    """The versions the environment runs now (what :meth:`locate` says it runs)."""
    previews: dict[str, FakePlatform] = field(default_factory=dict)
    """The environments near this one (its previews, and look-alikes), by id."""
    created_variables: dict[str, dict[str, str]] = field(default_factory=dict)
    """The secret variables each preview was created with, by id."""
    creating_looks: int = 0
    """How many more times :meth:`locate` says the environment is still being made."""
    creating_looks_of_new: int = 2
    """How many looks a new preview stays CREATING."""
    _looks: dict[str, int] = field(default_factory=dict)
    _plans: dict[str, Rollout] = field(default_factory=dict)

    # -- set-up ----------------------------------------------------------------------------

    def seed(self, commit: str = "", *, kind: str = "DAG_ONLY", dags: str = "v0") -> Release:
        """A live release in the history, as if deployed before."""
        release = Release(
            id=f"r{len(self.releases) + 1}",
            kind=kind,
            state=ReleaseState.LIVE,
            created_at=EPOCH + timedelta(minutes=len(self.releases)),
            commit=commit,
            versions={Artifact.DAGS: dags} if dags else {},
        )
        self.releases.append(release)
        self.shows.update(release.versions)
        return release

    def other_run(
        self, commit: str, *, finalized: bool = True, run_url: str = "", dags: str = ""
    ) -> Release:
        """Another run's deploy of ``commit``, made now: finalized (and running) or not."""
        n = len(self.releases) + 1
        release = Release(
            id=f"other-{n}",
            kind="DAG_ONLY",
            state=ReleaseState.LIVE if finalized else ReleaseState.PENDING,
            created_at=EPOCH + timedelta(minutes=len(self.releases)),
            commit=commit,
            description=f"another run ({run_url}) [ci-deploy:other{n}]",
            versions={Artifact.DAGS: dags or f"dags-other-{n}"} if finalized else {},
        )
        self.releases.append(release)
        self.shows.update(release.versions)
        return release

    def deploys(self) -> list[Release]:
        """The releases this run created (not seeded, not rollbacks)."""
        return [r for r in self.releases if r.id.startswith("new-")]

    def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, *args))
        if name in self.on_call:
            self.on_call[name]()
        if name in self.faults:
            raise self.faults.pop(name)

    def names(self) -> list[str]:
        return [call[0] for call in self.calls]

    # -- the port ----------------------------------------------------------------------------

    @property
    def rules(self) -> AstroRules:
        return RULES

    def locate(self) -> Environment:
        self._call("locate")
        creating = self.creating_looks > 0
        self.creating_looks -= creating
        status = "CREATING" if creating else self.environment.status
        return replace(self.environment, running=dict(self.shows), creating=creating, status=status)

    def history(self) -> Sequence[Release]:
        self._call("history")
        return list(self.releases)

    def create(self, kind: str, description: str, source: Source, marker: str) -> Release:
        self._call("create", kind, description)
        description = f"{description} [{marker}]"
        release = Release(
            id=f"new-{len(self.deploys()) + 1}",
            kind=kind,
            state=ReleaseState.PENDING,
            created_at=EPOCH + timedelta(minutes=len(self.releases)),
            commit=source.commit.sha,
            description=description,
        )
        self.sources[release.id] = source
        self.releases.append(release)
        return release

    def upload(self, release: Release, artifact: Artifact, tarball: Bundle) -> str:
        self._call("upload", release.id, artifact)
        version = f"{artifact.value}-{release.id}"
        self.uploads[version] = tarball.path.read_bytes()  # the spool file goes at the end
        self.spooled.append(tarball.path)
        return version

    def push(self, release: Release, image: BuiltImage) -> str:
        self._call("push", release.id, image.reference)
        return f"registry.example/dep-1:tag-{release.id}"

    def finalize(self, release: Release, shipment: Shipment) -> Release:
        self._call("finalize", release.id, dict(shipment.versions))
        shows = RULES.rollout_shows(release.kind, frozenset(shipment.versions))
        live = replace(
            release,
            state=ReleaseState.LIVE,
            versions={a: shipment.versions[a] for a in shows},
        )
        self._replace(live)
        self._plans[live.id] = self.rollout
        if self.rollout.outcome == "healthy":
            self.shows.update(live.versions)
        return live

    def observe(self, release: Release) -> Observation:
        self._call("observe", release.id)
        plan = self._plans.get(release.id, Rollout())
        looks = self._looks[release.id] = self._looks.get(release.id, 0) + 1
        summary = f"look {looks} at {release.id}"
        if plan.outcome == "unhealthy":
            return Observation(False, True, f"{summary}: UNHEALTHY")
        if plan.outcome == "stuck" or looks < plan.polls:
            return Observation(False, False, f"{summary}: DEPLOYING")
        if plan.unhealthy_from and looks >= plan.unhealthy_from:
            return Observation(False, True, f"{summary}: UNHEALTHY (a scheduler crashed)")
        return Observation(True, False, f"{summary}: HEALTHY")

    def import_errors(self, since: datetime, members: Sequence[str]) -> ImportErrors:
        self._call("import_errors", since)
        if not self.logs_readable:
            return ImportErrors({}, "the fake logs", unreadable="The fake logs are not there")
        found = {m: msg for m, msg in self.import_problems.items() if m in members}
        return ImportErrors(found, "the fake logs")

    def roll_back(self, to: Release, description: str, marker: str) -> Release:
        self._call("roll_back", to.id, description)
        description = f"{description} [{marker}]"
        rollback = Release(
            id=f"rollback-{len(self.releases) + 1}",
            kind=to.kind,
            state=ReleaseState.LIVE,
            created_at=EPOCH + timedelta(minutes=len(self.releases)),
            commit=to.commit,
            description=description,
            is_rollback=True,
            restores=to.id,
            versions=to.versions,
        )
        self.releases.append(rollback)
        self._plans[rollback.id] = self.rollback_rollout
        if self.rollback_rollout.outcome == "healthy":
            self.shows.update(rollback.versions)
        return rollback

    def awake(self, enabled: bool) -> AbstractContextManager[None]:
        return self._awake(enabled)

    @contextmanager
    def _awake(self, enabled: bool) -> Iterator[None]:
        self.awake_calls.append(f"wake {enabled}")
        try:
            yield
        finally:
            self.awake_calls.append(f"restore {enabled}")

    # -- previews ------------------------------------------------------------------------------

    def add_environment(self, id: str, name: str, description: str) -> FakePlatform:
        """An environment near this one, as if made before (or by hand)."""
        environment = replace(
            self.environment,
            id=id,
            name=name,
            description=description,
            url=f"https://cloud.example/{id}",
            summary=f"Deployment '{name}' ({id}).",
        )
        other = self.previews[id] = FakePlatform(environment=environment)
        return other

    def find_environments(self, marker: str) -> Sequence[Environment]:
        self._call("find_environments", marker)
        return [
            p.environment for p in self.previews.values() if marker in p.environment.description
        ]

    def preview_name(self, template: Environment, pull_request: PullRequest) -> str:
        return preview_name(template.name, pull_request, DEPLOYMENT_NAME_MAX)

    def create_environment(
        self,
        template: Environment,
        name: str,
        description: str,
        marker: str,
        variables: Mapping[str, str],
        branch: str,
    ) -> Environment:
        self._call("create_environment", template.id, name)
        preview = self.add_environment(
            f"preview-{len(self.previews) + 1}", name, f"{description} [{marker}]"
        )
        preview.creating_looks = self.creating_looks_of_new
        self.created_variables[preview.environment.id] = dict(variables)
        return replace(preview.environment, creating=True, status="CREATING")

    def delete_environment(self, environment: Environment) -> bool:
        self._call("delete_environment", environment.id)
        return self.previews.pop(environment.id, None) is not None

    def platform_for(self, environment: Environment) -> FakePlatform:
        self._call("platform_for", environment.id)
        return self.previews[environment.id]

    def _replace(self, release: Release) -> None:
        self.releases = [release if r.id == release.id else r for r in self.releases]


def platform_factory(
    platform: Platform,
) -> Callable[..., AbstractContextManager[Platform]]:
    """A :class:`~ci_deploy.run.Dependencies` platform factory that hands out ``platform``."""

    @contextmanager
    def make(
        inputs: Inputs, runner: Runner, images: Callable[[], Any], timing: Timing
    ) -> Iterator[Platform]:
        yield platform

    return make


@dataclass
class FakeImages:
    """An image builder in memory: builds and finds images, records what it did."""

    runtime_version: str = "3.0-1"
    known: set[str] = field(default_factory=set)
    built: list[tuple[Path, str]] = field(default_factory=list)
    closed: int = 0

    def build(self, context_dir: Path, *, tag: str) -> BuiltImage:
        self.built.append((context_dir, tag))
        return BuiltImage("sha256:" + "1" * 64, tag, self.runtime_version)

    def existing(self, image_name: str) -> BuiltImage:
        if image_name not in self.known:
            raise ImageError(f"The image {image_name} is not in the Docker engine.")
        return BuiltImage("sha256:" + "2" * 64, image_name, self.runtime_version)

    def check_runtime(self, image: BuiltImage) -> str:
        if not image.runtime_version:
            raise ImageError(f"{image.reference} is not an Astro Runtime image")
        return image.runtime_version

    def push(self, image: BuiltImage, repository: str, tag: str, *, token: str) -> str:
        raise AssertionError("the fake platform pushes; the builder is not asked to")

    def close(self) -> None:
        self.closed += 1


@dataclass
class FakeAirflow:
    """Airflow's REST API in memory (the :class:`~ci_deploy.platform.Airflow` port), on a
    :class:`FakeClock`: import errors that appear some seconds after the rollout was first
    seen HEALTHY, DAGs (paused or not), runs that end ``success`` or ``failed`` after a few
    looks, DAG versions. ``down``: every call raises AirflowApiError (the API unreachable)."""

    clock: FakeClock
    major: int = 3
    errors: list[tuple[float, AirflowImportError]] = field(default_factory=list)
    """(seconds after HEALTHY, the error): listed from then on."""
    dags_known: dict[str, Dag] = field(default_factory=dict)
    failing: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """DAG id -> the tasks whose failure fails its runs; other DAGs' runs succeed."""
    run_looks: int = 2
    """How many looks a run stays running before it ends."""
    versions: dict[str, str] = field(default_factory=dict)
    """DAG id -> the bundle version of its latest DAG version."""
    down: bool = False
    healthy_at: float | None = None
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    _runs: dict[str, int] = field(default_factory=dict)

    def _call(self, *call: Any) -> None:
        self.calls.append(call)
        if self.down:
            raise AirflowApiError("Airflow's API at https://fake/api/v2 answered HTTP 503")

    def import_errors(self) -> list[AirflowImportError]:
        self._call("import_errors")
        if self.healthy_at is None:
            return []
        since = self.clock.now - self.healthy_at
        return [error for after, error in self.errors if since >= after]

    def dags(self) -> list[Dag]:
        self._call("dags")
        return list(self.dags_known.values())

    def dag(self, dag_id: str) -> Dag | None:
        self._call("dag", dag_id)
        return self.dags_known.get(dag_id)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._call("set_paused", dag_id, paused)
        self.dags_known[dag_id] = replace(self.dags_known[dag_id], is_paused=paused)

    def trigger(self, dag_id: str, conf: Mapping[str, object]) -> DagRun:
        self._call("trigger", dag_id, dict(conf))
        run_id = f"manual__{len(self._runs) + 1}"
        self._runs[run_id] = 0
        return DagRun(dag_id, run_id, "queued")

    def dag_run(self, dag_id: str, run_id: str) -> DagRun:
        self._call("dag_run", dag_id, run_id)
        looks = self._runs[run_id] = self._runs[run_id] + 1
        if looks < self.run_looks:
            return DagRun(dag_id, run_id, "running")
        return DagRun(dag_id, run_id, "failed" if dag_id in self.failing else "success")

    def failed_tasks(self, dag_id: str, run_id: str) -> tuple[str, ...]:
        self._call("failed_tasks", dag_id, run_id)
        return self.failing.get(dag_id, ())

    def bundle_version(self, dag_id: str) -> str | None:
        self._call("bundle_version", dag_id)
        return self.versions.get(dag_id) if self.major >= 3 else None

    def run_link(self, dag_id: str, run_id: str) -> str:
        return f"https://airflow.example/dags/{dag_id}/runs/{run_id}"


@dataclass
class FakeAirflowPlatform(FakePlatform):
    """A :class:`FakePlatform` whose environment serves Airflow's API (``airflow_api``;
    None: it has none that may be asked, ``airflow()`` raises)."""

    airflow_api: FakeAirflow | None = None

    def airflow(self) -> FakeAirflow:
        self._call("airflow")
        if self.airflow_api is None:
            raise AirflowApiError("The Deployment has no Airflow API address (apiUrl)")
        return self.airflow_api

    def observe(self, release: Release) -> Observation:
        seen = super().observe(release)
        api = self.airflow_api
        if seen.done and api is not None and api.healthy_at is None:
            api.healthy_at = api.clock.now
        return seen
