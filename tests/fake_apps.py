"""App Platform in memory, at the client's boundary: what :class:`AppsClient` is asked.

The real :class:`~ci_deploy.digitalocean.platform.AppsPlatform` runs over it, so the
in-process tests cover the platform's own code (exactly once, read-backs, the rollback's
validate -> rollback -> commit / revert) and the orchestration, without HTTP. A deployment
moves one phase each time it is read; ``outcomes`` says how the next ones end. The
client's own requests are checked against the spec in ``tests/test_do_client.py``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from ci_deploy.digitalocean.platform import AppsPlatform, settings_of
from ci_deploy.errors import ApiAmbiguousError, ApiError
from ci_deploy.inputs import Inputs
from ci_deploy.runner import Runner
from ci_deploy.timing import Timing

Json = dict[str, Any]

PHASES = ("PENDING_BUILD", "BUILDING", "DEPLOYING")
START = datetime(2026, 1, 1, tzinfo=UTC)


class FakeApps:
    """One app (``app-1``) and its deployments, in memory."""

    def __init__(self, spec: Json | None = None) -> None:
        self.app_id = "app-1"
        self.spec: Json = spec or {
            "name": "web",
            "services": [{"name": "web", "github": {"repo": "o/r", "branch": "main"}}],
        }
        self.deployments: list[Json] = []
        self.pinned = ""
        self.commit = ""
        """The commit new deployments build (``source_commit_hash``)."""
        self.outcomes: list[str] = []
        """How the next deployments end (``ACTIVE`` when empty)."""
        self.invalid: Json | None = None
        """The error ``rollback/validate`` answers (valid when None)."""
        self.warnings: list[Json] = []
        self.lost: set[str] = set()
        """Calls whose answer is lost once, after they were done."""
        self.calls: list[str] = []
        self.on_read: Callable[[Json], None] | None = None
        """Called with each deployment read, after it moved (another run, say)."""
        self._made = 0

    # -- set-up -----------------------------------------------------------------------------

    def seed(self, commit: str, phase: str = "ACTIVE") -> Json:
        """A deployment of ``commit`` that has already ended in ``phase``."""
        return self._new("initial deploy", commit, phase=phase)

    def _new(
        self,
        cause: str,
        commit: str,
        *,
        phase: str = "",
        spec: Json | None = None,
        kind: str = "MANUAL",
        cloned_from: str = "",
    ) -> Json:
        self._made += 1
        ending = phase or (self.outcomes.pop(0) if self.outcomes else "ACTIVE")
        deployment: Json = {
            "id": f"dep-{self._made}",
            "cause": cause,
            "phase": phase or PHASES[0],
            "created_at": (START + timedelta(minutes=self._made)).isoformat(),
            "services": [{"name": "web", "source_commit_hash": commit}],
            "spec": copy.deepcopy(spec or self.spec),
            "progress": {
                "success_steps": 3 if phase in ("ACTIVE", "SUPERSEDED") else 0,
                "total_steps": 3,
                "steps": [],
            },
            "_script": [] if phase else [*PHASES[1:], ending],
            "_type": kind,
        }
        if cloned_from:
            deployment["cloned_from"] = cloned_from
        self.deployments.append(deployment)
        if phase == "ACTIVE":
            self._activate(deployment)
        return deployment

    def _activate(self, deployment: Json) -> None:
        for other in self.deployments:
            if other is not deployment and other["phase"] == "ACTIVE":
                other["phase"] = "SUPERSEDED"

    def _lose(self, name: str) -> None:
        if name in self.lost:
            self.lost.discard(name)
            raise ApiAmbiguousError(f"No answer to {name} (ReadTimeout).", operation=name)

    def _public(self, deployment: Json) -> Json:
        return {k: copy.deepcopy(v) for k, v in deployment.items() if not k.startswith("_")}

    def by_id(self, deployment_id: str) -> Json:
        return next(d for d in self.deployments if d["id"] == deployment_id)

    def active(self) -> Json | None:
        return next((d for d in self.deployments if d["phase"] == "ACTIVE"), None)

    # -- AppsClient -------------------------------------------------------------------------

    def get_app(self, app_id: str) -> Json:
        self.calls.append("get_app")
        app: Json = {"id": self.app_id, "spec": copy.deepcopy(self.spec)}
        active = self.active()
        if active:
            app["active_deployment"] = self._public(active)
        moving = [d for d in self.deployments if d["_script"]]
        if moving:
            app["in_progress_deployment"] = self._public(moving[-1])
        if self.pinned:
            app["pinned_deployment"] = self._public(self.by_id(self.pinned))
        return app

    def list_apps(self) -> list[Json]:
        self.calls.append("list_apps")
        return [self.get_app(self.app_id)]

    def create_app(self, spec: Json) -> Json:
        """One app only: previews (more apps) are tested against the App Platform emulator."""
        raise ApiError("FakeApps holds one app; use the emulator for previews.", status_code=501)

    def delete_app(self, app_id: str) -> None:
        raise ApiError("FakeApps holds one app; use the emulator for previews.", status_code=501)

    def propose(self, spec: Json, app_id: str) -> Json:
        self.calls.append("propose")
        if not spec.get("name"):
            raise ApiError("invalid app spec: name is required (HTTP 400).", status_code=400)
        return {"spec": spec, "app_name_available": True}

    def update_app(self, app_id: str, spec: Json) -> Json:
        self.calls.append("update_app")
        self._refuse_when_pinned()
        self.spec = copy.deepcopy(spec)
        self._new("app spec updated", self.commit)
        self._lose("update_app")
        return self.get_app(app_id)

    def list_deployments(self, app_id: str, kinds: Sequence[str] = ()) -> list[Json]:
        self.calls.append("list_deployments")
        listed = [d for d in reversed(self.deployments) if not kinds or d["_type"] in kinds]
        return [self._public(d) for d in listed]  # newest first, as DO

    def get_deployment(self, app_id: str, deployment_id: str) -> Json:
        self.calls.append("get_deployment")
        deployment = self.by_id(deployment_id)
        if deployment["_script"]:
            deployment["phase"] = deployment["_script"].pop(0)
            deployment["progress"]["success_steps"] += 1
            if deployment["phase"] == "ACTIVE":
                self._activate(deployment)
            elif deployment["phase"] == "ERROR":
                deployment["progress"]["error_steps"] = 1
                deployment["progress"]["steps"] = [
                    {
                        "name": "build",
                        "status": "ERROR",
                        "component_name": "web",
                        "reason": {"code": "BuildJobFailed", "message": "npm ERR! missing script"},
                    }
                ]
        if self.on_read is not None:
            self.on_read(deployment)
        return self._public(deployment)

    def create_deployment(self, app_id: str, *, force_build: bool) -> Json:
        self.calls.append(f"create_deployment(force_build={force_build})")
        return self.other_run(self.commit, cause="manual", kind="MANUAL")

    def other_run(
        self, commit: str, *, cause: str = "commit pushed", kind: str = "DEPLOY_ON_PUSH"
    ) -> Json:
        """A deployment of ``commit`` started (by this run, or another one: a push's by
        default)."""
        self._refuse_when_pinned()
        made = self._new(cause, commit, kind=kind)
        self._lose("create_deployment")
        return self._public(made)

    def deployment_logs(self, app_id: str, deployment_id: str, kind: str) -> Json:
        self.calls.append(f"deployment_logs({kind})")
        return {}

    def validate_rollback(self, app_id: str, deployment_id: str, *, skip_pin: bool) -> Json:
        self.calls.append("validate_rollback")
        if self.invalid is not None:
            return {"valid": False, "error": self.invalid, "warnings": self.warnings}
        if self.pinned:
            return {"valid": False, "error": {"code": "app_pinned", "message": "app is pinned"}}
        return {"valid": True, "warnings": self.warnings}

    def rollback(self, app_id: str, deployment_id: str, *, skip_pin: bool) -> Json:
        self.calls.append(f"rollback(skip_pin={skip_pin})")
        target = self.by_id(deployment_id)
        commit = target["services"][0]["source_commit_hash"]
        made = self._new(
            "manual rollback",
            commit,
            spec=target["spec"],
            kind="MANUAL_ROLLBACK",
            cloned_from=deployment_id,
        )
        if not skip_pin:
            self.pinned = made["id"]
        self._lose("rollback")
        return self._public(made)

    def commit_rollback(self, app_id: str) -> None:
        self.calls.append("commit_rollback")
        self.pinned = ""
        self._lose("commit_rollback")

    def revert_rollback(self, app_id: str) -> Json:
        self.calls.append("revert_rollback")
        if not self.pinned:
            raise ApiError("app is not pinned (HTTP 400).", status_code=400)
        self.pinned = ""
        made = self._new("rollback reverted", self.commit, kind="MANUAL_ROLLBACK")
        return self._public(made)

    def _refuse_when_pinned(self) -> None:
        if self.pinned:
            raise ApiError("app is pinned to a rollback (HTTP 412).", status_code=412)

    # -- as a run's platform ----------------------------------------------------------------

    def factory(self) -> Callable[..., Any]:
        """A :class:`~ci_deploy.run.Dependencies` platform factory: the real AppsPlatform
        over this fake, with the inputs' settings."""

        @contextmanager
        def make(
            inputs: Inputs, runner: Runner, images: Callable[[], Any], timing: Timing
        ) -> Iterator[AppsPlatform]:
            yield AppsPlatform(
                self,
                settings_of(inputs),
                runner,
                registry_password=inputs.digitalocean_token.get_secret_value(),
                images=images,
                sleep=timing.sleep,
            )

        return make
