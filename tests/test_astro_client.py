"""AstroClient against respx: paths, queries, bodies, headers, paging, errors and retries.

Every request the client sends goes through :class:`FakeApi`'s transport, which checks it
against the Astro API spec (tests/spec.py) before respx answers it. Each test runs against
the production base URL and a loopback ``http`` URL without a base path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from ci_deploy import __version__
from ci_deploy.astro.client import LOG_PAGE_SIZE, LOG_PAGES, AstroClient
from ci_deploy.astro.wire import (
    CreateDeployRequest,
    FinalizeDeployRequest,
    GitInfo,
    HibernationOverrideRequest,
    RollbackRequest,
)
from ci_deploy.errors import (
    ApiAmbiguousError,
    ApiError,
    ApiUnavailableError,
    AuthError,
    NotFoundError,
)
from tests.spec import assert_httpx_request_matches_spec, assert_request_matches_spec

TOKEN = "eyJhbGciOi.sEcReT-ToKeN.x9"
ORG = "org-1"
DEP = "dep-1"
SAS = "https://blob.example/c/dags.tar.gz?sv=2023-11-03&sig=SAS-SIGNATURE"
DEPLOYMENTS = "/organizations/org-1/deployments"
DEPLOYMENT = DEPLOYMENTS + "/dep-1"
DEPLOYS = DEPLOYMENT + "/deploys"
LOGS = DEPLOYMENT + "/logs"
OVERRIDE = DEPLOYMENT + "/hibernation-override"
AMBIGUOUS = "The API may or may not have processed the request, so it was not retried:"


@dataclass
class FakeApi:
    """A respx router behind a transport that validates each request against the spec."""

    url: str
    router: respx.MockRouter
    sleeps: list[float] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)
    sent: list[httpx.Request] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        assert_httpx_request_matches_spec(request, self.url)
        return self.router.handler(request)

    def client(self, **kwargs: Any) -> AstroClient:
        kwargs.setdefault("sleep", self.sleeps.append)
        kwargs.setdefault("on_retry", self.retries.append)
        return AstroClient(
            self.url, TOKEN, ORG, transport=httpx.MockTransport(self.handle), **kwargs
        )


@pytest.fixture(params=["https://api.astronomer.io/v1", "http://127.0.0.1:8765"])
def api(request: pytest.FixtureRequest) -> Iterator[FakeApi]:
    url: str = request.param
    router = respx.MockRouter(base_url=url, assert_all_called=False)
    yield FakeApi(url, router)


@pytest.fixture
def client(api: FakeApi) -> Iterator[AstroClient]:
    with api.client() as astro:
        yield astro


def deployment_json(**extra: Any) -> dict[str, Any]:
    return {
        "id": DEP,
        "name": "prod",
        "organizationId": ORG,
        "workspaceId": "ws-1",
        "status": "HEALTHY",
        "isDagDeployEnabled": True,
        "dagTarballVersion": "v1",
        "desiredDagTarballVersion": "v1",
        **extra,
    }


def deploy_json(deploy_id: str = "deploy-1", **extra: Any) -> dict[str, Any]:
    return {
        "id": deploy_id,
        "deploymentId": DEP,
        "type": "DAG_ONLY",
        "status": "INITIALIZED",
        "createdAt": "2024-05-01T10:00:00Z",
        **extra,
    }


def error_json(status: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"message": message, "requestId": "req-42", "statusCode": status, **extra}


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


def facts(error: ApiError) -> tuple[int, str, str]:
    return error.status_code, error.request_id, error.operation


def assert_no_token(*texts: object) -> None:
    for text in texts:
        assert TOKEN not in str(text)
        assert "sEcReT" not in str(text)


# -- requests ---------------------------------------------------------------------------


def test_get_deployment_path_and_headers(api: FakeApi) -> None:
    route = api.router.get(DEPLOYMENT).respond(json=deployment_json())
    with api.client(client_identifier="github-action") as client:
        deployment = client.get_deployment(DEP)
    assert deployment.id == DEP
    assert deployment.isDagDeployEnabled
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["User-Agent"] == f"ci-deploy/{__version__}"
    assert request.headers["X-Astro-Client-Identifier"] == "github-action"
    assert request.headers["X-Astro-Client-Version"] == __version__
    assert "Content-Type" not in request.headers
    assert request.content == b""
    timeout = {"connect": 10, "read": 30.0, "write": 30.0, "pool": 30.0}
    assert request.extensions["timeout"] == timeout


def test_default_client_identifier(api: FakeApi, client: AstroClient) -> None:
    route = api.router.get(DEPLOYMENT).respond(json=deployment_json())
    client.get_deployment(DEP)
    assert route.calls.last.request.headers["X-Astro-Client-Identifier"] == "ci-deploy"


def test_trailing_slash_and_quoted_path_segments(api: FakeApi) -> None:
    route = api.router.route().respond(json=deployment_json(id="dep?/2"))
    transport = httpx.MockTransport(api.handle)
    with AstroClient(api.url + "/", TOKEN, "org/1 x", transport=transport) as client:
        assert client.api_url == api.url
        assert client.get_deployment("dep?/2").id == "dep?/2"
    path = route.calls.last.request.url.raw_path.decode()
    assert path.endswith("/organizations/org%2F1%20x/deployments/dep%3F%2F2")
    assert "//" not in path


def test_create_deploy_sends_the_model_without_nones(api: FakeApi, client: AstroClient) -> None:
    route = api.router.post(DEPLOYS).respond(json=deploy_json(dagsUploadUrl=SAS))
    request = CreateDeployRequest(
        type="DAG_ONLY",
        description="Deploy abc123",
        git=GitInfo(provider="GITHUB", commitSha="abc123", account="acme", repo="dags"),
    )
    deploy = client.create_deploy(DEP, request)
    assert deploy.id == "deploy-1"
    assert deploy.dagsUploadUrl == SAS
    sent = route.calls.last.request
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"
    assert body_of(sent) == {
        "type": "DAG_ONLY",
        "description": "Deploy abc123",
        "git": {"provider": "GITHUB", "commitSha": "abc123", "account": "acme", "repo": "dags"},
    }


def test_get_deploy(api: FakeApi, client: AstroClient) -> None:
    route = api.router.get(DEPLOYS + "/deploy-7").respond(json=deploy_json("deploy-7"))
    assert client.get_deploy(DEP, "deploy-7").id == "deploy-7"
    assert route.called


def test_finalize_deploy_keeps_an_empty_version(api: FakeApi, client: AstroClient) -> None:
    route = api.router.post(DEPLOYS + "/deploy-1/finalize").respond(
        json=deploy_json(status="DEPLOYED", dagTarballVersion="v2")
    )
    deploy = client.finalize_deploy(DEP, "deploy-1", FinalizeDeployRequest(dagTarballVersion="v2"))
    assert deploy.status == "DEPLOYED"
    assert body_of(route.calls.last.request) == {"dagTarballVersion": "v2"}
    client.finalize_deploy(DEP, "deploy-1", FinalizeDeployRequest(dagTarballVersion=""))
    assert body_of(route.calls.last.request) == {"dagTarballVersion": ""}
    client.finalize_deploy(DEP, "deploy-1", FinalizeDeployRequest())
    assert body_of(route.calls.last.request) == {}


def test_rollback_sends_a_body(api: FakeApi, client: AstroClient) -> None:
    route = api.router.post(DEPLOYS + "/deploy-1/rollback").respond(
        json=deploy_json("deploy-9", rollbackFromId="deploy-1", status="DEPLOYED")
    )
    deploy = client.rollback_deploy(DEP, "deploy-1", RollbackRequest())
    assert deploy.rollbackFromId == "deploy-1"
    assert body_of(route.calls.last.request) == {}
    client.rollback_deploy(DEP, "deploy-1", RollbackRequest(description="bad DAG"))
    assert body_of(route.calls.last.request) == {"description": "bad DAG"}


# -- list_deploys -----------------------------------------------------------------------


def paged(
    deploys: list[dict[str, Any]], *, page_cap: int = 1000, total: int | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    """A ListDeploys side effect serving ``deploys`` by offset/limit (at most ``page_cap``)."""

    def respond(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        limit = min(int(request.url.params["limit"]), page_cap)
        return httpx.Response(
            200,
            json={
                "deploys": deploys[offset : offset + limit],
                "offset": offset,
                "limit": limit,
                "totalCount": len(deploys) if total is None else total,
            },
        )

    return respond


def created(minutes: int) -> str:
    when = datetime(2024, 5, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    return when.isoformat().replace("+00:00", "Z")


def test_list_deploys_reads_every_page_and_sorts(api: FakeApi, client: AstroClient) -> None:
    minutes = [(i * 37) % 250 for i in range(250)]  # a permutation: the API promises no order
    deploys = [deploy_json(f"d{m:03d}", createdAt=created(m)) for m in minutes]
    route = api.router.get(DEPLOYS).mock(side_effect=paged(deploys))
    result = client.list_deploys(DEP)
    assert [d.id for d in result] == [f"d{m:03d}" for m in range(250)]
    queries = [dict(call.request.url.params) for call in route.calls]
    assert queries == [
        {"offset": "0", "limit": "100"},
        {"offset": "100", "limit": "100"},
        {"offset": "200", "limit": "100"},
    ]


def test_list_deploys_follows_short_pages(api: FakeApi, client: AstroClient) -> None:
    deploys = [deploy_json(f"d{i}", createdAt=created(i)) for i in range(45)]
    route = api.router.get(DEPLOYS).mock(side_effect=paged(deploys, page_cap=20))
    assert len(client.list_deploys(DEP)) == 45
    assert [call.request.url.params["offset"] for call in route.calls] == ["0", "20", "40"]


def test_list_deploys_stops_on_an_empty_page(api: FakeApi, client: AstroClient) -> None:
    deploys = [deploy_json(f"d{i}", createdAt=created(i)) for i in range(3)]
    route = api.router.get(DEPLOYS).mock(side_effect=paged(deploys, total=500))
    assert len(client.list_deploys(DEP)) == 3
    assert route.call_count == 2


def test_list_deploys_sorts_mixed_time_formats(api: FakeApi, client: AstroClient) -> None:
    deploys = [
        deploy_json("late", createdAt="2024-05-01T10:00:00.5Z"),
        deploy_json("early", createdAt="2024-05-01T12:00:00+03:00"),
        deploy_json("unknown", createdAt=""),
        deploy_json("middle", createdAt="2024-05-01T10:00:00Z"),
    ]
    api.router.get(DEPLOYS).mock(side_effect=paged(deploys))
    assert [d.id for d in client.list_deploys(DEP)] == ["unknown", "early", "middle", "late"]


def test_list_deploys_empty(api: FakeApi, client: AstroClient) -> None:
    api.router.get(DEPLOYS).mock(side_effect=paged([]))
    assert client.list_deploys(DEP) == []


# -- errors -----------------------------------------------------------------------------


def test_400_shows_message_field_errors_and_request_id(api: FakeApi, client: AstroClient) -> None:
    field_errors = [
        {"code": "max", "field": "description", "message": "too long"},
        {"code": "oneof", "field": "type", "message": "must be one of DAG_ONLY"},
    ]
    api.router.post(DEPLOYS).respond(
        400, json=error_json(400, "Invalid request", fieldErrors=field_errors)
    )
    with pytest.raises(ApiError) as caught:
        client.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY"))
    error = caught.value
    assert type(error) is ApiError
    assert error.message == (
        "Create deploy on Deployment 'dep-1' failed: HTTP 400 Bad Request: Invalid request "
        "[fieldErrors: description: too long; type: must be one of DAG_ONLY] (requestId: req-42)"
    )
    assert facts(error) == (400, "req-42", "CreateDeploy")
    assert_no_token(error, repr(error))


def test_401_says_the_token_was_rejected(api: FakeApi, client: AstroClient) -> None:
    api.router.get(DEPLOYMENT).respond(401, json=error_json(401, "token expired"))
    with pytest.raises(AuthError) as caught:
        client.get_deployment(DEP)
    error = caught.value
    assert error.message == (
        "Get Deployment 'dep-1' failed: HTTP 401 Unauthorized: token expired "
        "(requestId: req-42). The Astro API rejected the token: 'api-token' / "
        "ASTRO_API_TOKEN must be a valid, unexpired Astro API token for organization 'org-1'."
    )
    assert error.title == "Astro API token rejected"
    assert facts(error) == (401, "req-42", "GetDeployment")
    assert_no_token(error, repr(error))


@pytest.mark.parametrize(
    ("action", "permission", "operation"),
    [
        (lambda c: c.get_deployment(DEP), "deployment.get", "GetDeployment"),
        (lambda c: c.list_deploys(DEP), "deployment.deploys.get", "ListDeploys"),
        (lambda c: c.get_deploy(DEP, "x"), "deployment.deploys.get", "GetDeploy"),
        (
            lambda c: c.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY")),
            "deployment.deploys.create",
            "CreateDeploy",
        ),
        (
            lambda c: c.finalize_deploy(DEP, "x", FinalizeDeployRequest(dagTarballVersion="v")),
            "deployment.deploys.update",
            "FinalizeDeploy",
        ),
        (
            lambda c: c.rollback_deploy(DEP, "x", RollbackRequest()),
            "deployment.deploys.update",
            "DeployRollback",
        ),
        (
            lambda c: c.get_deployment_logs(DEP, sources=["scheduler"]),
            "deployment.logs.get",
            "GetDeploymentLogs",
        ),
        (
            lambda c: c.set_hibernation_override(
                DEP, HibernationOverrideRequest(isHibernating=False)
            ),
            "deployment.update",
            "UpdateDeploymentHibernationOverride",
        ),
        (
            lambda c: c.delete_hibernation_override(DEP),
            "deployment.update",
            "DeleteDeploymentHibernationOverride",
        ),
    ],
)
def test_403_names_the_permission(
    api: FakeApi,
    client: AstroClient,
    action: Callable[[AstroClient], object],
    permission: str,
    operation: str,
) -> None:
    api.router.route().respond(403, json=error_json(403, "forbidden"))
    with pytest.raises(AuthError) as caught:
        action(client)
    error = caught.value
    assert error.message.endswith(
        "failed: HTTP 403 Forbidden: forbidden (requestId: req-42). The token lacks the "
        f"permission '{permission}': use a Deployment API token of this Deployment, or a "
        f"Workspace API token whose role grants '{permission}'."
    )
    assert error.title == "Astro API permission missing"
    assert (error.status_code, error.operation) == (403, operation)
    assert_no_token(error, repr(error))


def test_404_names_what_was_looked_for(api: FakeApi, client: AstroClient) -> None:
    api.router.get(DEPLOYMENT).respond(404, json=error_json(404, "not found"))
    api.router.get(DEPLOYS + "/deploy-3").respond(404, json=error_json(404, "not found"))
    with pytest.raises(NotFoundError) as caught:
        client.get_deployment(DEP)
    assert caught.value.message == (
        "Get Deployment 'dep-1' failed: HTTP 404 Not Found: not found (requestId: req-42). "
        "There is no Deployment 'dep-1' in organization 'org-1', or the token cannot see it: "
        "check the organization and Deployment ids."
    )
    with pytest.raises(NotFoundError) as caught:
        client.get_deploy(DEP, "deploy-3")
    assert "There is no deploy 'deploy-3' of Deployment 'dep-1' in organization 'org-1'" in (
        caught.value.message
    )
    assert (caught.value.status_code, caught.value.operation) == (404, "GetDeploy")


def test_500_on_post_is_ambiguous_and_not_retried(api: FakeApi, client: AstroClient) -> None:
    route = api.router.post(DEPLOYS).respond(500, json=error_json(500, "boom"))
    with pytest.raises(ApiAmbiguousError) as caught:
        client.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY"))
    error = caught.value
    assert route.call_count == 1
    assert (api.sleeps, api.retries) == ([], [])
    assert error.message == (
        "Create deploy on Deployment 'dep-1' failed: HTTP 500 Internal Server Error: boom "
        f"(requestId: req-42). {AMBIGUOUS} check the Deployment's deploy history before "
        "running the job again."
    )
    assert facts(error) == (500, "req-42", "CreateDeploy")
    assert error.title == "Astro API outcome unknown"


def test_non_json_error_body_is_cut_to_200_chars(api: FakeApi, client: AstroClient) -> None:
    api.router.post(DEPLOYS).respond(
        400, text="<html>" + "x" * 1000 + "</html>", headers={"X-Request-Id": "hdr-1"}
    )
    with pytest.raises(ApiError) as caught:
        client.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY"))
    message = caught.value.message
    assert "HTTP 400 Bad Request: <html>xxx" in message
    assert "x" * 201 not in message
    assert caught.value.request_id == "hdr-1"


def test_malformed_200_body(api: FakeApi, client: AstroClient) -> None:
    api.router.post(DEPLOYS).respond(json={"dagsUploadUrl": SAS, "status": "INITIALIZED"})
    with pytest.raises(ApiError) as caught:
        client.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY"))
    message = caught.value.message
    assert "answered something unexpected" in message
    assert "not a valid Deploy: id: Field required" in message
    assert "SAS-SIGNATURE" not in message


def test_non_json_200_body(api: FakeApi, client: AstroClient) -> None:
    api.router.get(DEPLOYMENT).respond(text="<html>login</html>")
    with pytest.raises(ApiError, match="answered something unexpected"):
        client.get_deployment(DEP)


def test_redirect_is_not_followed(api: FakeApi, client: AstroClient) -> None:
    route = api.router.get(DEPLOYMENT).respond(
        302, headers={"Location": "https://evil.example/steal?x=1"}
    )
    with pytest.raises(ApiError) as caught:
        client.get_deployment(DEP)
    assert route.call_count == 1
    assert len(api.sent) == 1
    assert caught.value.message == (
        "Get Deployment 'dep-1' failed: HTTP 302 Found: a redirect to https://evil.example/steal. "
        "Redirects are not followed, so the token is never sent elsewhere: check the API URL."
    )
    assert caught.value.status_code == 302


# -- retries ----------------------------------------------------------------------------


def test_429_with_retry_after_seconds_is_honoured(api: FakeApi, client: AstroClient) -> None:
    route = api.router.get(DEPLOYMENT).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, json=error_json(429, "slow")),
            httpx.Response(429, headers={"Retry-After": "300"}, json=error_json(429, "slow")),
            httpx.Response(200, json=deployment_json()),
        ]
    )
    assert client.get_deployment(DEP).id == DEP
    assert route.call_count == 3
    assert api.sleeps == [7.0, 60.0]
    assert api.retries == [
        "Get Deployment 'dep-1': HTTP 429, retrying in 7.0 s (attempt 2 of 4)",
        "Get Deployment 'dep-1': HTTP 429, retrying in 60.0 s (attempt 3 of 4)",
    ]


def test_429_with_retry_after_date(api: FakeApi, client: AstroClient) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)
    api.router.post(DEPLOYS).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": when}),
            httpx.Response(200, json=deploy_json()),
        ]
    )
    client.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY"))
    assert len(api.sleeps) == 1
    assert 17.0 <= api.sleeps[0] <= 20.0


def test_503_on_get_is_retried_with_backoff(api: FakeApi, client: AstroClient) -> None:
    route = api.router.get(DEPLOYS + "/deploy-1").mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(502),
            httpx.Response(200, json=deploy_json()),
        ]
    )
    assert client.get_deploy(DEP, "deploy-1").id == "deploy-1"
    assert route.call_count == 3
    first, second = api.sleeps
    assert 0.8 <= first <= 1.2
    assert 1.6 <= second <= 2.4
    assert api.retries[0].startswith("Get deploy 'deploy-1' of Deployment 'dep-1': HTTP 503")


def test_transport_error_on_get_is_retried(api: FakeApi, client: AstroClient) -> None:
    route = api.router.get(DEPLOYMENT).mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.Response(200, json=deployment_json())]
    )
    client.get_deployment(DEP)
    assert route.call_count == 2
    assert "ReadTimeout, retrying in" in api.retries[0]


def test_429_on_post_is_retried(api: FakeApi, client: AstroClient) -> None:
    route = api.router.post(DEPLOYS + "/deploy-1/finalize").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "2"}),
            httpx.Response(200, json=deploy_json(status="DEPLOYED")),
        ]
    )
    client.finalize_deploy(DEP, "deploy-1", FinalizeDeployRequest(dagTarballVersion="v"))
    assert route.call_count == 2
    assert api.sleeps == [2.0]
    assert [body_of(call.request) for call in route.calls] == [{"dagTarballVersion": "v"}] * 2


def test_connect_error_on_post_is_retried(api: FakeApi, client: AstroClient) -> None:
    route = api.router.post(DEPLOYS).mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, json=deploy_json())]
    )
    client.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY"))
    assert route.call_count == 2
    assert api.retries == [
        f"Create deploy on Deployment 'dep-1': ConnectError, retrying in {api.sleeps[0]:.1f} s "
        "(attempt 2 of 4)"
    ]


def test_read_timeout_on_post_is_ambiguous(api: FakeApi, client: AstroClient) -> None:
    route = api.router.post(DEPLOYS).mock(side_effect=httpx.ReadTimeout("timed out"))
    with pytest.raises(ApiAmbiguousError) as caught:
        client.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY"))
    assert route.call_count == 1
    assert api.sleeps == []
    error = caught.value
    assert error.message == (
        f"Create deploy on Deployment 'dep-1' failed: no answer from the Astro API at {api.url} "
        f"(ReadTimeout: timed out). {AMBIGUOUS} check the Deployment's deploy history before "
        "running the job again."
    )
    assert (error.status_code, error.operation) == (0, "CreateDeploy")


def test_exhausted_retries_on_503(api: FakeApi, client: AstroClient) -> None:
    route = api.router.get(DEPLOYMENT).respond(503, json=error_json(503, "maintenance"))
    with pytest.raises(ApiUnavailableError) as caught:
        client.get_deployment(DEP)
    assert route.call_count == 4
    assert len(api.sleeps) == 3
    assert [message.split("(")[-1] for message in api.retries] == [
        "attempt 2 of 4)",
        "attempt 3 of 4)",
        "attempt 4 of 4)",
    ]
    error = caught.value
    assert error.message == (
        "Get Deployment 'dep-1' failed: HTTP 503 Service Unavailable: maintenance "
        "(requestId: req-42). Tried 4 times: the Astro API is busy or unavailable; "
        "run the job again later."
    )
    assert facts(error) == (503, "req-42", "GetDeployment")


def test_exhausted_retries_on_connect_error(api: FakeApi) -> None:
    route = api.router.post(DEPLOYS).mock(side_effect=httpx.ConnectError("connection refused"))
    with api.client(max_attempts=2) as client, pytest.raises(ApiUnavailableError) as caught:
        client.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY"))
    assert route.call_count == 2
    assert len(api.sleeps) == 1
    assert "could not reach the Astro API at" in caught.value.message
    assert "tried 2 times; last error ConnectError: connection refused" in caught.value.message


# -- list_deployments -------------------------------------------------------------------


def deployments_paged(
    deployments: list[dict[str, Any]], *, page_cap: int = 1000, ignore_offset: bool = False
) -> Callable[[httpx.Request], httpx.Response]:
    """A ListDeployments side effect serving ``deployments`` by offset/limit."""

    def respond(request: httpx.Request) -> httpx.Response:
        offset = 0 if ignore_offset else int(request.url.params["offset"])
        limit = min(int(request.url.params["limit"]), page_cap)
        return httpx.Response(
            200,
            json={
                "deployments": deployments[offset : offset + limit],
                "offset": offset,
                "limit": limit,
                "totalCount": len(deployments),
            },
        )

    return respond


def test_list_deployments_reads_every_page(api: FakeApi, client: AstroClient) -> None:
    deployments = [deployment_json(id=f"dep-{i:03d}", name=f"d{i}") for i in range(250)]
    route = api.router.get(DEPLOYMENTS).mock(side_effect=deployments_paged(deployments))
    found = client.list_deployments()
    assert [d.id for d in found] == [f"dep-{i:03d}" for i in range(250)]
    assert [list(call.request.url.params.multi_items()) for call in route.calls] == [
        [("sorts", "createdAt:asc"), ("offset", str(offset)), ("limit", "100")]
        for offset in (0, 100, 200)
    ]


def test_list_deployments_follows_short_pages(api: FakeApi, client: AstroClient) -> None:
    deployments = [deployment_json(id=f"dep-{i}") for i in range(45)]
    route = api.router.get(DEPLOYMENTS).mock(
        side_effect=deployments_paged(deployments, page_cap=20)
    )
    assert len(client.list_deployments()) == 45
    assert [call.request.url.params["offset"] for call in route.calls] == ["0", "20", "40"]


def test_list_deployments_filters_with_repeated_parameters(
    api: FakeApi, client: AstroClient
) -> None:
    route = api.router.get(DEPLOYMENTS).respond(
        json={
            "deployments": [
                deployment_json(id="a", name="prod", workspaceId="ws-1"),
                deployment_json(id="b", name="stage", workspaceId="ws-1"),
                deployment_json(id="c", name="prod", workspaceId="ws-2"),  # filter ignored
                deployment_json(id="d", name="other", workspaceId="ws-1"),  # filter ignored
            ],
            "offset": 0,
            "limit": 100,
            "totalCount": 4,
        }
    )
    found = client.list_deployments(names=["prod", "stage", "prod"], workspace_id="ws-1")
    assert [d.id for d in found] == ["a", "b"]
    params = route.calls.last.request.url.params
    assert params.get_list("names") == ["prod", "stage"]
    assert params.get_list("workspaceIds") == ["ws-1"]
    assert "names=prod&names=stage&workspaceIds=ws-1" in str(route.calls.last.request.url)


def test_list_deployments_takes_a_single_name(api: FakeApi, client: AstroClient) -> None:
    route = api.router.get(DEPLOYMENTS).respond(
        json={"deployments": [deployment_json()], "offset": 0, "limit": 100, "totalCount": 1}
    )
    assert [d.id for d in client.list_deployments(names="prod", workspace_id="")] == [DEP]
    params = route.calls.last.request.url.params
    assert (params.get_list("names"), params.get_list("workspaceIds")) == (["prod"], [])


def test_list_deployments_of_an_empty_organization(api: FakeApi, client: AstroClient) -> None:
    route = api.router.get(DEPLOYMENTS).mock(side_effect=deployments_paged([]))
    assert client.list_deployments() == []
    assert route.call_count == 1


def test_list_deployments_stops_when_the_offset_is_ignored(
    api: FakeApi, client: AstroClient
) -> None:
    deployments = [deployment_json(id=f"dep-{i}") for i in range(1000)]
    route = api.router.get(DEPLOYMENTS).mock(
        side_effect=deployments_paged(deployments, ignore_offset=True)
    )
    assert len(client.list_deployments()) == 100
    assert route.call_count == 2


def test_list_deployments_errors_name_the_organization(api: FakeApi, client: AstroClient) -> None:
    api.router.get(DEPLOYMENTS).mock(
        side_effect=[
            httpx.Response(403, json=error_json(403, "forbidden")),
            httpx.Response(404, json=error_json(404, "not found")),
        ]
    )
    with pytest.raises(AuthError) as caught:
        client.list_deployments(names=["prod"])
    assert caught.value.message == (
        "List Deployments of organization 'org-1' failed: HTTP 403 Forbidden: forbidden "
        "(requestId: req-42). The token lacks the permission 'organization.deployments.get': "
        "use a Workspace or Organization API token whose role grants "
        "'organization.deployments.get'."
    )
    assert (caught.value.operation, caught.value.title) == (
        "ListDeployments",
        "Astro API permission missing",
    )
    with pytest.raises(NotFoundError) as missing:
        client.list_deployments()
    assert missing.value.message.endswith(
        "There is no organization 'org-1', or the token cannot see it: check the organization id."
    )


# -- paging: the same stopping rules for both lists --------------------------------------


@dataclass(frozen=True)
class Listing:
    """A paged list operation: its path, the item key of its pages, its items, its call."""

    path: str
    key: str
    item: Callable[[int], dict[str, Any]]
    read_all: Callable[[AstroClient], list[Any]]


LISTINGS = {
    "list_deployments": Listing(
        DEPLOYMENTS,
        "deployments",
        lambda i: deployment_json(id=f"dep-{i:04d}", name=f"d{i}"),
        lambda client: client.list_deployments(),
    ),
    "list_deploys": Listing(
        DEPLOYS,
        "deploys",
        lambda i: deploy_json(f"deploy-{i:04d}", createdAt=created(i)),
        lambda client: client.list_deploys(DEP),
    ),
}


@pytest.fixture(params=list(LISTINGS))
def listing(request: pytest.FixtureRequest) -> Listing:
    return LISTINGS[request.param]


def serve(
    listing: Listing,
    count: int,
    *,
    total: int | None = None,
    ignore_offset: bool = False,
    overlap: int = 0,
) -> Callable[[httpx.Request], httpx.Response]:
    """Pages of ``count`` items; ``overlap`` items of the previous page are repeated."""
    items = [listing.item(i) for i in range(count)]

    def respond(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        start = 0 if ignore_offset else max(0, offset - overlap)
        return httpx.Response(
            200,
            json={
                listing.key: items[start : start + limit],
                "offset": offset,
                "limit": limit,
                "totalCount": count if total is None else total,
            },
        )

    return respond


def ids(listing: Listing, indexes: range) -> list[str]:
    return [listing.item(i)["id"] for i in indexes]


def offsets(route: respx.Route) -> list[str]:
    return [call.request.url.params["offset"] for call in route.calls]


def test_paging_stops_at_an_empty_page(api: FakeApi, client: AstroClient, listing: Listing) -> None:
    route = api.router.get(listing.path).mock(side_effect=serve(listing, 3, total=500))
    assert [item.id for item in listing.read_all(client)] == ids(listing, range(3))
    assert offsets(route) == ["0", "3"]


def test_paging_stops_at_an_empty_first_page(
    api: FakeApi, client: AstroClient, listing: Listing
) -> None:
    route = api.router.get(listing.path).mock(side_effect=serve(listing, 0, total=10))
    assert listing.read_all(client) == []
    assert offsets(route) == ["0"]


def test_paging_stops_when_the_offset_reaches_the_total(
    api: FakeApi, client: AstroClient, listing: Listing
) -> None:
    # The API has more than it counts: the total is trusted, no page beyond it is asked for.
    route = api.router.get(listing.path).mock(side_effect=serve(listing, 1000, total=150))
    assert [item.id for item in listing.read_all(client)] == ids(listing, range(200))
    assert offsets(route) == ["0", "100"]


def test_paging_stops_at_a_page_of_nothing_new(
    api: FakeApi, client: AstroClient, listing: Listing
) -> None:
    # An API that ignores the offset sends the first page again and again.
    route = api.router.get(listing.path).mock(side_effect=serve(listing, 1000, ignore_offset=True))
    assert [item.id for item in listing.read_all(client)] == ids(listing, range(100))
    assert offsets(route) == ["0", "100"]


def test_paging_goes_on_after_a_page_that_repeats_some_items(
    api: FakeApi, client: AstroClient, listing: Listing
) -> None:
    # Items shifted between two pages: the repeats are kept once, the new ones are read on.
    route = api.router.get(listing.path).mock(side_effect=serve(listing, 250, overlap=5))
    assert [item.id for item in listing.read_all(client)] == ids(listing, range(250))
    assert offsets(route) == ["0", "100", "200"]


# -- get_deployment_logs ----------------------------------------------------------------

T0 = 1714557600.0  # 2024-05-01T10:00:00Z


def log_entry(index: int, source: str = "scheduler") -> dict[str, Any]:
    return {"raw": f"line {index}", "source": source, "timestamp": T0 + index}


def logs_paged(
    entries: list[dict[str, Any]], *, endless: bool = False
) -> Callable[[httpx.Request], httpx.Response]:
    """A GetDeploymentLogs side effect paging ``entries`` (or full pages forever)."""

    def respond(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        offset, limit = int(params["offset"]), int(params["limit"])
        if endless:
            results = [log_entry(offset + i) for i in range(limit)]
        else:
            results = entries[offset : offset + limit]
        return httpx.Response(
            200,
            json={
                "results": results,
                "limit": limit,
                "offset": offset,
                "resultCount": len(results),
                "maxNumResults": int(params["maxNumResults"]),
                "searchId": "search-1",
            },
        )

    return respond


def test_get_deployment_logs_query(api: FakeApi, client: AstroClient) -> None:
    route = api.router.get(LOGS).respond(
        json={
            "results": [log_entry(2, "dag-processor"), log_entry(1), log_entry(3)],
            "limit": 500,
            "offset": 0,
            "resultCount": 3,
            "maxNumResults": 1000,
            "searchId": "search-1",
            "unknownField": True,
        }
    )
    plus_two = timezone(timedelta(hours=2))
    entries = client.get_deployment_logs(
        DEP,
        sources=["dag-processor", "scheduler", "dag-processor"],
        start=datetime(2024, 5, 1, 12, 0, 5, 900_000, tzinfo=plus_two),
        end=datetime(2024, 5, 1, 10, 30, 0, 1, tzinfo=UTC),
        search_text="Broken DAG",
    )
    assert [(e.raw, e.source, e.timestamp) for e in entries] == [
        ("line 1", "scheduler", T0 + 1),
        ("line 2", "dag-processor", T0 + 2),
        ("line 3", "scheduler", T0 + 3),
    ]
    request = route.calls.last.request
    assert route.call_count == 1
    assert list(request.url.params.multi_items()) == [
        ("sources", "dag-processor"),
        ("sources", "scheduler"),
        ("startDate", "2024-05-01T10:00:05Z"),
        ("endDate", "2024-05-01T10:30:01Z"),
        ("searchText", "Broken DAG"),
        ("limit", "500"),
        ("offset", "0"),
        ("maxNumResults", "1000"),
    ]
    assert request.url.raw_path.decode().split("?")[0].endswith(LOGS)


def test_get_deployment_logs_without_dates_or_search(api: FakeApi, client: AstroClient) -> None:
    route = api.router.get(LOGS).mock(side_effect=logs_paged([log_entry(0)]))
    entries = client.get_deployment_logs(DEP, sources="worker", limit=3)
    assert [e.raw for e in entries] == ["line 0"]
    assert list(route.calls.last.request.url.params.multi_items()) == [
        ("sources", "worker"),
        ("limit", "3"),
        ("offset", "0"),
        ("maxNumResults", "3"),
    ]


def test_get_deployment_logs_start_alone_ends_now(api: FakeApi, client: AstroClient) -> None:
    route = api.router.get(LOGS).mock(side_effect=logs_paged([]))
    before = datetime.now(UTC).replace(microsecond=0)
    client.get_deployment_logs(
        DEP, sources=["scheduler"], start=datetime(2024, 5, 1, 10, tzinfo=UTC)
    )
    after = datetime.now(UTC) + timedelta(seconds=1)
    params = route.calls.last.request.url.params
    assert params["startDate"] == "2024-05-01T10:00:00Z"
    assert params["endDate"].endswith("Z")
    assert before <= datetime.fromisoformat(params["endDate"]) <= after


def test_get_deployment_logs_reads_pages_with_the_search_id(
    api: FakeApi, client: AstroClient
) -> None:
    entries = [log_entry(i) for i in range(1200)]
    route = api.router.get(LOGS).mock(side_effect=logs_paged(entries))
    found = client.get_deployment_logs(DEP, sources=["scheduler"], limit=5000)
    assert [e.raw for e in found] == [f"line {i}" for i in range(1200)]
    queries = [call.request.url.params for call in route.calls]
    assert [(q["offset"], q["limit"], q.get("searchId")) for q in queries] == [
        ("0", "500", None),
        ("500", "500", "search-1"),
        ("1000", "500", "search-1"),
    ]


def test_get_deployment_logs_stops_at_the_limit(api: FakeApi, client: AstroClient) -> None:
    entries = [log_entry(i) for i in range(1200)]
    route = api.router.get(LOGS).mock(side_effect=logs_paged(entries))
    found = client.get_deployment_logs(DEP, sources=["scheduler"])
    assert len(found) == 1000
    assert route.call_count == 2


def test_get_deployment_logs_reads_a_bounded_number_of_pages(
    api: FakeApi, client: AstroClient
) -> None:
    route = api.router.get(LOGS).mock(side_effect=logs_paged([], endless=True))
    found = client.get_deployment_logs(DEP, sources=["scheduler"], limit=1_000_000)
    assert route.call_count == LOG_PAGES == 10
    assert len(found) == LOG_PAGES * LOG_PAGE_SIZE


def test_get_deployment_logs_404_is_not_found(api: FakeApi, client: AstroClient) -> None:
    api.router.get(LOGS).respond(404, json=error_json(404, "not found"))
    with pytest.raises(NotFoundError) as caught:
        client.get_deployment_logs(DEP, sources=["scheduler"])
    assert caught.value.operation == "GetDeploymentLogs"
    assert caught.value.message.startswith("Get logs of Deployment 'dep-1' failed: HTTP 404")


NAIVE = datetime(2024, 5, 1, 10)
AWARE = datetime(2024, 5, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "why"),
    [
        ({"sources": []}, "at least one log source"),
        ({"sources": ["scheduler", "nope"]}, "unknown log source(s) 'nope'; known: apiserver"),
        ({"sources": ["scheduler"], "limit": 0}, "limit must be at least 1"),
        ({"sources": ["scheduler"], "end": AWARE}, "an end needs a start"),
        ({"sources": ["scheduler"], "start": NAIVE}, "has no time zone"),
        ({"sources": ["scheduler"], "start": AWARE, "end": NAIVE}, "has no time zone"),
        (
            {"sources": ["scheduler"], "start": AWARE, "end": AWARE - timedelta(seconds=2)},
            "the start 2024-05-01T10:00:00Z is after the end 2024-05-01T09:59:58Z",
        ),
    ],
)
def test_get_deployment_logs_refuses_what_the_api_would(
    api: FakeApi, client: AstroClient, kwargs: dict[str, Any], why: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(why)):
        client.get_deployment_logs(DEP, **kwargs)
    assert api.sent == []


# -- hibernation override ---------------------------------------------------------------


def test_set_hibernation_override(api: FakeApi, client: AstroClient) -> None:
    route = api.router.post(OVERRIDE).respond(
        json={"isActive": True, "isHibernating": False, "overrideUntil": "2024-05-01T12:00:00Z"}
    )
    override = client.set_hibernation_override(DEP, HibernationOverrideRequest(isHibernating=False))
    assert (override.isActive, override.isHibernating, override.overrideUntil) == (
        True,
        False,
        "2024-05-01T12:00:00Z",
    )
    sent = route.calls.last.request
    assert sent.headers["Content-Type"] == "application/json"
    assert body_of(sent) == {"isHibernating": False}
    client.set_hibernation_override(
        DEP, HibernationOverrideRequest(isHibernating=True, overrideUntil="2024-05-01T12:00:00Z")
    )
    assert body_of(route.calls.last.request) == {
        "isHibernating": True,
        "overrideUntil": "2024-05-01T12:00:00Z",
    }


def test_set_hibernation_override_reads_an_empty_answer(api: FakeApi, client: AstroClient) -> None:
    api.router.post(OVERRIDE).respond(json={})
    override = client.set_hibernation_override(DEP, HibernationOverrideRequest(isHibernating=False))
    assert (override.isActive, override.isHibernating, override.overrideUntil) == (None,) * 3


def test_delete_hibernation_override(api: FakeApi, client: AstroClient) -> None:
    route = api.router.delete(OVERRIDE).respond(204)
    assert client.delete_hibernation_override(DEP) is None  # type: ignore[func-returns-value]
    sent = route.calls.last.request
    assert (sent.method, sent.content) == ("DELETE", b"")
    assert "Content-Type" not in sent.headers
    assert route.call_count == 1


def test_hibernation_500_is_ambiguous(api: FakeApi, client: AstroClient) -> None:
    route = api.router.post(OVERRIDE).respond(502, json=error_json(502, "bad gateway"))
    with pytest.raises(ApiAmbiguousError) as caught:
        client.set_hibernation_override(DEP, HibernationOverrideRequest(isHibernating=False))
    assert route.call_count == 1
    assert caught.value.message == (
        "Set the hibernation override of Deployment 'dep-1' failed: HTTP 502 Bad Gateway: "
        f"bad gateway (requestId: req-42). {AMBIGUOUS} check the Deployment's hibernation "
        "settings in the Astro UI before running the job again."
    )
    assert facts(caught.value) == (502, "req-42", "UpdateDeploymentHibernationOverride")


def test_delete_is_retried_like_a_post(api: FakeApi, client: AstroClient) -> None:
    route = api.router.delete(OVERRIDE).mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "1"}),
            httpx.ConnectError("refused"),
            httpx.Response(204),
            httpx.ReadTimeout("late"),
        ]
    )
    client.delete_hibernation_override(DEP)
    assert route.call_count == 3
    assert api.sleeps[0] == 1.0
    assert len(api.sleeps) == 2
    with pytest.raises(ApiAmbiguousError) as caught:
        client.delete_hibernation_override(DEP)
    assert route.call_count == 4
    assert caught.value.operation == "DeleteDeploymentHibernationOverride"
    assert "(ReadTimeout: late). The API may or may not have processed" in caught.value.message


# -- the retry rules of writes ----------------------------------------------------------


def test_408_on_get_is_retried(api: FakeApi, client: AstroClient) -> None:
    route = api.router.get(DEPLOYMENT).mock(
        side_effect=[httpx.Response(408), httpx.Response(200, json=deployment_json())]
    )
    assert client.get_deployment(DEP).id == DEP
    assert route.call_count == 2
    assert api.retries[0].startswith("Get Deployment 'dep-1': HTTP 408, retrying in")


def test_503_on_post_is_retried(api: FakeApi, client: AstroClient) -> None:
    route = api.router.post(DEPLOYS).mock(
        side_effect=[
            httpx.Response(503, json=error_json(503, "busy")),
            httpx.Response(200, json=deploy_json()),
        ]
    )
    assert client.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY")).id == "deploy-1"
    assert route.call_count == 2
    assert [body_of(call.request) for call in route.calls] == [{"type": "DAG_ONLY"}] * 2
    assert api.retries[0].startswith("Create deploy on Deployment 'dep-1': HTTP 503, retrying")


def test_exhausted_503_on_post_is_unavailable(api: FakeApi) -> None:
    route = api.router.post(DEPLOYS + "/deploy-1/rollback").respond(
        503, json=error_json(503, "maintenance")
    )
    with api.client(max_attempts=3) as client, pytest.raises(ApiUnavailableError) as caught:
        client.rollback_deploy(DEP, "deploy-1", RollbackRequest())
    assert type(caught.value) is ApiUnavailableError
    assert route.call_count == 3
    assert caught.value.message.endswith(
        "Tried 3 times: the Astro API is busy or unavailable; run the job again later."
    )


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_on_post_are_ambiguous(
    api: FakeApi, client: AstroClient, status: int
) -> None:
    route = api.router.post(DEPLOYS + "/deploy-1/finalize").mock(
        side_effect=[httpx.Response(503), httpx.Response(status), httpx.Response(200)]
    )
    with pytest.raises(ApiAmbiguousError) as caught:
        client.finalize_deploy(DEP, "deploy-1", FinalizeDeployRequest(dagTarballVersion="v"))
    assert route.call_count == 2  # the 503 was retried, the ambiguous answer was not
    assert (caught.value.status_code, caught.value.operation) == (status, "FinalizeDeploy")
    assert AMBIGUOUS in caught.value.message


def test_501_on_post_is_a_plain_error(api: FakeApi, client: AstroClient) -> None:
    route = api.router.post(DEPLOYS).respond(501)
    with pytest.raises(ApiError) as caught:
        client.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY"))
    assert type(caught.value) is ApiError
    assert route.call_count == 1
    assert caught.value.message == (
        "Create deploy on Deployment 'dep-1' failed: HTTP 501 Not Implemented"
    )


@pytest.mark.parametrize(
    "error",
    [
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset by peer"),
        httpx.WriteTimeout("write timed out"),
    ],
)
def test_dropped_post_is_ambiguous(
    api: FakeApi, client: AstroClient, error: httpx.TransportError
) -> None:
    route = api.router.post(DEPLOYS).mock(side_effect=error)
    with pytest.raises(ApiAmbiguousError) as caught:
        client.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY"))
    assert route.call_count == 1
    assert api.sleeps == []
    assert f"({type(error).__name__}: {error}). {AMBIGUOUS}" in caught.value.message


def test_connect_timeout_and_pool_timeout_on_post_are_retried(
    api: FakeApi, client: AstroClient
) -> None:
    route = api.router.post(DEPLOYS).mock(
        side_effect=[
            httpx.ConnectTimeout("connect"),
            httpx.PoolTimeout("pool"),
            httpx.Response(200, json=deploy_json()),
        ]
    )
    client.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY"))
    assert route.call_count == 3
    assert len(api.sleeps) == 2


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unsupported_scheme_is_a_plain_failure(api: FakeApi, method: str) -> None:
    route = api.router.route().mock(side_effect=httpx.UnsupportedProtocol("no ftp"))
    with api.client() as client, pytest.raises(ApiUnavailableError) as caught:
        if method == "GET":
            client.get_deployment(DEP)
        else:
            client.create_deploy(DEP, CreateDeployRequest(type="DAG_ONLY"))
    assert type(caught.value) is ApiUnavailableError
    assert route.call_count == 1
    assert "could not reach the Astro API at" in caught.value.message
    assert "(UnsupportedProtocol: no ftp). Check the API URL" in caught.value.message


# -- the token stays secret -------------------------------------------------------------


def test_token_never_shown(api: FakeApi) -> None:
    echo = f"invalid Authorization: Bearer {TOKEN}"
    api.router.get(DEPLOYMENT).respond(401, json=error_json(401, echo))
    api.router.get(DEPLOYS + "/a").respond(400, text=f"bad header Bearer {TOKEN}")
    api.router.get(DEPLOYS + "/b").mock(side_effect=httpx.ConnectError(f"Bearer {TOKEN}"))
    api.router.get(DEPLOYS + "/c").respond(
        400, json=error_json(400, "bad", fieldErrors=[{"field": "h", "message": TOKEN}])
    )
    errors: list[ApiError] = []
    with api.client() as client:
        assert_no_token(repr(client), str(client))
        for action in (
            lambda: client.get_deployment(DEP),
            lambda: client.get_deploy(DEP, "a"),
            lambda: client.get_deploy(DEP, "b"),
            lambda: client.get_deploy(DEP, "c"),
        ):
            with pytest.raises(ApiError) as caught:
                action()
            errors.append(caught.value)
    assert all("<token>" in error.message for error in errors)
    for error in errors:
        assert_no_token(error, repr(error), error.args, error.message)
    assert_no_token(*api.retries)
    assert api.retries  # the ConnectError was retried and logged


@pytest.mark.parametrize("token", ["two words", 'quote"d', "new\nline", ""])
def test_unsendable_token_is_refused_without_echo(token: str) -> None:
    with pytest.raises(AuthError) as caught:
        AstroClient("https://api.astronomer.io/v1", token, ORG)
    if token:
        assert token not in caught.value.message


def test_token_is_stripped(api: FakeApi) -> None:
    route = api.router.get(DEPLOYMENT).respond(json=deployment_json())
    with AstroClient(
        api.url, f" {TOKEN}\n", ORG, transport=httpx.MockTransport(api.handle)
    ) as client:
        client.get_deployment(DEP)
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


LONG_TOKEN = "eyJ" + "a1B2c3D4" * 50  # longer than any cut


def token_client(api: FakeApi, token: str) -> AstroClient:
    transport = httpx.MockTransport(api.handle)
    return AstroClient(api.url, token, ORG, transport=transport, sleep=api.sleeps.append)


def assert_no_part_of(token: str, message: str) -> None:
    assert token[:8] not in message
    assert "<token>" in message  # scrubbed where it was, then cut


@pytest.mark.parametrize("token", [TOKEN, LONG_TOKEN], ids=["token", "long-token"])
@pytest.mark.parametrize("before", [172, 180, 189])
def test_a_token_across_the_cut_of_a_text_answer_leaves_no_part(
    api: FakeApi, token: str, before: int
) -> None:
    # A text answer is cut to 200 characters: the token starts before the cut, ends after it.
    api.router.get(DEPLOYMENT).respond(400, text="x" * before + token + " and more" * 40)
    with token_client(api, token) as client, pytest.raises(ApiError) as caught:
        client.get_deployment(DEP)
    assert_no_part_of(token, caught.value.message)


@pytest.mark.parametrize("token", [TOKEN, LONG_TOKEN], ids=["token", "long-token"])
@pytest.mark.parametrize("before", [472, 480, 489])
def test_a_token_across_the_cut_of_an_error_message_leaves_no_part(
    api: FakeApi, token: str, before: int
) -> None:
    # The Error JSON's message is cut to 500 characters.
    message = "y" * before + token + " and more" * 40
    api.router.get(DEPLOYMENT).respond(401, json=error_json(401, message))
    with token_client(api, token) as client, pytest.raises(AuthError) as caught:
        client.get_deployment(DEP)
    assert_no_part_of(token, caught.value.message)
    assert caught.value.request_id == "req-42"


@pytest.mark.parametrize("token", [TOKEN, LONG_TOKEN], ids=["token", "long-token"])
def test_a_token_across_the_cut_of_json_without_a_message_leaves_no_part(
    api: FakeApi, token: str
) -> None:
    head = '{"detail": "'
    body = head + "z" * (180 - len(head)) + token + '", "pad": "' + "p" * 300 + '"}'
    api.router.get(DEPLOYMENT).respond(400, text=body)
    with token_client(api, token) as client, pytest.raises(ApiError) as caught:
        client.get_deployment(DEP)
    assert_no_part_of(token, caught.value.message)


SAS_SIG = "A1b2%2BC3d4%2F" * 6 + "%3D"  # an upload URL's signature, percent-encoded


@pytest.mark.parametrize("left", [20, 45, 80])
def test_a_sas_signature_echoed_across_the_cut_of_an_error_message_leaves_no_part(
    api: FakeApi, left: int
) -> None:
    # The API echoes a deploy's upload URL, its signature starting ``left`` characters before
    # the 500-character cut. The runner masks the whole signature only, so a cut through it
    # would show a prefix: the signature is redacted before the cut.
    head = " blob https://blob.example/c/dags.tar.gz?sv=2023-11-03&sr=b&sp=cw&sig="
    message = "y" * (500 - left - len(head)) + head + SAS_SIG + "&se=x not found" * 40
    api.router.get(DEPLOYMENT).respond(400, json=error_json(400, message))
    with token_client(api, TOKEN) as client, pytest.raises(ApiError) as caught:
        client.get_deployment(DEP)
    assert "A1b2" not in caught.value.message
    assert "&sp=cw&sig=<redacted>&se=x" in caught.value.message


def test_the_request_id_is_scrubbed_and_shortened(api: FakeApi) -> None:
    echo = f"req-1 for Authorization: Bearer {TOKEN} " + "r" * 1000
    api.router.get(DEPLOYMENT).respond(
        400, json={"message": "bad", "requestId": echo}, headers={"X-Request-Id": echo}
    )
    api.router.get(DEPLOYS).respond(400, text="bad", headers={"X-Request-Id": echo})
    with token_client(api, TOKEN) as client:
        with pytest.raises(ApiError) as from_body:
            client.get_deployment(DEP)
        with pytest.raises(ApiError) as from_header:
            client.list_deploys(DEP)
    for error in (from_body.value, from_header.value):
        assert_no_token(error, error.message, error.request_id)
        assert error.request_id.startswith("req-1 for Authorization: Bearer <token> rrr")
        assert len(error.request_id) == 100
        assert f"(requestId: {error.request_id})" in error.message


def test_field_errors_are_scrubbed_and_shortened(api: FakeApi) -> None:
    field = {"field": "dagsUploadUrl", "message": "x" * 180 + TOKEN + "z" * 1000}
    api.router.get(DEPLOYMENT).respond(400, json=error_json(400, "bad", fieldErrors=[field]))
    with token_client(api, TOKEN) as client, pytest.raises(ApiError) as caught:
        client.get_deployment(DEP)
    assert_no_token(caught.value.message)
    assert f"[fieldErrors: dagsUploadUrl: {'x' * 180}<t...]" in caught.value.message  # 200


# -- the contract helper itself ---------------------------------------------------------

AUTH = {"Authorization": "Bearer t", "Content-Type": "application/json"}


def test_spec_helper_accepts_a_valid_request() -> None:
    assert_request_matches_spec("POST", DEPLOYS, "", AUTH, b'{"type": "DAG_ONLY"}')
    assert_request_matches_spec("GET", DEPLOYS, "offset=0&limit=1000", AUTH, None)


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "body", "why"),
    [
        ("POST", DEPLOYS, "", AUTH, b'{"type": "DAGS"}', "'DAGS' is not one of"),
        ("GET", DEPLOYS, "offset=0&limit=5000", AUTH, None, "5000 is greater than the maximum"),
        ("GET", DEPLOYS, "offset=-1", AUTH, None, "Invalid query parameter: offset"),
        ("POST", DEPLOYS + "/x/rollback", "", AUTH, None, "Missing required request body"),
        ("POST", DEPLOYS, "", {}, b'{"type": "DAG_ONLY"}', "Security not found"),
        ("GET", DEPLOYMENT + "/nope", "", AUTH, None, "Path not found"),
        ("PUT", DEPLOYS, "", AUTH, b"{}", "Operation put not found"),
        ("GET", LOGS, "", AUTH, None, "Missing required query parameter: sources"),
        ("GET", LOGS, "sources=scheduler&sources=x", AUTH, None, "'x' is not one of"),
        ("GET", LOGS, "sources=worker&startDate=today", AUTH, None, "is not a 'date-time'"),
        ("GET", DEPLOYMENTS, "sorts=name", AUTH, None, "'name' is not one of"),
        ("POST", OVERRIDE, "", AUTH, b"{}", "'isHibernating' is a required property"),
        ("POST", OVERRIDE, "", AUTH, b'{"isHibernating": "no"}', "'no' is not of type"),
    ],
)
def test_spec_helper_rejects_invalid_requests(
    method: str, path: str, query: str, headers: dict[str, str], body: bytes | None, why: str
) -> None:
    with pytest.raises(AssertionError, match="does not match the Astro API spec") as caught:
        assert_request_matches_spec(method, path, query, headers, body)
    assert why in str(caught.value)


def test_spec_helper_checks_the_host_and_base_path() -> None:
    request = httpx.Request("GET", "https://elsewhere.example/v1" + DEPLOYMENT, headers=AUTH)
    with pytest.raises(AssertionError, match="was not sent to the API"):
        assert_httpx_request_matches_spec(request, "https://api.astronomer.io/v1")
    request = httpx.Request("GET", "https://api.astronomer.io" + DEPLOYMENT, headers=AUTH)
    with pytest.raises(AssertionError, match="outside the API base path /v1"):
        assert_httpx_request_matches_spec(request, "https://api.astronomer.io/v1")


def test_spec_helper_fails_clearly_without_the_spec(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CI_DEPLOY_SPEC", str(tmp_path / "missing.yaml"))
    with pytest.raises(AssertionError, match=r"The Astro API spec is missing at .*CI_DEPLOY_SPEC"):
        assert_request_matches_spec("GET", DEPLOYMENT, "", AUTH, None)
