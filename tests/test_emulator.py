"""The emulator, over real HTTP: the Astro API calls of a deploy, the blob host, faults."""

from __future__ import annotations

import base64
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
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from ci_deploy.emulator import (
    DEMO_DEPLOYMENT_ID,
    DEMO_ORGANIZATION_ID,
    Emulator,
    make_token,
)
from tests.spec import openapi

VERSION_ID = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
CREATED_AT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
SHA = "0123456789abcdef0123456789abcdef01234567"
GIT = {"provider": "GITHUB", "account": "acme", "repo": "airflow", "commitSha": SHA}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(rollout_seconds=0.2) as emulator:
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


def finalize(api: httpx.Client, deploy_id: str, **body: Any) -> httpx.Response:
    return api.post(f"{deploys_path()}/{deploy_id}/finalize", json=body)


def wait_for(read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool]) -> Any:
    """Poll ``read`` until ``done`` holds; fail after 5 seconds."""
    deadline = time.monotonic() + 5
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"still not done: {value}"
        time.sleep(0.02)


def deploy_dags(api: httpx.Client, data: bytes = b"dags") -> tuple[Any, str]:
    """Create, upload and finalize a DAG_ONLY deploy; returns the finalized deploy, version."""
    deploy = create(api, git=GIT)
    version = upload(deploy["dagsUploadUrl"], data)
    response = finalize(api, deploy["id"], dagTarballVersion=version)
    assert response.status_code == 200, response.text
    return response.json(), version


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
    assert deployment["imageRepository"] == f"127.0.0.1:{emu.port}/{DEMO_DEPLOYMENT_ID}"
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
    assert_error(api.delete(DEMO_DEPLOYMENT_ID), 405)
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
    finalized = api.post(f"{deploys_path('no-dags')}/{image['id']}/finalize", json={})
    assert finalized.json()["status"] == "DEPLOYED"
    deployment = wait_for(lambda: emu.deployment("no-dags"), lambda d: d["status"] == "HEALTHY")
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
        lambda: api.get(DEMO_DEPLOYMENT_ID).json(), lambda d: d["status"] != "DEPLOYING"
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
    deploy = create(api, type="IMAGE_ONLY")
    assert_error(finalize(api, deploy["id"], dagTarballVersion="x"), 400)
    assert finalize(api, deploy["id"], dagTarballVersion="").status_code == 200
    done = wait_for(lambda: emu.deployment(DEMO_DEPLOYMENT_ID), lambda d: d["status"] == "HEALTHY")
    assert done["imageTag"] == deploy["imageTag"]


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
        lambda: api.get(DEMO_DEPLOYMENT_ID).json(), lambda d: d["status"] != "DEPLOYING"
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
    wait_for(lambda: emu.deployment(DEMO_DEPLOYMENT_ID), lambda d: d["status"] == "HEALTHY")

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
    done = wait_for(lambda: emu.deployment(DEMO_DEPLOYMENT_ID), lambda d: d["status"] == "HEALTHY")
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
            response.headers["content-type"],
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


# -- serve() --------------------------------------------------------------------------


def test_serve_prints_how_to_connect_and_stops_on_sigterm() -> None:
    code = "import sys; from ci_deploy.emulator import serve; sys.exit(serve(port=0))"
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
