"""The emulator's in-memory Astro: Deployments, their deploys, upload targets and rollouts.

The rules a client can trip over live here, one place for the API and the blob host:
which deploy types a Deployment takes, which version a finalize may name, what a
rollback restores. Rollouts need no timers: a Deployment's rollout is settled from the
clock whenever the Deployment is read.

Not thread-safe by itself: the server and the :class:`~ci_deploy.emulator.Emulator`
hold :attr:`AstroState.lock` around every call.
"""

from __future__ import annotations

import copy
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ci_deploy import models
from ci_deploy.emulator.wire import ApiProblem, BlobProblem

WORKSPACE_ID = "emulator-workspace"
RUNTIME_VERSION = "3.0-1"
AIRFLOW_VERSION = "3.0.1"
SEED_COMMIT_SHA = "5eed0000c0ffee0000000000000000000000a11f"
SUBJECT = {"id": "emulator-api-token", "subjectType": "SERVICEKEY", "apiTokenName": "emulator"}

DAG_TYPES = frozenset({"DAG_ONLY", "IMAGE_AND_DAG"})
IMAGE_TYPES = frozenset({"IMAGE_ONLY", "IMAGE_AND_DAG"})

_ID_ALPHABET = string.digits + string.ascii_lowercase


def iso_seconds(epoch_seconds: float) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, the API's timestamp format."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


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
    """A Deployment moving to a deploy's code; settles ``rollout_seconds`` after ``started``."""

    deploy_id: str
    started: float
    dag_version: str | None
    image_tag: str | None
    healthy: bool


@dataclass
class DeployRecord:
    data: dict[str, Any]
    upload: UploadTarget | None = None


@dataclass
class DeploymentRecord:
    data: dict[str, Any]
    deploys: dict[str, DeployRecord] = field(default_factory=dict)  # creation order
    rollout: Rollout | None = None


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
    ) -> None:
        self.lock = threading.RLock()
        self.base_url = base_url
        self.organization_id = organization_id
        self.rollout_seconds = rollout_seconds
        self.unhealthy_after_finalize = False
        self.blobs: dict[str, bytes] = {}
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
        """Add a Deployment with plausible values for every field; ``fields`` override them."""
        if deployment_id in self._deployments:
            raise ValueError(f"Deployment {deployment_id!r} exists already")
        data = self._deployment_defaults(deployment_id)
        if fields.get("isDagDeployEnabled") is False:
            data["dagTarballVersion"] = data["desiredDagTarballVersion"] = ""
        data.update(copy.deepcopy(fields))
        self._deployments[deployment_id] = DeploymentRecord(data)

    def update_deployment(self, deployment_id: str, **fields: Any) -> None:
        """Overwrite fields of a Deployment (after settling its rollout)."""
        record = self._record(deployment_id)
        record.data.update(copy.deepcopy(fields))

    def seed_history(self, deployment_id: str) -> None:
        """Give a Deployment one earlier DAG-only deploy, the one it runs now."""
        record = self._record(deployment_id)
        data = self._new_deploy(record, "DAG_ONLY", self._started - 3600).data
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
        return copy.deepcopy(self._deployment(organization_id, deployment_id).data)

    def deployment_by_id(self, deployment_id: str) -> dict[str, Any]:
        """The Deployment as GET returns it; KeyError when unknown."""
        return copy.deepcopy(self._record(deployment_id).data)

    def has_deployment(self, deployment_id: str) -> bool:
        return deployment_id in self._deployments

    # -- Deploys -------------------------------------------------------------------

    def deploys_json(self, deployment_id: str) -> list[dict[str, Any]]:
        """A Deployment's deploys in creation order."""
        return [copy.deepcopy(d.data) for d in self._record(deployment_id).deploys.values()]

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
    ) -> dict[str, Any]:
        """Mark the deploy DEPLOYED and start the Deployment's rollout to it."""
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
        data.update(status="DEPLOYED", updatedAt=self._now(), updatedBySubject=SUBJECT)
        if dag_version:
            data["dagTarballVersion"] = dag_version
        image_tag = data["imageTag"] if deploy_type in IMAGE_TYPES else None
        self._start_rollout(deployment, deploy_id, dag_version, image_tag)
        return copy.deepcopy(data)

    def rollback_deploy(
        self,
        organization_id: str,
        deployment_id: str,
        deploy_id: str,
        request: models.RollbackRequest,
    ) -> dict[str, Any]:
        """A new DEPLOYED deploy that brings back deploy ``deploy_id``'s code and image."""
        deployment = self._deployment(organization_id, deployment_id)
        target = self._deploy(deployment, deploy_id).data
        if target["status"] != "DEPLOYED":
            raise ApiProblem(
                400,
                f"deploy {deploy_id} is {target['status']}: only DEPLOYED deploys can be "
                "rolled back to",
            )
        active = next(
            d.data for d in reversed(deployment.deploys.values()) if d.data["status"] == "DEPLOYED"
        )
        data = self._new_deploy(deployment, target["type"], self._next_created_at()).data
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
        self._start_rollout(
            deployment, data["id"], target.get("dagTarballVersion") or None, target["imageTag"]
        )
        return copy.deepcopy(data)

    # -- Uploads -------------------------------------------------------------------

    def upload_target(self, blob_path: str) -> UploadTarget | None:
        """The upload target at ``/blob/<container>/<name>``, if one was issued."""
        return self._uploads.get(blob_path)

    def store_upload(
        self, target: UploadTarget, data: bytes, committed: dict[str, bytes] | None = None
    ) -> str:
        """Commit a blob (Put Blob or Put Block List) and return its new version id."""
        version = self._versions.next()
        target.versions.add(version)
        target.staged.clear()
        target.committed = committed or {}
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
    ) -> None:
        pending = deployment.rollout  # superseded: the new rollout also brings what it would
        if pending is not None:
            dag_version = dag_version or pending.dag_version
            image_tag = image_tag or pending.image_tag
        deployment.data.update(
            status="DEPLOYING",
            statusReason=f"Rolling out deploy {deploy_id}",
            updatedAt=self._now(),
        )
        if dag_version:
            deployment.data["desiredDagTarballVersion"] = dag_version
        deployment.rollout = Rollout(
            deploy_id, self._clock(), dag_version, image_tag, not self.unhealthy_after_finalize
        )

    def _settle(self, deployment: DeploymentRecord) -> None:
        """End the Deployment's rollout if ``rollout_seconds`` have passed since it began."""
        rollout = deployment.rollout
        if rollout is None or self._clock() - rollout.started < self.rollout_seconds:
            return
        deployment.rollout = None
        data = deployment.data
        data["updatedAt"] = self._now()
        if not rollout.healthy:
            data.update(
                status="UNHEALTHY",
                statusReason=f"Deploy {rollout.deploy_id} did not become healthy: the "
                "scheduler failed to start (emulated by unhealthy_after_finalize)",
            )
            return
        data.update(status="HEALTHY", statusReason="Successfully Deployed")
        if rollout.dag_version:
            data["dagTarballVersion"] = rollout.dag_version
        if rollout.image_tag:
            data["imageTag"] = data["imageVersion"] = rollout.image_tag

    def _deployment_defaults(self, deployment_id: str) -> dict[str, Any]:
        host = self.base_url.split("://", 1)[1]
        airflow = f"{host}/airflow/{deployment_id}"
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
            "runtimeVersion": RUNTIME_VERSION,
            "astroRuntimeVersion": RUNTIME_VERSION,
            "airflowVersion": AIRFLOW_VERSION,
            "dagTarballVersion": version,
            "desiredDagTarballVersion": version,
            "imageRepository": f"{host}/{deployment_id}",
            "imageTag": "deploy-0",
            "imageVersion": "deploy-0",
            "uiUrl": f"{self.base_url}/ui/deployments/{deployment_id}",
            "apiUrl": f"{self.base_url}/airflow/{deployment_id}/api/v2",
            "webServerUrl": airflow,
            "webServerIngressHostname": airflow,
            "webServerAirflowApiUrl": f"{airflow}/api/v2",
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
