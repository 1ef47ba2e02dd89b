"""The Astro API's wire format, as pydantic models.

Field names are the API's camelCase names, so ``model_dump(exclude_none=True)`` is the
JSON body to send. Request models forbid unknown fields and check the spec's rules (enums,
required fields, 500-character descriptions, the GITHUB/GENERIC git rules); the emulator
validates incoming bodies with the same models. Response models keep only what ci-deploy
reads and ignore the rest, so new API fields never break a deploy.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DeployType = Literal["DAG_ONLY", "IMAGE_AND_DAG", "IMAGE_ONLY", "BUNDLE"]
GitProvider = Literal["GITHUB", "GENERIC"]

DESCRIPTION_MAX = 500
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
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


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


class Deployment(_Response):
    """What ci-deploy reads of a Deployment."""

    id: str
    name: str = ""
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
    type: str | None = None
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
