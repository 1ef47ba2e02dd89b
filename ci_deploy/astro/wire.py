"""The Astro API's wire format, as pydantic models.

Field names are the API's camelCase names, so ``model_dump(exclude_none=True)`` is the
JSON body to send. Request models forbid unknown fields and check the spec's rules (enums,
required fields, 500-character descriptions, the GITHUB/GENERIC git rules); the emulator
validates incoming bodies with the same models. Response models keep only what ci-deploy
reads and ignore the rest, so new API fields never break a deploy. Each model's validator
is built on first use (``defer_build``): a run builds only the models it sends or reads.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ci_deploy.astro.limits import DESCRIPTION_MAX as DESCRIPTION_MAX  # re-exported

DeployType = Literal["DAG_ONLY", "IMAGE_AND_DAG", "IMAGE_ONLY", "BUNDLE"]
GitProvider = Literal["GITHUB", "GENERIC"]

DEPLOYMENT_DESCRIPTION_MAX = 1000
"""The most characters CreateDeployment takes in a Deployment's ``description``."""
DEPLOYMENT_NAME_MAX = 500
"""The most characters CreateDeployment takes in a Deployment's ``name``."""
CloudProvider = Literal["AWS", "AZURE", "GCP"]
Executor = Literal["CELERY", "KUBERNETES", "ASTRO"]
SchedulerSize = Literal["SMALL", "MEDIUM", "LARGE", "EXTRA_LARGE"]
AstroMachine = Literal["A5", "A10", "A20", "A40", "A60", "A120", "A160"]
LOG_SOURCES: frozenset[str] = frozenset(
    {"scheduler", "triggerer", "worker", "webserver", "dag-processor", "apiserver"}
)
"""The ``sources`` GetDeploymentLogs accepts."""

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.IGNORECASE
)


def rfc3339(when: datetime) -> str:
    """``when`` in UTC as ``YYYY-MM-DDTHH:MM:SSZ`` (whole seconds, rounded down).

    Raises ValueError for a naive datetime: its time zone would be a guess.
    """
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"{when.isoformat()} has no time zone; use an aware datetime")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class GitInfo(_Request):
    """The ``git`` object of CreateDeploy: where the deployed code came from."""

    provider: GitProvider
    commitSha: str = Field(min_length=1)
    account: str | None = None
    repo: str | None = None
    remoteUrl: str | None = None
    branch: str | None = None
    commitUrl: str | None = None
    authorName: str | None = None
    authorUsername: str | None = None
    authorUrl: str | None = None
    beforeCommitSha: str | None = None
    path: str | None = None

    @model_validator(mode="after")
    def _provider_fields(self) -> GitInfo:
        if self.provider == "GITHUB":
            if not self.account or not self.repo:
                raise ValueError("provider GITHUB needs account and repo")
            if self.remoteUrl:
                raise ValueError("provider GITHUB must not have remoteUrl")
        else:
            if not self.remoteUrl:
                raise ValueError("provider GENERIC needs remoteUrl")
            if self.account or self.repo:
                raise ValueError("provider GENERIC must not have account or repo")
        return self


class CreateDeployRequest(_Request):
    type: DeployType
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)
    git: GitInfo | None = None
    bundleType: str | None = None
    bundleMountPath: str | None = None

    @model_validator(mode="after")
    def _bundle_fields(self) -> CreateDeployRequest:
        if self.type == "BUNDLE" and (not self.bundleType or not self.bundleMountPath):
            raise ValueError("type BUNDLE needs bundleType and bundleMountPath")
        return self


class FinalizeDeployRequest(_Request):
    dagTarballVersion: str | None = None
    bundleTarballVersion: str | None = None


class RollbackRequest(_Request):
    description: str | None = Field(default=None, max_length=DESCRIPTION_MAX)


class HibernationOverrideRequest(_Request):
    """The body of UpdateDeploymentHibernationOverride (OverrideDeploymentHibernationBody).

    ``isHibernating=False`` wakes the Deployment; ``overrideUntil`` (RFC 3339, e.g. from
    :func:`rfc3339`) ends the override, which otherwise lasts until it is deleted.
    """

    isHibernating: bool
    overrideUntil: str | None = None

    @field_validator("overrideUntil")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not _RFC3339.fullmatch(value):
            raise ValueError("overrideUntil must be an RFC 3339 time like 2024-05-01T10:00:00Z")
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))  # a real date and time
        return value


class EnvironmentVariableRequest(_Request):
    """One environment variable of CreateDeployment (DeploymentEnvironmentVariableRequest)."""

    key: str = Field(min_length=1)
    isSecret: bool
    value: str | None = Field(default=None, repr=False)


class WorkerQueueRequest(_Request):
    """One worker queue of a hosted CreateDeployment (WorkerQueueRequest); no ``id``: new."""

    name: str = Field(min_length=1, max_length=63)
    isDefault: bool
    astroMachine: AstroMachine
    minWorkerCount: int = Field(ge=0)
    maxWorkerCount: int = Field(ge=1)
    workerConcurrency: int = Field(ge=1)
    podEphemeralStorage: str | None = None


class CreateDeploymentRequest(_Request):
    """The body of CreateDeployment for a hosted Deployment (the spec's
    CreateStandardDeploymentRequest and CreateDedicatedDeploymentRequest).

    STANDARD needs ``cloudProvider`` and ``region`` together, or a ``clusterId``;
    DEDICATED needs a ``clusterId``. Hybrid Deployments (node pools, scheduler AU) are not
    made by ci-deploy.
    """

    type: Literal["STANDARD", "DEDICATED"]
    name: str = Field(min_length=1, max_length=DEPLOYMENT_NAME_MAX)
    workspaceId: str = Field(min_length=1)
    description: str | None = Field(default=None, max_length=DEPLOYMENT_DESCRIPTION_MAX)
    astroRuntimeVersion: str | None = None
    clusterId: str | None = None
    cloudProvider: CloudProvider | None = None
    region: str | None = None
    executor: Executor | None = None
    schedulerSize: SchedulerSize | None = None
    isDevelopmentMode: bool | None = None
    isHighAvailability: bool | None = None
    isDagDeployEnabled: bool | None = None
    isCicdEnforced: bool | None = None
    defaultTaskPodCpu: str | None = None
    defaultTaskPodMemory: str | None = None
    resourceQuotaCpu: str | None = None
    resourceQuotaMemory: str | None = None
    workerQueues: list[WorkerQueueRequest] | None = Field(default=None, min_length=1)
    environmentVariables: list[EnvironmentVariableRequest] | None = None

    @model_validator(mode="after")
    def _where(self) -> CreateDeploymentRequest:
        if (self.cloudProvider is None) != (self.region is None):
            raise ValueError("cloudProvider and region go together")
        if self.type == "DEDICATED" and not self.clusterId:
            raise ValueError("type DEDICATED needs clusterId")
        if self.type == "STANDARD" and not self.clusterId and self.cloudProvider is None:
            raise ValueError("type STANDARD needs cloudProvider and region, or clusterId")
        return self


class HibernationOverride(_Response):
    """A Deployment's hibernation override (DeploymentHibernationOverride)."""

    isActive: bool | None = None
    isHibernating: bool | None = None
    overrideUntil: str | None = None


class HibernationSpec(_Response):
    override: HibernationOverride | None = None


class ScalingSpec(_Response):
    hibernationSpec: HibernationSpec | None = None


class HibernationStatus(_Response):
    isHibernating: bool = False


class ScalingStatus(_Response):
    hibernationStatus: HibernationStatus | None = None


class EnvironmentVariable(_Response):
    """A Deployment's environment variable; the API never returns a secret one's value."""

    key: str
    isSecret: bool = False
    value: str | None = Field(default=None, repr=False)


class WorkerQueue(_Response):
    """A Deployment's worker queue, as read."""

    name: str
    isDefault: bool = False
    astroMachine: str | None = None
    minWorkerCount: int = 0
    maxWorkerCount: int = 1
    workerConcurrency: int = 1
    podEphemeralStorage: str | None = None


class Deployment(_Response):
    """What ci-deploy reads of a Deployment."""

    id: str
    name: str = ""
    description: str | None = None
    organizationId: str = ""
    workspaceId: str = ""
    status: str = "UNKNOWN"
    statusReason: str | None = None
    isDagDeployEnabled: bool = False
    isDevelopmentMode: bool | None = None
    dagTarballVersion: str | None = None
    desiredDagTarballVersion: str | None = None
    imageRepository: str = ""
    imageTag: str = ""
    runtimeVersion: str = ""
    uiUrl: str = ""
    airflowVersion: str = ""
    """"2.10.5", "3.0.1"; "NA" when the API does not know."""
    apiUrl: str = ""
    """Airflow's REST API (``.../api/v1`` or ``.../api/v2``); the verification gates ask it."""
    webServerUrl: str = ""
    """The Airflow UI, often without a scheme; the links to smoke runs start here."""
    type: str | None = None
    astroRuntimeVersion: str = ""
    clusterId: str | None = None
    cloudProvider: str | None = None
    region: str | None = None
    executor: str | None = None
    schedulerSize: str | None = None
    isHighAvailability: bool | None = None
    isCicdEnforced: bool | None = None
    defaultTaskPodCpu: str | None = None
    defaultTaskPodMemory: str | None = None
    resourceQuotaCpu: str | None = None
    resourceQuotaMemory: str | None = None
    workerQueues: list[WorkerQueue] | None = None
    environmentVariables: list[EnvironmentVariable] | None = None
    scalingSpec: ScalingSpec | None = None
    scalingStatus: ScalingStatus | None = None

    @property
    def hibernation_override(self) -> HibernationOverride | None:
        """``scalingSpec.hibernationSpec.override``, as the API sent it; None without one."""
        spec = self.scalingSpec.hibernationSpec if self.scalingSpec else None
        return spec.override if spec else None

    @property
    def is_hibernating(self) -> bool:
        """Whether the Deployment hibernates now.

        True when ``scalingStatus.hibernationStatus.isHibernating`` says so or the
        ``status`` is ``HIBERNATING``.
        """
        status = self.scalingStatus.hibernationStatus if self.scalingStatus else None
        return (status is not None and status.isHibernating) or self.status == "HIBERNATING"


class DeployGit(_Response):
    provider: str = ""
    commitSha: str = ""
    account: str | None = None
    repo: str | None = None
    branch: str | None = None
    commitUrl: str | None = None
    beforeCommitSha: str | None = None
    path: str | None = None


class Deploy(_Response):
    """A deploy as the API returns it (create, finalize, get, list, rollback)."""

    id: str
    deploymentId: str = ""
    type: str = ""
    status: str = ""
    createdAt: str = ""
    description: str | None = None
    dagsUploadUrl: str | None = Field(default=None, repr=False)
    bundleUploadUrl: str | None = Field(default=None, repr=False)
    dagTarballVersion: str | None = None
    imageRepository: str = ""
    imageTag: str = ""
    isDagDeployEnabled: bool = False
    rollbackFromId: str | None = None
    git: DeployGit | None = None

    @property
    def created(self) -> datetime:
        """``createdAt`` as a time (UTC when it has no zone); an unreadable one sorts first."""
        try:
            when = datetime.fromisoformat(self.createdAt)
        except ValueError:
            return datetime.min.replace(tzinfo=UTC)
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)

    @property
    def order(self) -> tuple[datetime, str]:
        """The history's order: creation time, then id."""
        return self.created, self.id


class DeploysPage(_Response):
    deploys: list[Deploy]
    offset: int
    limit: int
    totalCount: int


class DeploymentsPage(_Response):
    """One page of ListDeployments (DeploymentsPaginated)."""

    deployments: list[Deployment]
    offset: int
    limit: int
    totalCount: int


class LogEntry(_Response):
    """One log line (DeploymentLogEntry); ``timestamp`` is a number, as in the spec."""

    raw: str
    source: str = ""
    timestamp: float = 0.0


class DeploymentLogs(_Response):
    """One page of GetDeploymentLogs (DeploymentLog).

    Later pages are asked for with the same ``searchId`` and the next ``offset``.
    """

    results: list[LogEntry]
    limit: int = 0
    offset: int = 0
    resultCount: int = 0
    maxNumResults: int = 0
    searchId: str | None = None
