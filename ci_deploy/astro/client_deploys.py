"""The deploy operations of the Astro API client: list, create, get, finalize, roll back."""

from __future__ import annotations

from ci_deploy.astro import wire as models
from ci_deploy.astro.client_core import Operations
from ci_deploy.http import API_GET, API_POST

__all__ = ["DeployCalls"]


class DeployCalls(Operations):
    """A Deployment's deploys."""

    def list_deploys(self, deployment_id: str) -> list[models.Deploy]:
        """Every deploy of a Deployment (ListDeploys, all pages), oldest first."""
        call = self._call(
            "ListDeploys",
            f"List deploys of Deployment '{deployment_id}'",
            "deployment.deploys.get",
            API_GET,
            deployment_id,
        )
        found = self._session.collect(
            call,
            self._deploys_path(deployment_id),
            models.DeploysPage,
            lambda page: (page.deploys, page.totalCount),
            lambda deploy: deploy.id,
        )
        return sorted(found, key=lambda deploy: deploy.order)

    def create_deploy(
        self, deployment_id: str, request: models.CreateDeployRequest
    ) -> models.Deploy:
        """Start a deploy (CreateDeploy); the answer holds the upload URL.

        Retried only when the API provably did not process the request (429, 503, no
        connection). After an ambiguous failure (no answer once the request went out, or
        HTTP 500/502/504) this raises :class:`~ci_deploy.errors.ApiAmbiguousError` and does
        not retry by itself: a deploy may have been created, so the caller reads the deploy
        history first and only then creates again if it has to.
        """
        call = self._call(
            "CreateDeploy",
            f"Create deploy on Deployment '{deployment_id}'",
            "deployment.deploys.create",
            API_POST,
            deployment_id,
        )
        path = self._deploys_path(deployment_id)
        return self._session.request(call, "POST", path, models.Deploy, body=request)

    def get_deploy(self, deployment_id: str, deploy_id: str) -> models.Deploy:
        """Read one deploy (GetDeploy)."""
        call = self._call(
            "GetDeploy",
            f"Get deploy '{deploy_id}' of Deployment '{deployment_id}'",
            "deployment.deploys.get",
            API_GET,
            deployment_id,
            deploy_id,
        )
        path = self._deploy_path(deployment_id, deploy_id)
        return self._session.request(call, "GET", path, models.Deploy)

    def finalize_deploy(
        self, deployment_id: str, deploy_id: str, request: models.FinalizeDeployRequest
    ) -> models.Deploy:
        """Finalize a deploy with the uploaded version (FinalizeDeploy)."""
        call = self._call(
            "FinalizeDeploy",
            f"Finalize deploy '{deploy_id}' on Deployment '{deployment_id}'",
            "deployment.deploys.update",
            API_POST,
            deployment_id,
            deploy_id,
        )
        path = self._deploy_path(deployment_id, deploy_id) + "/finalize"
        return self._session.request(call, "POST", path, models.Deploy, body=request)

    def rollback_deploy(
        self, deployment_id: str, deploy_id: str, request: models.RollbackRequest
    ) -> models.Deploy:
        """Roll the Deployment back to an earlier deploy (DeployRollback)."""
        call = self._call(
            "DeployRollback",
            f"Roll back Deployment '{deployment_id}' to deploy '{deploy_id}'",
            "deployment.deploys.update",
            API_POST,
            deployment_id,
            deploy_id,
        )
        path = self._deploy_path(deployment_id, deploy_id) + "/rollback"
        return self._session.request(call, "POST", path, models.Deploy, body=request)
