"""Image deploys end to end on real components: the emulator hands out an ``imageRepository``
on the real registry ``make test`` starts, and the real entrypoint builds the project's
``FROM scratch`` image on the real Docker engine and pushes it there.

The registry takes user ``cli`` with a token as password, as Astro's takes the API token:
the emulator accepts that token as an API token too, so the action pushes with the token it
calls the API with. Before it accepts a finalize, the emulator asks the registry for the
pushed manifest with the same credentials (``Emulator(registry=...)``).
"""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ci_deploy.image import RUNTIME_LABEL
from ci_deploy_testkit.emulator import Emulator
from tests.actionrun import (
    Step,
    api_posts,
    assert_requests_match_spec,
    example_repo,
    run_push,
)
from tests.gitrepo import GitRepo
from tests.realservices import RealRegistry
from tests.test_cli import CI_DEPLOY, local_environment

RUNTIME = "12.1.0"


@pytest.fixture
def emulator(real_registry: RealRegistry) -> Iterator[Emulator]:
    """The emulator with its Deployments' images on the real registry; the registry's
    token is an API token it accepts. Every API request must match the spec."""
    with Emulator(rollout_seconds=0, registry=real_registry.host) as emu:
        emu.tokens.add(real_registry.token)
        yield emu
    assert_requests_match_spec(emu)


@pytest.fixture
def deployment_id(emulator: Emulator) -> str:
    """A Deployment of its own, so no other test's image is in its repository."""
    deployment_id = f"img{uuid.uuid4().hex[:12]}"
    emulator.add_deployment(deployment_id)
    return deployment_id


def scratch_repo(path: Path) -> GitRepo:
    """The example project with a Dockerfile a real engine builds here (``FROM scratch``,
    the runtime label, the project's files), committed."""
    repo = example_repo(path)
    repo.write(
        "Dockerfile",
        f"FROM scratch\nLABEL {RUNTIME_LABEL}={RUNTIME}\nCOPY . /usr/local/airflow/\n",
    )
    repo.commit("Build FROM scratch")
    return repo


def deploy_a_requirements_change(
    tmp_path: Path, emulator: Emulator, deployment_id: str, token: str, docker_host: str
) -> Step:
    """Run the action with ``token`` on the real engine for a push that changes
    requirements.txt in the scratch project (an IMAGE_AND_DAG deploy)."""
    repo = scratch_repo(tmp_path / "workspace")
    before = repo.head()
    repo.write("requirements.txt", "apache-airflow-providers-http==5.3.0\npandas==2.2.3\n")
    repo.commit("Add pandas")
    return run_push(
        repo,
        emulator,
        before,
        {"deployment-id": deployment_id, "organization-id": emulator.organization_id},
        token=token,
        env={"DOCKER_HOST": docker_host},
    )


def create_image_deploy(emulator: Emulator, deployment_id: str, token: str) -> dict[str, str]:
    response = httpx.post(
        f"{emulator.api_url}/organizations/{emulator.organization_id}/deployments/"
        f"{deployment_id}/deploys",
        json={"type": "IMAGE_ONLY"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    data: dict[str, str] = response.json()
    return data


def finalize(emulator: Emulator, deployment_id: str, deploy_id: str, token: str) -> httpx.Response:
    return httpx.post(
        f"{emulator.api_url}/organizations/{emulator.organization_id}/deployments/"
        f"{deployment_id}/deploys/{deploy_id}/finalize",
        json={},
        headers={"Authorization": f"Bearer {token}"},
    )


# --- the emulator against the real registry --------------------------------------------------


def test_image_repository_is_on_the_real_registry(
    emulator: Emulator, deployment_id: str, real_registry: RealRegistry
) -> None:
    deploy = create_image_deploy(emulator, deployment_id, real_registry.token)
    assert deploy["imageRepository"] == (
        f"{real_registry.host}/{emulator.organization_id}/{deployment_id}"
    )


def test_a_finalize_without_the_image_in_the_registry_is_refused(
    emulator: Emulator, deployment_id: str, real_registry: RealRegistry
) -> None:
    deploy = create_image_deploy(emulator, deployment_id, real_registry.token)
    image = f"{deploy['imageRepository']}:{deploy['imageTag']}"

    answer = finalize(emulator, deployment_id, deploy["id"], real_registry.token)

    assert answer.status_code == 400
    message = answer.json()["message"]
    assert message.startswith(f"image {image} was not pushed (the registry has no such image")
    assert "404" in message
    assert emulator.deploys(deployment_id)[-1]["status"] == "INITIALIZED"
    assert emulator.registry_digests == {}


def test_a_finalize_whose_token_the_registry_refuses_is_refused(
    emulator: Emulator, deployment_id: str, real_registry: RealRegistry
) -> None:
    """A token the API takes but the registry does not: the finalize says so, without it."""
    other = "another-api-token-" + uuid.uuid4().hex
    emulator.tokens.add(other)
    deploy = create_image_deploy(emulator, deployment_id, other)

    answer = finalize(emulator, deployment_id, deploy["id"], other)

    assert answer.status_code == 400
    assert "the registry refused user cli with this API token" in answer.json()["message"]
    assert other not in answer.text


def test_the_emulator_command_takes_a_registry(real_registry: RealRegistry) -> None:
    process = subprocess.Popen(
        [str(CI_DEPLOY), "emulator", "--port", "0", "--registry", real_registry.host],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=local_environment(),
    )
    try:
        assert process.stdout is not None
        banner = dict(process.stdout.readline().strip().split(": ", 1) for _ in range(7))
        assert banner["registry"] == f"{real_registry.host} (user cli, an API token as password)"
        url = (
            f"{banner['api-url']}/organizations/{banner['organization-id']}/deployments/"
            f"{banner['deployment-id']}"
        )
        answer = httpx.get(url, headers={"Authorization": f"Bearer {banner['token']}"}, timeout=5)
        assert answer.json()["imageRepository"].startswith(f"{real_registry.host}/")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


# --- the whole action ---------------------------------------------------------------------


def test_an_image_and_dag_deploy_builds_pushes_and_runs_healthy(
    tmp_path: Path,
    emulator: Emulator,
    deployment_id: str,
    real_registry: RealRegistry,
    docker_host: str,
) -> None:
    step = deploy_a_requirements_change(
        tmp_path, emulator, deployment_id, real_registry.token, docker_host
    )

    assert step.result.returncode == 0, step.log
    out = step.outputs
    assert (out["status"], out["deploy-type"]) == ("deployed", "IMAGE_AND_DAG")
    [deploy] = [d for d in emulator.deploys(deployment_id) if d["id"] == out["deploy-id"]]
    assert deploy["status"] == "DEPLOYED"
    repository = f"{real_registry.host}/{emulator.organization_id}/{deployment_id}"
    assert deploy["imageRepository"] == repository
    # what the emulator saw at finalize is what the registry serves, and what was pushed
    served = real_registry.manifest(
        f"{emulator.organization_id}/{deployment_id}", deploy["imageTag"]
    )
    assert served.digest
    assert emulator.registry_digests == {f"{repository}:{deploy['imageTag']}": served.digest}
    assert f"Pushed {repository}:{deploy['imageTag']} ({served.digest})" in step.log
    assert f"Astro Runtime {RUNTIME}" in step.log
    deployment = emulator.deployment(deployment_id)
    assert deployment["status"] == "HEALTHY"
    assert deployment["imageTag"] == deploy["imageTag"]
    assert deployment["dagTarballVersion"] == out["dag-tarball-version"]
    # the token is masked, and appears nowhere else
    assert step.commands("add-mask")[0].message == real_registry.token
    assert len([line for line in step.log.splitlines() if real_registry.token in line]) == 1


def test_a_token_the_registry_refuses_fails_before_finalize(
    tmp_path: Path,
    emulator: Emulator,
    deployment_id: str,
    real_registry: RealRegistry,
    docker_host: str,
) -> None:
    other = "another-api-token-" + uuid.uuid4().hex
    emulator.tokens.add(other)
    step = deploy_a_requirements_change(tmp_path, emulator, deployment_id, other, docker_host)

    assert step.result.returncode == 1
    assert step.titles("error") == ["Registry login failed"]
    assert step.outputs["status"] == "failed"
    assert [d["status"] for d in emulator.deploys(deployment_id)] == ["INITIALIZED"]
    assert not any(path.endswith("/finalize") for path in api_posts(emulator))
    assert len([line for line in step.log.splitlines() if other in line]) == 1  # add-mask
    assert emulator.deployment(deployment_id)["status"] == "HEALTHY"
