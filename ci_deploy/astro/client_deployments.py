"""The Deployment operations of the Astro API client: read, list, create, delete, hibernation
override."""

from __future__ import annotations

from collections.abc import Sequence

from ci_deploy.astro import wire as models
from ci_deploy.astro.client_core import Operations, deployments_query
from ci_deploy.astro.client_errors import CHECK_HIBERNATION, Call
from ci_deploy.http import API_GET, API_POST

__all__ = ["DeploymentCalls"]


class DeploymentCalls(Operations):
    """Deployments: get, list, create, delete, and set or delete the hibernation override."""

    def get_deployment(self, deployment_id: str) -> models.Deployment:
        """Read a Deployment (GetDeployment)."""
        call = self._call(
            "GetDeployment",
            f"Get Deployment '{deployment_id}'",
            "deployment.get",
            API_GET,
            deployment_id,
        )
        path = self._deployment_path(deployment_id)
        return self._session.request(call, "GET", path, models.Deployment)

    def list_deployments(
        self, *, names: Sequence[str] = (), workspace_id: str | None = None
    ) -> list[models.Deployment]:
        """The organization's Deployments (ListDeployments, all pages).

        In the API's order; the pages are asked for sorted by creation time, oldest first,
        so offset paging stays stable. ``names`` (exact names, repeated ``names``
        parameters) and ``workspace_id`` (``workspaceIds``) filter on the server, and again
        here, so an API that ignores a filter never adds a Deployment that does not match.
        """
        wanted = (names,) if isinstance(names, str) else tuple(dict.fromkeys(names))
        workspace = workspace_id or None
        org = self._session.organization_id
        call = Call(
            "ListDeployments",
            f"List Deployments of organization '{org}'",
            "organization.deployments.get",
            API_GET,
            not_found=f"organization '{org}'",
            ids="organization id",
            tokens="a Workspace or Organization API token",
        )
        found = self._session.collect(
            call,
            self._deployments_path(),
            models.DeploymentsPage,
            lambda page: (page.deployments, page.totalCount),
            lambda deployment: deployment.id,
            params=deployments_query(wanted, workspace),
        )
        return [
            deployment
            for deployment in found
            if (not wanted or deployment.name in wanted)
            and (workspace is None or deployment.workspaceId == workspace)
        ]

    def create_deployment(self, request: models.CreateDeploymentRequest) -> models.Deployment:
        """Create a Deployment (CreateDeployment); it starts ``CREATING``.

        Retried only when provably not processed; after an ambiguous failure this raises
        :class:`~ci_deploy.errors.ApiAmbiguousError`, and the caller looks for it first.
        """
        org = self._session.organization_id
        call = Call(
            "CreateDeployment",
            f"Create Deployment '{request.name}' in workspace '{request.workspaceId}'",
            "workspace.deployments.create",
            API_POST,
            not_found=f"workspace '{request.workspaceId}' in organization '{org}'",
            ids="organization and workspace ids",
            tokens="a Workspace or Organization API token",
            check="check the workspace's Deployments in the Astro UI before running the job again.",
        )
        return self._session.request(
            call, "POST", self._deployments_path(), models.Deployment, body=request
        )

    def delete_deployment(self, deployment_id: str) -> None:
        """Delete a Deployment (DeleteDeployment); the API answers 204 No Content."""
        call = self._call(
            "DeleteDeployment",
            f"Delete Deployment '{deployment_id}'",
            "deployment.delete",
            API_POST,
            deployment_id,
            check="check the workspace's Deployments in the Astro UI before running the job again.",
        )
        self._session.send(call, "DELETE", self._deployment_path(deployment_id))

    def set_hibernation_override(
        self, deployment_id: str, request: models.HibernationOverrideRequest
    ) -> models.HibernationOverride:
        """Set the Deployment's hibernation override (UpdateDeploymentHibernationOverride).

        ``isHibernating=False`` wakes a hibernating development Deployment. Retried like
        every write: only when provably not processed.
        """
        call = self._call(
            "UpdateDeploymentHibernationOverride",
            f"Set the hibernation override of Deployment '{deployment_id}'",
            "deployment.update",
            API_POST,
            deployment_id,
            check=CHECK_HIBERNATION,
        )
        path = self._deployment_path(deployment_id) + "/hibernation-override"
        return self._session.request(call, "POST", path, models.HibernationOverride, body=request)

    def delete_hibernation_override(self, deployment_id: str) -> None:
        """Remove the Deployment's hibernation override (DeleteDeploymentHibernationOverride).

        The hibernation schedule applies again. The API answers 204 No Content.
        """
        call = self._call(
            "DeleteDeploymentHibernationOverride",
            f"Delete the hibernation override of Deployment '{deployment_id}'",
            "deployment.update",
            API_POST,
            deployment_id,
            check=CHECK_HIBERNATION,
        )
        path = self._deployment_path(deployment_id) + "/hibernation-override"
        self._session.send(call, "DELETE", path)
