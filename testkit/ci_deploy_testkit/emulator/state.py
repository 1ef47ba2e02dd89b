"""The emulator's in-memory Astro: Deployments, their deploys, upload targets and rollouts.

The rules a client can trip over live here, one place for the API and the blob host:
which deploy types a Deployment takes, which version a finalize may name, which image
must have been pushed, what a rollback restores, when a development Deployment
hibernates. Rollouts and wake-ups need no timers: a Deployment is settled from the
clock whenever it is read.

Hibernation: a development Deployment has a schedule, reduced to one flag
(:attr:`DeploymentRecord.scheduled_hibernating`), and at most one override. The override,
while active, decides; otherwise the schedule does. Going to sleep is immediate (status
``HIBERNATING``); waking takes ``rollout_seconds``, during which the status stays
``HIBERNATING``. A deploy to a sleeping Deployment is taken without waking it: its
versions roll out while the status stays ``HIBERNATING``.

Not thread-safe by itself: the server and the :class:`~ci_deploy_testkit.emulator.Emulator`
hold :attr:`AstroState.lock` around every call.
"""

from __future__ import annotations

import copy
import hashlib
import re
import secrets
import string
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ci_deploy.astro import wire as models
from ci_deploy_testkit.emulator.logs import (
    LOG_SOURCES,
    LogEntry,
    LogSearch,
    broken_dag_line,
    search_logs,
)
from ci_deploy_testkit.emulator.registry import manifest_digest
from ci_deploy_testkit.emulator.wire import ApiProblem, BlobProblem

WORKSPACE_ID = "emulator-workspace"
RUNTIME_VERSION = "3.0-1"
AIRFLOW_VERSION = "3.0.1"
AIRFLOW2_RUNTIME_VERSION = "12.7.1"  # the Astro Runtime of Airflow 2.10.5
SEED_COMMIT_SHA = "5eed0000c0ffee0000000000000000000000a11f"
SUBJECT = {"id": "emulator-api-token", "subjectType": "SERVICEKEY", "apiTokenName": "emulator"}

DAG_TYPES = frozenset({"DAG_ONLY", "IMAGE_AND_DAG"})
IMAGE_TYPES = frozenset({"IMAGE_ONLY", "IMAGE_AND_DAG"})
ROLLBACK_DAYS = 90  # Astro rolls back to deploys of the last 90 days only

_ID_ALPHABET = string.digits + string.ascii_lowercase
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def airflow_api_path(airflow_version: str) -> str:
    """The Airflow REST API's path for an Airflow version: ``/api/v1`` for Airflow 2,
    ``/api/v2`` from Airflow 3 on."""
    return "/api/v1" if airflow_version.split(".", 1)[0] in ("1", "2") else "/api/v2"


def iso_seconds(epoch_seconds: float) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, the API's timestamp format."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def parse_rfc3339(text: str) -> float:
    """Epoch seconds of an RFC 3339 date-time (``2024-01-12T18:32:20.5Z``, ``...+02:00``).

    ValueError for anything else, including dates without a time or an offset.
    """
    normalized = text.upper()
    if _RFC3339.fullmatch(normalized) is None:
        raise ValueError(f"{text!r} is not an RFC 3339 date-time like 2024-01-12T18:32:20Z")
    return datetime.fromisoformat(normalized).timestamp()


class VersionIds:
    """``x-ms-version-id`` values: UTC time with 7 fractional digits, strictly increasing.

    Two uploads in the same 100 ns tick get successive fractions, so every version is
    unique and later uploads sort later.
    """

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self._wall_clock = wall_clock
        self._last_tick = 0

    def at(self, epoch_seconds: float) -> str:
        """The version for a given moment (also strictly after every earlier one)."""
        tick = max(int(epoch_seconds * 10_000_000), self._last_tick + 1)
        self._last_tick = tick
        seconds, fraction = divmod(tick, 10_000_000)
        return f"{iso_seconds(seconds)[:-1]}.{fraction:07d}Z"

    def next(self) -> str:
        return self.at(self._wall_clock())


@dataclass(frozen=True)
class StoredBlob:
    """What is known of every committed blob, whether or not its bytes are kept."""

    size: int
    sha256: str


@dataclass
class UploadTarget:
    """One deploy's upload URL: its signature, staged and committed blocks, and versions."""

    deployment_id: str
    deploy_id: str
    sig: str
    staged: dict[str, bytes] = field(default_factory=dict)
    committed: dict[str, bytes] = field(default_factory=dict)
    versions: set[str] = field(default_factory=set)

    def assemble(self, entries: list[tuple[str, str]]) -> tuple[bytes, dict[str, bytes]]:
        """The blob a Put Block List makes of ``(Latest|Committed|Uncommitted, id)`` entries.

        Returns the bytes and the blocks that become the committed ones.
        """
        places = {
            "Latest": (self.staged, self.committed),
            "Uncommitted": (self.staged,),
            "Committed": (self.committed,),
        }
        parts: list[bytes] = []
        blocks: dict[str, bytes] = {}
        for kind, block_id in entries:
            data = next((place[block_id] for place in places[kind] if block_id in place), None)
            if data is None:
                raise BlobProblem(400, "InvalidBlockList", "The specified block list is invalid.")
            parts.append(data)
            blocks[block_id] = data
        return b"".join(parts), blocks


@dataclass
class Rollout:
    """A Deployment moving to a deploy's code; settles ``rollout_seconds`` after ``started``.

    ``failure`` is the ``statusReason`` it ends ``UNHEALTHY`` with; None when it ends well.
    """

    deploy_id: str
    started: float
    dag_version: str | None
    image_tag: str | None
    failure: str | None


@dataclass
class HibernationOverride:
    """A hibernation override: sleep or stay awake, until ``until`` (epoch seconds) or deleted.

    ``lapsed`` is set once the Deployment has been moved back to its schedule after
    ``until`` passed; the override stays (inactive) until it is deleted or replaced.
    """

    is_hibernating: bool
    until: float | None
    lapsed: bool = False

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until

    def json(self, now: float) -> dict[str, Any]:
        """The spec's ``DeploymentHibernationOverride``."""
        data: dict[str, Any] = {"isActive": self.active(now), "isHibernating": self.is_hibernating}
        if self.until is not None:
            data["overrideUntil"] = iso_seconds(self.until)
        return data


@dataclass(frozen=True)
class Parse:
    """The DAG code a Deployment began to run, for the Airflow API
    (:mod:`~ci_deploy_testkit.emulator.airflow`): from ``since`` (the clock, when its rollout
    ended), the bundle version ``bundle_version`` (the DAG tarball version, or the deploy id
    of an image deploy to a Deployment without DAG deploys), whose DAG tarball, if any, is
    ``dag_version``."""

    bundle_version: str
    dag_version: str | None
    since: float


@dataclass
class DeployRecord:
    data: dict[str, Any]
    upload: UploadTarget | None = None
    # The DAG version the Deployment runs with this deploy, for image deploys that carry
    # none in their JSON: a rollback to them restores it.
    dag_version: str | None = None


@dataclass
class DeploymentRecord:
    data: dict[str, Any]
    deploys: dict[str, DeployRecord] = field(default_factory=dict)  # creation order
    rollout: Rollout | None = None
    scheduled_hibernating: bool = False
    override: HibernationOverride | None = None
    waking_since: float | None = None  # the clock when a wake-up began, while it lasts
    creating_since: float | None = None  # the clock when CreateDeployment made it, while CREATING
    logs: list[LogEntry] = field(default_factory=list)
    logs_available: bool | None = None  # None: as AstroState.logs_available says
    parses: list[Parse] = field(default_factory=list)  # the code it ran, oldest first


class AstroState:
    """Deployments of one organization, their deploys, uploads and rollouts."""

    def __init__(
        self,
        base_url: str,
        organization_id: str,
        *,
        rollout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        keep_blobs: bool = True,
        registry: str | None = None,
        airflow_version: str = AIRFLOW_VERSION,
    ) -> None:
        self.lock = threading.RLock()
        self.airflow_version = airflow_version
        self.base_url = base_url
        # A real registry (host:port) the image deploys are checked against; None: the
        # fake one of record_push.
        self.registry = registry
        self.registry_digests: dict[str, str] = {}  # "<repository>:<tag>" -> digest seen
        self.organization_id = organization_id
        self.rollout_seconds = rollout_seconds
        self.unhealthy_after_finalize = False
        self.unhealthy_after_rollback = False
        self.logs_available = True
        self.import_errors_after_finalize: list[str] = []
        self.pushed_images: set[str] = set()  # "<repository>:<tag>"
        self.keep_blobs = keep_blobs
        self.blobs: dict[str, bytes] = {}  # filled only when keep_blobs
        self.stored_blobs: dict[str, StoredBlob] = {}
        self._clock = clock
        self._wall_clock = wall_clock
        self._versions = VersionIds(wall_clock)
        self._deployments: dict[str, DeploymentRecord] = {}
        self._uploads: dict[str, UploadTarget] = {}
        self._last_created = 0
        self._ids = 0
        self._started = wall_clock()

    # -- Deployments ---------------------------------------------------------------

    def add_deployment(self, deployment_id: str, **fields: Any) -> None:
        """Add a Deployment with plausible values for every field; ``fields`` override them.

        Two names in ``fields`` are settings, not JSON: see :meth:`update_deployment`.
        """
        if deployment_id in self._deployments:
            raise ValueError(f"Deployment {deployment_id!r} exists already")
        data = self._deployment_defaults(deployment_id)
        if fields.get("isDagDeployEnabled") is False:
            data["dagTarballVersion"] = data["desiredDagTarballVersion"] = ""
        record = DeploymentRecord(data)
        self._update(record, fields)
        if record.data["dagTarballVersion"]:
            version = record.data["dagTarballVersion"]
            record.parses.append(Parse(version, version, self._clock() - 3600))
        self._deployments[deployment_id] = record

    def update_deployment(self, deployment_id: str, **fields: Any) -> None:
        """Overwrite fields of a Deployment (after settling its rollout).

        Two names are settings rather than JSON fields: ``hibernating`` (bool) sets what
        the hibernation schedule says, and applies it as a schedule change would (sleep
        now, or begin waking); only development Deployments take it. ``logs_available``
        (bool, or None for :attr:`logs_available`) turns this Deployment's logs endpoint
        into a 404 or back.
        """
        self._update(self._record(deployment_id), fields)

    def list_deployments(
        self,
        organization_id: str,
        *,
        deployment_ids: Sequence[str],
        names: Sequence[str],
        workspace_ids: Sequence[str],
        sorts: Sequence[str],
        offset: int,
        limit: int,
    ) -> dict[str, Any]:
        """One DeploymentsPaginated page of the organization's Deployments.

        Each non-empty filter keeps the Deployments matching one of its values. Without
        ``sorts`` (``<field>:asc|desc``, earlier ones first) the order is creation order.
        """
        records = [
            r for r in self._deployments.values() if r.data.get("organizationId") == organization_id
        ]
        if not records and organization_id != self.organization_id:
            raise ApiProblem(403, f"the API token has no access to organization {organization_id}")
        filters = (("id", deployment_ids), ("name", names), ("workspaceId", workspace_ids))
        views: list[dict[str, Any]] = []
        for record in records:
            self._settle(record)
            if all(not wanted or record.data.get(name) in wanted for name, wanted in filters):
                views.append(self._view(record))
        for sort in reversed(sorts):
            name, _, direction = sort.partition(":")
            views.sort(key=lambda view: str(view.get(name, "")), reverse=direction == "desc")
        return {
            "deployments": views[offset : offset + limit],
            "offset": offset,
            "limit": limit,
            "totalCount": len(views),
        }

    def create_deployment(
        self, organization_id: str, request: models.CreateDeploymentRequest
    ) -> dict[str, Any]:
        """A new Deployment built from a CreateDeployment body: ``CREATING`` until
        :attr:`rollout_seconds` have passed on the clock, then ``HEALTHY``; no deploys, no
        DAG tarball. Secret variables keep their value, which GET never shows."""
        if organization_id != self.organization_id:
            raise ApiProblem(403, f"the API token has no access to organization {organization_id}")
        deployment_id = self._new_id()
        data = self._deployment_defaults(deployment_id)
        created = self._now()
        data.update(
            name=request.name,
            description=request.description or "",
            workspaceId=request.workspaceId,
            type=request.type,
            status="CREATING",
            statusReason="Creating the Deployment",
            dagTarballVersion="",
            desiredDagTarballVersion="",
            createdAt=created,
            updatedAt=created,
            isDevelopmentMode=bool(request.isDevelopmentMode),
            isHighAvailability=bool(request.isHighAvailability),
            isDagDeployEnabled=(
                True if request.isDagDeployEnabled is None else request.isDagDeployEnabled
            ),
            isCicdEnforced=bool(request.isCicdEnforced),
        )
        if request.clusterId:
            data.update(clusterId=request.clusterId, cloudProvider=None, region=None)
        else:
            data.update(cloudProvider=request.cloudProvider, region=request.region)
        if request.astroRuntimeVersion:
            data.update(
                runtimeVersion=request.astroRuntimeVersion,
                astroRuntimeVersion=request.astroRuntimeVersion,
            )
        for name in (
            "executor",
            "schedulerSize",
            "defaultTaskPodCpu",
            "defaultTaskPodMemory",
            "resourceQuotaCpu",
            "resourceQuotaMemory",
        ):
            value = getattr(request, name)
            if value is not None:
                data[name] = value
        if request.workerQueues is not None:
            data["workerQueues"] = [
                {"id": self._new_id(), "podCpu": "1", "podMemory": "2Gi"}
                | queue.model_dump(exclude_none=True)
                for queue in request.workerQueues
            ]
        data["environmentVariables"] = [
            {**variable.model_dump(exclude_none=True), "updatedAt": created}
            for variable in request.environmentVariables or ()
        ]
        data = {key: value for key, value in data.items() if value is not None}
        record = DeploymentRecord(data, creating_since=self._clock())
        self._deployments[deployment_id] = record
        return self._view(record)

    def delete_deployment(self, organization_id: str, deployment_id: str) -> None:
        """Remove the Deployment and its deploys; 404 when it is not there."""
        self._deployment(organization_id, deployment_id)
        del self._deployments[deployment_id]

    def seed_history(self, deployment_id: str) -> None:
        """Give a Deployment one earlier DAG-only deploy, the one it runs now."""
        record = self._record(deployment_id)
        seeded = self._new_deploy(record, "DAG_ONLY", self._started - 3600)
        seeded.dag_version = record.data["dagTarballVersion"] or None
        data = seeded.data
        data.update(
            status="DEPLOYED",
            description="Deploy seeded by the ci-deploy emulator",
            dagTarballVersion=record.data["dagTarballVersion"],
            git={
                "provider": "GITHUB",
                "account": "emulator",
                "repo": "airflow-project",
                "branch": "main",
                "commitSha": SEED_COMMIT_SHA,
                "commitUrl": f"https://github.com/emulator/airflow-project/commit/{SEED_COMMIT_SHA}",
                "authorName": "Emulator",
            },
        )

    def deployment_json(self, organization_id: str, deployment_id: str) -> dict[str, Any]:
        """The Deployment as GET returns it; 404 when the organization or id is unknown."""
        return self._view(self._deployment(organization_id, deployment_id))

    def deployment_by_id(self, deployment_id: str) -> dict[str, Any]:
        """The Deployment as GET returns it; KeyError when unknown."""
        return self._view(self._record(deployment_id))

    def deployments_json(self) -> list[dict[str, Any]]:
        """Every Deployment as GET returns it, in creation order."""
        return [self.deployment_by_id(deployment_id) for deployment_id in list(self._deployments)]

    def has_deployment(self, deployment_id: str) -> bool:
        return deployment_id in self._deployments

    # -- Hibernation ---------------------------------------------------------------

    def hibernation_override(self, deployment_id: str) -> dict[str, Any] | None:
        """The Deployment's override as its JSON shows it, None when it has none."""
        override = self._record(deployment_id).override
        return None if override is None else override.json(self._wall_clock())

    def set_hibernation_override(
        self, organization_id: str, deployment_id: str, is_hibernating: bool, until: float | None
    ) -> dict[str, Any]:
        """Set (replace) the override and act on it; 400 unless a development Deployment."""
        deployment = self._development(organization_id, deployment_id)
        if until is not None and until <= self._wall_clock():
            raise ApiProblem(
                400,
                f"overrideUntil {iso_seconds(until)} is in the past: give a future time, or "
                "none to keep the override until it is deleted",
                [{"code": "invalid", "field": "overrideUntil", "message": "must be in the future"}],
            )
        deployment.override = HibernationOverride(is_hibernating, until)
        deployment.data["updatedAt"] = self._now()
        self._apply_hibernation(deployment)
        return deployment.override.json(self._wall_clock())

    def delete_hibernation_override(self, organization_id: str, deployment_id: str) -> None:
        """Remove the override (if any): the schedule decides again."""
        deployment = self._development(organization_id, deployment_id)
        if deployment.override is not None:
            deployment.override = None
            deployment.data["updatedAt"] = self._now()
        self._apply_hibernation(deployment)

    # -- Logs ----------------------------------------------------------------------

    def add_log(self, deployment_id: str, source: str, message: str, at: float | None) -> None:
        """Add a log line; ``at`` is epoch seconds, now when None."""
        if source not in LOG_SOURCES:
            raise ValueError(f"log source must be one of {', '.join(LOG_SOURCES)}, not {source!r}")
        entry = LogEntry(self._wall_clock() if at is None else at, source, message)
        self._record(deployment_id).logs.append(entry)

    def logs_json(self, deployment_id: str) -> list[dict[str, Any]]:
        """Every log entry of the Deployment, oldest first."""
        logs = sorted(self._record(deployment_id).logs, key=lambda entry: entry.timestamp)
        return [entry.json() for entry in logs]

    def logs_available_for(self, deployment_id: str) -> bool:
        """Whether the logs endpoint exists for this Deployment (unknown ones: the default)."""
        record = self._deployments.get(deployment_id)
        if record is None or record.logs_available is None:
            return self.logs_available
        return record.logs_available

    def deployment_logs(
        self, organization_id: str, deployment_id: str, query: LogSearch
    ) -> dict[str, Any]:
        """One DeploymentLog page of the Deployment's logs."""
        deployment = self._deployment(organization_id, deployment_id)
        return search_logs(deployment.logs, query, self._wall_clock())

    # -- Images --------------------------------------------------------------------

    def record_push(self, repository: str, tag: str) -> None:
        """Note that ``repository:tag`` is in the registry, so image deploys of it finalize."""
        if not repository or not tag or ":" in tag or "/" in tag:
            raise ValueError(f"not an image repository and tag: {repository!r}, {tag!r}")
        self.pushed_images.add(f"{repository}:{tag}")

    # -- Deploys -------------------------------------------------------------------

    def deploys_json(self, deployment_id: str) -> list[dict[str, Any]]:
        """A Deployment's deploys in creation order."""
        return [copy.deepcopy(d.data) for d in self._record(deployment_id).deploys.values()]

    def update_deploy(self, deployment_id: str, deploy_id: str, **fields: Any) -> None:
        """Overwrite fields of a deploy's JSON; KeyError when either is unknown."""
        deploys = self._record(deployment_id).deploys
        if deploy_id not in deploys:
            raise KeyError(f"no deploy {deploy_id!r} in Deployment {deployment_id!r}")
        deploys[deploy_id].data.update(copy.deepcopy(fields))

    def list_deploys(
        self, organization_id: str, deployment_id: str, offset: int, limit: int
    ) -> dict[str, Any]:
        """One DeploysPaginated page, in the emulator's deliberately unsorted order.

        The spec promises no order, so clients must sort by ``createdAt``. To catch clients
        that do not, the list is zig-zagged: the 2nd, 4th, 6th... deploys oldest first,
        then the others newest first (``[2, 3, 1]`` for three). From three deploys on,
        the newest is neither first nor last.
        """
        records = list(self._deployment(organization_id, deployment_id).deploys.values())
        ordered = records[1::2] + records[0::2][::-1]
        return {
            "deploys": [copy.deepcopy(r.data) for r in ordered[offset : offset + limit]],
            "offset": offset,
            "limit": limit,
            "totalCount": len(records),
        }

    def get_deploy(
        self, organization_id: str, deployment_id: str, deploy_id: str
    ) -> dict[str, Any]:
        deployment = self._deployment(organization_id, deployment_id)
        return copy.deepcopy(self._deploy(deployment, deploy_id).data)

    def create_deploy(
        self, organization_id: str, deployment_id: str, request: models.CreateDeployRequest
    ) -> dict[str, Any]:
        """A new INITIALIZED deploy, with an upload URL when it carries DAGs or a bundle."""
        deployment = self._deployment(organization_id, deployment_id)
        if deployment.creating_since is not None:
            raise ApiProblem(
                400,
                f"Deployment {deployment_id} is still being created (status CREATING): "
                "deploy once it is HEALTHY",
            )
        dags_enabled = bool(deployment.data.get("isDagDeployEnabled"))
        if not dags_enabled and request.type in ("DAG_ONLY", "BUNDLE"):
            raise ApiProblem(
                400,
                f"Deployment {deployment_id} has DAG deploys disabled, so it cannot take a "
                f"{request.type} deploy: enable DAG deploys or deploy an image (IMAGE_AND_DAG)",
            )
        record = self._new_deploy(deployment, request.type, self._next_created_at())
        data = record.data
        if request.description is not None:
            data["description"] = request.description
        if request.git is not None:
            data["git"] = request.git.model_dump(exclude_none=True)
        if request.type == "BUNDLE":
            data.update(bundleType=request.bundleType, bundleMountPath=request.bundleMountPath)
        if request.type in IMAGE_TYPES:
            data["imageTag"] = f"deploy-{len(deployment.deploys)}"
        if request.type == "BUNDLE" or (request.type in DAG_TYPES and dags_enabled):
            url_field = "bundleUploadUrl" if request.type == "BUNDLE" else "dagsUploadUrl"
            record.upload = self._new_upload(deployment_id, data["id"])
            data[url_field] = self._upload_url(record.upload)
        return copy.deepcopy(data)

    def finalize_deploy(
        self,
        organization_id: str,
        deployment_id: str,
        deploy_id: str,
        request: models.FinalizeDeployRequest,
        token: str = "",
    ) -> dict[str, Any]:
        """Mark the deploy DEPLOYED and start the Deployment's rollout to it.

        Image deploys need their image pushed first: to the real :attr:`registry` (asked
        as user ``cli`` with ``token``, the finalize's API token), or without one, recorded
        by :meth:`record_push`. Each finalize adds a dag-processor ``Broken DAG`` log line
        per :attr:`import_errors_after_finalize`.
        """
        deployment = self._deployment(organization_id, deployment_id)
        record = self._deploy(deployment, deploy_id)
        data = record.data
        if data["status"] != "INITIALIZED":
            raise ApiProblem(400, f"deploy {deploy_id} is {data['status']}, not INITIALIZED")
        deploy_type = data["type"]
        uploaded = record.upload.versions if record.upload else set()
        takes_dags = deploy_type in DAG_TYPES and data["isDagDeployEnabled"]
        dag_version = _checked_version(
            "dagTarballVersion", request.dagTarballVersion, data, takes_dags, uploaded
        )
        _checked_version(
            "bundleTarballVersion",
            request.bundleTarballVersion,
            data,
            deploy_type == "BUNDLE",
            uploaded,
        )
        if deploy_type in IMAGE_TYPES:
            self._check_pushed(data, token)
        data.update(status="DEPLOYED", updatedAt=self._now(), updatedBySubject=SUBJECT)
        if dag_version:
            data["dagTarballVersion"] = dag_version
        if deploy_type in IMAGE_TYPES:
            image_tag: str | None = data["imageTag"]
            # the DAGs it runs with, for a rollback to it
            record.dag_version = dag_version or self._desired_dag_version(deployment)
        else:
            image_tag = None
            data["imageTag"] = self._desired_image_tag(deployment)  # the image it runs with
            record.dag_version = dag_version
        failure = None
        if self.unhealthy_after_finalize:
            failure = (
                f"Deploy {deploy_id} did not become healthy: the scheduler failed to start "
                "(emulated by unhealthy_after_finalize)"
            )
        self._start_rollout(deployment, deploy_id, dag_version, image_tag, failure)
        self._log_import_errors(deployment)
        return copy.deepcopy(data)

    def _check_pushed(self, data: dict[str, Any], token: str) -> None:
        """ApiProblem unless the image deploy's ``imageRepository:imageTag`` was pushed."""
        image = f"{data['imageRepository']}:{data['imageTag']}"
        problem = ""
        if self.registry is None:
            if image not in self.pushed_images:
                problem = "it is not in the registry"
        else:
            name = data["imageRepository"].removeprefix(f"{self.registry}/")
            answer = manifest_digest(
                self.registry, name, data["imageTag"], user="cli", password=token
            )
            problem = answer.problem
            if answer.digest:
                self.registry_digests[image] = answer.digest
        if problem:
            raise ApiProblem(
                400,
                f"image {image} was not pushed ({problem}): push it to the registry before "
                f"finalizing the {data['type']} deploy",
            )

    def rollback_deploy(
        self,
        organization_id: str,
        deployment_id: str,
        deploy_id: str,
        request: models.RollbackRequest,
    ) -> dict[str, Any]:
        """A new DEPLOYED deploy that brings back deploy ``deploy_id``'s code and image.

        The target must be DEPLOYED and at most :data:`ROLLBACK_DAYS` old. The rollout ends
        UNHEALTHY only when :attr:`unhealthy_after_rollback` is set.
        """
        deployment = self._deployment(organization_id, deployment_id)
        target_record = self._deploy(deployment, deploy_id)
        target = target_record.data
        if target["status"] != "DEPLOYED":
            raise ApiProblem(
                400,
                f"deploy {deploy_id} is {target['status']}: only DEPLOYED deploys can be "
                "rolled back to",
            )
        if self._wall_clock() - parse_rfc3339(target["createdAt"]) > ROLLBACK_DAYS * 86400:
            raise ApiProblem(
                400,
                f"deploy {deploy_id} was created at {target['createdAt']}, more than "
                f"{ROLLBACK_DAYS} days ago: only deploys of the last {ROLLBACK_DAYS} days can "
                "be rolled back to",
            )
        active = next(
            d.data for d in reversed(deployment.deploys.values()) if d.data["status"] == "DEPLOYED"
        )
        record = self._new_deploy(deployment, target["type"], self._next_created_at())
        data = record.data
        data.update(
            status="DEPLOYED",
            rollbackFromId=active["id"],
            imageRepository=target["imageRepository"],
            imageTag=target["imageTag"],
        )
        for name in ("git", "dagTarballVersion", "bundleType", "bundleMountPath"):
            if name in target:
                data[name] = copy.deepcopy(target[name])
        if request.description is not None:
            data["description"] = request.description
        record.dag_version = target.get("dagTarballVersion") or target_record.dag_version
        failure = None
        if self.unhealthy_after_rollback:
            failure = (
                f"Rollback {data['id']} did not become healthy: the scheduler failed to start "
                "(emulated by unhealthy_after_rollback)"
            )
        self._start_rollout(deployment, data["id"], record.dag_version, target["imageTag"], failure)
        return copy.deepcopy(data)

    # -- Uploads -------------------------------------------------------------------

    def upload_target(self, blob_path: str) -> UploadTarget | None:
        """The upload target at ``/blob/<container>/<name>``, if one was issued."""
        return self._uploads.get(blob_path)

    def store_upload(
        self, target: UploadTarget, data: bytes, committed: dict[str, bytes] | None = None
    ) -> str:
        """Commit a blob (Put Blob or Put Block List) and return its new version id.

        Without :attr:`keep_blobs` only its size and sha256 stay, and its blocks are not
        kept as committed ones (a later block list can name only newly staged blocks).
        """
        version = self._versions.next()
        target.versions.add(version)
        target.staged.clear()
        self.stored_blobs[version] = StoredBlob(len(data), hashlib.sha256(data).hexdigest())
        target.committed = (committed or {}) if self.keep_blobs else {}
        if self.keep_blobs:
            self.blobs[version] = data
        return version

    # -- internals -----------------------------------------------------------------

    def _record(self, deployment_id: str) -> DeploymentRecord:
        try:
            record = self._deployments[deployment_id]
        except KeyError:
            raise KeyError(f"no Deployment {deployment_id!r} in the emulator") from None
        self._settle(record)
        return record

    def _deployment(self, organization_id: str, deployment_id: str) -> DeploymentRecord:
        record = self._deployments.get(deployment_id)
        if record is None or record.data.get("organizationId") != organization_id:
            raise ApiProblem(
                404, f"Deployment {deployment_id} not found in organization {organization_id}"
            )
        self._settle(record)
        return record

    @staticmethod
    def _deploy(deployment: DeploymentRecord, deploy_id: str) -> DeployRecord:
        record = deployment.deploys.get(deploy_id)
        if record is None:
            raise ApiProblem(
                404, f"deploy {deploy_id} not found in Deployment {deployment.data['id']}"
            )
        return record

    def _new_deploy(
        self, deployment: DeploymentRecord, deploy_type: str, created: float
    ) -> DeployRecord:
        """Add a deploy record with the fields every deploy has."""
        source = deployment.data
        deploy_id = self._new_id()
        data: dict[str, Any] = {
            "id": deploy_id,
            "deploymentId": source["id"],
            "type": deploy_type,
            "status": "INITIALIZED",
            "createdAt": iso_seconds(created),
            "updatedAt": iso_seconds(created),
            "createdBySubject": SUBJECT,
            "isDagDeployEnabled": bool(source.get("isDagDeployEnabled")),
            "imageRepository": source["imageRepository"],
            "imageTag": source["imageTag"],
            "astroRuntimeVersion": source.get("astroRuntimeVersion", RUNTIME_VERSION),
            "airflowVersion": source.get("airflowVersion", AIRFLOW_VERSION),
        }
        record = deployment.deploys[deploy_id] = DeployRecord(data)
        return record

    def _new_upload(self, deployment_id: str, deploy_id: str) -> UploadTarget:
        target = UploadTarget(deployment_id, deploy_id, secrets.token_urlsafe(24))
        self._uploads[f"/blob/{deployment_id}/{deploy_id}"] = target
        return target

    def _upload_url(self, target: UploadTarget) -> str:
        return (
            f"{self.base_url}/blob/{target.deployment_id}/{target.deploy_id}"
            f"?sv=2023-11-03&sp=cw&sig={target.sig}"
        )

    def _start_rollout(
        self,
        deployment: DeploymentRecord,
        deploy_id: str,
        dag_version: str | None,
        image_tag: str | None,
        failure: str | None,
    ) -> None:
        """Roll the Deployment to a deploy: ``DEPLOYING`` unless it sleeps (then it stays so)."""
        pending = deployment.rollout  # superseded: the new rollout also brings what it would
        if pending is not None:
            dag_version = dag_version or pending.dag_version
            image_tag = image_tag or pending.image_tag
        data = deployment.data
        asleep = data["status"] == "HIBERNATING" and deployment.waking_since is None
        if not asleep:  # a deploy while waking up finishes the wake-up as its rollout
            deployment.waking_since = None
            data.update(status="DEPLOYING", statusReason=f"Rolling out deploy {deploy_id}")
        data["updatedAt"] = self._now()
        if dag_version:
            data["desiredDagTarballVersion"] = dag_version
        deployment.rollout = Rollout(deploy_id, self._clock(), dag_version, image_tag, failure)

    def _settle(self, deployment: DeploymentRecord) -> None:
        """Catch the Deployment up with the clock: override expiry, rollout, wake-up."""
        override = deployment.override
        if override is not None and not override.lapsed and not override.active(self._wall_clock()):
            override.lapsed = True
            self._apply_hibernation(deployment)
        now = self._clock()
        creating = deployment.creating_since
        if creating is not None and now - creating >= self.rollout_seconds:
            deployment.creating_since = None
            deployment.data.update(status="HEALTHY", statusReason="Created", updatedAt=self._now())
        rollout = deployment.rollout
        if rollout is not None and now - rollout.started >= self.rollout_seconds:
            deployment.rollout = None
            self._end_rollout(deployment, rollout)
        waking = deployment.waking_since
        if waking is not None and now - waking >= self.rollout_seconds:
            deployment.waking_since = None
            self._end_wake_up(deployment)

    def _end_rollout(self, deployment: DeploymentRecord, rollout: Rollout) -> None:
        data = deployment.data
        data["updatedAt"] = self._now()
        awake = data["status"] != "HIBERNATING"
        if rollout.failure is not None:
            if awake:
                data.update(status="UNHEALTHY", statusReason=rollout.failure)
            return
        if rollout.dag_version:
            data["dagTarballVersion"] = rollout.dag_version
        if rollout.image_tag:
            data["imageTag"] = data["imageVersion"] = rollout.image_tag
        self._note_parse(deployment, rollout)
        if awake:
            data.update(status="HEALTHY", statusReason="Successfully Deployed")

    def _note_parse(self, deployment: DeploymentRecord, rollout: Rollout) -> None:
        """Record the code a rollout that ended well made the Deployment run, when it ended."""
        ended = rollout.started + self.rollout_seconds
        if rollout.dag_version:
            parse = Parse(rollout.dag_version, rollout.dag_version, ended)
        elif not deployment.data.get("isDagDeployEnabled") and rollout.image_tag:
            parse = Parse(rollout.deploy_id, None, ended)  # the DAGs come in the image
        else:
            return  # an image deploy: the DAGs stay those of the last DAG deploy
        deployment.parses.append(parse)

    def parses(self, deployment_id: str) -> list[Parse]:
        """The code the Deployment ran, oldest first, its current one last (settled now)."""
        return list(self._record(deployment_id).parses)

    def clock(self) -> float:
        """The state's clock (monotonic seconds), which rollouts are measured on."""
        return self._clock()

    def wall_clock(self) -> float:
        """The state's wall clock (epoch seconds)."""
        return self._wall_clock()

    def _end_wake_up(self, deployment: DeploymentRecord) -> None:
        data = deployment.data
        if data["status"] != "HIBERNATING":
            return
        data["updatedAt"] = self._now()
        if deployment.rollout is not None:  # a deploy taken while asleep now rolls out
            reason = f"Rolling out deploy {deployment.rollout.deploy_id}"
            data.update(status="DEPLOYING", statusReason=reason)
        else:
            data.update(status="HEALTHY", statusReason="Woken up from hibernation")

    def _wants_hibernation(self, deployment: DeploymentRecord) -> bool:
        override = deployment.override
        if override is not None and override.active(self._wall_clock()):
            return override.is_hibernating
        return deployment.scheduled_hibernating

    def _apply_hibernation(self, deployment: DeploymentRecord) -> None:
        """Put the Deployment to sleep now, or begin waking it, as its override/schedule say."""
        data = deployment.data
        if self._wants_hibernation(deployment):
            if data["status"] != "HIBERNATING" or deployment.waking_since is not None:
                deployment.waking_since = None
                data.update(
                    status="HIBERNATING",
                    statusReason=f"Hibernating ({self._hibernation_cause(deployment)})",
                    updatedAt=self._now(),
                )
        elif data["status"] == "HIBERNATING" and deployment.waking_since is None:
            deployment.waking_since = self._clock()
            data.update(
                statusReason=f"Waking up from hibernation ({self._hibernation_cause(deployment)})",
                updatedAt=self._now(),
            )

    def _hibernation_cause(self, deployment: DeploymentRecord) -> str:
        override = deployment.override
        if override is not None and override.active(self._wall_clock()):
            return "hibernation override"
        return "hibernation schedule"

    def _development(self, organization_id: str, deployment_id: str) -> DeploymentRecord:
        """The Deployment, which must be in development mode to hibernate; 400 otherwise."""
        deployment = self._deployment(organization_id, deployment_id)
        if not deployment.data.get("isDevelopmentMode"):
            raise ApiProblem(
                400,
                f"Deployment {deployment_id} is not a development Deployment "
                "(isDevelopmentMode is false): only development Deployments can hibernate",
            )
        return deployment

    def _update(self, deployment: DeploymentRecord, fields: dict[str, Any]) -> None:
        """Apply JSON fields, then the settings ``hibernating`` and ``logs_available``."""
        fields = dict(fields)
        hibernating = fields.pop("hibernating", None)
        if "logs_available" in fields:
            deployment.logs_available = fields.pop("logs_available")
        deployment.data.update(copy.deepcopy(fields))
        if hibernating is not None:
            if not deployment.data.get("isDevelopmentMode"):
                raise ValueError(
                    f"Deployment {deployment.data['id']!r} is not in development mode "
                    "(isDevelopmentMode=True), so it cannot hibernate"
                )
            deployment.scheduled_hibernating = bool(hibernating)
            self._apply_hibernation(deployment)

    def _view(self, deployment: DeploymentRecord) -> dict[str, Any]:
        """The Deployment's JSON: its fields, plus the hibernation state of a development one."""
        data = copy.deepcopy(deployment.data)
        for variable in data.get("environmentVariables") or ():
            if variable.get("isSecret"):
                variable.pop("value", None)  # the API never returns a secret's value
        if not data.get("isDevelopmentMode"):
            return data
        now = self._wall_clock()
        hibernation_spec: dict[str, Any] = {}
        override = deployment.override
        if override is not None:
            hibernation_spec["override"] = override.json(now)
        hibernating = data.get("status") == "HIBERNATING"
        cause = self._hibernation_cause(deployment)
        if hibernating and deployment.waking_since is not None:
            reason = f"Waking up from hibernation ({cause})"
        else:
            reason = f"{'Hibernating' if hibernating else 'Awake'} ({cause})"
        status: dict[str, Any] = {"isHibernating": hibernating, "reason": reason}
        if (
            override is not None
            and override.active(now)
            and override.until is not None
            and override.is_hibernating != deployment.scheduled_hibernating
        ):
            status["nextEventAt"] = iso_seconds(override.until)
            status["nextEventType"] = "HIBERNATE" if deployment.scheduled_hibernating else "WAKE"
        data["scalingSpec"] = {"hibernationSpec": hibernation_spec}
        data["scalingStatus"] = {"hibernationStatus": status}
        return data

    def _desired_dag_version(self, deployment: DeploymentRecord) -> str | None:
        """The DAG version the Deployment runs once its rollout (if any) ends."""
        return deployment.data.get("desiredDagTarballVersion") or None

    def _desired_image_tag(self, deployment: DeploymentRecord) -> str:
        """The image tag the Deployment runs once its rollout (if any) ends."""
        rollout = deployment.rollout
        if rollout is not None and rollout.image_tag:
            return rollout.image_tag
        return str(deployment.data["imageTag"])

    def _log_import_errors(self, deployment: DeploymentRecord) -> None:
        """The dag-processor lines of :attr:`import_errors_after_finalize`, stamped now.

        Not later: a search right after the finalize must find them. Lines with the same
        timestamp keep their order.
        """
        now = self._wall_clock()
        for path in self.import_errors_after_finalize:
            deployment.logs.append(LogEntry(now, "dag-processor", broken_dag_line(path)))

    def _deployment_defaults(self, deployment_id: str) -> dict[str, Any]:
        host = self.base_url.split("://", 1)[1]
        airflow = f"{host}/airflow/{deployment_id}"
        api = airflow_api_path(self.airflow_version)
        runtime = RUNTIME_VERSION if api == "/api/v2" else AIRFLOW2_RUNTIME_VERSION
        registry = self.registry or host
        created = iso_seconds(self._started - 30 * 86400)
        version = self._versions.at(self._started - 3600)
        return {
            "id": deployment_id,
            "name": deployment_id,
            "description": "A Deployment served by the ci-deploy emulator",
            "organizationId": self.organization_id,
            "workspaceId": WORKSPACE_ID,
            "workspaceName": "Emulator",
            "namespace": f"{deployment_id}-namespace",
            "type": "STANDARD",
            "cloudProvider": "AWS",
            "region": "us-east-1",
            "executor": "ASTRO",
            "status": "HEALTHY",
            "statusReason": "Successfully Deployed",
            "isDagDeployEnabled": True,
            "isDevelopmentMode": False,
            "isCicdEnforced": False,
            "isHighAvailability": False,
            "runtimeVersion": runtime,
            "astroRuntimeVersion": runtime,
            "airflowVersion": self.airflow_version,
            "dagTarballVersion": version,
            "desiredDagTarballVersion": version,
            "imageRepository": f"{registry}/{self.organization_id}/{deployment_id}",
            "imageTag": "deploy-0",
            "imageVersion": "deploy-0",
            "uiUrl": f"{self.base_url}/ui/deployments/{deployment_id}",
            "apiUrl": f"{self.base_url}/airflow/{deployment_id}{api}",
            "webServerUrl": airflow,
            "webServerIngressHostname": airflow,
            "webServerAirflowApiUrl": f"{airflow}{api}",
            "webServerCpu": "0.5",
            "webServerMemory": "1Gi",
            "webServerReplicas": 1,
            "schedulerCpu": "1",
            "schedulerMemory": "2Gi",
            "schedulerReplicas": 1,
            "schedulerSize": "SMALL",
            "contactEmails": [],
            "createdAt": created,
            "updatedAt": created,
            "createdBy": SUBJECT,
            "updatedBy": SUBJECT,
        }

    def _next_created_at(self) -> float:
        """Now, or one second after the previous deploy: ``createdAt`` strictly increases."""
        created = max(int(self._wall_clock()), self._last_created + 1)
        self._last_created = created
        return created

    def _now(self) -> str:
        return iso_seconds(self._wall_clock())

    def _new_id(self) -> str:
        """A cuid-like id: ``c``, then time, a counter and randomness in base 36."""
        self._ids += 1
        stamp = _base36(int(self._wall_clock() * 1000), 8) + _base36(self._ids, 4)
        return "c" + stamp + "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))


def _checked_version(
    name: str,
    given: str | None,
    deploy: dict[str, Any],
    expected: bool,
    uploaded: set[str],
) -> str | None:
    """The version a finalize names, after checking it was uploaded to this deploy."""
    deploy_type = deploy["type"]
    url_field = "bundleUploadUrl" if deploy_type == "BUNDLE" else "dagsUploadUrl"
    if not given:
        if expected:
            raise ApiProblem(
                400,
                f"{name} is required to finalize a {deploy_type} deploy: upload to the "
                f"deploy's {url_field} and pass the upload's x-ms-version-id",
            )
        return None
    if not expected:
        where = ""
        if deploy_type in DAG_TYPES and not deploy["isDagDeployEnabled"]:
            where = " on a Deployment with DAG deploys disabled"
        raise ApiProblem(400, f"{deploy_type} deploys{where} take no {name}")
    if given not in uploaded:
        raise ApiProblem(400, f"{name} {given!r} was not uploaded to this deploy's {url_field}")
    return given


def _base36(number: int, width: int) -> str:
    digits = ""
    while number:
        number, digit = divmod(number, 36)
        digits = _ID_ALPHABET[digit] + digits
    return digits.rjust(width, "0")[-width:]
