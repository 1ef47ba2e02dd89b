"""A preview's CreateDeployment body, made from its template (pure), and the Astro platform's
preview operations against the emulator (lost answers included)."""

from __future__ import annotations

from typing import Any

import pytest

from ci_deploy.astro.preview import create_request, secret_keys
from ci_deploy.astro.wire import Deployment
from ci_deploy.errors import DeployRejectedError
from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.localrun import pull_request_event
from tests.actionrun import Step
from tests.gitrepo import GitRepo
from tests.inprocess import run_action


def template(**fields: Any) -> Deployment:
    base: dict[str, Any] = {
        "id": "tmpl",
        "name": "analytics",
        "workspaceId": "ws-1",
        "type": "STANDARD",
        "cloudProvider": "GCP",
        "region": "us-east4",
        "executor": "CELERY",
        "runtimeVersion": "3.0-1",
        "astroRuntimeVersion": "3.0-1",
        "schedulerSize": "LARGE",
        "isHighAvailability": True,
        "isDevelopmentMode": False,
        "isDagDeployEnabled": True,
        "resourceQuotaCpu": "10",
        "resourceQuotaMemory": "20Gi",
        "workerQueues": [
            {"id": "q", "name": "default", "isDefault": True, "astroMachine": "A20",
             "minWorkerCount": 0, "maxWorkerCount": 3, "workerConcurrency": 16,
             "podCpu": "4", "podMemory": "8Gi"},
        ],
        "environmentVariables": [
            {"key": "PLAIN", "isSecret": False, "value": "p"},
            {"key": "TOKEN", "isSecret": True},
        ],
    }  # fmt: skip
    return Deployment.model_validate(base | fields)


def test_the_body_copies_the_templates_settings_as_a_development_deployment() -> None:
    body = create_request(template(), "analytics PR #1 abcdef", "d [m]", {"TOKEN": "t"})
    sent = body.model_dump(exclude_none=True)
    assert sent["type"] == "STANDARD"
    assert (sent["cloudProvider"], sent["region"], sent["workspaceId"]) == (
        "GCP",
        "us-east4",
        "ws-1",
    )
    assert (sent["executor"], sent["schedulerSize"], sent["astroRuntimeVersion"]) == (
        "CELERY",
        "LARGE",
        "3.0-1",
    )
    assert (sent["isDevelopmentMode"], sent["isHighAvailability"]) == (True, False)
    assert (sent["resourceQuotaCpu"], sent["resourceQuotaMemory"]) == ("10", "20Gi")
    assert sent["workerQueues"] == [
        {"name": "default", "isDefault": True, "astroMachine": "A20", "minWorkerCount": 0,
         "maxWorkerCount": 3, "workerConcurrency": 16},
    ]  # fmt: skip
    assert sent["environmentVariables"] == [
        {"key": "PLAIN", "isSecret": False, "value": "p"},
        {"key": "TOKEN", "isSecret": True, "value": "t"},
    ]
    assert "'t'" not in repr(body), "a secret value is not in the body's repr"


def test_a_dedicated_template_is_copied_onto_its_cluster() -> None:
    body = create_request(template(type="DEDICATED", clusterId="c-1"), "n", "d", {})
    sent = body.model_dump(exclude_none=True)
    assert sent["clusterId"] == "c-1"
    assert "cloudProvider" not in sent and "region" not in sent


def test_a_kubernetes_executor_template_has_no_worker_queues() -> None:
    body = create_request(template(executor="KUBERNETES"), "n", "d", {})
    assert body.workerQueues is None


def test_secret_keys_are_the_secret_variables_names() -> None:
    assert secret_keys(template()) == ("TOKEN",)


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"type": "HYBRID"}, "is a HYBRID Deployment"),
        ({"cloudProvider": None, "region": None}, "needs cloudProvider and region"),
    ],
)
def test_a_template_that_cannot_be_copied_is_a_clear_error(
    fields: dict[str, Any], said: str
) -> None:
    with pytest.raises(DeployRejectedError) as raised:
        create_request(template(**fields), "n", "d", {"TOKEN": "hunter2"})
    assert said in raised.value.message
    assert "hunter2" not in raised.value.message


# --- the Astro platform's previews, in process against the emulator -----------------------------


def pr_run(repo: GitRepo, emulator: Emulator, action: str) -> Step:
    event = pull_request_event(4, repo.head(), repo.head(), action=action)
    inputs = {
        "action": "preview-delete" if action == "closed" else "preview",
        "deploy-type": "dags-only",
    }
    return run_action(repo, emulator, inputs, event_name="pull_request", event=event)


def previews(emulator: Emulator) -> list[dict[str, Any]]:
    return [d for d in emulator.deployments() if d["id"] != emulator.deployment_id]


def test_a_lost_create_answer_is_found_by_the_marker_and_not_made_twice(
    repo: GitRepo, astro: Emulator
) -> None:
    astro.faults.add_drop("POST", r"/deployments$")

    step = pr_run(repo, astro, "opened")

    assert step.result.returncode == 0, step.log
    assert "It was: Deployment" in step.log
    [made] = previews(astro)
    assert step.outputs["preview-deployment-id"] == made["id"]
    assert step.outputs["deploy-type"] == "DAG_ONLY"
    assert "not made yet" in step.log


def test_a_lost_delete_answer_is_read_back(repo: GitRepo, astro: Emulator) -> None:
    assert pr_run(repo, astro, "opened").result.returncode == 0
    astro.faults.add_drop("DELETE", r"/deployments/[^/]+$")

    step = pr_run(repo, astro, "closed")

    assert step.result.returncode == 0, step.log
    assert previews(astro) == []
    assert step.outputs["status"] == "deleted"
