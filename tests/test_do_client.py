"""AppsClient against respx: every request validated against the App Platform spec before
respx answers it; paging, errors, the token kept to its host, ambiguity of writes."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import respx

from ci_deploy.digitalocean.client import AppsClient
from ci_deploy.digitalocean.platform import AppsPlatform, AppsSettings
from ci_deploy.errors import ApiAmbiguousError, ApiError, AuthError, NotFoundError
from ci_deploy.platform import Release, ReleaseState
from ci_deploy.runner import Runner
from tests.spec import assert_do_request_matches_spec

URL = "https://api.digitalocean.com"
TOKEN = "dop_v1_" + "b" * 64


def checked(request: httpx.Request) -> None:
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert_do_request_matches_spec(
        request.method,
        request.url.raw_path.split(b"?")[0].decode(),
        request.url.query.decode(),
        dict(request.headers),
        request.content or None,
    )


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=URL, assert_all_called=False) as router:
        yield router


@pytest.fixture
def client() -> Iterator[AppsClient]:
    with AppsClient(URL, TOKEN, sleep=lambda _: None) as made:
        yield made


def answer(body: object, status: int = 200) -> object:
    def respond(request: httpx.Request) -> httpx.Response:
        checked(request)
        return httpx.Response(status, json=body)

    return respond


def test_every_call_is_a_request_the_spec_allows(api: respx.MockRouter, client: AppsClient) -> None:
    deployment = {"id": "d1", "phase": "ACTIVE"}
    api.get("/v2/apps/a1").mock(
        side_effect=answer({"app": {"id": "a1", "spec": {"name": "web-app"}}})
    )
    api.put("/v2/apps/a1").mock(
        side_effect=answer({"app": {"id": "a1", "spec": {"name": "web-app"}}})
    )
    api.post("/v2/apps/propose").mock(side_effect=answer({"app_is_static": False}))
    api.get("/v2/apps/a1/deployments/d1").mock(side_effect=answer({"deployment": deployment}))
    api.post("/v2/apps/a1/deployments").mock(side_effect=answer({"deployment": deployment}))
    api.get("/v2/apps/a1/deployments/d1/logs").mock(side_effect=answer({"historic_urls": []}))
    api.post("/v2/apps/a1/rollback/validate").mock(side_effect=answer({"valid": True}))
    api.post("/v2/apps/a1/rollback").mock(side_effect=answer({"deployment": deployment}))
    api.post("/v2/apps/a1/rollback/commit").mock(return_value=httpx.Response(200))
    api.post("/v2/apps/a1/rollback/revert").mock(side_effect=answer({"deployment": deployment}))

    assert client.get_app("a1")["id"] == "a1"
    client.update_app("a1", {"name": "web-app"})
    client.propose({"name": "web-app"}, "a1")
    assert client.get_deployment("a1", "d1") == deployment
    assert client.create_deployment("a1", force_build=True) == deployment
    client.deployment_logs("a1", "d1", "BUILD")
    assert client.validate_rollback("a1", "d1", skip_pin=False) == {"valid": True}
    client.rollback("a1", "d1", skip_pin=True)
    client.commit_rollback("a1")
    client.revert_rollback("a1")
    assert len(api.calls) == 10


def test_lists_are_paged_by_the_links(api: respx.MockRouter, client: AppsClient) -> None:
    pages = {
        "1": {"apps": [{"id": "a1"}], "links": {"pages": {"next": f"{URL}/v2/apps?page=2"}}},
        "2": {"apps": [{"id": "a2"}], "links": {}},
    }

    def respond(request: httpx.Request) -> httpx.Response:
        checked(request)
        return httpx.Response(200, json=pages[request.url.params["page"]])

    api.get("/v2/apps").mock(side_effect=respond)
    assert [a["id"] for a in client.list_apps()] == ["a1", "a2"]
    assert [c.request.url.params["per_page"] for c in api.calls] == ["200", "200"]


@pytest.mark.parametrize(
    ("status", "error", "title"),
    [
        (401, AuthError, "DigitalOcean token rejected"),
        (404, NotFoundError, "Not found on App Platform"),
        (422, ApiError, "App Platform API error"),
    ],
)
def test_refusals_are_typed_and_never_show_the_token(
    api: respx.MockRouter, client: AppsClient, status: int, error: type[ApiError], title: str
) -> None:
    api.get("/v2/apps/a1").mock(
        return_value=httpx.Response(status, json={"id": "x", "message": f"bad {TOKEN}"})
    )
    with pytest.raises(error) as caught:
        client.get_app("a1")
    assert caught.value.title == title
    assert TOKEN not in caught.value.message


def test_a_write_without_an_answer_is_ambiguous_and_not_repeated(
    api: respx.MockRouter, client: AppsClient
) -> None:
    route = api.post("/v2/apps/a1/deployments").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(ApiAmbiguousError):
        client.create_deployment("a1", force_build=True)
    assert route.call_count == 1
    route = api.post("/v2/apps/a1/rollback").mock(return_value=httpx.Response(502))
    with pytest.raises(ApiAmbiguousError):
        client.rollback("a1", "d1", skip_pin=False)
    assert route.call_count == 1


def test_reads_are_retried_and_redirects_not_followed(
    api: respx.MockRouter, client: AppsClient
) -> None:
    route = api.get("/v2/apps/a1").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json={"app": {"id": "a1"}})]
    )
    assert client.get_app("a1")["id"] == "a1"
    assert route.call_count == 2
    api.get("/v2/apps/a2").mock(
        return_value=httpx.Response(302, headers={"Location": "https://elsewhere.example/"})
    )
    with pytest.raises(ApiError):
        client.get_app("a2")
    assert all(c.request.url.host == "api.digitalocean.com" for c in api.calls)


def test_the_settle_window_looks_are_requests_the_spec_allows(
    api: respx.MockRouter, client: AppsClient
) -> None:
    """Through the platform: one read of the deployment per look; the app read only when a
    newer deployment superseded it; the run log asked for when it failed after ACTIVE."""
    phases = iter(["ACTIVE", "ACTIVE", "SUPERSEDED", "ERROR"])

    def deployment(request: httpx.Request) -> httpx.Response:
        checked(request)
        return httpx.Response(200, json={"deployment": {"id": "d1", "phase": next(phases)}})

    api.get("/v2/apps/a1/deployments/d1").mock(side_effect=deployment)
    rollback = {"id": "d2", "cloned_from": "d0", "cause": "rollback to deployment d0"}
    api.get("/v2/apps/a1").mock(
        side_effect=answer(
            {"app": {"id": "a1", "spec": {"name": "web"}, "in_progress_deployment": rollback}}
        )
    )
    logs = api.get("/v2/apps/a1/deployments/d1/logs").mock(side_effect=answer({}))
    platform = AppsPlatform(
        client,
        AppsSettings(app_id="a1"),
        Runner({}, io.StringIO()),
        registry_password=TOKEN,
        images=lambda: pytest.fail("no image"),
    )
    release = Release("d1", "deployment", ReleaseState.PENDING, datetime.now(UTC))
    assert platform.observe(release).done  # the rollout: seen ACTIVE
    assert platform.observe(release).summary == "deployment d1 is ACTIVE"  # settling
    seen = platform.observe(release)
    assert seen.failed and "rolled back to deployment d0 by deployment d2" in seen.summary
    assert platform.observe(release).failed  # ERROR after ACTIVE
    assert [c.request.url.params["type"] for c in logs.calls] == ["RUN", "DEPLOY"]
    assert len(api.calls) == 7
