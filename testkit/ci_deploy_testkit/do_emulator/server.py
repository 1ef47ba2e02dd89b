""":class:`AppPlatformEmulator`, the handle tests hold: a local App Platform API.

One server (:class:`~ci_deploy_testkit.emulator.serving.ServedApi`, as the Astro emulator's)
serves on one port:

- ``/v2/apps...``: the App Platform calls of a deploy and a rollback
  (see :mod:`ci_deploy_testkit.do_emulator.api`), bearer-token authenticated;
- ``/logs/<app>/<deployment>/<type>``: the log files the logs endpoint links to, as plain
  text. Like a presigned URL they need no token, and one sent anyway is refused (400): a
  client must never send the API token there;
- ``/live/<app>``: the app's ``live_url``, a text page naming the deployment it runs.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ci_deploy_testkit.do_emulator.api import AppsApi
from ci_deploy_testkit.do_emulator.state import (
    AppsState,
    Failure,
    RollbackValidation,
    Step,
    Unhealthy,
)
from ci_deploy_testkit.do_emulator.wire import DoProblem
from ci_deploy_testkit.emulator.faults import Fault
from ci_deploy_testkit.emulator.serving import Log, ServedApi
from ci_deploy_testkit.emulator.wire import RecordedRequest, Response, json_response

DEMO_APP_ID = "0d0e0a0f-0000-4000-8000-0000000000a1"
DEMO_APP_NAME = "emulator-app"
DEMO_REPO = "acme/airflow"
DEMO_TOKEN = "dop_v1_" + "e0" * 32  # shaped like a DigitalOcean personal access token
_LOG_PATH = re.compile(r"/logs/([^/]+)/([^/]+)/([A-Z_]+)")
_LIVE_PATH = re.compile(r"/live/([^/]+)")
_FAULT_IDS = {400: "bad_request", 404: "not_found", 429: "too_many_requests"}


def demo_spec(name: str = DEMO_APP_NAME, branch: str = "main") -> dict[str, Any]:
    """An app spec with one service built from ``acme/airflow`` on GitHub at ``branch``."""
    return {
        "name": name,
        "region": "fra",
        "services": [
            {
                "name": "web",
                "github": {"repo": DEMO_REPO, "branch": branch, "deploy_on_push": False},
                "http_port": 8080,
                "instance_count": 1,
                "instance_size_slug": "apps-s-1vcpu-0.5gb",
            }
        ],
    }


class AppPlatformEmulator(ServedApi):
    """A local App Platform API with one seeded app (:data:`DEMO_APP_ID`, one ``ACTIVE``
    deployment). Use it as a context manager::

        with AppPlatformEmulator(phase_seconds=0.1) as emu:
            client = httpx.Client(base_url=emu.api_url, headers={
                "Authorization": f"Bearer {emu.token}"})

    ``phase_seconds`` is how long a deployment stays in each phase (``PENDING_BUILD``,
    ``BUILDING``, ``PENDING_DEPLOY``, ``DEPLOYING``), measured on ``clock`` (monotonic
    seconds: a test shares a fake clock with the code under test, so phases advance only
    while that code sleeps); 0 makes every deployment end at once. ``wall_clock`` (epoch
    seconds) stamps deployments.

    What tests read and steer: :attr:`requests`, :attr:`faults` (the Astro emulator's
    :class:`~ci_deploy_testkit.emulator.faults.Faults`), :attr:`tokens`,
    :meth:`add_app`, :meth:`record_push` and :attr:`require_pushed_images` (the
    container registry), :meth:`set_branch_head` (the commit a build of a repository's branch
    records), :meth:`fail_next_deployment`, :meth:`unhealthy_next_deployment`,
    :meth:`fail_next_rollback`,
    :attr:`rollback_validation` (the answer of every rollback validation), :attr:`revision_limit`,
    :meth:`deploy_on_push` (someone else's deployment), and :meth:`app`, :meth:`apps`,
    :meth:`deployments` for the state behind the API.
    """

    thread_name = "ci-deploy-do-emulator"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        phase_seconds: float = 1.0,
        log: Log | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(host, port, log)
        self.token = DEMO_TOKEN
        self.tokens: set[str] = {self.token}
        self.app_id = DEMO_APP_ID
        self._state = AppsState(
            self.base_url, phase_seconds=phase_seconds, clock=clock, wall_clock=wall_clock
        )
        self._state.create_app(demo_spec(), app_id=DEMO_APP_ID, settled=True)
        self._api = AppsApi(self._state, lambda token: token in self.tokens)

    @property
    def api_url(self) -> str:
        """The API base URL clients use (``api-url``), ``http://127.0.0.1:<port>``: paths
        start with ``/v2``, as on ``https://api.digitalocean.com``."""
        return self.base_url

    # -- steering --------------------------------------------------------------------

    @property
    def phase_seconds(self) -> float:
        """How long a deployment stays in each phase, from now on (also running ones)."""
        return self._state.phase_seconds

    @phase_seconds.setter
    def phase_seconds(self, value: float) -> None:
        with self.lock:
            self._state.phase_seconds = value

    @property
    def revision_limit(self) -> int:
        """How many deployments back a rollback may go before ``exceeded_revision_limit``."""
        return self._state.revision_limit

    @revision_limit.setter
    def revision_limit(self, value: int) -> None:
        with self.lock:
            self._state.revision_limit = value

    @property
    def rollback_validation(self) -> RollbackValidation | None:
        """The answer every rollback validation gives; None (the default): the rules decide
        (``app_pinned``, ``incompatible_phase`` unless the target is ``ACTIVE``,
        ``exceeded_revision_limit``; warnings for static sites and undigested images). An
        invalid answer makes the rollback itself refused too."""
        return self._state.rollback_validation

    @rollback_validation.setter
    def rollback_validation(self, value: RollbackValidation | None) -> None:
        with self.lock:
            self._state.rollback_validation = value

    @property
    def require_pushed_images(self) -> bool:
        """When set, a deployment whose ``DOCR`` image component names a tag or digest that
        :meth:`record_push` never recorded ends ``ERROR`` at its deploy step, with a
        ``failed to pull image`` log line (as App Platform does). Off by default."""
        return self._state.require_pushed_images

    @require_pushed_images.setter
    def require_pushed_images(self, value: bool) -> None:
        with self.lock:
            self._state.require_pushed_images = value

    def record_push(self, repository: str, tag: str, digest: str | None = None) -> None:
        """Record that the container registry holds ``repository`` (the image spec's
        ``repository``, without ``registry.digitalocean.com/<registry>/``) at ``tag`` and,
        when given, ``digest`` (a fake Docker engine calls this)."""
        with self.lock:
            self._state.pushed_images.add((repository, tag))
            if digest is not None:
                self._state.pushed_images.add((repository, digest))

    def add_app(
        self, spec: dict[str, Any], *, app_id: str | None = None, deployed: bool = True
    ) -> str:
        """Add an app with ``spec`` and its first deployment: already ``ACTIVE`` when
        ``deployed``, else just started. Returns its id."""
        with self.lock:
            return self._state.create_app(spec, app_id=app_id, settled=deployed).id

    def delete_app(self, app_id: str) -> None:
        """Delete an app and its deployments, as a person does in the control panel."""
        with self.lock:
            self._state.delete_app(app_id)

    def set_branch_head(self, repo: str, branch: str, sha: str) -> None:
        """What builds of ``repo`` (a github/gitlab/bitbucket ``repo`` or a git
        ``repo_clone_url``) at ``branch`` record as ``source_commit_hash`` from now on."""
        with self.lock:
            self._state.branch_heads[(repo, branch)] = sha

    def fail_next_deployment(
        self, step: Step, *, component: str | None = None, log: Sequence[str] = ()
    ) -> None:
        """Make the next deployment that builds (create deployment, app update, app create)
        end ``ERROR`` at ``step`` (``build`` or ``deploy``) of ``component`` (the first
        when None), with ``log`` at the end of that step's log. Queued: call it twice for
        two failures."""
        with self.lock:
            self._state.failures.append(_failure(step, component, log))

    def unhealthy_next_deployment(
        self, after: float, *, component: str | None = None, log: Sequence[str] = ()
    ) -> None:
        """Make the next deployment that builds turn from ``ACTIVE`` to ``ERROR`` ``after``
        seconds (of the emulator's ``clock``, so a test's fake clock scales it) past the
        moment it became ``ACTIVE``: a failed ``run`` step of ``component`` (the first when
        None) in its progress, ``log`` at the end of its ``RUN`` log, and the app's
        ``active_deployment`` back to the deployment before it. Queued, like
        :meth:`fail_next_deployment`."""
        if after < 0:
            raise ValueError(f"after must be 0 or more seconds, got {after}")
        with self.lock:
            self._state.unhealthy.append(
                Unhealthy(after, component, tuple(log)) if log else Unhealthy(after, component)
            )

    def fail_next_rollback(self, *, component: str | None = None, log: Sequence[str] = ()) -> None:
        """Make the next rollback or revert deployment end ``ERROR`` at its deploy step."""
        with self.lock:
            self._state.rollback_failures.append(_failure("deploy", component, log))

    def deploy_on_push(self, app_id: str, sha: str | None = None) -> str:
        """A deployment someone else started (``DEPLOY_ON_PUSH``), recording ``sha`` for the
        app's source components when given. Returns its id. Refused while the app is pinned."""
        with self.lock:
            return self._state.deploy_on_push(app_id, sha).id

    # -- reading ---------------------------------------------------------------------

    def app(self, app_id: str | None = None) -> dict[str, Any]:
        """The app's JSON as GET returns it now (the demo app when None)."""
        with self.lock:
            return self._state.app_json(self._state.app(app_id or self.app_id))

    def apps(self) -> list[dict[str, Any]]:
        """Every app's JSON, in creation order."""
        with self.lock:
            return [self._state.app_json(app) for app in self._state.apps.values()]

    def deployments(self, app_id: str | None = None) -> list[dict[str, Any]]:
        """The app's deployments as JSON, oldest first (the API lists newest first)."""
        with self.lock:
            listed = self._state.list_deployments(app_id or self.app_id, ())
            return [self._state.deployment_json(d) for d in reversed(listed)]

    def log_text(self, app_id: str, deployment_id: str, kind: str) -> str:
        """The text a log URL of the deployment serves (``BUILD``, ``DEPLOY``, ``RUN``)."""
        with self.lock:
            deployment = self._state.deployment(app_id, deployment_id)
            return "".join(f"{line}\n" for line in self._state.log_lines(deployment, kind))

    # -- serving ---------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        return self._state.lock

    def _dispatch(self, request: RecordedRequest) -> Response:
        try:
            if request.path.startswith("/v2/"):
                return self._api.handle(request)
            if request.path.startswith("/logs/"):
                return self._log_file(request)
            if request.path.startswith("/live/"):
                return self._live(request)
            raise DoProblem(404, "not_found", f"no route for {request.method} {request.path}")
        except DoProblem as problem:
            return problem.response()

    def _fault_response(self, fault: Fault, path: str) -> Response:
        status = fault.status or 500
        headers: tuple[tuple[str, str], ...] = ()
        if fault.retry_after:
            headers += (("Retry-After", fault.retry_after),)
        if status == 429:
            reset = str(int(self._state.wall_clock()) + 60)
            headers += (("ratelimit-limit", "5000"), ("ratelimit-remaining", "0"))
            headers += (("ratelimit-reset", reset),)
        if fault.body is not None:
            return json_response(status, fault.body, headers=headers)
        error_id = _FAULT_IDS.get(status, "server_error")
        return DoProblem(status, error_id, f"emulated fault: HTTP {status}").response(headers)

    def _log_file(self, request: RecordedRequest) -> Response:
        match = _LOG_PATH.fullmatch(request.path)
        if request.method != "GET" or match is None:
            raise DoProblem(404, "not_found", f"no log at {request.path}")
        if "authorization" in request.headers:
            raise DoProblem(
                400,
                "bad_request",
                "a log URL is presigned: send no Authorization header (never the API token)",
            )
        text = self.log_text(match[1], match[2], match[3])
        return Response(200, (("Content-Type", "text/plain; charset=utf-8"),), text.encode())

    def _live(self, request: RecordedRequest) -> Response:
        match = _LIVE_PATH.fullmatch(request.path)
        if match is None or match[1] not in self._state.apps:
            raise DoProblem(404, "not_found", f"no app at {request.path}")
        app = self.app(match[1])
        active = app.get("active_deployment")
        if active is None:
            raise DoProblem(404, "not_found", "the app has no active deployment")
        lines = [f"app {app['id']}", f"deployment {active['id']}"]
        lines += [
            f"{c['name']} {c.get('source_commit_hash', '')}".rstrip()
            for kind in ("services", "workers", "static_sites", "jobs")
            for c in active.get(kind, [])
        ]
        body = "".join(f"{line}\n" for line in lines).encode()
        return Response(200, (("Content-Type", "text/plain; charset=utf-8"),), body)


def _failure(step: Step, component: str | None, log: Sequence[str]) -> Failure:
    if step not in ("build", "deploy"):
        raise ValueError(f"step must be 'build' or 'deploy', got {step!r}")
    return Failure(step, component, tuple(log)) if log else Failure(step, component)


__all__ = [
    "DEMO_APP_ID",
    "DEMO_APP_NAME",
    "DEMO_REPO",
    "DEMO_TOKEN",
    "AppPlatformEmulator",
    "demo_spec",
]
