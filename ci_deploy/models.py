"""The Astro API's wire format, as pydantic models.

Field names are the API's camelCase names, so ``model_dump(exclude_none=True)`` is the
JSON body to send. Request models forbid unknown fields and check the spec's rules (enums,
required fields, 500-character descriptions, the GITHUB/GENERIC git rules); the emulator
validates incoming bodies with the same models. Response models keep only what ci-deploy
reads and ignore the rest, so new API fields never break a deploy.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DeployType = Literal["DAG_ONLY", "IMAGE_AND_DAG", "IMAGE_ONLY", "BUNDLE"]
DeployStatus = Literal["INITIALIZED", "DEPLOYED", "FAILED"]
DeploymentStatus = Literal[
    "CREATING", "DEPLOYING", "HEALTHY", "UNHEALTHY", "UNKNOWN", "HIBERNATING"
]
GitProvider = Literal["GITHUB", "GENERIC"]

DESCRIPTION_MAX = 500


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


class DeploysPage(_Response):
    deploys: list[Deploy]
    offset: int
    limit: int
    totalCount: int
