"""A preview Deployment's create body, made from its template Deployment (pure).

The template's settings are copied (type, workspace, cluster or cloud provider and region,
executor, runtime version, scheduler size, worker queues, task pod and quota defaults,
non-secret environment variables); the preview is a development Deployment (it can
hibernate) without high availability. Secret variables cannot be read back from the API:
their values come from the ``preview-env`` input, set as secrets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ci_deploy.astro.wire import (
    CreateDeploymentRequest,
    Deployment,
    EnvironmentVariableRequest,
)
from ci_deploy.errors import DeployRejectedError

DEFAULT_MACHINE = "A5"
"""The Astro machine of a template's worker queue that does not say which it has."""
_QUEUED_EXECUTORS = frozenset({"CELERY", "ASTRO"})


def secret_keys(template: Deployment) -> tuple[str, ...]:
    """The names of the template's secret environment variables."""
    return tuple(v.key for v in template.environmentVariables or () if v.isSecret)


def create_request(
    template: Deployment, name: str, description: str, secrets: Mapping[str, str]
) -> CreateDeploymentRequest:
    """The CreateDeployment body of a preview of ``template``; ``secrets`` by key.

    Raises DeployRejectedError for a template ci-deploy cannot copy (a hybrid Deployment).
    """
    kind = (template.type or "STANDARD").upper()
    if kind not in ("STANDARD", "DEDICATED"):
        raise DeployRejectedError(
            f"The template Deployment '{template.name}' ({template.id}) is a {kind} "
            "Deployment; ci-deploy makes previews of Astro Hosted (STANDARD or DEDICATED) "
            "Deployments only. Use a hosted Deployment as the template.",
            title="Template cannot be copied",
        )
    variables = [
        EnvironmentVariableRequest(key=v.key, isSecret=False, value=v.value or "")
        for v in template.environmentVariables or ()
        if not v.isSecret and v.key not in secrets
    ]
    variables += [
        EnvironmentVariableRequest(key=key, isSecret=True, value=value)
        for key, value in secrets.items()
    ]
    body: dict[str, Any] = {
        "type": kind,
        "name": name,
        "workspaceId": template.workspaceId,
        "description": description,
        "astroRuntimeVersion": template.astroRuntimeVersion or template.runtimeVersion or None,
        "executor": template.executor,
        "schedulerSize": template.schedulerSize,
        "isDevelopmentMode": True,
        "isHighAvailability": False,
        "isDagDeployEnabled": template.isDagDeployEnabled,
        "isCicdEnforced": template.isCicdEnforced,
        "defaultTaskPodCpu": template.defaultTaskPodCpu,
        "defaultTaskPodMemory": template.defaultTaskPodMemory,
        "resourceQuotaCpu": template.resourceQuotaCpu,
        "resourceQuotaMemory": template.resourceQuotaMemory,
        "workerQueues": _queues(template),
        "environmentVariables": variables or None,
    }
    if template.clusterId:
        body["clusterId"] = template.clusterId
    else:
        body["cloudProvider"] = template.cloudProvider
        body["region"] = template.region
    try:
        return CreateDeploymentRequest.model_validate(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors(include_input=False)
        )
        raise DeployRejectedError(
            f"A preview of the template Deployment '{template.name}' ({template.id}) cannot "
            f"be made from its settings: {problems}. Check the template in the Astro UI.",
            title="Template cannot be copied",
        ) from None


def _queues(template: Deployment) -> list[dict[str, Any]] | None:
    if template.executor not in _QUEUED_EXECUTORS or not template.workerQueues:
        return None
    return [
        {
            "name": queue.name,
            "isDefault": queue.isDefault,
            "astroMachine": queue.astroMachine or DEFAULT_MACHINE,
            "minWorkerCount": queue.minWorkerCount,
            "maxWorkerCount": max(queue.maxWorkerCount, 1),
            "workerConcurrency": max(queue.workerConcurrency, 1),
            "podEphemeralStorage": queue.podEphemeralStorage,
        }
        for queue in template.workerQueues
    ]
