"""The emulator's in-memory App Platform: apps, their deployments, rollbacks and pins.

The rules a client can trip over live here, in one place: what a spec must hold, when an
update makes a deployment, how a deployment moves through its phases, which rollbacks are
valid, what a pinned app refuses, what a revert deploys.

Phases need no timers: a deployment's phase is computed from the clock whenever it is read.
A deployment that builds spends :attr:`AppsState.phase_seconds` in each of
``PENDING_BUILD``, ``BUILDING``, ``PENDING_DEPLOY`` and ``DEPLOYING``, then is ``ACTIVE``; a
rollback (or a revert) does not build, so it starts at ``PENDING_DEPLOY``. A deployment
made to fail (:meth:`AppsState.fail_next`) ends ``ERROR`` at the end of its failing step's
phase. One made to go unhealthy (:attr:`AppsState.unhealthy`) turns from ``ACTIVE`` to
``ERROR`` a set number of clock seconds after it became ``ACTIVE``, with a failed ``run``
step and its lines in the ``RUN`` log. A newer deployment supersedes one still in
progress (``SUPERSEDED``); a cancel ends it ``CANCELED``. Finished ``ACTIVE`` deployments
stay ``ACTIVE`` in the history: the app's ``active_deployment`` is the newest of them.

Not thread-safe by itself: the server holds :attr:`AppsState.lock` around every call.
"""

from __future__ import annotations

import copy
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ci_deploy_testkit.do_emulator.wire import DoProblem

SEED_COMMIT_SHA = "5eed0000c0ffee0000000000000000000000a11f"
COMPONENT_KINDS = ("services", "workers", "static_sites", "jobs")
SOURCE_KINDS = ("git", "github", "gitlab", "bitbucket", "image")
BUILD_PHASES = ("PENDING_BUILD", "BUILDING", "PENDING_DEPLOY", "DEPLOYING")
DEPLOY_PHASES = ("PENDING_DEPLOY", "DEPLOYING")
TERMINAL_PHASES = frozenset({"ACTIVE", "ERROR", "CANCELED", "SUPERSEDED"})
REVISION_LIMIT = 10
"""How many deployments back a rollback may go (``exceeded_revision_limit`` beyond)."""

_LONG_AGO = 1e9  # clock seconds: a settled deployment started this long before it was made
Step = Literal["build", "deploy"]
_STEP_PHASE = {"build": "BUILDING", "deploy": "DEPLOYING"}  # the phase a step runs in
_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]")
_NAME_RULE = "2 to 32 characters: lower-case letters, digits and '-', starting with a letter"


def iso_seconds(epoch_seconds: float) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, the API's timestamp format."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


@dataclass(frozen=True)
class Failure:
    """How a deployment fails: at ``step`` (of ``component``, else the first), with ``log``
    lines at the end of that step's log."""

    step: Step
    component: str | None = None
    log: tuple[str, ...] = ("error: the component exited with code 1",)


@dataclass(frozen=True)
class Unhealthy:
    """How an ``ACTIVE`` deployment fails later: ``after`` clock seconds past the moment it
    became ``ACTIVE``, in ``component`` (the first when None), with ``log`` in its run log."""

    after: float
    component: str | None = None
    log: tuple[str, ...] = ("health check failed: GET /health: connection refused",)


@dataclass(frozen=True)
class RollbackValidation:
    """The answer every rollback validation gives, set by a test instead of the rules.

    ``error_code`` is one of the spec's condition codes (``incompatible_phase``,
    ``exceeded_revision_limit``, ...) when the rollback is invalid; ``warnings`` are
    ``(code, message)`` pairs. An invalid answer also makes the rollback itself refused.
    """

    valid: bool = True
    error_code: str | None = None
    error_message: str = ""
    warnings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Ended:
    """How a deployment was stopped: ``CANCELED`` or ``SUPERSEDED``, when (epoch seconds),
    in which phase (its index)."""

    phase: str
    at: float
    index: int


@dataclass(frozen=True)
class Position:
    """Where a deployment is: the index of its phase (past the last: done), whether it
    failed there, and whether it was stopped there."""

    index: int
    failed: bool = False
    ended: Ended | None = None


@dataclass
class Deployment:
    """One rollout of a spec; its phase is computed from the clock (:meth:`AppsState.phase`)."""

    id: str
    app_id: str
    spec: dict[str, Any]
    cause: str
    kind: str  # the deployment type: MANUAL, MANUAL_ROLLBACK, ...
    started: float  # the clock's seconds
    created_at: float  # epoch seconds
    commits: dict[str, str]  # component name -> source_commit_hash
    builds: bool
    failure: Failure | None = None
    unhealthy: Unhealthy | None = None
    cloned_from: str | None = None
    ended: Ended | None = None  # once CANCELED or SUPERSEDED
    superseded_by: str | None = None


@dataclass
class App:
    id: str
    spec: dict[str, Any]
    created_at: float
    deployments: list[str] = field(default_factory=list)  # oldest first
    pinned: str | None = None
    spec_before_rollback: dict[str, Any] | None = None
    deployment_before_rollback: str | None = None


class AppsState:
    """Every app and deployment, settled from ``clock`` (monotonic) and stamped from
    ``wall_clock`` (epoch seconds)."""

    def __init__(
        self,
        base_url: str,
        *,
        phase_seconds: float,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
    ) -> None:
        self.lock = threading.RLock()
        self.base_url = base_url
        self.phase_seconds = phase_seconds
        self.clock, self.wall_clock = clock, wall_clock
        self.apps: dict[str, App] = {}
        self.deployments: dict[str, Deployment] = {}
        self.branch_heads: dict[tuple[str, str], str] = {}
        self.failures: list[Failure] = []
        self.rollback_failures: list[Failure] = []
        self.unhealthy: list[Unhealthy] = []
        self.rollback_validation: RollbackValidation | None = None
        self.revision_limit = REVISION_LIMIT
        self.require_pushed_images = False
        self.pushed_images: set[tuple[str, str]] = set()  # (repository, tag or digest)

    # -- apps ------------------------------------------------------------------------

    def create_app(
        self, spec: dict[str, Any], *, app_id: str | None = None, settled: bool = False
    ) -> App:
        """A new app and its first deployment (already ``ACTIVE`` when ``settled``)."""
        check_spec(spec)
        self._check_unique(spec, None)
        app = App(app_id or str(uuid.uuid4()), copy.deepcopy(spec), self.wall_clock())
        if app.id in self.apps:
            raise ValueError(f"an app with id {app.id} exists")
        self.apps[app.id] = app
        self._deploy(app, "app created", "MANUAL", builds=True, settled=settled)
        return app

    def app(self, app_id: str) -> App:
        app = self.apps.get(app_id)
        if app is None:
            raise DoProblem(404, "not_found", "The resource you were accessing could not be found.")
        return app

    def delete_app(self, app_id: str) -> None:
        app = self.app(app_id)
        for deployment_id in app.deployments:
            del self.deployments[deployment_id]
        del self.apps[app_id]

    def update_app(self, app_id: str, spec: dict[str, Any], all_sources: bool) -> App:
        app = self.app(app_id)
        check_spec(spec)
        self._check_unique(spec, app.id)
        if spec != app.spec or all_sources:
            self._refuse_if_pinned(app)
            app.spec = copy.deepcopy(spec)
            self._deploy(app, "app spec updated", "MANUAL", builds=True)
        return app

    def _check_unique(self, spec: dict[str, Any], app_id: str | None) -> None:
        """409 when another app has the spec's name or one of its domains."""
        domains = {d.get("domain") for d in spec.get("domains", []) or []}
        for other in self.apps.values():
            if other.id == app_id:
                continue
            if other.spec["name"] == spec["name"]:
                raise DoProblem(409, "conflict", f"an app named {spec['name']!r} already exists")
            taken = domains & {d.get("domain") for d in other.spec.get("domains", []) or []}
            if taken:
                raise DoProblem(
                    409,
                    "conflict",
                    f"domain {sorted(map(str, taken))[0]!r} is already in use by another app",
                )

    def propose(self, spec: dict[str, Any], app_id: str | None) -> dict[str, Any]:
        check_spec(spec)
        taken = any(
            app.spec["name"] == spec["name"] and app.id != app_id for app in self.apps.values()
        )
        static = bool(spec.get("static_sites")) and not any(
            spec.get(kind) for kind in COMPONENT_KINDS if kind != "static_sites"
        )
        proposal: dict[str, Any] = {
            "spec": spec,
            "app_name_available": not taken,
            "app_is_static": static,
            "app_cost": 5 * len(components(spec)),
        }
        if taken:
            proposal["app_name_suggestion"] = f"{spec['name'][:27]}-2"
        return proposal

    def app_json(self, app: App) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": app.id,
            "owner_uuid": "emulator-owner",
            "spec": copy.deepcopy(app.spec),
            "created_at": iso_seconds(app.created_at),
            "updated_at": iso_seconds(app.created_at),
            "region": {"slug": app.spec.get("region", "fra")},
        }
        deployments = [self.deployments[d] for d in app.deployments]
        if deployments:
            body["last_deployment_created_at"] = iso_seconds(deployments[-1].created_at)
        active = [d for d in deployments if self.phase(d) == "ACTIVE"]
        if active:
            body["active_deployment"] = self.deployment_json(active[-1])
            body["live_url"] = f"{self.base_url}/live/{app.id}"
            body["live_url_base"] = body["live_url"]
            body["default_ingress"] = body["live_url"]
        in_progress = [d for d in deployments if self.phase(d) not in TERMINAL_PHASES]
        if in_progress:
            body["in_progress_deployment"] = self.deployment_json(in_progress[-1])
            if self.phase(in_progress[-1]) == "PENDING_BUILD":
                body["pending_deployment"] = self.deployment_json(in_progress[-1])
        if app.pinned is not None:
            body["pinned_deployment"] = self.deployment_json(self.deployments[app.pinned])
        return body

    # -- deployments -----------------------------------------------------------------

    def create_deployment(self, app_id: str, force_build: bool) -> Deployment:
        app = self.app(app_id)
        self._refuse_if_pinned(app)
        cause = "manual deployment (force build)" if force_build else "manual deployment"
        return self._deploy(app, cause, "MANUAL", builds=True)

    def deploy_on_push(self, app_id: str, sha: str | None) -> Deployment:
        app = self.app(app_id)
        self._refuse_if_pinned(app)
        deployment = self._deploy(app, "commit pushed", "DEPLOY_ON_PUSH", builds=True)
        if sha is not None:
            deployment.commits = {name: sha for name in deployment.commits}
        return deployment

    def deployment(self, app_id: str, deployment_id: str) -> Deployment:
        deployment = self.deployments.get(deployment_id)
        if deployment is None or deployment.app_id != self.app(app_id).id:
            raise DoProblem(404, "not_found", "The resource you were accessing could not be found.")
        return deployment

    def list_deployments(self, app_id: str, kinds: Sequence[str]) -> list[Deployment]:
        """The app's deployments, newest first, of ``kinds`` (all when empty)."""
        app = self.app(app_id)
        listed = [self.deployments[d] for d in reversed(app.deployments)]
        return [d for d in listed if not kinds or d.kind in kinds]

    def cancel(self, app_id: str, deployment_id: str) -> Deployment:
        deployment = self.deployment(app_id, deployment_id)
        if self.phase(deployment) in TERMINAL_PHASES:
            raise DoProblem(
                400, "bad_request", f"deployment {deployment_id} has finished: nothing to cancel"
            )
        self._end(deployment, "CANCELED")
        return deployment

    def phase(self, deployment: Deployment) -> str:
        position = self._position(deployment)
        if position.ended is not None:
            return position.ended.phase
        if position.failed:
            return "ERROR"
        phases = _phases(deployment)
        if position.index < len(phases):
            return phases[position.index]
        return "ERROR" if self._turned_unhealthy(deployment) else "ACTIVE"

    def _active_since(self, deployment: Deployment) -> float:
        """The clock's seconds when the deployment became (or will become) ``ACTIVE``."""
        return deployment.started + len(_phases(deployment)) * max(self.phase_seconds, 0)

    def _turned_unhealthy(self, deployment: Deployment) -> bool:
        """Whether a deployment made to go unhealthy has, by now (once ``ACTIVE``)."""
        unhealthy = deployment.unhealthy
        return unhealthy is not None and (
            self.clock() - self._active_since(deployment) >= unhealthy.after
        )

    def deployment_json(self, deployment: Deployment) -> dict[str, Any]:
        position = self._position(deployment)
        updated = iso_seconds(self._phase_updated(deployment, position))
        body: dict[str, Any] = {
            "id": deployment.id,
            "cause": deployment.cause,
            "phase": self.phase(deployment),
            "phase_last_updated_at": updated,
            "created_at": iso_seconds(deployment.created_at),
            "updated_at": updated,
            "spec": copy.deepcopy(deployment.spec),
            "progress": self._progress(deployment, position),
            "tier_slug": "basic",
        }
        if deployment.cloned_from is not None:
            body["cloned_from"] = deployment.cloned_from
        for kind in COMPONENT_KINDS:
            listed = [
                {"name": c["name"], "source_commit_hash": deployment.commits[c["name"]]}
                if c["name"] in deployment.commits
                else {"name": c["name"]}
                for c in deployment.spec.get(kind, [])
            ]
            if listed:
                body[kind] = listed
        return body

    # -- rollbacks -------------------------------------------------------------------

    def validate_rollback(self, app_id: str, deployment_id: str) -> dict[str, Any]:
        app = self.app(app_id)
        target = self.deployment(app_id, deployment_id)
        set_answer = self.rollback_validation
        if set_answer is not None:
            answer: dict[str, Any] = {"valid": set_answer.valid}
            if set_answer.error_code is not None:
                answer["error"] = _condition(set_answer.error_code, set_answer.error_message)
            warnings = [_condition(code, message) for code, message in set_answer.warnings]
        else:
            answer = {"valid": True}
            error = self._rollback_error(app, target)
            if error is not None:
                answer = {"valid": False, "error": error}
            warnings = self._rollback_warnings(target)
        if warnings:
            answer["warnings"] = warnings
        return answer

    def roll_back(self, app_id: str, deployment_id: str, skip_pin: bool) -> Deployment:
        app = self.app(app_id)
        target = self.deployment(app_id, deployment_id)
        answer = self.validate_rollback(app_id, deployment_id)
        if not answer["valid"]:
            error = answer.get("error", {})
            raise DoProblem(
                400,
                "bad_request",
                f"invalid rollback: {error.get('code', 'invalid')}: {error.get('message', '')}",
            )
        before, spec_before = (app.deployments[-1] if app.deployments else None), app.spec
        app.spec = copy.deepcopy(target.spec)
        cause = f"rollback to deployment {target.id}"
        deployment = self._deploy(
            app,
            cause,
            "MANUAL_ROLLBACK",
            builds=False,
            cloned_from=target,
        )
        if not skip_pin:
            app.pinned = deployment.id
            app.spec_before_rollback = copy.deepcopy(spec_before)
            app.deployment_before_rollback = before
        return deployment

    def commit_rollback(self, app_id: str) -> None:
        app = self.app(app_id)
        if app.pinned is None:
            raise DoProblem(
                400, "bad_request", "the app has no rollback to commit: it is not pinned"
            )
        self._unpin(app)

    def revert_rollback(self, app_id: str) -> Deployment:
        app = self.app(app_id)
        if app.pinned is None or app.spec_before_rollback is None:
            raise DoProblem(
                400, "bad_request", "the app has no rollback to revert: it is not pinned"
            )
        spec, before = app.spec_before_rollback, app.deployment_before_rollback
        self._unpin(app)
        app.spec = copy.deepcopy(spec)
        return self._deploy(
            app,
            "revert rollback",
            "MANUAL_ROLLBACK",
            builds=False,
            cloned_from=None if before is None else self.deployments[before],
        )

    # -- logs ------------------------------------------------------------------------

    def log_lines(self, deployment: Deployment, kind: str) -> list[str]:
        """The deployment's ``BUILD``, ``DEPLOY`` or ``RUN`` log so far."""
        position = self._position(deployment)
        index, failed = position.index, position.failed
        reached = _phases(deployment)[: index + 1]
        names = [c["name"] for c in components(deployment.spec)]
        failure = deployment.failure
        lines: list[str] = []
        if kind == "BUILD" and deployment.builds:
            if "BUILDING" in reached:
                lines += [f"{name} [build] building from source" for name in names]
            if failed and failure is not None and failure.step == "build":
                lines += [f"{self._failing(deployment)} [build] {line}" for line in failure.log]
            elif index >= BUILD_PHASES.index("PENDING_DEPLOY"):
                lines += [f"{name} [build] build complete" for name in names]
        elif kind == "DEPLOY":
            if "DEPLOYING" in reached:
                lines += [f"{name} [deploy] starting container" for name in names]
            if failed and failure is not None and failure.step == "deploy":
                lines += [f"{self._failing(deployment)} [deploy] {line}" for line in failure.log]
            elif index >= len(_phases(deployment)) and position.ended is None:
                lines += [f"{name} [deploy] deployed" for name in names]
        elif kind == "RUN" and index >= len(_phases(deployment)) and position.ended is None:
            lines += [f"{name} [run] listening" for name in names]
            if deployment.unhealthy is not None and self._turned_unhealthy(deployment):
                sick = self._unhealthy_component(deployment)
                lines += [f"{sick} [run] {line}" for line in deployment.unhealthy.log]
        return lines

    def logs_finished(self, deployment: Deployment) -> bool:
        return self.phase(deployment) in TERMINAL_PHASES

    # -- internals -------------------------------------------------------------------

    def _deploy(
        self,
        app: App,
        cause: str,
        kind: str,
        *,
        builds: bool,
        cloned_from: Deployment | None = None,
        settled: bool = False,
    ) -> Deployment:
        now_wall = self.wall_clock()
        deployment_id = str(uuid.uuid4())
        for other_id in app.deployments:
            other = self.deployments[other_id]
            if self.phase(other) not in TERMINAL_PHASES:
                self._end(other, "SUPERSEDED")
                other.superseded_by = deployment_id
        if cloned_from is not None:
            commits = dict(cloned_from.commits)
        else:
            commits = {c["name"]: self._head(c) for c in components(app.spec) if "image" not in c}
        queue = self.failures if builds else self.rollback_failures
        failure = None if settled else queue.pop(0) if queue else self._missing_image(app.spec)
        unhealthy = self.unhealthy.pop(0) if builds and not settled and self.unhealthy else None
        deployment = Deployment(
            id=deployment_id,
            app_id=app.id,
            spec=copy.deepcopy(app.spec),
            cause=cause,
            kind=kind,
            started=self.clock() - (_LONG_AGO if settled else 0),
            created_at=now_wall,
            commits=commits,
            builds=builds,
            failure=failure,
            unhealthy=unhealthy,
            cloned_from=None if cloned_from is None else cloned_from.id,
        )
        self.deployments[deployment.id] = deployment
        app.deployments.append(deployment.id)
        return deployment

    def _missing_image(self, spec: dict[str, Any]) -> Failure | None:
        """The failure of a deployment whose DOCR image was never pushed, when checked."""
        if not self.require_pushed_images:
            return None
        for component in components(spec):
            image = component.get("image")
            if image is None or image.get("registry_type") != "DOCR":
                continue
            reference = image.get("digest") or image.get("tag") or "latest"
            if (image.get("repository", ""), reference) not in self.pushed_images:
                separator = "@" if image.get("digest") else ":"
                line = (
                    f"failed to pull image {image.get('repository')}{separator}{reference}: "
                    "manifest unknown"
                )
                return Failure("deploy", component["name"], (line,))
        return None

    def _head(self, component: dict[str, Any]) -> str:
        """The commit a build of the component's source records."""
        for source in ("github", "gitlab", "bitbucket", "git"):
            if source in component:
                spec = component[source]
                repo = str(spec.get("repo_clone_url" if source == "git" else "repo", ""))
                branch = str(spec.get("branch", ""))
                return self.branch_heads.get((repo, branch), SEED_COMMIT_SHA)
        return SEED_COMMIT_SHA

    def _position(self, deployment: Deployment) -> Position:
        if deployment.ended is not None:
            return Position(deployment.ended.index, ended=deployment.ended)
        phases = _phases(deployment)
        if self.phase_seconds <= 0:
            index = len(phases)
        else:
            index = int((self.clock() - deployment.started) // self.phase_seconds)
        failure = deployment.failure
        if failure is not None:
            failing = phases.index(_STEP_PHASE[failure.step])
            if index > failing:
                return Position(failing, failed=True)
        return Position(min(index, len(phases)))

    def _end(self, deployment: Deployment, phase: str) -> None:
        index = self._position(deployment).index
        deployment.ended = Ended(phase, self.wall_clock(), index)

    def _phase_updated(self, deployment: Deployment, position: Position) -> float:
        if position.ended is not None:
            return position.ended.at
        unhealthy = deployment.unhealthy
        if unhealthy is not None and self._turned_unhealthy(deployment):
            late = self.clock() - self._active_since(deployment) - unhealthy.after
            return self.wall_clock() - late
        reached = position.index + (1 if position.failed else 0)
        return min(deployment.created_at + reached * max(self.phase_seconds, 0), self.wall_clock())

    def _progress(self, deployment: Deployment, position: Position) -> dict[str, Any]:
        """One step per stage (``build`` when it builds, ``deploy``), each with a sub-step
        per component; counts by status."""
        steps: list[dict[str, Any]] = []
        names: list[Step] = ["build", "deploy"] if deployment.builds else ["deploy"]
        failure = deployment.failure
        for name in names:
            runs_at = _phases(deployment).index(_STEP_PHASE[name])
            if position.failed and failure is not None and failure.step == name:
                status = "ERROR"
            elif position.index > runs_at:
                status = "SUCCESS"
            elif position.index == runs_at and position.ended is None:
                status = "RUNNING"
            else:
                status = "PENDING"
            step: dict[str, Any] = {
                "name": name,
                "status": status,
                "steps": [
                    {"name": c["name"], "component_name": c["name"], "status": status}
                    for c in components(deployment.spec)
                ],
            }
            if status == "ERROR":
                step["reason"] = {
                    "code": f"{name}_failed",
                    "message": f"the {name} of {self._failing(deployment)} failed",
                }
            steps.append(step)
        unhealthy = deployment.unhealthy
        if unhealthy is not None and self._turned_unhealthy(deployment):
            sick = self._unhealthy_component(deployment)
            steps.append(
                {
                    "name": "run",
                    "status": "ERROR",
                    "component_name": sick,
                    "reason": {
                        "code": "unhealthy",
                        "message": f"component {sick} failed its health checks after the "
                        "deployment was ACTIVE",
                    },
                }
            )
        statuses = [step["status"] for step in steps]
        return {
            "success_steps": statuses.count("SUCCESS"),
            "error_steps": statuses.count("ERROR"),
            "running_steps": statuses.count("RUNNING"),
            "pending_steps": statuses.count("PENDING"),
            "total_steps": len(steps),
            "steps": steps,
        }

    def _unhealthy_component(self, deployment: Deployment) -> str:
        unhealthy = deployment.unhealthy
        return _named_or_first(deployment, None if unhealthy is None else unhealthy.component)

    def _failing(self, deployment: Deployment) -> str:
        failure = deployment.failure
        return _named_or_first(deployment, None if failure is None else failure.component)

    def _refuse_if_pinned(self, app: App) -> None:
        if app.pinned is not None:
            raise DoProblem(
                409,
                "conflict",
                f"the app is pinned to deployment {app.pinned}: commit or revert the rollback "
                "before deploying",
            )

    def _unpin(self, app: App) -> None:
        app.pinned = None
        app.spec_before_rollback = None
        app.deployment_before_rollback = None

    def _rollback_error(self, app: App, target: Deployment) -> dict[str, Any] | None:
        if app.pinned is not None:
            return _condition("app_pinned", f"the app is pinned to deployment {app.pinned}")
        if self.phase(target) != "ACTIVE":
            return _condition(
                "incompatible_phase",
                f"deployment {target.id} is {self.phase(target)}: only an ACTIVE deployment "
                "can be rolled back to",
            )
        newer = len(app.deployments) - 1 - app.deployments.index(target.id)
        if newer > self.revision_limit:
            return _condition(
                "exceeded_revision_limit",
                f"deployment {target.id} is {newer} deployments back: at most "
                f"{self.revision_limit} are kept for rollbacks",
            )
        return None

    def _rollback_warnings(self, target: Deployment) -> list[dict[str, Any]]:
        warnings: list[dict[str, Any]] = []
        static = [c["name"] for c in target.spec.get("static_sites", [])]
        if static:
            warnings.append(
                _condition(
                    "static_site_requires_rebuild",
                    "static sites are rebuilt from source, not restored",
                    static,
                )
            )
        undigested = [
            c["name"]
            for c in components(target.spec)
            if "image" in c and not c["image"].get("digest")
        ]
        if undigested:
            warnings.append(
                _condition(
                    "image_source_missing_digest",
                    "image components without a digest are pulled by tag, which may have moved",
                    undigested,
                )
            )
        return warnings


def _named_or_first(deployment: Deployment, component: str | None) -> str:
    """``component`` when named, else the deployment's first component (else the app)."""
    if component is not None:
        return component
    listed = components(deployment.spec)
    return str(listed[0]["name"] if listed else deployment.spec["name"])


def _phases(deployment: Deployment) -> tuple[str, ...]:
    """The phases a deployment passes before ``ACTIVE``: a rollback does not build."""
    return BUILD_PHASES if deployment.builds else DEPLOY_PHASES


def components(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every component of a spec: services, workers, static sites and jobs, in that order."""
    return [c for kind in COMPONENT_KINDS for c in spec.get(kind, []) or []]


def check_spec(spec: dict[str, Any]) -> None:
    """The spec rules App Platform applies beyond the schema; 400 naming the first broken."""
    problems: list[str] = []
    if _NAME.fullmatch(str(spec.get("name", ""))) is None:
        problems.append(f"app name {spec.get('name')!r} is invalid: {_NAME_RULE}")
    names = [c.get("name") for c in components(spec)]
    if not names:
        problems.append("the spec has no component: add a service, worker, static site or job")
    seen: set[str] = set()
    for component in components(spec):
        name = component.get("name", "")
        if name in seen:
            problems.append(f"component name {name!r} is used twice")
        seen.add(name)
        if _NAME.fullmatch(str(name)) is None:
            problems.append(f"component name {name!r} is invalid: {_NAME_RULE}")
        sources = [kind for kind in SOURCE_KINDS if kind in component]
        if len(sources) != 1:
            problems.append(
                f"component {name!r} needs exactly one source ({', '.join(SOURCE_KINDS)}), "
                f"has {len(sources)}"
            )
        image = component.get("image")
        if image is not None:
            problems += _image_problems(name, image)
        for source in ("github", "gitlab", "bitbucket"):
            if source in component and not component[source].get("repo"):
                problems.append(f"component {name!r}: a {source} source needs repo")
        if "git" in component and not component["git"].get("repo_clone_url"):
            problems.append(f"component {name!r}: a git source needs repo_clone_url")
    if problems:
        raise DoProblem(400, "bad_request", "invalid app spec: " + "; ".join(problems))


def _image_problems(name: str, image: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if not (image.get("registry_type") and image.get("repository")):
        problems.append(f"component {name!r}: an image source needs registry_type and repository")
    if image.get("registry_type") == "DOCR" and image.get("registry"):
        problems.append(f"component {name!r}: registry must be left empty for DOCR")
    if image.get("tag") and image.get("digest"):
        problems.append(f"component {name!r}: an image has a tag or a digest, not both")
    return problems


def _condition(code: str, message: str, names: Sequence[str] = ()) -> dict[str, Any]:
    condition: dict[str, Any] = {"code": code, "message": message}
    if names:
        condition["components"] = list(names)
    return condition


__all__ = [
    "SEED_COMMIT_SHA",
    "AppsState",
    "Failure",
    "RollbackValidation",
    "Unhealthy",
    "check_spec",
    "components",
]
