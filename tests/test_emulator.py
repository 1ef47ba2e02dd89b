"""The emulator, over real HTTP: the Astro API calls of a deploy, the blob host, faults,
listing Deployments, hibernation overrides, Deployment logs, image pushes and rollbacks."""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from ci_deploy_testkit.emulator import (
    DEMO_DEPLOYMENT_ID,
    DEMO_ORGANIZATION_ID,
    Emulator,
    StoredBlob,
    make_token,
)
from tests.fakes import FakeClock
from tests.spec import openapi

VERSION_ID = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SHA = "0123456789abcdef0123456789abcdef01234567"
GIT = {"provider": "GITHUB", "account": "acme", "repo": "airflow", "commitSha": SHA}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """The emulator on a fake clock (its wall clock runs from now on the same fake time):
    rollouts, wake-ups and overrides move only when a test's :func:`wait_for` advances it."""
    clock, started = FakeClock(), time.time()
    with Emulator(
        rollout_seconds=0.2, clock=clock, wall_clock=lambda: started + clock.now
    ) as emulator:
        yield emulator


@pytest.fixture
def api(emu: Emulator) -> Iterator[httpx.Client]:
    base = f"{emu.api_url}/organizations/{emu.organization_id}/deployments/"
    headers = {"Authorization": f"Bearer {emu.token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=5) as client:
        yield client


def deploys_path(deployment_id: str = DEMO_DEPLOYMENT_ID) -> str:
    return f"{deployment_id}/deploys"


def create(api: httpx.Client, deployment_id: str = DEMO_DEPLOYMENT_ID, **body: Any) -> Any:
    response = api.post(deploys_path(deployment_id), json={"type": "DAG_ONLY", **body})
    assert response.status_code == 200, response.text
    return response.json()


def upload(url: str, data: bytes) -> str:
    response = httpx.put(url, content=data, headers={"x-ms-blob-type": "BlockBlob"})
    assert response.status_code == 201, response.text
    return response.headers["x-ms-version-id"]


def finalize(
    api: httpx.Client, deploy_id: str, *, deployment_id: str = DEMO_DEPLOYMENT_ID, **body: Any
) -> httpx.Response:
    return api.post(f"{deploys_path(deployment_id)}/{deploy_id}/finalize", json=body)


def rollback(
    api: httpx.Client, deploy_id: str, deployment_id: str = DEMO_DEPLOYMENT_ID
) -> httpx.Response:
    return api.post(f"{deploys_path(deployment_id)}/{deploy_id}/rollback", json={})


def push(emu: Emulator, deploy: dict[str, Any]) -> None:
    """What a client's Docker push does, as the test's fake engine reports it."""
    emu.record_push(deploy["imageRepository"], deploy["imageTag"])


def wait_for(
    emu: Emulator, read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]
) -> Any:
    """Poll ``read`` until ``done`` holds, moving the emulator's fake clock 20 ms between
    looks; fail after 5 seconds of it."""
    clock = emu.clock
    assert isinstance(clock, FakeClock)
    deadline = clock.now + 5
    while True:
        value = read()
        if done(value):
            return value
        assert clock.now < deadline, f"still not done: {value}"
        clock.sleep(0.02)


def deploy_dags(
    api: httpx.Client, data: bytes = b"dags", deployment_id: str = DEMO_DEPLOYMENT_ID
) -> tuple[Any, str]:
    """Create, upload and finalize a DAG_ONLY deploy; returns the finalized deploy, version."""
    deploy = create(api, deployment_id, git=GIT)
    version = upload(deploy["dagsUploadUrl"], data)
    response = finalize(api, deploy["id"], deployment_id=deployment_id, dagTarballVersion=version)
    assert response.status_code == 200, response.text
    return response.json(), version


def deploy_image(
    emu: Emulator, api: httpx.Client, deploy_type: str, data: bytes = b"dags"
) -> tuple[Any, str]:
    """Create, upload (IMAGE_AND_DAG), push and finalize an image deploy of the demo
    Deployment; returns the finalized deploy and the DAG version ("" for IMAGE_ONLY)."""
    deploy = create(api, type=deploy_type, git=GIT)
    version = upload(deploy["dagsUploadUrl"], data) if deploy_type == "IMAGE_AND_DAG" else ""
    push(emu, deploy)
    response = finalize(api, deploy["id"], dagTarballVersion=version)
    assert response.status_code == 200, response.text
    return response.json(), version


def settled(emu: Emulator, deployment_id: str = DEMO_DEPLOYMENT_ID) -> Any:
    """The Deployment once no rollout or wake-up is under way (also while it sleeps)."""

    def done(d: dict[str, Any]) -> bool:
        rolled = d["dagTarballVersion"] == d["desiredDagTarballVersion"]
        waking = d["statusReason"].startswith("Waking")
        return d["status"] != "DEPLOYING" and not waking and (rolled or d["status"] == "UNHEALTHY")

    return wait_for(emu, lambda: emu.deployment(deployment_id), done)


def block_url(url: str, block_id: str) -> str:
    return f"{url}&comp=block&blockid={quote(block_id, safe='')}"


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an Astro Error JSON with ``status``; returns it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, Any] = response.json()
    assert error["statusCode"] == status
    assert error["message"]
    assert error["requestId"]
    return error


def assert_azure_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["x-ms-error-code"] == code
    assert response.text.startswith("<?xml")
    assert f"<Error><Code>{code}</Code>" in response.text


# -- tokens and authentication --------------------------------------------------------


def test_make_token_payload_names_the_organization_and_workspace() -> None:
    token = make_token("org-1", "ws-1")
    header, payload, signature = (
        base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in token.split(".")
    )
    assert json.loads(header)["typ"] == "JWT"
    claims = json.loads(payload)
    assert claims["permissions"] == ["organizationId:org-1", "workspaceId:ws-1"]
    assert claims["sub"]
    assert isinstance(claims["iat"], int)
    assert signature == b"emulator"
    assert "=" not in token
    assert make_token("org-1", "ws-1") == token


def test_the_emulator_token_is_the_demo_organization_token(emu: Emulator) -> None:
    assert emu.token == make_token(DEMO_ORGANIZATION_ID)
    assert emu.tokens == {emu.token}
    assert emu.organization_id == DEMO_ORGANIZATION_ID
    assert emu.deployment_id == DEMO_DEPLOYMENT_ID
    assert emu.api_url == f"http://127.0.0.1:{emu.port}/v1"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}],
    ids=["missing", "wrong-token", "wrong-scheme"],
)
def test_api_requests_without_a_valid_token_get_401(emu: Emulator, headers: dict[str, str]) -> None:
    url = f"{emu.api_url}/organizations/{emu.organization_id}/deployments/{emu.deployment_id}"
    first = assert_error(httpx.get(url, headers=headers), 401)
    second = assert_error(httpx.get(url, headers=headers), 401)
    assert first["requestId"] != second["requestId"]


def test_a_token_added_to_tokens_is_accepted(emu: Emulator) -> None:
    other = make_token(DEMO_ORGANIZATION_ID, "another-workspace")
    url = f"{emu.api_url}/organizations/{emu.organization_id}/deployments/{emu.deployment_id}"
    assert httpx.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 401
    emu.tokens.add(other)
    assert httpx.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 200


# -- GetDeployment and routing --------------------------------------------------------


def test_get_deployment_returns_the_seeded_demo_deployment(
    emu: Emulator, api: httpx.Client
) -> None:
    response = api.get(DEMO_DEPLOYMENT_ID)
    assert response.status_code == 200
    deployment = response.json()
    assert deployment["id"] == DEMO_DEPLOYMENT_ID
    assert deployment["name"] == "emulator"
    assert deployment["organizationId"] == DEMO_ORGANIZATION_ID
    assert deployment["workspaceId"] == "emulator-workspace"
    assert deployment["status"] == "HEALTHY"
    assert deployment["isDagDeployEnabled"] is True
    assert deployment["isDevelopmentMode"] is False
    assert deployment["runtimeVersion"] == "3.0-1"
    assert VERSION_ID.match(deployment["dagTarballVersion"])
    assert deployment["desiredDagTarballVersion"] == deployment["dagTarballVersion"]
    assert deployment["imageRepository"] == (
        f"127.0.0.1:{emu.port}/{DEMO_ORGANIZATION_ID}/{DEMO_DEPLOYMENT_ID}"
    )
    assert deployment["imageTag"] == "deploy-0"
    assert deployment["uiUrl"] == f"http://127.0.0.1:{emu.port}/ui/deployments/{DEMO_DEPLOYMENT_ID}"
    assert emu.deployment(DEMO_DEPLOYMENT_ID) == deployment


def test_unknown_deployment_or_organization_is_404(emu: Emulator, api: httpx.Client) -> None:
    assert_error(api.get("nope"), 404)
    url = f"{emu.api_url}/organizations/other-org/deployments/{emu.deployment_id}"
    assert_error(httpx.get(url, headers={"Authorization": f"Bearer {emu.token}"}), 404)
    assert_error(api.get(f"{deploys_path()}/no-such-deploy"), 404)
    assert_error(api.post(f"{deploys_path()}/no-such-deploy/finalize", json={}), 404)


def test_unknown_path_is_404_and_wrong_method_is_405(emu: Emulator, api: httpx.Client) -> None:
    assert_error(api.get(f"{DEMO_DEPLOYMENT_ID}/nothing-here"), 404)
    assert_error(httpx.get(f"http://127.0.0.1:{emu.port}/elsewhere"), 404)
    assert_error(api.patch(DEMO_DEPLOYMENT_ID, json={}), 405)
    assert_error(api.put(deploys_path(), json={}), 405)


def test_the_ui_url_serves_a_page(emu: Emulator) -> None:
    response = httpx.get(emu.deployment(DEMO_DEPLOYMENT_ID)["uiUrl"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Deployment emulator" in response.text


# -- ListDeploys ----------------------------------------------------------------------


def test_history_is_seeded_with_a_deployed_dag_only_deploy(
    emu: Emulator, api: httpx.Client
) -> None:
    page = api.get(deploys_path()).json()
    assert (page["offset"], page["limit"], page["totalCount"]) == (0, 20, 1)
    [seeded] = page["deploys"]
    assert seeded["status"] == "DEPLOYED"
    assert seeded["type"] == "DAG_ONLY"
    assert re.fullmatch(r"[0-9a-f]{40}", seeded["git"]["commitSha"])
    assert seeded["dagTarballVersion"] == emu.deployment(DEMO_DEPLOYMENT_ID)["dagTarballVersion"]
    assert emu.deploys(DEMO_DEPLOYMENT_ID) == [seeded]


def test_history_pages_cover_every_deploy_in_an_unsorted_order(
    emu: Emulator, api: httpx.Client
) -> None:
    for number in range(4):
        create(api, description=f"deploy {number}")
    created = [d["id"] for d in emu.deploys(DEMO_DEPLOYMENT_ID)]
    listed: list[str] = []
    for offset in (0, 2, 4):
        page = api.get(deploys_path(), params={"offset": offset, "limit": 2}).json()
        assert (page["offset"], page["limit"], page["totalCount"]) == (offset, 2, 5)
        listed += [d["id"] for d in page["deploys"]]
    assert sorted(listed) == sorted(created)
    assert listed not in (created, created[::-1])
    assert listed[0] != created[-1]
    assert listed[-1] != created[-1]
    stamps = [d["createdAt"] for d in emu.deploys(DEMO_DEPLOYMENT_ID)]
    assert all(CREATED_AT.match(stamp) for stamp in stamps)
    assert stamps == sorted(set(stamps)), "createdAt strictly increases"


def test_limit_zero_gives_only_the_total(api: httpx.Client) -> None:
    page = api.get(deploys_path(), params={"limit": 0}).json()
    assert page == {"deploys": [], "offset": 0, "limit": 0, "totalCount": 1}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 1001}, "limit"),
        ({"limit": -1}, "limit"),
        ({"offset": -1}, "offset"),
        ({"limit": "many"}, "limit"),
    ],
)
def test_bad_paging_is_400_with_field_errors(
    api: httpx.Client, params: dict[str, Any], field: str
) -> None:
    error = assert_error(api.get(deploys_path(), params=params), 400)
    assert [e["field"] for e in error["fieldErrors"]] == [field]


# -- CreateDeploy ---------------------------------------------------------------------


def test_create_dag_only_deploy_gives_an_upload_url(emu: Emulator, api: httpx.Client) -> None:
    deploy = create(api, description="from CI", git=GIT)
    assert deploy["status"] == "INITIALIZED"
    assert deploy["type"] == "DAG_ONLY"
    assert deploy["deploymentId"] == DEMO_DEPLOYMENT_ID
    assert deploy["description"] == "from CI"
    assert deploy["git"] == GIT
    assert deploy["isDagDeployEnabled"] is True
    assert CREATED_AT.match(deploy["createdAt"])
    assert deploy["imageRepository"] and deploy["imageTag"]
    url = urlsplit(deploy["dagsUploadUrl"])
    assert (url.scheme, url.netloc) == ("http", f"127.0.0.1:{emu.port}")
    assert url.path == f"/blob/{DEMO_DEPLOYMENT_ID}/{deploy['id']}"
    query = parse_qs(url.query)
    assert query["sv"] == ["2023-11-03"]
    assert query["sp"] == ["cw"]
    assert len(query["sig"][0]) >= 20
    assert api.get(f"{deploys_path()}/{deploy['id']}").json() == deploy


def test_each_deploy_gets_its_own_id_and_signature(api: httpx.Client) -> None:
    first, second = create(api), create(api)
    assert first["id"] != second["id"]
    sig = parse_qs(urlsplit(first["dagsUploadUrl"]).query)["sig"]
    assert sig != parse_qs(urlsplit(second["dagsUploadUrl"]).query)["sig"]


def test_image_deploys_get_a_server_picked_tag(api: httpx.Client) -> None:
    image_only = create(api, type="IMAGE_ONLY")
    assert "dagsUploadUrl" not in image_only
    image_and_dag = create(api, type="IMAGE_AND_DAG")
    assert image_and_dag["dagsUploadUrl"]
    tags = {image_only["imageTag"], image_and_dag["imageTag"], "deploy-0"}
    assert len(tags) == 3


def test_bundle_deploy_gets_a_bundle_upload_url(api: httpx.Client) -> None:
    deploy = create(api, type="BUNDLE", bundleType="dbt", bundleMountPath="/usr/local/dbt")
    assert "/blob/" in deploy["bundleUploadUrl"]
    assert "dagsUploadUrl" not in deploy


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "EVERYTHING"}, "type"),
        ({"type": "DAG_ONLY", "description": "x" * 501}, "description"),
        ({"type": "DAG_ONLY", "git": {"provider": "GITHUB", "commitSha": SHA}}, "git"),
        ({"type": "DAG_ONLY", "colour": "blue"}, "colour"),
        ({}, "type"),
    ],
    ids=["bad-type", "long-description", "github-without-account", "unknown-field", "no-type"],
)
def test_invalid_create_is_400_with_field_errors(
    emu: Emulator, api: httpx.Client, body: dict[str, Any], field: str
) -> None:
    error = assert_error(api.post(deploys_path(), json=body), 400)
    assert [e["field"] for e in error["fieldErrors"]] == [field]
    assert all(e["code"] and e["message"] for e in error["fieldErrors"])
    assert len(emu.deploys(DEMO_DEPLOYMENT_ID)) == 1


def test_a_500_character_description_is_accepted(api: httpx.Client) -> None:
    assert create(api, description="x" * 500)["description"] == "x" * 500


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"type": ', {"Content-Type": "application/json"}),
        (b'{"type": "DAG_ONLY"}', {}),
        (b'{"type": "DAG_ONLY"}', {"Content-Type": "text/plain"}),
        (b"", {"Content-Type": "application/json"}),
        (b'["DAG_ONLY"]', {"Content-Type": "application/json"}),
    ],
    ids=["invalid-json", "no-content-type", "text-content-type", "empty", "not-an-object"],
)
def test_create_needs_a_json_object_body(
    api: httpx.Client, content: bytes, headers: dict[str, str]
) -> None:
    assert_error(api.post(deploys_path(), content=content, headers=headers), 400)


def test_a_chunked_api_body_is_read(emu: Emulator, api: httpx.Client) -> None:
    body = json.dumps({"type": "DAG_ONLY", "description": "chunked"}).encode()
    response = api.post(
        deploys_path(),
        content=iter([body[:7], body[7:]]),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["description"] == "chunked"
    assert emu.requests[-1].headers["transfer-encoding"] == "chunked"


def test_dag_only_is_refused_when_dag_deploys_are_disabled(
    emu: Emulator, api: httpx.Client
) -> None:
    emu.add_deployment("no-dags", isDagDeployEnabled=False)
    error = assert_error(api.post(deploys_path("no-dags"), json={"type": "DAG_ONLY"}), 400)
    assert "DAG deploys disabled" in error["message"]
    assert emu.deploys("no-dags") == []
    image = create(api, "no-dags", type="IMAGE_AND_DAG")
    assert "dagsUploadUrl" not in image
    assert image["isDagDeployEnabled"] is False
    push(emu, image)
    finalized = api.post(f"{deploys_path('no-dags')}/{image['id']}/finalize", json={})
    assert finalized.json()["status"] == "DEPLOYED"
    deployment = wait_for(
        emu, lambda: emu.deployment("no-dags"), lambda d: d["status"] == "HEALTHY"
    )
    assert deployment["imageTag"] == image["imageTag"]


# -- upload, finalize, rollout ---------------------------------------------------------


def test_upload_finalize_and_the_rollout_to_healthy(emu: Emulator, api: httpx.Client) -> None:
    before = emu.deployment(DEMO_DEPLOYMENT_ID)
    deploy = create(api, git=GIT)
    version = upload(deploy["dagsUploadUrl"], b"the dag tarball")
    assert VERSION_ID.match(version)
    assert emu.blobs[version] == b"the dag tarball"

    response = finalize(api, deploy["id"], dagTarballVersion=version)
    assert response.status_code == 200, response.text
    finalized = response.json()
    assert finalized["id"] == deploy["id"]
    assert finalized["status"] == "DEPLOYED"
    assert finalized["dagTarballVersion"] == version

    rolling = api.get(DEMO_DEPLOYMENT_ID).json()
    assert rolling["status"] == "DEPLOYING"
    assert rolling["desiredDagTarballVersion"] == version
    assert rolling["dagTarballVersion"] == before["dagTarballVersion"]

    done = wait_for(
        emu, lambda: api.get(DEMO_DEPLOYMENT_ID).json(), lambda d: d["status"] != "DEPLOYING"
    )
    assert done["status"] == "HEALTHY"
    assert done["dagTarballVersion"] == done["desiredDagTarballVersion"] == version
    assert done["imageTag"] == before["imageTag"]


def test_version_ids_are_unique_and_increasing(api: httpx.Client) -> None:
    url = create(api)["dagsUploadUrl"]
    versions = [upload(url, b"same bytes") for _ in range(5)]
    assert versions == sorted(set(versions))
    assert all(VERSION_ID.match(v) for v in versions)


def test_finalize_needs_a_version_uploaded_to_this_deploy(api: httpx.Client) -> None:
    other = create(api)
    foreign = upload(other["dagsUploadUrl"], b"other")
    deploy = create(api)
    error = assert_error(finalize(api, deploy["id"], dagTarballVersion=foreign), 400)
    assert "was not uploaded to this deploy" in error["message"]
    assert_error(finalize(api, deploy["id"], dagTarballVersion="2020-01-01T00:00:00.0000000Z"), 400)
    assert_error(finalize(api, deploy["id"]), 400)
    assert_error(finalize(api, deploy["id"], dagTarballVersion=""), 400)
    assert api.get(f"{deploys_path()}/{deploy['id']}").json()["status"] == "INITIALIZED"


def test_finalize_only_once(api: httpx.Client) -> None:
    deploy, version = deploy_dags(api)
    error = assert_error(finalize(api, deploy["id"], dagTarballVersion=version), 400)
    assert "not INITIALIZED" in error["message"]


def test_image_only_finalizes_with_an_empty_version_and_rolls_the_image(
    emu: Emulator, api: httpx.Client
) -> None:
    before = emu.deployment(DEMO_DEPLOYMENT_ID)
    deploy = create(api, type="IMAGE_ONLY")
    push(emu, deploy)
    assert_error(finalize(api, deploy["id"], dagTarballVersion="x"), 400)
    finalized = finalize(api, deploy["id"], dagTarballVersion="")
    assert finalized.status_code == 200, finalized.text
    assert "dagTarballVersion" not in finalized.json()
    done = wait_for(
        emu, lambda: emu.deployment(DEMO_DEPLOYMENT_ID), lambda d: d["status"] == "HEALTHY"
    )
    assert done["imageTag"] == done["imageVersion"] == deploy["imageTag"]
    assert done["dagTarballVersion"] == done["desiredDagTarballVersion"]
    assert done["dagTarballVersion"] == before["dagTarballVersion"]


def test_bundle_finalize_needs_an_uploaded_bundle_version(api: httpx.Client) -> None:
    deploy = create(api, type="BUNDLE", bundleType="dbt", bundleMountPath="/dbt")
    assert_error(finalize(api, deploy["id"]), 400)
    version = upload(deploy["bundleUploadUrl"], b"bundle")
    assert finalize(api, deploy["id"], bundleTarballVersion=version).status_code == 200


def test_unhealthy_after_finalize_keeps_the_old_version(emu: Emulator, api: httpx.Client) -> None:
    old = emu.deployment(DEMO_DEPLOYMENT_ID)["dagTarballVersion"]
    emu.unhealthy_after_finalize = True
    _, version = deploy_dags(api)
    done = wait_for(
        emu, lambda: api.get(DEMO_DEPLOYMENT_ID).json(), lambda d: d["status"] != "DEPLOYING"
    )
    assert done["status"] == "UNHEALTHY"
    assert done["statusReason"]
    assert done["dagTarballVersion"] == old
    assert done["desiredDagTarballVersion"] == version


# -- blob host ------------------------------------------------------------------------


def test_blob_upload_with_an_authorization_header_is_refused(
    emu: Emulator, api: httpx.Client
) -> None:
    url = create(api)["dagsUploadUrl"]
    response = httpx.put(
        url,
        content=b"x",
        headers={"x-ms-blob-type": "BlockBlob", "Authorization": f"Bearer {emu.token}"},
    )
    assert_azure_error(response, 400, "InvalidAuthenticationInfo")
    assert emu.blobs == {}


def test_blob_upload_with_a_wrong_signature_is_403(emu: Emulator, api: httpx.Client) -> None:
    url = create(api)["dagsUploadUrl"]
    wrong = re.sub(r"sig=[^&]+", "sig=forged", url)
    headers = {"x-ms-blob-type": "BlockBlob"}
    assert_azure_error(httpx.put(wrong, content=b"x", headers=headers), 403, "AuthenticationFailed")
    unsigned = url.split("?")[0]
    response = httpx.put(unsigned, content=b"x", headers=headers)
    assert_azure_error(response, 403, "AuthenticationFailed")
    assert emu.blobs == {}


def test_put_blob_needs_the_blob_type_header(emu: Emulator, api: httpx.Client) -> None:
    url = create(api)["dagsUploadUrl"]
    assert_azure_error(httpx.put(url, content=b"x"), 400, "MissingRequiredHeader")
    assert emu.blobs == {}


def test_blob_upload_without_a_content_length_is_411(emu: Emulator, api: httpx.Client) -> None:
    url = create(api)["dagsUploadUrl"]
    chunked = iter([b"da", b"gs"])
    response = httpx.put(url, content=chunked, headers={"x-ms-blob-type": "BlockBlob"})
    assert_azure_error(response, 411, "MissingContentLengthHeader")
    assert emu.requests[-1].body == b"dags"
    assert emu.blobs == {}


def test_block_upload_and_block_list(emu: Emulator, api: httpx.Client) -> None:
    deploy = create(api)
    url = deploy["dagsUploadUrl"]
    first, second = (base64.b64encode(bytes([n]) * 3 + b"\xfb\xff").decode() for n in (1, 2))
    assert "+" in first or "/" in first  # needs percent-encoding in the query
    for block_id, data in ((first, b"AAA"), (second, b"BBB")):
        response = httpx.put(block_url(url, block_id), content=data)
        assert response.status_code == 201, response.text
        assert "x-ms-version-id" not in response.headers
    block_list = f"<BlockList><Latest>{second}</Latest><Latest>{first}</Latest></BlockList>"
    body = b"<?xml version='1.0' encoding='utf-8'?>" + block_list.encode()
    response = httpx.put(f"{url}&comp=blocklist", content=body)
    assert response.status_code == 201, response.text
    version = response.headers["x-ms-version-id"]
    assert emu.blobs[version] == b"BBBAAA"
    assert finalize(api, deploy["id"], dagTarballVersion=version).status_code == 200


def test_without_keep_blobs_only_size_and_sha256_are_kept() -> None:
    with Emulator(rollout_seconds=0.0, keep_blobs=False) as lean:
        client = httpx.Client(
            base_url=f"{lean.api_url}/organizations/{lean.organization_id}/deployments/",
            headers={"Authorization": f"Bearer {lean.token}"},
            timeout=5,
        )
        url = create(client)["dagsUploadUrl"]
        whole = upload(url, b"the dag tarball")
        block_id = base64.b64encode(b"block-1").decode()
        assert httpx.put(block_url(url, block_id), content=b"AAA").status_code == 201
        body = f"<BlockList><Latest>{block_id}</Latest></BlockList>".encode()
        response = httpx.put(f"{url}&comp=blocklist", content=body)
        assert response.status_code == 201, response.text
        blocks = response.headers["x-ms-version-id"]
        client.close()
    assert lean.blobs == {}
    assert lean.stored_blobs[whole] == StoredBlob(
        15, hashlib.sha256(b"the dag tarball").hexdigest()
    )
    assert lean.stored_blobs[blocks] == StoredBlob(3, hashlib.sha256(b"AAA").hexdigest())
    uploads = [r for r in lean.requests if r.path.startswith("/blob/")]
    assert [r.headers["content-length"] for r in uploads] == ["15", "3", str(len(body))]
    assert all(r.body == b"" for r in lean.requests)


def test_stored_blobs_are_kept_beside_the_bytes_by_default(
    emu: Emulator, api: httpx.Client
) -> None:
    version = upload(create(api)["dagsUploadUrl"], b"tarball")
    assert emu.blobs[version] == b"tarball"
    assert emu.stored_blobs[version] == StoredBlob(7, hashlib.sha256(b"tarball").hexdigest())


def test_block_list_with_an_unknown_block_is_refused(emu: Emulator, api: httpx.Client) -> None:
    url = create(api)["dagsUploadUrl"]
    block_id = base64.b64encode(b"block-1").decode()
    assert httpx.put(block_url(url, block_id), content=b"A").status_code == 201
    unknown = base64.b64encode(b"block-2").decode()
    body = f"<BlockList><Latest>{block_id}</Latest><Latest>{unknown}</Latest></BlockList>"
    response = httpx.put(f"{url}&comp=blocklist", content=body.encode())
    assert_azure_error(response, 400, "InvalidBlockList")
    assert emu.blobs == {}


# -- rollback -------------------------------------------------------------------------


def test_rollback_creates_a_deploy_and_rolls_back(emu: Emulator, api: httpx.Client) -> None:
    [seeded] = emu.deploys(DEMO_DEPLOYMENT_ID)
    current, _ = deploy_dags(api)
    wait_for(emu, lambda: emu.deployment(DEMO_DEPLOYMENT_ID), lambda d: d["status"] == "HEALTHY")

    response = api.post(
        f"{deploys_path()}/{seeded['id']}/rollback", json={"description": "back to green"}
    )
    assert response.status_code == 200, response.text
    rollback = response.json()
    assert rollback["id"] not in (seeded["id"], current["id"])
    assert rollback["rollbackFromId"] == current["id"]
    assert rollback["status"] == "DEPLOYED"
    assert rollback["type"] == seeded["type"]
    assert rollback["git"] == seeded["git"]
    assert rollback["dagTarballVersion"] == seeded["dagTarballVersion"]
    assert rollback["description"] == "back to green"
    assert emu.deploys(DEMO_DEPLOYMENT_ID)[-1] == rollback

    rolling = emu.deployment(DEMO_DEPLOYMENT_ID)
    assert rolling["status"] == "DEPLOYING"
    assert rolling["desiredDagTarballVersion"] == seeded["dagTarballVersion"]
    done = wait_for(
        emu, lambda: emu.deployment(DEMO_DEPLOYMENT_ID), lambda d: d["status"] == "HEALTHY"
    )
    assert done["dagTarballVersion"] == seeded["dagTarballVersion"]


def test_rollback_needs_a_deployed_target_and_a_body(emu: Emulator, api: httpx.Client) -> None:
    initialized = create(api)
    assert_error(api.post(f"{deploys_path()}/{initialized['id']}/rollback", json={}), 400)
    [seeded, _] = emu.deploys(DEMO_DEPLOYMENT_ID)
    assert_error(api.post(f"{deploys_path()}/{seeded['id']}/rollback"), 400)
    too_long = {"description": "x" * 501}
    error = assert_error(api.post(f"{deploys_path()}/{seeded['id']}/rollback", json=too_long), 400)
    assert error["fieldErrors"][0]["field"] == "description"
    assert_error(api.post(f"{deploys_path()}/unknown/rollback", json={}), 404)
    assert len(emu.deploys(DEMO_DEPLOYMENT_ID)) == 2


# -- image deploys and the fake registry ------------------------------------------------


def test_image_repository_is_a_registry_reference_on_the_emulator(
    emu: Emulator, api: httpx.Client
) -> None:
    deploy = create(api, type="IMAGE_AND_DAG")
    host, _, path = deploy["imageRepository"].partition("/")
    assert host == f"127.0.0.1:{emu.port}"
    assert path == f"{DEMO_ORGANIZATION_ID}/{DEMO_DEPLOYMENT_ID}"
    assert deploy["imageRepository"] == emu.deployment(DEMO_DEPLOYMENT_ID)["imageRepository"]


def test_image_finalize_is_refused_until_the_image_is_pushed(
    emu: Emulator, api: httpx.Client
) -> None:
    before = emu.deployment(DEMO_DEPLOYMENT_ID)
    deploy = create(api, type="IMAGE_AND_DAG", git=GIT)
    version = upload(deploy["dagsUploadUrl"], b"image and dags")
    image = f"{deploy['imageRepository']}:{deploy['imageTag']}"

    error = assert_error(finalize(api, deploy["id"], dagTarballVersion=version), 400)
    assert error["message"].startswith(f"image {image} was not pushed")
    emu.record_push(deploy["imageRepository"], "some-other-tag")
    emu.record_push(f"{deploy['imageRepository']}-other", deploy["imageTag"])
    assert_error(finalize(api, deploy["id"], dagTarballVersion=version), 400)
    assert api.get(f"{deploys_path()}/{deploy['id']}").json()["status"] == "INITIALIZED"
    assert emu.deployment(DEMO_DEPLOYMENT_ID)["status"] == "HEALTHY"

    push(emu, deploy)
    assert image in emu.pushed_images
    assert_error(finalize(api, deploy["id"]), 400)  # a DAG-enabled IMAGE_AND_DAG needs a version
    response = finalize(api, deploy["id"], dagTarballVersion=version)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "DEPLOYED"

    rolling = api.get(DEMO_DEPLOYMENT_ID).json()
    assert rolling["status"] == "DEPLOYING"
    assert rolling["imageTag"] == before["imageTag"]
    assert rolling["desiredDagTarballVersion"] == version
    assert rolling["dagTarballVersion"] == before["dagTarballVersion"]
    done = settled(emu)
    assert done["status"] == "HEALTHY"
    assert done["imageTag"] == done["imageVersion"] == deploy["imageTag"]
    assert done["dagTarballVersion"] == done["desiredDagTarballVersion"] == version


def test_record_push_needs_a_repository_and_a_tag(emu: Emulator) -> None:
    for repository, tag in (("", "t"), ("127.0.0.1:1/o/d", ""), ("127.0.0.1:1/o/d", "a:b")):
        with pytest.raises(ValueError):
            emu.record_push(repository, tag)
    assert emu.pushed_images == set()


def test_rollout_seconds_is_how_long_a_rollout_takes(emu: Emulator, api: httpx.Client) -> None:
    emu.rollout_seconds = 0
    _, version = deploy_dags(api)
    done = api.get(DEMO_DEPLOYMENT_ID).json()
    assert done["status"] == "HEALTHY"
    assert done["dagTarballVersion"] == done["desiredDagTarballVersion"] == version
    emu.rollout_seconds = 30
    _, newer = deploy_dags(api)
    rolling = api.get(DEMO_DEPLOYMENT_ID).json()
    assert rolling["status"] == "DEPLOYING"
    assert (rolling["dagTarballVersion"], rolling["desiredDagTarballVersion"]) == (version, newer)


# -- rollbacks of image deploys, health and age ----------------------------------------


def test_rollback_restores_the_targets_dag_version_and_image_tag(
    emu: Emulator, api: httpx.Client
) -> None:
    emu.rollout_seconds = 0.05  # five rollouts
    both, first_version = deploy_image(emu, api, "IMAGE_AND_DAG", b"v1")
    settled(emu)
    _, second_version = deploy_dags(api, b"v2")
    settled(emu)
    image_only, _ = deploy_image(emu, api, "IMAGE_ONLY")
    current = settled(emu)
    assert (current["dagTarballVersion"], current["imageTag"]) == (
        second_version,
        image_only["imageTag"],
    )

    response = rollback(api, both["id"])
    assert response.status_code == 200, response.text
    restored = response.json()
    assert (restored["type"], restored["rollbackFromId"]) == ("IMAGE_AND_DAG", image_only["id"])
    assert restored["dagTarballVersion"] == first_version
    assert restored["imageTag"] == both["imageTag"]
    rolling = api.get(DEMO_DEPLOYMENT_ID).json()
    assert rolling["status"] == "DEPLOYING"
    assert rolling["desiredDagTarballVersion"] == first_version
    assert rolling["dagTarballVersion"] == second_version
    done = settled(emu)
    assert done["status"] == "HEALTHY"
    assert (done["dagTarballVersion"], done["imageTag"]) == (first_version, both["imageTag"])

    # IMAGE_ONLY deploys bring back the DAGs they ran with, too
    assert rollback(api, image_only["id"]).status_code == 200
    done = settled(emu)
    assert (done["dagTarballVersion"], done["imageTag"]) == (
        second_version,
        image_only["imageTag"],
    )


def test_a_rollback_to_a_dag_deploy_brings_back_the_image_it_ran_with(
    emu: Emulator, api: httpx.Client
) -> None:
    [seeded] = emu.deploys(DEMO_DEPLOYMENT_ID)
    deploy_image(emu, api, "IMAGE_ONLY")
    assert settled(emu)["imageTag"] != seeded["imageTag"]
    assert rollback(api, seeded["id"]).status_code == 200
    done = settled(emu)
    assert (done["dagTarballVersion"], done["imageTag"]) == (
        seeded["dagTarballVersion"],
        seeded["imageTag"],
    )


def test_unhealthy_after_finalize_does_not_apply_to_rollbacks(
    emu: Emulator, api: httpx.Client
) -> None:
    [seeded] = emu.deploys(DEMO_DEPLOYMENT_ID)
    emu.unhealthy_after_finalize = True
    deploy_dags(api)
    assert settled(emu)["status"] == "UNHEALTHY"
    assert rollback(api, seeded["id"]).status_code == 200
    done = settled(emu)
    assert done["status"] == "HEALTHY"
    assert done["dagTarballVersion"] == seeded["dagTarballVersion"]

    emu.unhealthy_after_rollback = True
    assert rollback(api, seeded["id"]).status_code == 200
    failed = wait_for(
        emu, lambda: emu.deployment(DEMO_DEPLOYMENT_ID), lambda d: d["status"] != "DEPLOYING"
    )
    assert failed["status"] == "UNHEALTHY"
    assert "unhealthy_after_rollback" in failed["statusReason"]


def test_rollback_only_to_deployed_deploys_of_the_last_90_days(
    emu: Emulator, api: httpx.Client
) -> None:
    [seeded] = emu.deploys(DEMO_DEPLOYMENT_ID)
    old = datetime.now(UTC) - timedelta(days=90, minutes=1)
    emu.update_deploy(
        DEMO_DEPLOYMENT_ID, seeded["id"], createdAt=old.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    error = assert_error(rollback(api, seeded["id"]), 400)
    assert "90 days" in error["message"]
    recent = datetime.now(UTC) - timedelta(days=89)
    emu.update_deploy(
        DEMO_DEPLOYMENT_ID, seeded["id"], createdAt=recent.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    assert rollback(api, seeded["id"]).status_code == 200

    failed = create(api)
    emu.update_deploy(DEMO_DEPLOYMENT_ID, failed["id"], status="FAILED")
    error = assert_error(rollback(api, failed["id"]), 400)
    assert "FAILED" in error["message"]
    with pytest.raises(KeyError):
        emu.update_deploy(DEMO_DEPLOYMENT_ID, "no-such-deploy", status="FAILED")


# -- ListDeployments --------------------------------------------------------------------


def list_deployments(emu: Emulator, api: httpx.Client, params: Any = None) -> httpx.Response:
    return api.get(f"{emu.api_url}/organizations/{emu.organization_id}/deployments", params=params)


def listed_ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [d["id"] for d in response.json()["deployments"]]


def test_list_deployments_shows_every_deployment_of_the_organization(
    emu: Emulator, api: httpx.Client
) -> None:
    emu.add_deployment("second", workspaceId="ws-2")
    emu.add_deployment("third", name="Charlie", isDevelopmentMode=True)
    page = list_deployments(emu, api).json()
    assert (page["offset"], page["limit"], page["totalCount"]) == (0, 20, 3)
    assert [d["name"] for d in page["deployments"]] == ["emulator", "second", "Charlie"]
    assert page["deployments"] == [
        emu.deployment(d) for d in (DEMO_DEPLOYMENT_ID, "second", "third")
    ]


def test_list_deployments_filters(emu: Emulator, api: httpx.Client) -> None:
    emu.add_deployment("second", workspaceId="ws-2")
    emu.add_deployment("third", name="Charlie", workspaceId="ws-2")
    names = [("names", "emulator"), ("names", "Charlie")]
    assert listed_ids(list_deployments(emu, api, names)) == [DEMO_DEPLOYMENT_ID, "third"]
    assert listed_ids(list_deployments(emu, api, {"workspaceIds": "ws-2"})) == ["second", "third"]
    workspaces = [("workspaceIds", "ws-2"), ("workspaceIds", "emulator-workspace")]
    assert len(listed_ids(list_deployments(emu, api, workspaces))) == 3
    ids = [("deploymentIds", "second"), ("deploymentIds", DEMO_DEPLOYMENT_ID)]
    assert listed_ids(list_deployments(emu, api, ids)) == [DEMO_DEPLOYMENT_ID, "second"]
    both = [("workspaceIds", "ws-2"), *names]
    assert listed_ids(list_deployments(emu, api, both)) == ["third"], "filters combine with AND"
    page = list_deployments(emu, api, {"names": "nobody"}).json()
    assert (page["deployments"], page["totalCount"]) == ([], 0)
    assert listed_ids(list_deployments(emu, api, {"names": "Charlie", "deploymentIds": "x"})) == []


def test_list_deployments_pages_and_sorts(emu: Emulator, api: httpx.Client) -> None:
    for name in ("b", "a", "c"):
        emu.add_deployment(f"dep-{name}", name=name)
    listed: list[str] = []
    for offset in (0, 2, 4):
        page = list_deployments(emu, api, {"offset": offset, "limit": 2}).json()
        assert (page["offset"], page["limit"], page["totalCount"]) == (offset, 2, 4)
        listed += [d["id"] for d in page["deployments"]]
    assert listed == [DEMO_DEPLOYMENT_ID, "dep-b", "dep-a", "dep-c"]
    page = list_deployments(emu, api, {"limit": 0}).json()
    assert (page["deployments"], page["totalCount"]) == ([], 4)
    by_name = list_deployments(emu, api, {"sorts": "name:desc"})
    assert [d["name"] for d in by_name.json()["deployments"]] == ["emulator", "c", "b", "a"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": -1}, "limit"), ({"offset": "x"}, "offset"), ({"sorts": "size:asc"}, "sorts")],
)
def test_bad_list_deployments_queries_are_400(
    emu: Emulator, api: httpx.Client, params: dict[str, Any], field: str
) -> None:
    error = assert_error(list_deployments(emu, api, params), 400)
    assert [e["field"] for e in error["fieldErrors"]] == [field]


def test_list_deployments_of_another_organization_is_403(emu: Emulator) -> None:
    url = f"{emu.api_url}/organizations/other-org/deployments"
    assert_error(httpx.get(url, headers={"Authorization": f"Bearer {emu.token}"}), 403)


# -- hibernation ------------------------------------------------------------------------


def override_path(deployment_id: str) -> str:
    return f"{deployment_id}/hibernation-override"


def hibernation_status(deployment: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = deployment["scalingStatus"]["hibernationStatus"]
    return status


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_only_development_deployments_show_hibernation(emu: Emulator, api: httpx.Client) -> None:
    demo = api.get(DEMO_DEPLOYMENT_ID).json()
    assert demo["isDevelopmentMode"] is False
    assert "scalingSpec" not in demo
    assert "scalingStatus" not in demo
    emu.add_deployment("dev", isDevelopmentMode=True)
    dev = api.get("dev").json()
    assert dev["isDevelopmentMode"] is True
    assert dev["scalingSpec"] == {"hibernationSpec": {}}
    assert hibernation_status(dev)["isHibernating"] is False
    assert hibernation_status(dev)["reason"]
    emu.update_deployment(DEMO_DEPLOYMENT_ID, isDevelopmentMode=True)
    assert "scalingStatus" in api.get(DEMO_DEPLOYMENT_ID).json()


def test_a_wake_override_wakes_a_hibernating_deployment_and_delete_restores_the_schedule(
    emu: Emulator, api: httpx.Client
) -> None:
    emu.add_deployment("dev", isDevelopmentMode=True, hibernating=True)
    asleep = api.get("dev").json()
    assert asleep["status"] == "HIBERNATING"
    assert hibernation_status(asleep)["isHibernating"] is True
    assert emu.hibernation_override("dev") is None

    response = api.post(override_path("dev"), json={"isHibernating": False})
    assert response.status_code == 200, response.text
    assert response.json() == {"isActive": True, "isHibernating": False}
    assert emu.hibernation_override("dev") == response.json()
    waking = api.get("dev").json()
    assert waking["status"] == "HIBERNATING", "waking up takes rollout_seconds"
    assert waking["statusReason"].startswith("Waking up")
    assert waking["scalingSpec"]["hibernationSpec"]["override"] == response.json()
    awake = wait_for(emu, lambda: api.get("dev").json(), lambda d: d["status"] != "HIBERNATING")
    assert awake["status"] == "HEALTHY"
    assert hibernation_status(awake)["isHibernating"] is False
    assert "override" in hibernation_status(awake)["reason"]

    response = api.delete(override_path("dev"))
    assert (response.status_code, response.content) == (204, b"")
    assert emu.hibernation_override("dev") is None
    back = api.get("dev").json()
    assert back["status"] == "HIBERNATING", "the schedule says hibernate"
    assert back["scalingSpec"] == {"hibernationSpec": {}}
    assert hibernation_status(back)["isHibernating"] is True
    assert api.delete(override_path("dev")).status_code == 204, "deleting none is fine"


def test_a_hibernate_override_until_a_time_then_delete_wakes_it(
    emu: Emulator, api: httpx.Client
) -> None:
    emu.add_deployment("dev", isDevelopmentMode=True)
    until = rfc3339(datetime.now(UTC) + timedelta(hours=2))
    response = api.post(override_path("dev"), json={"isHibernating": True, "overrideUntil": until})
    assert response.status_code == 200, response.text
    assert response.json() == {"isActive": True, "isHibernating": True, "overrideUntil": until}
    asleep = api.get("dev").json()
    assert asleep["status"] == "HIBERNATING", "hibernating is immediate"
    status = hibernation_status(asleep)
    assert status["isHibernating"] is True
    assert (status["nextEventAt"], status["nextEventType"]) == (until, "WAKE")

    assert api.delete(override_path("dev")).status_code == 204
    assert api.get("dev").json()["status"] == "HIBERNATING"
    awake = wait_for(emu, lambda: api.get("dev").json(), lambda d: d["status"] != "HIBERNATING")
    assert awake["status"] == "HEALTHY"


def test_an_override_lapses_at_its_override_until(emu: Emulator, api: httpx.Client) -> None:
    emu.add_deployment("dev", isDevelopmentMode=True, hibernating=True)
    until = datetime.now(UTC) + timedelta(seconds=1)
    body = {"isHibernating": False, "overrideUntil": until.isoformat()}
    assert api.post(override_path("dev"), json=body).status_code == 200
    assert wait_for(emu, lambda: api.get("dev").json(), lambda d: d["status"] == "HEALTHY")
    lapsed = wait_for(emu, lambda: api.get("dev").json(), lambda d: d["status"] == "HIBERNATING")
    override = lapsed["scalingSpec"]["hibernationSpec"]["override"]
    assert (override["isActive"], override["isHibernating"]) == (False, False)
    assert emu.hibernation_override("dev") == override


def test_the_schedule_setting_hibernates_and_wakes(emu: Emulator, api: httpx.Client) -> None:
    emu.add_deployment("dev", isDevelopmentMode=True)
    emu.update_deployment("dev", hibernating=True)
    assert api.get("dev").json()["status"] == "HIBERNATING"
    emu.update_deployment("dev", hibernating=False)
    assert api.get("dev").json()["status"] == "HIBERNATING"
    assert wait_for(emu, lambda: emu.deployment("dev"), lambda d: d["status"] == "HEALTHY")
    # an active override wins over the schedule
    assert api.post(override_path("dev"), json={"isHibernating": False}).status_code == 200
    emu.update_deployment("dev", hibernating=True)
    assert emu.deployment("dev")["status"] == "HEALTHY"
    with pytest.raises(ValueError, match="development"):
        emu.update_deployment(DEMO_DEPLOYMENT_ID, hibernating=True)


def test_hibernation_overrides_need_a_development_deployment(
    emu: Emulator, api: httpx.Client
) -> None:
    error = assert_error(
        api.post(override_path(DEMO_DEPLOYMENT_ID), json={"isHibernating": False}), 400
    )
    assert "development" in error["message"]
    assert_error(api.delete(override_path(DEMO_DEPLOYMENT_ID)), 400)
    assert emu.hibernation_override(DEMO_DEPLOYMENT_ID) is None
    assert emu.deployment(DEMO_DEPLOYMENT_ID)["status"] == "HEALTHY"
    assert_error(api.post(override_path("nope"), json={"isHibernating": False}), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "isHibernating"),
        ({"isHibernating": None}, "isHibernating"),
        ({"isHibernating": "no"}, "isHibernating"),
        ({"isHibernating": False, "overrideUntil": "tomorrow"}, "overrideUntil"),
        ({"isHibernating": False, "overrideUntil": "2099-01-01"}, "overrideUntil"),
        ({"isHibernating": False, "overrideUntil": "2020-01-01T00:00:00Z"}, "overrideUntil"),
        ({"isHibernating": False, "until": "2099-01-01T00:00:00Z"}, "until"),
    ],
    ids=["missing", "null", "string", "not-a-time", "no-time", "past", "unknown-field"],
)
def test_invalid_hibernation_overrides_are_400(
    emu: Emulator, api: httpx.Client, body: dict[str, Any], field: str
) -> None:
    emu.add_deployment("dev", isDevelopmentMode=True, hibernating=True)
    error = assert_error(api.post(override_path("dev"), json=body), 400)
    assert [e["field"] for e in error["fieldErrors"]] == [field]
    assert emu.hibernation_override("dev") is None
    assert emu.deployment("dev")["status"] == "HIBERNATING"


def test_a_deploy_to_a_hibernating_deployment_rolls_out_while_it_sleeps(
    emu: Emulator, api: httpx.Client
) -> None:
    emu.add_deployment("dev", isDevelopmentMode=True, hibernating=True)
    _, version = deploy_dags(api, deployment_id="dev")
    rolling = api.get("dev").json()
    assert rolling["status"] == "HIBERNATING"
    assert rolling["desiredDagTarballVersion"] == version != rolling["dagTarballVersion"]
    done = settled(emu, "dev")
    assert done["status"] == "HIBERNATING"
    assert done["dagTarballVersion"] == version


def test_a_deploy_while_waking_up_becomes_the_rollout(emu: Emulator, api: httpx.Client) -> None:
    emu.add_deployment("dev", isDevelopmentMode=True, hibernating=True)
    assert api.post(override_path("dev"), json={"isHibernating": False}).status_code == 200
    _, version = deploy_dags(api, deployment_id="dev")
    assert api.get("dev").json()["status"] == "DEPLOYING"
    done = settled(emu, "dev")
    assert done["status"] == "HEALTHY"
    assert done["dagTarballVersion"] == version


# -- Deployment logs --------------------------------------------------------------------


DAY_1, DAY_2 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00+00:00"


def logs_path(deployment_id: str = DEMO_DEPLOYMENT_ID) -> str:
    return f"{deployment_id}/logs"


def get_logs(api: httpx.Client, params: Any, deployment_id: str = DEMO_DEPLOYMENT_ID) -> Any:
    response = api.get(logs_path(deployment_id), params=params)
    assert response.status_code == 200, response.text
    return response.json()


def raws(page: dict[str, Any]) -> list[str]:
    return [entry["raw"] for entry in page["results"]]


def test_logs_filter_by_source_time_and_text(emu: Emulator, api: httpx.Client) -> None:
    now = datetime.now(UTC)
    emu.add_log(DEMO_DEPLOYMENT_ID, "scheduler", "old scheduler line", at=now - timedelta(hours=2))
    emu.add_log(
        DEMO_DEPLOYMENT_ID, "scheduler", "Scheduler heartbeat", at=now - timedelta(minutes=10)
    )
    emu.add_log(
        DEMO_DEPLOYMENT_ID, "dag-processor", "Processing dags/a.py", at=now - timedelta(minutes=5)
    )
    emu.add_log(DEMO_DEPLOYMENT_ID, "worker", "Task finished with ERROR")

    page = get_logs(api, {"sources": "scheduler"})
    assert raws(page) == ["Scheduler heartbeat"], "the last hour by default"
    assert (page["limit"], page["maxNumResults"], page["offset"], page["resultCount"]) == (
        500,
        10000,
        0,
        1,
    )
    assert page["searchId"]
    [entry] = page["results"]
    assert entry["source"] == "scheduler"
    assert entry["timestamp"] == pytest.approx((now - timedelta(minutes=10)).timestamp())

    both = [("sources", "dag-processor"), ("sources", "scheduler")]
    assert raws(get_logs(api, both)) == ["Scheduler heartbeat", "Processing dags/a.py"]
    assert raws(get_logs(api, [*both, ("range", 3 * 3600)]))[0] == "old scheduler line"
    assert raws(get_logs(api, [*both, ("range", 60)])) == []
    window = {
        "sources": "scheduler",
        "startDate": rfc3339(now - timedelta(hours=3)),
        "endDate": rfc3339(now - timedelta(hours=1)),
    }
    assert raws(get_logs(api, window)) == ["old scheduler line"]
    every = [("sources", source) for source in ("scheduler", "dag-processor", "worker")]
    assert raws(get_logs(api, [*every, ("searchText", "ERROR")])) == ["Task finished with ERROR"]
    assert raws(get_logs(api, [*every, ("searchText", "heartbeat")])) == ["Scheduler heartbeat"]
    assert len(emu.logs(DEMO_DEPLOYMENT_ID)) == 4


def test_logs_pages(emu: Emulator, api: httpx.Client) -> None:
    start = datetime.now(UTC) - timedelta(minutes=1)
    for number in range(5):
        emu.add_log(
            DEMO_DEPLOYMENT_ID, "triggerer", f"line {number}", at=start + timedelta(seconds=number)
        )
    page = get_logs(api, {"sources": "triggerer", "limit": 2, "offset": 2, "searchId": "s-1"})
    assert raws(page) == ["line 2", "line 3"]
    assert (page["resultCount"], page["searchId"]) == (2, "s-1")
    capped = get_logs(api, {"sources": "triggerer", "maxNumResults": 3, "offset": 2})
    assert raws(capped) == ["line 2"]


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({}, ["sources"]),
        ({"sources": "airflow"}, ["sources"]),
        ({"sources": "worker", "limit": 0}, ["limit"]),
        ({"sources": "worker", "range": 59}, ["range"]),
        ({"sources": "worker", "offset": -1, "maxNumResults": 0}, ["offset", "maxNumResults"]),
        ({"sources": "worker", "startDate": DAY_2}, ["endDate"]),
        ({"sources": "worker", "startDate": "yesterday", "endDate": DAY_2}, ["startDate"]),
        ({"sources": "worker", "startDate": DAY_2, "endDate": DAY_1}, ["endDate"]),
    ],
    ids=["no-source", "bad-source", "limit", "range", "paging", "alone", "bad-date", "reversed"],
)
def test_bad_log_queries_are_400(
    api: httpx.Client, params: dict[str, Any], fields: list[str]
) -> None:
    error = assert_error(api.get(logs_path(), params=params), 400)
    assert [e["field"] for e in error["fieldErrors"]] == fields


def test_logs_can_be_unavailable_like_an_api_without_them(emu: Emulator, api: httpx.Client) -> None:
    emu.add_deployment("other")
    emu.logs_available = False
    assert_error(api.get(logs_path(), params={"sources": "scheduler"}), 404)
    emu.logs_available = True
    emu.update_deployment("other", logs_available=False)
    error = assert_error(api.get(logs_path("other"), params={"sources": "scheduler"}), 404)
    assert "no API route" in error["message"]
    assert get_logs(api, {"sources": "scheduler"})["results"] == []
    emu.update_deployment("other", logs_available=None)
    assert get_logs(api, {"sources": "scheduler"}, "other")["results"] == []
    assert_error(api.get(logs_path("nope"), params={"sources": "scheduler"}), 404)


def test_add_log_checks_the_source_and_the_deployment(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="dag-processor"):
        emu.add_log(DEMO_DEPLOYMENT_ID, "dagprocessor", "x")
    with pytest.raises(KeyError):
        emu.add_log("nope", "scheduler", "x")


def test_import_errors_are_logged_after_each_finalize(emu: Emulator, api: httpx.Client) -> None:
    emu.import_errors_after_finalize = ["dags/broken.py"]
    emu.import_errors_after_finalize.append("/usr/local/airflow/dags/sub/other.py")
    create(api)
    assert emu.logs(DEMO_DEPLOYMENT_ID) == [], "only a finalize logs them"
    before = emu.wall_clock()
    deploy_dags(api)
    after = emu.wall_clock()
    entries = emu.logs(DEMO_DEPLOYMENT_ID)
    assert [e["source"] for e in entries] == ["dag-processor"] * 2
    assert entries[0]["raw"].startswith(
        "Broken DAG: [/usr/local/airflow/dags/broken.py] Traceback (most recent call last):"
    )
    assert entries[0]["raw"].endswith("SyntaxError: invalid syntax")
    assert entries[1]["raw"].startswith("Broken DAG: [/usr/local/airflow/dags/sub/other.py]")
    assert all(before <= e["timestamp"] <= after + 0.01 for e in entries)
    page = get_logs(
        api,
        {
            "sources": "dag-processor",
            "startDate": datetime.fromtimestamp(before - 1, UTC).isoformat(),
            "endDate": datetime.fromtimestamp(after + 1, UTC).isoformat(),
            "searchText": "Broken DAG",
        },
    )
    assert page["results"] == entries

    deploy_image(emu, api, "IMAGE_ONLY")
    assert len(emu.logs(DEMO_DEPLOYMENT_ID)) == 4, "again on the next finalize"
    emu.import_errors_after_finalize = []
    deploy_dags(api)
    assert len(emu.logs(DEMO_DEPLOYMENT_ID)) == 4


# -- faults and recording -------------------------------------------------------------


def test_status_faults_answer_without_processing(emu: Emulator, api: httpx.Client) -> None:
    emu.faults.add("POST", r"/deploys$", 503, count=2, retry_after="7")
    for _ in range(2):
        response = api.post(deploys_path(), json={"type": "DAG_ONLY"})
        assert_error(response, 503)
        assert response.headers["retry-after"] == "7"
    assert len(emu.deploys(DEMO_DEPLOYMENT_ID)) == 1
    assert emu.faults.pending == 0
    create(api)
    assert len(emu.deploys(DEMO_DEPLOYMENT_ID)) == 2
    assert [r.method for r in emu.requests if r.path.endswith("/deploys")] == ["POST"] * 3


def test_a_fault_matches_method_and_path(emu: Emulator, api: httpx.Client) -> None:
    emu.faults.add("POST", r"/finalize$", 500, body={"custom": True})
    assert api.get(DEMO_DEPLOYMENT_ID).status_code == 200
    deploy = create(api)
    response = finalize(api, deploy["id"])
    assert response.status_code == 500
    assert response.json() == {"custom": True}
    assert "retry-after" not in response.headers


def test_blob_faults_answer_in_azure_xml(emu: Emulator, api: httpx.Client) -> None:
    emu.faults.add("PUT", r"^/blob/", 503, retry_after="1")
    url = create(api)["dagsUploadUrl"]
    response = httpx.put(url, content=b"x", headers={"x-ms-blob-type": "BlockBlob"})
    assert_azure_error(response, 503, "ServerBusy")
    assert response.headers["retry-after"] == "1"
    assert emu.blobs == {}
    assert upload(url, b"x") in emu.blobs


def test_a_dropped_answer_is_a_transport_error_after_processing(
    emu: Emulator, api: httpx.Client
) -> None:
    emu.faults.add_drop("POST", r"/deploys$")
    with pytest.raises(httpx.TransportError):
        api.post(deploys_path(), json={"type": "DAG_ONLY", "description": "lost answer"})
    assert emu.deploys(DEMO_DEPLOYMENT_ID)[-1]["description"] == "lost answer"
    assert api.get(DEMO_DEPLOYMENT_ID).status_code == 200


def test_a_drop_before_processing_changes_nothing_and_looks_like_a_lost_answer(
    emu: Emulator, api: httpx.Client
) -> None:
    emu.faults.add_drop("POST", r"/deploys$", processed=False)
    emu.faults.add_drop("POST", r"/deploys$")
    with pytest.raises(httpx.TransportError) as before:
        api.post(deploys_path(), json={"type": "DAG_ONLY", "description": "never made"})
    assert len(emu.deploys(DEMO_DEPLOYMENT_ID)) == 1, "not processed"
    with pytest.raises(httpx.TransportError) as after:
        api.post(deploys_path(), json={"type": "DAG_ONLY", "description": "lost answer"})
    assert [d["description"] for d in emu.deploys(DEMO_DEPLOYMENT_ID)][1:] == ["lost answer"]
    assert type(before.value) is type(after.value), "the client cannot tell them apart"
    assert emu.faults.pending == 0
    assert len([r for r in emu.requests if r.path.endswith("/deploys")]) == 2


def test_a_late_request_is_processed_only_when_its_release_arrives(
    emu: Emulator, api: httpx.Client
) -> None:
    emu.faults.add_late("POST", r"/deploys$", until=("GET", r"/deploys$"))
    with pytest.raises(httpx.TransportError):
        api.post(deploys_path(), json={"type": "DAG_ONLY", "description": "late"})
    assert len(emu.deploys(DEMO_DEPLOYMENT_ID)) == 1, "not processed yet"
    listed = api.get(deploys_path()).json()["deploys"]
    assert "late" in [d.get("description") for d in listed], "processed before the GET"
    assert emu.faults.pending == 0
    api.get(deploys_path())
    assert len(emu.deploys(DEMO_DEPLOYMENT_ID)) == 2, "processed once"


def test_a_slow_answer_is_processed_at_once_and_sent_late(emu: Emulator, api: httpx.Client) -> None:
    emu.faults.add_slow("POST", r"/deploys$", 2.0)
    emu.faults.add_slow("GET", r"/deploys$", 0.3)
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        api.post(deploys_path(), json={"type": "DAG_ONLY", "description": "slow"}, timeout=0.2)
    assert time.monotonic() - started < 1.5, "the client gave up before the answer"
    assert emu.deploys(DEMO_DEPLOYMENT_ID)[-1]["description"] == "slow", "processed at once"
    started = time.monotonic()
    response = api.get(deploys_path())
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200 and response.json()["totalCount"] == 2
    assert emu.faults.pending == 0
    assert api.get(deploys_path()).status_code == 200, "the next answer is on time"


@pytest.mark.parametrize("seconds", [0, -1, 10.5])
def test_slow_faults_are_bounded(emu: Emulator, seconds: float) -> None:
    with pytest.raises(ValueError, match="seconds"):
        emu.faults.add_slow("GET", ".", seconds)
    assert emu.faults.pending == 0


def test_stop_does_not_wait_for_a_slow_answer() -> None:
    emulator = Emulator(rollout_seconds=0).start()
    emulator.faults.add_slow("GET", r"/deployments/", 10)
    url = f"{emulator.api_url}/organizations/{emulator.organization_id}/deployments/"
    outcome: queue.Queue[BaseException | int] = queue.Queue()

    def get() -> None:
        try:
            headers = {"Authorization": f"Bearer {emulator.token}"}
            outcome.put(httpx.get(url + DEMO_DEPLOYMENT_ID, headers=headers, timeout=8).status_code)
        except httpx.HTTPError as exc:
            outcome.put(exc)

    threading.Thread(target=get, daemon=True).start()
    deadline = time.monotonic() + 5
    while not emulator.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert emulator.requests, "the request arrived"
    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 2
    assert isinstance(outcome.get(timeout=2), httpx.TransportError), "closed, not answered"


def test_a_rule_after_another_request_is_armed_only_once_that_arrived(
    emu: Emulator, api: httpx.Client
) -> None:
    emu.faults.add("GET", r"/deployments/[^/]+$", 500, after=("POST", r"/finalize$"))
    emu.faults.add_drop("GET", r"/deploys$", processed=False, after=("post", r"/rollback$"))
    emu.faults.add_slow("GET", r"/deployments/[^/]+$", 0.2, after=("POST", r"/rollback$"))
    assert api.get(DEMO_DEPLOYMENT_ID).status_code == 200, "not armed before the finalize"
    assert api.get(deploys_path()).status_code == 200
    assert emu.faults.pending == 3, "unarmed rules are pending"
    deploy_dags(api)
    assert_error(api.get(DEMO_DEPLOYMENT_ID), 500)
    assert api.get(DEMO_DEPLOYMENT_ID).status_code == 200, "count=1: once"
    settled(emu)
    assert emu.faults.pending == 2
    seeded = emu.deploys(DEMO_DEPLOYMENT_ID)[0]
    assert rollback(api, seeded["id"]).status_code == 200
    with pytest.raises(httpx.TransportError):
        api.get(deploys_path())
    started = time.monotonic()
    assert api.get(DEMO_DEPLOYMENT_ID).status_code == 200
    assert time.monotonic() - started >= 0.2
    assert emu.faults.pending == 0


def test_the_request_that_arms_a_rule_is_not_taken_by_it(emu: Emulator, api: httpx.Client) -> None:
    emu.faults.add("POST", r"/deploys$", 503, after=("POST", r"/deploys$"))
    create(api)
    assert_error(api.post(deploys_path(), json={"type": "DAG_ONLY"}), 503)
    create(api)
    assert emu.faults.pending == 0
    assert len(emu.deploys(DEMO_DEPLOYMENT_ID)) == 3


def test_requests_are_recorded(emu: Emulator, api: httpx.Client) -> None:
    api.get(deploys_path(), params={"limit": 5})
    deploy = create(api, description="recorded")
    url = deploy["dagsUploadUrl"]
    upload(url, b"payload")
    listing, creation, blob = emu.requests
    assert (listing.method, listing.path, listing.query) == (
        "GET",
        f"/v1/organizations/{DEMO_ORGANIZATION_ID}/deployments/{DEMO_DEPLOYMENT_ID}/deploys",
        "limit=5",
    )
    assert creation.headers["authorization"] == f"Bearer {emu.token}"
    assert creation.headers["content-type"] == "application/json"
    assert creation.json() == {"type": "DAG_ONLY", "description": "recorded"}
    assert (blob.method, blob.path, blob.body) == ("PUT", urlsplit(url).path, b"payload")
    assert blob.query == urlsplit(url).query
    assert "authorization" not in blob.headers


def test_concurrent_creates_get_distinct_ordered_deploys(emu: Emulator) -> None:
    url = f"{emu.api_url}/organizations/{emu.organization_id}/deployments/{emu.deployment_id}"
    headers = {"Authorization": f"Bearer {emu.token}"}
    statuses: list[int] = []

    def create_one() -> None:
        response = httpx.post(f"{url}/deploys", json={"type": "DAG_ONLY"}, headers=headers)
        statuses.append(response.status_code)

    threads = [threading.Thread(target=create_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert statuses == [200] * 8
    deploys = emu.deploys(DEMO_DEPLOYMENT_ID)
    assert len({d["id"] for d in deploys}) == 9
    stamps = [d["createdAt"] for d in deploys]
    assert stamps == sorted(set(stamps))


# -- the spec -------------------------------------------------------------------------


@dataclass
class SpecRequest:
    """An openapi-core request as the real API would have seen it."""

    method: str
    path: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters
    host_url: str = "https://api.astronomer.io"


@dataclass
class SpecResponse:
    status_code: int
    content_type: str
    headers: Headers
    data: bytes


def assert_response_matches_spec(response: httpx.Response) -> None:
    """Fail unless the answer is one the spec allows for the request (see ``tests.spec``)."""
    request = response.request
    openapi().validate_response(
        SpecRequest(
            method=request.method.lower(),
            path=request.url.path,
            body=request.content or None,
            content_type=request.headers.get("content-type", ""),
            parameters=RequestParameters(
                query=ImmutableMultiDict(list(request.url.params.multi_items())),
                header=Headers(dict(request.headers)),
            ),
        ),
        SpecResponse(
            response.status_code,
            response.headers.get("content-type", ""),
            Headers(dict(response.headers)),
            response.content,
        ),
    )


def test_responses_match_the_api_spec(emu: Emulator, api: httpx.Client) -> None:
    [seeded] = emu.deploys(DEMO_DEPLOYMENT_ID)
    deploy = create(api, git=GIT, description="spec")
    version = upload(deploy["dagsUploadUrl"], b"x")
    responses = [
        api.get(DEMO_DEPLOYMENT_ID),
        api.get(deploys_path(), params={"limit": 10}),
        api.post(deploys_path(), json={"type": "IMAGE_AND_DAG", "git": GIT}),
        api.get(f"{deploys_path()}/{deploy['id']}"),
        finalize(api, deploy["id"], dagTarballVersion=version),
        api.post(f"{deploys_path()}/{seeded['id']}/rollback", json={}),
        api.post(deploys_path(), json={"type": "WRONG"}),
        api.get("unknown-deployment"),
    ]
    for response in responses:
        assert response.status_code in (200, 400, 404)
        assert_response_matches_spec(response)


def test_new_operations_match_the_api_spec(emu: Emulator, api: httpx.Client) -> None:
    """ListDeployments, hibernation overrides, logs, image finalizes and rollbacks."""

    def check(status: int, response: httpx.Response) -> Any:
        assert response.status_code == status, response.text
        assert_response_matches_spec(response)
        return response.json() if response.content else None

    emu.add_deployment("dev", isDevelopmentMode=True, hibernating=True, workspaceId="ws-2")
    emu.add_log(DEMO_DEPLOYMENT_ID, "scheduler", "heartbeat")
    emu.import_errors_after_finalize = ["dags/broken.py"]
    until = rfc3339(datetime.now(UTC) + timedelta(hours=1))

    check(200, list_deployments(emu, api))
    check(200, list_deployments(emu, api, [("names", "dev"), ("workspaceIds", "ws-2")]))
    check(200, list_deployments(emu, api, {"sorts": "createdAt:desc", "offset": 1, "limit": 1}))
    check(400, list_deployments(emu, api, {"limit": -1}))

    check(200, api.get("dev"))
    wake = {"isHibernating": False, "overrideUntil": until}
    check(200, api.post(override_path("dev"), json=wake))
    assert "override" in check(200, api.get("dev"))["scalingSpec"]["hibernationSpec"]
    check(200, api.post(override_path("dev"), json={"isHibernating": True}))
    check(400, api.post(override_path("dev"), json={}))
    check(400, api.post(override_path(DEMO_DEPLOYMENT_ID), json={"isHibernating": False}))
    check(204, api.delete(override_path("dev")))
    check(400, api.delete(override_path(DEMO_DEPLOYMENT_ID)))

    image = create(api, type="IMAGE_ONLY")
    check(400, finalize(api, image["id"], dagTarballVersion=""))
    push(emu, image)
    check(200, finalize(api, image["id"], dagTarballVersion=""))

    sources = {"sources": ["scheduler", "dag-processor"]}
    assert check(200, api.get(logs_path(), params=sources))["resultCount"] == 2
    check(400, api.get(logs_path(), params={"sources": "worker", "startDate": until}))

    [seeded, *_] = emu.deploys(DEMO_DEPLOYMENT_ID)
    emu.update_deploy(DEMO_DEPLOYMENT_ID, seeded["id"], createdAt="2020-01-01T00:00:00Z")
    check(400, rollback(api, seeded["id"]))
    check(200, rollback(api, image["id"]))


# -- serve() --------------------------------------------------------------------------


def test_serve_prints_how_to_connect_and_stops_on_sigterm() -> None:
    code = "import sys; from ci_deploy_testkit.emulator import serve; sys.exit(serve(port=0))"
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    printed: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            printed.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        lines: dict[str, str] = {}
        while "token" not in lines:
            name, _, value = printed.get(timeout=10).strip().partition(": ")
            lines[name] = value
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", lines["api-url"])
        assert lines["organization-id"] == DEMO_ORGANIZATION_ID
        assert lines["deployment-id"] == DEMO_DEPLOYMENT_ID
        assert lines["token"] == make_token(DEMO_ORGANIZATION_ID)
        url = f"{lines['api-url']}/organizations/{DEMO_ORGANIZATION_ID}/deployments/"
        response = httpx.get(
            url + DEMO_DEPLOYMENT_ID, headers={"Authorization": f"Bearer {lines['token']}"}
        )
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stderr is not None
        log = process.stderr.read()
        assert f"GET /v1/organizations/{DEMO_ORGANIZATION_ID}" in log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


# --- CreateDeployment, DeleteDeployment ------------------------------------------------------

NEW_DEPLOYMENT = {
    "type": "STANDARD",
    "name": "analytics PR #3 abc123",
    "workspaceId": "emulator-workspace",
    "description": "a preview [ci-deploy-preview:acme/airflow#3]",
    "cloudProvider": "AWS",
    "region": "us-east-1",
    "executor": "ASTRO",
    "astroRuntimeVersion": "3.0-2",
    "isDevelopmentMode": True,
    "isHighAvailability": False,
    "workerQueues": [
        {
            "name": "default",
            "isDefault": True,
            "astroMachine": "A10",
            "minWorkerCount": 0,
            "maxWorkerCount": 4,
            "workerConcurrency": 8,
        }
    ],
    "environmentVariables": [
        {"key": "PLAIN", "isSecret": False, "value": "1"},
        {"key": "PASSWORD", "isSecret": True, "value": "s3cret"},
    ],
}


def deployments_url(emu: Emulator) -> str:
    return f"{emu.api_url}/organizations/{emu.organization_id}/deployments"


def test_a_created_deployment_is_creating_then_healthy_and_takes_deploys_only_then(
    emu: Emulator, api: httpx.Client
) -> None:
    response = api.post(deployments_url(emu), json=NEW_DEPLOYMENT)
    assert response.status_code == 200, response.text
    made = response.json()
    assert made["status"] == "CREATING"
    assert (made["name"], made["description"]) == (
        NEW_DEPLOYMENT["name"],
        NEW_DEPLOYMENT["description"],
    )
    assert (made["runtimeVersion"], made["executor"], made["isDevelopmentMode"]) == (
        "3.0-2",
        "ASTRO",
        True,
    )
    assert made["workerQueues"][0]["astroMachine"] == "A10"
    assert made["dagTarballVersion"] == ""
    assert emu.deploys(made["id"]) == []

    refused = api.post(deploys_path(made["id"]), json={"type": "DAG_ONLY"})
    assert refused.status_code == 400
    assert "still being created" in refused.json()["message"]

    ready = wait_for(emu, lambda: api.get(made["id"]).json(), lambda d: d["status"] != "CREATING")
    assert ready["status"] == "HEALTHY"
    assert create(api, made["id"])["status"] == "INITIALIZED"


def test_a_secret_variables_value_is_never_returned(emu: Emulator, api: httpx.Client) -> None:
    made = api.post(deployments_url(emu), json=NEW_DEPLOYMENT).json()
    for view in (made, api.get(made["id"]).json()):
        variables = {v["key"]: v for v in view["environmentVariables"]}
        assert variables["PLAIN"]["value"] == "1"
        assert variables["PASSWORD"]["isSecret"] is True
        assert "value" not in variables["PASSWORD"]
    assert "s3cret" not in json.dumps(api.get(made["id"]).json())


def test_created_deployments_are_listed_by_workspace(emu: Emulator, api: httpx.Client) -> None:
    other = {**NEW_DEPLOYMENT, "name": "elsewhere", "workspaceId": "other-workspace"}
    made = api.post(deployments_url(emu), json=NEW_DEPLOYMENT).json()
    api.post(deployments_url(emu), json=other)
    listed = api.get(
        deployments_url(emu), params={"workspaceIds": "emulator-workspace", "limit": 100}
    ).json()
    ids = [d["id"] for d in listed["deployments"]]
    assert made["id"] in ids
    assert all(d["workspaceId"] == "emulator-workspace" for d in listed["deployments"])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"type": "HYBRID"}, "type"),
        ({"region": None}, "body"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_a_bad_create_body_is_a_400_naming_the_field(
    emu: Emulator, api: httpx.Client, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**NEW_DEPLOYMENT, **change}.items() if v is not None}
    response = api.post(deployments_url(emu), json=body)
    assert response.status_code == 400
    if field != "body":
        assert field in {e["field"] for e in response.json()["fieldErrors"]}
    assert len(emu.deployments()) == 1


def test_delete_removes_a_deployment_and_a_second_delete_is_a_404(
    emu: Emulator, api: httpx.Client
) -> None:
    made = api.post(deployments_url(emu), json=NEW_DEPLOYMENT).json()
    assert api.delete(made["id"]).status_code == 204
    assert api.get(made["id"]).status_code == 404
    assert api.delete(made["id"]).status_code == 404
    assert [d["id"] for d in emu.deployments()] == [DEMO_DEPLOYMENT_ID]
