"""The emulator's HTTP server, and :class:`Emulator`, the handle tests and the demo hold.

One server (:class:`~ci_deploy_testkit.emulator.serving.ServedApi`) serves three things on
one port:

- ``/v1/...``: the Astro API calls of a deploy, plus listing Deployments, hibernation
  overrides and Deployment logs (see :mod:`ci_deploy_testkit.emulator.api`);
- ``/blob/...``: an Azure-like blob host for the deploys' upload URLs
  (see :mod:`ci_deploy_testkit.emulator.blob`);
- ``/airflow/<id>/api/v1|v2/...``: the Airflow REST API at each Deployment's ``apiUrl``,
  the subset the verification gates use (see :mod:`ci_deploy_testkit.emulator.airflow`);
- ``/ui/deployments/<id>``: a page for the Deployment's ``uiUrl``.

Every request is recorded in :attr:`Emulator.requests` before anything else happens, then
:attr:`Emulator.faults` may answer it instead or drop it, then it is handled under the
state's lock; a slow fault then waits, outside that lock, before the answer goes out.
"""

from __future__ import annotations

import base64
import json
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from types import FrameType
from typing import Any

from ci_deploy_testkit.emulator.airflow import AirflowApi
from ci_deploy_testkit.emulator.api import AstroApi
from ci_deploy_testkit.emulator.blob import BlobHost
from ci_deploy_testkit.emulator.faults import Fault
from ci_deploy_testkit.emulator.serving import Log, ServedApi
from ci_deploy_testkit.emulator.state import (
    AIRFLOW_VERSION,
    WORKSPACE_ID,
    AstroState,
    StoredBlob,
)
from ci_deploy_testkit.emulator.ui import deployment_page
from ci_deploy_testkit.emulator.wire import (
    ApiProblem,
    BlobProblem,
    RecordedRequest,
    Response,
    json_response,
)

DEMO_ORGANIZATION_ID = "emulator-org"
DEMO_DEPLOYMENT_ID = "emulator-deployment"

_TOKEN_ISSUED_AT = 1767225600  # 2026-01-01T00:00:00Z: fixed, so tokens are reproducible
_AZURE_FAULT_CODES = {408: "OperationTimedOut", 500: "InternalError", 503: "ServerBusy"}
_UI_PATH = re.compile(r"/ui/deployments/([^/]+)")


def make_token(organization_id: str, workspace_id: str = WORKSPACE_ID) -> str:
    """An unsigned JWT-shaped API token for ``organization_id``.

    ``header.payload.signature``, each base64url without padding; the payload's
    ``permissions`` claim holds ``organizationId:<id>`` and ``workspaceId:<id>`` as a real
    Astro token's does. The signature is the text ``emulator``: nothing verifies it.
    """
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {
        "sub": "emulator-api-token",
        "iat": _TOKEN_ISSUED_AT,
        "permissions": [f"organizationId:{organization_id}", f"workspaceId:{workspace_id}"],
    }
    parts = [json.dumps(part, separators=(",", ":")).encode() for part in (header, payload)]
    return ".".join(_base64url(part) for part in [*parts, b"emulator"])


class Emulator(ServedApi):
    """A local Astro API and blob host with one seeded organization and Deployment.

    The socket is bound on construction (``port=0`` picks a free port), so URLs are known
    before :meth:`start`. Use it as a context manager::

        with Emulator(rollout_seconds=0.2) as emu:
            client = httpx.Client(base_url=emu.api_url, headers={
                "Authorization": f"Bearer {emu.token}"})

    ``rollout_seconds`` is how long a Deployment stays ``DEPLOYING`` after a finalize or
    rollback, measured on ``clock`` (monotonic seconds; a test can share a fake clock with
    the code under test, so rollouts advance only when that code sleeps); ``wall_clock``
    (epoch seconds) stamps deploys, versions, logs and hibernation overrides. ``log``, if
    given, gets one line per request (method, path, status; never the query, which holds
    upload signatures).

    What tests read and steer: :attr:`requests` (every request, in arrival order),
    :attr:`blobs` (uploads by version id), :attr:`faults`, :attr:`tokens` (the accepted
    bearer tokens; add to it), :attr:`unhealthy_after_finalize`,
    :attr:`unhealthy_after_rollback`, :attr:`rollout_seconds`, :attr:`logs_available`,
    :attr:`import_errors_after_finalize`, :meth:`record_push` (the fake registry),
    :meth:`add_log`, :meth:`upload_url` (a new deploy's, for the blob host alone), and
    :meth:`deployment` / :meth:`deploys` / :meth:`logs` / :meth:`hibernation_override` for
    the state behind the API.

    Images: a Deployment's ``imageRepository`` is ``127.0.0.1:<port>/<org>/<deployment>``
    (registry host = the emulator's address, though no registry is served there). An
    image deploy finalizes only once :meth:`record_push` has recorded its
    ``imageRepository:imageTag``. With ``registry="<host>:<port>"`` (a real registry, such as
    the one ``make test`` starts), ``imageRepository`` is ``<host>:<port>/<org>/<deployment>``
    and a finalize is accepted only when that registry has the manifest, asked as user
    ``cli`` with the finalize's API token as password, as Astro's registry takes it (add the
    registry's password to :attr:`tokens`); :attr:`registry_digests` keeps what it answered.

    ``keep_blobs=False`` is for uploads too large to hold (the benchmark's): each committed
    blob leaves only its size and sha256 in :attr:`stored_blobs`, :attr:`blobs` stays
    empty, and :attr:`requests` are recorded without their bodies. Staged blocks are held
    until their block list commits them, as Azure holds them.

    Airflow: each Deployment serves the Airflow REST API subset of the verification gates
    at its ``apiUrl`` (:mod:`~ci_deploy_testkit.emulator.airflow`), driven by the DAG files
    of the tarball it runs and their ``# ci-deploy-emulator: ...`` markers.
    ``airflow_version`` is every seeded and added Deployment's ``airflowVersion``: ``3.x``
    serves ``/api/v2``, ``2.x`` ``/api/v1`` (the ``apiUrl`` ends so).
    ``airflow_api=False`` (or :attr:`airflow_api` set later) answers every Airflow request
    503, while the Astro API (and its logs endpoint) keep working. ``airflow_delay_scale``
    multiplies the Airflow delays on ``clock``: an ``import-error-after 20`` marker's 20
    seconds and a triggered run's one second (``0.05``: one second and 50 ms).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rollout_seconds: float = 1.0,
        log: Log | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        keep_blobs: bool = True,
        registry: str | None = None,
        airflow_version: str = AIRFLOW_VERSION,
        airflow_api: bool = True,
        airflow_delay_scale: float = 1.0,
    ) -> None:
        self.clock, self.wall_clock = clock, wall_clock
        self.organization_id = DEMO_ORGANIZATION_ID
        self.deployment_id = DEMO_DEPLOYMENT_ID
        self.token = make_token(DEMO_ORGANIZATION_ID)
        self.tokens: set[str] = {self.token}
        super().__init__(host, port, log)
        self.record_bodies = keep_blobs
        self._state = AstroState(
            self.base_url,
            DEMO_ORGANIZATION_ID,
            rollout_seconds=rollout_seconds,
            clock=clock,
            wall_clock=wall_clock,
            keep_blobs=keep_blobs,
            registry=registry,
            airflow_version=airflow_version,
        )
        self._airflow = AirflowApi(
            self._state,
            lambda token: token in self.tokens,
            enabled=airflow_api,
            delay_scale=airflow_delay_scale,
        )
        self._state.add_deployment(DEMO_DEPLOYMENT_ID, name="emulator")
        self._state.seed_history(DEMO_DEPLOYMENT_ID)
        self._routes: tuple[tuple[str, Callable[[RecordedRequest], Response]], ...] = (
            ("/v1/", AstroApi(self._state, lambda token: token in self.tokens).handle),
            ("/blob/", BlobHost(self._state).handle),
            ("/airflow/", self._airflow.handle),
            ("/ui/", self._ui),
        )

    # -- addresses -------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def api_url(self) -> str:
        """The API base URL clients use, ``http://127.0.0.1:<port>/v1``."""
        return f"{self.base_url}/v1"

    def upload_url(self, deployment_id: str = DEMO_DEPLOYMENT_ID) -> str:
        """The upload URL of a new DAG_ONLY deploy of the Deployment, created over the API as
        a client would: for tests and benchmarks of the blob host alone."""
        import httpx  # only here: the emulator itself serves, it sends nothing

        response = httpx.post(
            f"{self.api_url}/organizations/{self.organization_id}/deployments/"
            f"{deployment_id}/deploys",
            json={"type": "DAG_ONLY"},
            headers={"Authorization": f"Bearer {self.token}"},
        )
        response.raise_for_status()
        return str(response.json()["dagsUploadUrl"])

    # -- state -----------------------------------------------------------------------

    @property
    def blobs(self) -> dict[str, bytes]:
        """Every committed upload by its ``x-ms-version-id`` (the live dict); empty without
        ``keep_blobs``."""
        return self._state.blobs

    @property
    def stored_blobs(self) -> dict[str, StoredBlob]:
        """The size and sha256 of every committed upload by its ``x-ms-version-id`` (live)."""
        return self._state.stored_blobs

    @property
    def registry_digests(self) -> dict[str, str]:
        """With a real registry: the digest it answered for each image a finalize checked,
        by ``imageRepository:imageTag`` (the live dict)."""
        return self._state.registry_digests

    @property
    def unhealthy_after_finalize(self) -> bool:
        """When set, rollouts started from now on end UNHEALTHY on the old DAG version."""
        return self._state.unhealthy_after_finalize

    @unhealthy_after_finalize.setter
    def unhealthy_after_finalize(self, value: bool) -> None:
        with self._state.lock:
            self._state.unhealthy_after_finalize = value

    @property
    def unhealthy_after_rollback(self) -> bool:
        """When set, rollbacks started from now on end UNHEALTHY on the old versions.

        :attr:`unhealthy_after_finalize` does not apply to rollbacks; this does.
        """
        return self._state.unhealthy_after_rollback

    @unhealthy_after_rollback.setter
    def unhealthy_after_rollback(self, value: bool) -> None:
        with self._state.lock:
            self._state.unhealthy_after_rollback = value

    @property
    def rollout_seconds(self) -> float:
        """How long rollouts (finalize, rollback) and wake-ups from hibernation take."""
        return self._state.rollout_seconds

    @rollout_seconds.setter
    def rollout_seconds(self, value: float) -> None:
        with self._state.lock:
            self._state.rollout_seconds = value

    @property
    def airflow_api(self) -> bool:
        """False makes every Airflow API request (``/airflow/...``) answer 503."""
        return self._airflow.enabled

    @airflow_api.setter
    def airflow_api(self, value: bool) -> None:
        with self._state.lock:
            self._airflow.enabled = value

    @property
    def airflow_delay_scale(self) -> float:
        """What the Airflow delays (``import-error-after N``, a run's second) are multiplied by."""
        return self._airflow.delay_scale

    @airflow_delay_scale.setter
    def airflow_delay_scale(self, value: float) -> None:
        with self._state.lock:
            self._airflow.delay_scale = value

    def airflow_import_errors(self, deployment_id: str = DEMO_DEPLOYMENT_ID) -> list[str]:
        """The files (``/usr/local/airflow/dags/x.py``) the Deployment's Airflow reports an
        import error of now."""
        with self._state.lock:
            return [error["filename"] for error in self._airflow.import_errors(deployment_id)]

    def airflow_dag_runs(self, deployment_id: str = DEMO_DEPLOYMENT_ID) -> list[tuple[str, str]]:
        """The ``(dag_id, dag_run_id)`` of every run triggered on the Deployment, in order."""
        with self._state.lock:
            return self._airflow.run_ids(deployment_id)

    @property
    def logs_available(self) -> bool:
        """False makes GET ``.../logs`` answer 404, as an API without the endpoint would.

        It applies to every Deployment that has no own setting
        (``update_deployment(id, logs_available=...)``).
        """
        return self._state.logs_available

    @logs_available.setter
    def logs_available(self, value: bool) -> None:
        with self._state.lock:
            self._state.logs_available = value

    @property
    def import_errors_after_finalize(self) -> list[str]:
        """DAG file paths (``dags/broken.py``) that every finalize reports as broken.

        On each finalize, each path gets a dag-processor log line like Airflow's,
        ``Broken DAG: [/usr/local/airflow/dags/broken.py] Traceback ... SyntaxError: ...``,
        timestamped just after the finalize. The live list: append to it or assign it.
        """
        return self._state.import_errors_after_finalize

    @import_errors_after_finalize.setter
    def import_errors_after_finalize(self, paths: list[str]) -> None:
        with self._state.lock:
            self._state.import_errors_after_finalize = list(paths)

    def add_deployment(self, deployment_id: str, **fields: Any) -> None:
        """Add a Deployment to the demo organization, like the demo one but with ``fields``.

        For example ``add_deployment("no-dags", isDagDeployEnabled=False)`` or
        ``add_deployment("dev", isDevelopmentMode=True, hibernating=True)``. Its ``name``
        is its id unless given. It has no deploy history. ``fields`` take the settings of
        :meth:`update_deployment` too.
        """
        with self._state.lock:
            self._state.add_deployment(deployment_id, **fields)

    def update_deployment(self, deployment_id: str, **fields: Any) -> None:
        """Overwrite fields of a Deployment's JSON, e.g. ``isDevelopmentMode=True``.

        Two names are settings, not JSON fields:

        - ``hibernating=True|False``: what the Deployment's hibernation schedule says
          now (development Deployments only, ValueError otherwise). It is applied at
          once, unless an active override says otherwise: ``True`` makes the
          Deployment ``HIBERNATING`` now; ``False`` begins waking it, which takes
          :attr:`rollout_seconds`.
        - ``logs_available=True|False|None``: this Deployment's logs endpoint exists,
          answers 404, or follows :attr:`logs_available`.
        """
        with self._state.lock:
            self._state.update_deployment(deployment_id, **fields)

    def update_deploy(self, deployment_id: str, deploy_id: str, **fields: Any) -> None:
        """Overwrite fields of a deploy's JSON, e.g. ``createdAt="2020-01-01T00:00:00Z"``."""
        with self._state.lock:
            self._state.update_deploy(deployment_id, deploy_id, **fields)

    def hibernation_override(self, deployment_id: str) -> dict[str, Any] | None:
        """The Deployment's hibernation override as its JSON shows it, or None.

        ``{"isActive", "isHibernating", "overrideUntil"?}``; an override whose
        ``overrideUntil`` has passed stays, inactive, until deleted or replaced.
        """
        with self._state.lock:
            return self._state.hibernation_override(deployment_id)

    def record_push(self, repository: str, tag: str) -> None:
        """Record that image ``repository:tag`` was pushed (a fake Docker engine calls this)."""
        with self._state.lock:
            self._state.record_push(repository, tag)

    @property
    def pushed_images(self) -> set[str]:
        """The images :meth:`record_push` recorded, as ``repository:tag`` (a copy)."""
        with self._state.lock:
            return set(self._state.pushed_images)

    def add_log(
        self, deployment_id: str, source: str, message: str, *, at: datetime | None = None
    ) -> None:
        """Add a log line of ``source`` (scheduler, dag-processor, ...) at ``at`` (now)."""
        with self._state.lock:
            self._state.add_log(
                deployment_id, source, message, None if at is None else at.timestamp()
            )

    def logs(self, deployment_id: str) -> list[dict[str, Any]]:
        """Every log entry of the Deployment, oldest first, as DeploymentLogEntry JSON."""
        with self._state.lock:
            return self._state.logs_json(deployment_id)

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        """A copy of the Deployment's JSON, as GET returns it now."""
        with self._state.lock:
            return self._state.deployment_by_id(deployment_id)

    def deployments(self) -> list[dict[str, Any]]:
        """Copies of every Deployment's JSON, in creation order, as GET returns them now."""
        with self._state.lock:
            return self._state.deployments_json()

    def delete_deployment(self, deployment_id: str) -> None:
        """Delete a Deployment by hand, as someone in the Astro UI would."""
        with self._state.lock:
            self._state.delete_deployment(self.organization_id, deployment_id)

    def deploys(self, deployment_id: str) -> list[dict[str, Any]]:
        """Copies of the Deployment's deploys, oldest first (the API lists them unsorted)."""
        with self._state.lock:
            return self._state.deploys_json(deployment_id)

    # -- serving ---------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        return self._state.lock

    def _fault_response(self, fault: Fault, path: str) -> Response:
        return _astro_fault_response(fault, path)

    def _dispatch(self, request: RecordedRequest) -> Response:
        for prefix, handle in self._routes:
            if request.path.startswith(prefix):
                return handle(request)
        return ApiProblem(404, f"no route for {request.method} {request.path}").response()

    def _ui(self, request: RecordedRequest) -> Response:
        match = _UI_PATH.fullmatch(request.path)
        if request.method != "GET" or match is None or not self._state.has_deployment(match[1]):
            return ApiProblem(404, f"no page at {request.path}").response()
        page = deployment_page(
            self._state.deployment_by_id(match[1]),
            self._state.deploys_json(match[1]),
        )
        return Response(200, (("Content-Type", "text/html; charset=utf-8"),), page)


def serve(
    host: str = "127.0.0.1",
    port: int = 8765,
    rollout_seconds: float = 1.0,
    registry: str | None = None,
    airflow_version: str = AIRFLOW_VERSION,
) -> int:
    """Run an emulator until SIGINT or SIGTERM; for ``ci-deploy emulator``. Main thread only.

    Prints the API URL, organization, Deployment and token to use, then the Deployment's
    Airflow API URL, one ``name: value`` a line, then a log line per request on stderr.
    ``registry`` (``host:port``) is a real registry for image deploys (see
    :class:`Emulator`); ``airflow_version`` the Deployments'
    Airflow (``2.x``: the Airflow API at ``/api/v1``, else ``/api/v2``). Returns the exit
    code: 0, or 1 when the port cannot be bound.
    """
    try:
        emulator = Emulator(
            host,
            port,
            rollout_seconds=rollout_seconds,
            log=_log_to_stderr,
            registry=registry,
            airflow_version=airflow_version,
        )
    except OSError as exc:
        print(f"ci-deploy emulator: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 1
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with emulator:
            print(
                "ci-deploy emulator: a local Astro API and blob host (Ctrl+C to stop)\n"
                f"api-url: {emulator.api_url}\n"
                f"organization-id: {emulator.organization_id}\n"
                f"deployment-id: {emulator.deployment_id}\n"
                f"token: {emulator.token}\n"
                f"airflow-api: {emulator.deployment(emulator.deployment_id)['apiUrl']}"
                + (
                    f"\nregistry: {registry} (user cli, an API token as password)"
                    if registry
                    else ""
                ),
                flush=True,
            )
            while not stopping.wait(0.2):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("ci-deploy emulator: stopped", file=sys.stderr, flush=True)
    return 0


def _astro_fault_response(fault: Fault, path: str) -> Response:
    status = fault.status or 500
    extra = (("Retry-After", fault.retry_after),) if fault.retry_after else ()
    if fault.body is not None:
        return json_response(status, fault.body, headers=extra)
    if path.startswith("/blob/"):
        code = _AZURE_FAULT_CODES.get(status, "EmulatedFault")
        response = BlobProblem(status, code, f"Emulated fault: HTTP {status}.").response()
    else:
        response = ApiProblem(status, f"emulated fault: HTTP {status}").response()
    return replace(response, headers=response.headers + extra)


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _log_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
