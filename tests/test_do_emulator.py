"""The App Platform emulator over real HTTP: apps, deployments through their phases, logs,
specs proposed and updated, rollbacks validated, pinned, committed and reverted, faults.

Every request the ``api`` client sends and every answer it gets is checked against
DigitalOcean's spec as it happens; ``raw`` sends the requests the spec does not allow, to see
the emulator refuse them.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ci_deploy_testkit.do_emulator import (
    DEMO_APP_ID,
    DEMO_APP_NAME,
    DEMO_REPO,
    SEED_COMMIT_SHA,
    AppPlatformEmulator,
    RollbackValidation,
    demo_spec,
)
from tests.fakes import FakeClock
from tests.spec import (
    assert_do_request_matches_spec,
    assert_do_requests_match_spec,
    assert_do_response_matches_spec,
)

SHA = "0123456789abcdef0123456789abcdef01234567"
PHASE = 5.0  # seconds of the fake clock per phase
APP = f"/v2/apps/{DEMO_APP_ID}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> Iterator[AppPlatformEmulator]:
    started = time.time()
    with AppPlatformEmulator(
        phase_seconds=PHASE, clock=clock, wall_clock=lambda: started + clock.now
    ) as emulator:
        yield emulator


def _check_request(request: httpx.Request) -> None:
    assert_do_request_matches_spec(
        request.method,
        request.url.path,
        request.url.query.decode(),
        dict(request.headers),
        request.content or None,
    )


def _check_response(response: httpx.Response) -> None:
    response.read()
    assert_do_response_matches_spec(response)


@pytest.fixture
def api(emu: AppPlatformEmulator) -> Iterator[httpx.Client]:
    """A client whose every request and answer must match the App Platform spec (which
    allows only ``Accept: application/json`` or ``application/yaml`` on POST /v2/apps)."""
    with httpx.Client(
        base_url=emu.api_url,
        headers={"Authorization": f"Bearer {emu.token}", "Accept": "application/json"},
        timeout=5,
        event_hooks={"request": [_check_request], "response": [_check_response]},
    ) as client:
        yield client


@pytest.fixture
def raw(emu: AppPlatformEmulator) -> Iterator[httpx.Client]:
    """A client that sends what the spec does not allow."""
    with httpx.Client(
        base_url=emu.api_url, headers={"Authorization": f"Bearer {emu.token}"}, timeout=5
    ) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def deploy(api: httpx.Client, app: str = APP) -> dict[str, Any]:
    body = ok(api.post(f"{app}/deployments", json={"force_build": True}))
    deployment: dict[str, Any] = body["deployment"]
    return deployment


def get(api: httpx.Client, deployment_id: str, app: str = APP) -> dict[str, Any]:
    deployment: dict[str, Any] = ok(api.get(f"{app}/deployments/{deployment_id}"))["deployment"]
    return deployment


def app_json(api: httpx.Client, app: str = APP) -> dict[str, Any]:
    found: dict[str, Any] = ok(api.get(app))["app"]
    return found


def statuses(deployment: dict[str, Any]) -> list[tuple[str, str]]:
    return [(step["name"], step["status"]) for step in deployment["progress"]["steps"]]


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"id", "message", "request_id"}
    return body


def roll_back(api: httpx.Client, target: str, **body: Any) -> dict[str, Any]:
    answer = ok(api.post(f"{APP}/rollback", json={"deployment_id": target, **body}))
    rollback: dict[str, Any] = answer["deployment"]
    return rollback


def seeded_id(emu: AppPlatformEmulator) -> str:
    return str(emu.deployments()[0]["id"])


# -- apps ----------------------------------------------------------------------------


def test_the_seeded_app_runs_one_active_deployment_with_its_commit(
    emu: AppPlatformEmulator, api: httpx.Client
) -> None:
    app = app_json(api)
    assert app["id"] == DEMO_APP_ID
    assert app["spec"] == demo_spec()
    active = app["active_deployment"]
    assert active["phase"] == "ACTIVE"
    assert active["services"] == [{"name": "web", "source_commit_hash": SEED_COMMIT_SHA}]
    assert active["progress"]["success_steps"] == active["progress"]["total_steps"] == 2
    assert "pinned_deployment" not in app
    assert "in_progress_deployment" not in app
    live = httpx.get(app["live_url"], timeout=5)
    assert live.status_code == 200
    assert f"deployment {active['id']}" in live.text


def test_the_token_is_a_bearer_header_and_nothing_else(
    emu: AppPlatformEmulator, raw: httpx.Client
) -> None:
    assert error(httpx.get(f"{emu.api_url}{APP}", timeout=5), 401)["id"] == "unauthorized"
    wrong = httpx.get(f"{emu.api_url}{APP}", headers={"Authorization": "Bearer no"}, timeout=5)
    assert error(wrong, 401)["id"] == "unauthorized"
    basic = httpx.get(f"{emu.api_url}{APP}", auth=("x", emu.token), timeout=5)
    assert basic.status_code == 401
    emu.tokens.add("dop_v1_second")
    second = httpx.get(
        f"{emu.api_url}{APP}", headers={"Authorization": "Bearer dop_v1_second"}, timeout=5
    )
    assert second.status_code == 200


def test_apps_are_listed_in_pages(emu: AppPlatformEmulator, api: httpx.Client) -> None:
    for n in range(4):
        emu.add_app(demo_spec(f"app-{n}"))
    first = ok(api.get("/v2/apps", params={"per_page": 2}))
    assert [a["spec"]["name"] for a in first["apps"]] == [DEMO_APP_NAME, "app-0"]
    assert first["meta"] == {"total": 5}
    assert first["links"]["pages"]["next"].startswith(emu.base_url)
    last = ok(api.get("/v2/apps", params={"per_page": 2, "page": 3}))
    assert [a["spec"]["name"] for a in last["apps"]] == ["app-3"]
    assert "next" not in last["links"]["pages"]
    assert "prev" in last["links"]["pages"]


def test_paging_out_of_range_is_refused(raw: httpx.Client) -> None:
    assert error(raw.get("/v2/apps", params={"per_page": 201}), 400)["id"] == "bad_request"
    assert error(raw.get("/v2/apps", params={"page": 0}), 400)["id"] == "bad_request"


def test_an_app_is_created_with_a_first_deployment_and_deleted(
    emu: AppPlatformEmulator, api: httpx.Client, clock: FakeClock
) -> None:
    spec = demo_spec("preview-pr-7", branch="feature")
    emu.set_branch_head(DEMO_REPO, "feature", SHA)
    app = ok(api.post("/v2/apps", json={"spec": spec}))["app"]
    assert app["spec"] == spec
    assert app["in_progress_deployment"]["phase"] == "PENDING_BUILD"
    assert "active_deployment" not in app
    clock.sleep(4 * PHASE)
    created = app_json(api, f"/v2/apps/{app['id']}")
    assert created["active_deployment"]["services"][0]["source_commit_hash"] == SHA
    assert ok(api.delete(f"/v2/apps/{app['id']}")) == {"id": app["id"]}
    assert error(api.get(f"/v2/apps/{app['id']}"), 404)["id"] == "not_found"
    assert [a["id"] for a in emu.apps()] == [DEMO_APP_ID]


def test_an_app_name_and_its_domains_are_unique(
    emu: AppPlatformEmulator, api: httpx.Client
) -> None:
    assert error(api.post("/v2/apps", json={"spec": demo_spec()}), 409)["id"] == "conflict"
    spec = demo_spec()
    spec["domains"] = [{"domain": "airflow.example.com", "type": "PRIMARY"}]
    ok(api.put(APP, json={"spec": spec}))
    ok(api.put(APP, json={"spec": spec}))  # its own domain is no conflict
    copied = {**spec, "name": "preview-pr-1"}
    response = api.post("/v2/apps", json={"spec": copied})
    assert "'airflow.example.com' is already in use" in error(response, 409)["message"]
    other = emu.add_app(demo_spec("other"))
    assert error(api.put(f"/v2/apps/{other}", json={"spec": copied}), 409)["id"] == "conflict"
    copied.pop("domains")
    assert ok(api.post("/v2/apps", json={"spec": copied}))["app"]["spec"] == copied


# -- deployments ---------------------------------------------------------------------


def test_a_deployment_moves_through_its_phases_on_the_clock(
    emu: AppPlatformEmulator, api: httpx.Client, clock: FakeClock
) -> None:
    emu.set_branch_head(DEMO_REPO, "main", SHA)
    created = deploy(api)
    seen = []
    for _ in range(5):
        current = get(api, created["id"])
        seen.append((current["phase"], current["progress"]["success_steps"], statuses(current)))
        if current["phase"] != "ACTIVE":
            assert app_json(api)["in_progress_deployment"]["id"] == created["id"]
        clock.sleep(PHASE)
    assert seen == [
        ("PENDING_BUILD", 0, [("build", "PENDING"), ("deploy", "PENDING")]),
        ("BUILDING", 0, [("build", "RUNNING"), ("deploy", "PENDING")]),
        ("PENDING_DEPLOY", 1, [("build", "SUCCESS"), ("deploy", "PENDING")]),
        ("DEPLOYING", 1, [("build", "SUCCESS"), ("deploy", "RUNNING")]),
        ("ACTIVE", 2, [("build", "SUCCESS"), ("deploy", "SUCCESS")]),
    ]
    done = get(api, created["id"])
    assert done["services"] == [{"name": "web", "source_commit_hash": SHA}]
    assert done["progress"]["total_steps"] == 2
    assert done["cause"] == "manual deployment (force build)"
    app = app_json(api)
    assert app["active_deployment"]["id"] == created["id"]
    assert "in_progress_deployment" not in app


def test_phase_seconds_zero_ends_every_deployment_at_once(
    emu: AppPlatformEmulator, api: httpx.Client
) -> None:
    emu.phase_seconds = 0
    assert deploy(api)["phase"] == "ACTIVE"
    emu.fail_next_deployment("build")
    assert deploy(api)["phase"] == "ERROR"


def test_a_build_failure_ends_error_with_its_step_and_log(
    emu: AppPlatformEmulator, api: httpx.Client, clock: FakeClock
) -> None:
    emu.fail_next_deployment("build", log=["npm ERR! missing script: build"])
    created = deploy(api)
    clock.sleep(2 * PHASE)
    failed = get(api, created["id"])
    assert failed["phase"] == "ERROR"
    assert statuses(failed) == [("build", "ERROR"), ("deploy", "PENDING")]
    assert failed["progress"]["error_steps"] == 1
    assert failed["progress"]["steps"][0]["reason"]["code"] == "build_failed"
    clock.sleep(10 * PHASE)
    assert get(api, created["id"])["phase"] == "ERROR"
    logs = ok(api.get(f"{APP}/deployments/{created['id']}/logs", params={"type": "BUILD"}))
    assert set(logs) == {"historic_urls"}
    text = httpx.get(logs["historic_urls"][0], timeout=5).text
    assert text.splitlines()[-1] == "web [build] npm ERR! missing script: build"
    assert app_json(api)["active_deployment"]["id"] == seeded_id(emu)


def test_a_deploy_failure_of_a_named_component(
    emu: AppPlatformEmulator, api: httpx.Client, clock: FakeClock
) -> None:
    spec = demo_spec()
    spec["workers"] = [{"name": "scheduler", "github": {"repo": DEMO_REPO, "branch": "main"}}]
    ok(api.put(APP, json={"spec": spec}))
    clock.sleep(4 * PHASE)
    emu.fail_next_deployment("deploy", component="scheduler", log=["exit 3"])
    created = deploy(api)
    clock.sleep(4 * PHASE)
    failed = get(api, created["id"])
    assert failed["phase"] == "ERROR"
    assert statuses(failed) == [("build", "SUCCESS"), ("deploy", "ERROR")]
    assert failed["progress"]["success_steps"] == 1
    assert "scheduler" in failed["progress"]["steps"][1]["reason"]["message"]
    assert failed["workers"] == [{"name": "scheduler", "source_commit_hash": SEED_COMMIT_SHA}]
    text = emu.log_text(DEMO_APP_ID, created["id"], "DEPLOY")
    assert text.splitlines()[-1] == "scheduler [deploy] exit 3"


def test_a_deployment_made_unhealthy_turns_error_after_it_was_active(
    emu: AppPlatformEmulator, api: httpx.Client, clock: FakeClock
) -> None:
    emu.unhealthy_next_deployment(20, log=["panic: nil map"])
    created = deploy(api)
    clock.sleep(4 * PHASE)  # built and deployed: ACTIVE from now on
    active = get(api, created["id"])
    assert active["phase"] == "ACTIVE"
    assert app_json(api)["active_deployment"]["id"] == created["id"]
    clock.sleep(19)
    assert get(api, created["id"])["phase"] == "ACTIVE"
    clock.sleep(1)
    sick = get(api, created["id"])
    assert sick["phase"] == "ERROR"
    assert statuses(sick) == [("build", "SUCCESS"), ("deploy", "SUCCESS"), ("run", "ERROR")]
    assert sick["progress"]["error_steps"] == 1
    assert sick["progress"]["steps"][2]["reason"]["code"] == "unhealthy"
    assert sick["phase_last_updated_at"] > active["phase_last_updated_at"]
    assert app_json(api)["active_deployment"]["id"] == seeded_id(emu)
    run = ok(api.get(f"{APP}/deployments/{created['id']}/logs", params={"type": "RUN"}))
    text = httpx.get(run["live_url"], timeout=5).text
    assert text == "web [run] listening\nweb [run] panic: nil map\n"
    check = ok(api.post(f"{APP}/rollback/validate", json={"deployment_id": seeded_id(emu)}))
    assert check["valid"] is True
    newer = deploy(api)  # queued once: the next one stays healthy
    clock.sleep(100)
    assert app_json(api)["active_deployment"]["id"] == newer["id"]


def test_unhealthy_takes_no_negative_delay(emu: AppPlatformEmulator) -> None:
    with pytest.raises(ValueError, match="after must be 0 or more seconds"):
        emu.unhealthy_next_deployment(-1)


def test_logs_are_live_while_in_progress_and_refuse_the_token(
    emu: AppPlatformEmulator, api: httpx.Client, clock: FakeClock
) -> None:
    created = deploy(api)
    clock.sleep(PHASE)
    logs = ok(api.get(f"{APP}/deployments/{created['id']}/logs", params={"type": "BUILD"}))
    assert set(logs) == {"live_url"}
    assert httpx.get(logs["live_url"], timeout=5).text == "web [build] building from source\n"
    with_token = httpx.get(
        logs["live_url"], headers={"Authorization": f"Bearer {emu.token}"}, timeout=5
    )
    assert with_token.status_code == 400
    assert emu.token not in with_token.text
    clock.sleep(3 * PHASE)
    run = ok(api.get(f"{APP}/logs", params={"type": "RUN"}))
    assert httpx.get(run["live_url"], timeout=5).text == "web [run] listening\n"
    deploy_log = ok(api.get(f"{APP}/deployments/{created['id']}/logs", params={"type": "DEPLOY"}))
    lines = httpx.get(deploy_log["historic_urls"][0], timeout=5).text.splitlines()
    assert lines == ["web [deploy] starting container", "web [deploy] deployed"]


def test_the_log_type_is_required(raw: httpx.Client) -> None:
    deployment = seeded = raw.get(f"{APP}/deployments").json()["deployments"][0]
    assert seeded is deployment
    response = raw.get(f"{APP}/deployments/{deployment['id']}/logs")
    assert error(response, 400)["id"] == "bad_request"


def test_a_newer_deployment_supersedes_one_in_progress(api: httpx.Client, clock: FakeClock) -> None:
    first = deploy(api)
    clock.sleep(PHASE)
    second = deploy(api)
    superseded = get(api, first["id"])
    assert superseded["phase"] == "SUPERSEDED"
    assert statuses(superseded) == [("build", "PENDING"), ("deploy", "PENDING")]
    clock.sleep(10 * PHASE)
    assert get(api, first["id"])["phase"] == "SUPERSEDED"
    assert get(api, second["id"])["phase"] == "ACTIVE"


def test_a_deployment_is_canceled_once(api: httpx.Client, clock: FakeClock) -> None:
    created = deploy(api)
    canceled = ok(api.post(f"{APP}/deployments/{created['id']}/cancel"))["deployment"]
    assert canceled["phase"] == "CANCELED"
    clock.sleep(10 * PHASE)
    assert get(api, created["id"])["phase"] == "CANCELED"
    again = api.post(f"{APP}/deployments/{created['id']}/cancel")
    assert error(again, 400)["id"] == "bad_request"


def test_deployments_are_listed_newest_first_by_type_in_pages(
    emu: AppPlatformEmulator, api: httpx.Client, clock: FakeClock, raw: httpx.Client
) -> None:
    first = deploy(api)
    clock.sleep(4 * PHASE)
    rollback = roll_back(api, seeded_id(emu), skip_pin=True)
    listed = ok(api.get(f"{APP}/deployments"))
    assert [d["id"] for d in listed["deployments"]] == [
        rollback["id"],
        first["id"],
        seeded_id(emu),
    ]
    assert listed["meta"] == {"total": 3}
    rollbacks = ok(api.get(f"{APP}/deployments", params={"deployment_types": ["MANUAL_ROLLBACK"]}))
    assert [d["id"] for d in rollbacks["deployments"]] == [rollback["id"]]
    page = ok(api.get(f"{APP}/deployments", params={"per_page": 1, "page": 2}))
    assert [d["id"] for d in page["deployments"]] == [first["id"]]
    bad = raw.get(f"{APP}/deployments", params={"deployment_types": "NOPE"})
    assert error(bad, 400)["id"] == "bad_request"


def test_a_deployment_of_another_app_is_not_found(
    emu: AppPlatformEmulator, api: httpx.Client
) -> None:
    other = emu.add_app(demo_spec("other"))
    response = api.get(f"/v2/apps/{other}/deployments/{seeded_id(emu)}")
    assert error(response, 404)["id"] == "not_found"


def test_someone_elses_deployment_on_push(emu: AppPlatformEmulator, api: httpx.Client) -> None:
    pushed = emu.deploy_on_push(DEMO_APP_ID, SHA)
    found = get(api, pushed)
    assert found["cause"] == "commit pushed"
    assert found["services"] == [{"name": "web", "source_commit_hash": SHA}]
    kinds = {"deployment_types": ["DEPLOY_ON_PUSH"]}
    assert [d["id"] for d in ok(api.get(f"{APP}/deployments", params=kinds))["deployments"]] == [
        pushed
    ]


# -- specs ---------------------------------------------------------------------------


def test_a_spec_change_makes_a_deployment_and_the_same_spec_does_not(
    emu: AppPlatformEmulator, api: httpx.Client
) -> None:
    spec = demo_spec()
    spec["services"][0]["instance_count"] = 2
    updated = ok(api.put(APP, json={"spec": spec}))["app"]
    assert updated["spec"] == spec
    in_progress = updated["in_progress_deployment"]
    assert in_progress["cause"] == "app spec updated"
    assert in_progress["spec"] == spec
    assert len(emu.deployments()) == 2
    ok(api.put(APP, json={"spec": spec}))
    assert len(emu.deployments()) == 2
    ok(api.put(APP, json={"spec": spec, "update_all_source_versions": True}))
    assert len(emu.deployments()) == 3


def test_an_image_component_records_no_commit(emu: AppPlatformEmulator, api: httpx.Client) -> None:
    emu.phase_seconds = 0
    spec = demo_spec()
    spec["services"][0] = {
        "name": "web",
        "image": {
            "registry_type": "DOCR",
            "repository": "airflow",
            "digest": "sha256:" + "a" * 64,
        },
    }
    app = ok(api.put(APP, json={"spec": spec}))["app"]
    assert app["active_deployment"]["services"] == [{"name": "web"}]
    assert app["active_deployment"]["spec"]["services"][0]["image"]["digest"].endswith("a" * 64)


def image_spec(**image: str) -> dict[str, Any]:
    spec = demo_spec()
    spec["services"][0] = {
        "name": "web",
        "image": {"registry_type": "DOCR", "repository": "airflow", **image},
    }
    return spec


def test_with_the_registry_checked_an_image_never_pushed_fails_to_pull(
    emu: AppPlatformEmulator, api: httpx.Client, clock: FakeClock
) -> None:
    emu.require_pushed_images = True
    digest = "sha256:" + "b" * 64
    emu.record_push("airflow", "v1", digest)
    missing = ok(api.put(APP, json={"spec": image_spec(tag="v2")}))["app"]
    clock.sleep(4 * PHASE)
    failed = get(api, missing["in_progress_deployment"]["id"])
    assert failed["phase"] == "ERROR"
    assert statuses(failed) == [("build", "SUCCESS"), ("deploy", "ERROR")]
    log = emu.log_text(DEMO_APP_ID, failed["id"], "DEPLOY")
    assert log.splitlines()[-1] == "web [deploy] failed to pull image airflow:v2: manifest unknown"
    for image in ({"tag": "v1"}, {"digest": digest}):
        pushed = ok(api.put(APP, json={"spec": image_spec(**image)}))["app"]
        clock.sleep(4 * PHASE)
        assert get(api, pushed["in_progress_deployment"]["id"])["phase"] == "ACTIVE"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s["services"][0].pop("github"), "needs exactly one source"),
        (lambda s: s["services"][0].update(image={"registry_type": "DOCR"}), "exactly one"),
        (lambda s: s["services"].append(copy.deepcopy(s["services"][0])), "used twice"),
        (lambda s: s.update(services=[]), "no component"),
        (lambda s: s["services"][0]["github"].pop("repo"), "needs repo"),
        (
            lambda s: s["services"].__setitem__(
                0,
                {
                    "name": "web",
                    "image": {"registry_type": "DOCR", "repository": "a", "registry": "x"},
                },
            ),
            "registry must be left empty for DOCR",
        ),
        (
            lambda s: s["services"][0].update(
                image={"registry_type": "DOCR", "repository": "a", "tag": "1", "digest": "d"}
            ),
            "not both",
        ),
    ],
)
def test_a_spec_that_breaks_a_rule_is_refused_with_the_rule(
    emu: AppPlatformEmulator, api: httpx.Client, change: Any, problem: str
) -> None:
    spec = demo_spec()
    change(spec)
    for response in (
        api.post("/v2/apps/propose", json={"spec": spec}),
        api.put(APP, json={"spec": spec}),
    ):
        assert problem in error(response, 400)["message"]
    assert len(emu.deployments()) == 1


def test_names_outside_the_pattern_are_refused(raw: httpx.Client) -> None:
    spec = demo_spec("Not_Valid")
    response = raw.post("/v2/apps/propose", json={"spec": spec})
    assert "app name 'Not_Valid' is invalid" in error(response, 400)["message"]


def test_propose_says_whether_the_name_is_free(emu: AppPlatformEmulator, api: httpx.Client) -> None:
    taken = ok(api.post("/v2/apps/propose", json={"spec": demo_spec()}))
    assert taken["app_name_available"] is False
    assert taken["app_name_suggestion"] != DEMO_APP_NAME
    assert taken["spec"] == demo_spec()
    own = ok(api.post("/v2/apps/propose", json={"spec": demo_spec(), "app_id": DEMO_APP_ID}))
    assert own["app_name_available"] is True
    fresh = ok(api.post("/v2/apps/propose", json={"spec": demo_spec("fresh")}))
    assert fresh["app_name_available"] is True
    assert fresh["app_is_static"] is False
    assert len(emu.deployments()) == 1


def test_bodies_must_be_json_objects(raw: httpx.Client) -> None:
    not_json = raw.post(
        f"{APP}/deployments", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert error(not_json, 400)["id"] == "bad_request"
    assert error(raw.post(f"{APP}/deployments", json=[1]), 400)["id"] == "bad_request"
    assert error(raw.post(f"{APP}/deployments", json={"force_build": "yes"}), 400)
    assert error(raw.put(APP, json={}), 400)["message"].startswith("spec is required")
    assert error(raw.post(f"{APP}/rollback", json={}), 400)["message"].startswith(
        "deployment_id is required"
    )


def test_unknown_routes_and_methods(raw: httpx.Client) -> None:
    assert error(raw.get("/v2/droplets"), 404)["id"] == "not_found"
    assert error(raw.post(APP, json={}), 405)["id"] == "method_not_allowed"
    assert error(raw.get("/elsewhere"), 404)["id"] == "not_found"


# -- rollbacks -----------------------------------------------------------------------


def test_a_rollback_pins_the_app_until_committed(
    emu: AppPlatformEmulator, api: httpx.Client, clock: FakeClock
) -> None:
    seeded = seeded_id(emu)
    emu.set_branch_head(DEMO_REPO, "main", SHA)
    spec = demo_spec()
    spec["services"][0]["instance_count"] = 3
    ok(api.put(APP, json={"spec": spec}))
    clock.sleep(4 * PHASE)
    assert ok(api.post(f"{APP}/rollback/validate", json={"deployment_id": seeded})) == {
        "valid": True
    }
    rollback = roll_back(api, seeded)
    assert rollback["cloned_from"] == seeded
    assert rollback["phase"] == "PENDING_DEPLOY"
    assert statuses(rollback) == [("deploy", "PENDING")]
    assert rollback["services"] == [{"name": "web", "source_commit_hash": SEED_COMMIT_SHA}]
    app = app_json(api)
    assert app["pinned_deployment"]["id"] == rollback["id"]
    assert app["spec"] == demo_spec()
    refused = api.post(f"{APP}/deployments", json={})
    assert rollback["id"] in error(refused, 409)["message"]
    assert error(api.put(APP, json={"spec": spec}), 409)["id"] == "conflict"
    pinned = ok(api.post(f"{APP}/rollback/validate", json={"deployment_id": seeded}))
    assert pinned["valid"] is False
    assert pinned["error"]["code"] == "app_pinned"
    clock.sleep(PHASE)
    assert get(api, rollback["id"])["phase"] == "DEPLOYING"
    clock.sleep(PHASE)
    assert get(api, rollback["id"])["phase"] == "ACTIVE"
    committed = api.post(f"{APP}/rollback/commit")
    assert (committed.status_code, committed.content) == (200, b"")
    app = app_json(api)
    assert "pinned_deployment" not in app
    assert app["active_deployment"]["id"] == rollback["id"]
    assert "not pinned" in error(api.post(f"{APP}/rollback/commit"), 400)["message"]
    assert deploy(api)["phase"] == "PENDING_BUILD"


def test_skip_pin_commits_the_rollback_at_once(emu: AppPlatformEmulator, api: httpx.Client) -> None:
    rollback = roll_back(api, seeded_id(emu), skip_pin=True)
    assert "pinned_deployment" not in app_json(api)
    assert rollback["cause"] == f"rollback to deployment {seeded_id(emu)}"
    assert error(api.post(f"{APP}/rollback/revert"), 400)["id"] == "bad_request"


def test_a_revert_redeploys_the_spec_before_the_rollback_and_unpins(
    emu: AppPlatformEmulator, api: httpx.Client, clock: FakeClock
) -> None:
    seeded = seeded_id(emu)
    spec = demo_spec()
    spec["services"][0]["instance_count"] = 3
    emu.set_branch_head(DEMO_REPO, "main", SHA)
    emu.fail_next_deployment("deploy")
    failed = ok(api.put(APP, json={"spec": spec}))["app"]["in_progress_deployment"]
    clock.sleep(4 * PHASE)
    assert get(api, failed["id"])["phase"] == "ERROR"
    rollback = roll_back(api, seeded)
    clock.sleep(2 * PHASE)
    reverted = ok(api.post(f"{APP}/rollback/revert"))["deployment"]
    assert reverted["spec"] == spec
    assert reverted["cloned_from"] == failed["id"]
    assert reverted["services"] == [{"name": "web", "source_commit_hash": SHA}]
    app = app_json(api)
    assert "pinned_deployment" not in app
    assert app["spec"] == spec
    assert app["in_progress_deployment"]["id"] == reverted["id"]
    clock.sleep(2 * PHASE)
    assert app_json(api)["active_deployment"]["id"] == reverted["id"]
    assert get(api, rollback["id"])["phase"] == "ACTIVE"


def test_a_rollback_made_to_fail_ends_error(
    emu: AppPlatformEmulator, api: httpx.Client, clock: FakeClock
) -> None:
    emu.fail_next_rollback(log=["health check failed"])
    rollback = roll_back(api, seeded_id(emu))
    clock.sleep(2 * PHASE)
    failed = get(api, rollback["id"])
    assert failed["phase"] == "ERROR"
    assert statuses(failed) == [("deploy", "ERROR")]
    assert app_json(api)["pinned_deployment"]["phase"] == "ERROR"
    assert "web [deploy] health check failed" in emu.log_text(DEMO_APP_ID, rollback["id"], "DEPLOY")
    reverted = ok(api.post(f"{APP}/rollback/revert"))["deployment"]
    clock.sleep(2 * PHASE)
    assert get(api, reverted["id"])["phase"] == "ACTIVE"


def test_only_an_active_deployment_can_be_rolled_back_to(
    emu: AppPlatformEmulator, api: httpx.Client, clock: FakeClock
) -> None:
    emu.fail_next_deployment("build")
    failed = deploy(api)
    clock.sleep(4 * PHASE)
    answer = ok(api.post(f"{APP}/rollback/validate", json={"deployment_id": failed["id"]}))
    assert answer["valid"] is False
    assert answer["error"]["code"] == "incompatible_phase"
    refused = api.post(f"{APP}/rollback", json={"deployment_id": failed["id"]})
    assert "incompatible_phase" in error(refused, 400)["message"]
    assert len(emu.deployments()) == 2
    assert "pinned_deployment" not in app_json(api)


def test_a_rollback_too_far_back_exceeds_the_revision_limit(
    emu: AppPlatformEmulator, api: httpx.Client
) -> None:
    emu.phase_seconds = 0
    emu.revision_limit = 2
    seeded = seeded_id(emu)
    deploy(api)
    deploy(api)
    assert ok(api.post(f"{APP}/rollback/validate", json={"deployment_id": seeded}))["valid"]
    deploy(api)
    answer = ok(api.post(f"{APP}/rollback/validate", json={"deployment_id": seeded}))
    assert answer["valid"] is False
    assert answer["error"]["code"] == "exceeded_revision_limit"


def test_rollback_warnings_for_static_sites_and_undigested_images(
    emu: AppPlatformEmulator, api: httpx.Client
) -> None:
    emu.phase_seconds = 0
    spec = demo_spec()
    spec["static_sites"] = [{"name": "docs", "github": {"repo": DEMO_REPO, "branch": "main"}}]
    spec["workers"] = [
        {"name": "worker", "image": {"registry_type": "DOCR", "repository": "w", "tag": "1"}}
    ]
    target = ok(api.put(APP, json={"spec": spec}))["app"]["active_deployment"]
    deploy(api)
    answer = ok(api.post(f"{APP}/rollback/validate", json={"deployment_id": target["id"]}))
    assert answer["valid"] is True
    assert [(w["code"], w["components"]) for w in answer["warnings"]] == [
        ("static_site_requires_rebuild", ["docs"]),
        ("image_source_missing_digest", ["worker"]),
    ]


def test_a_test_sets_the_validation_answer(emu: AppPlatformEmulator, api: httpx.Client) -> None:
    seeded = seeded_id(emu)
    emu.rollback_validation = RollbackValidation(
        valid=False,
        error_code="database_config_conflict",
        error_message="the database changed",
        warnings=(("static_site_requires_rebuild", "rebuilt"),),
    )
    answer = ok(api.post(f"{APP}/rollback/validate", json={"deployment_id": seeded}))
    assert answer == {
        "valid": False,
        "error": {"code": "database_config_conflict", "message": "the database changed"},
        "warnings": [{"code": "static_site_requires_rebuild", "message": "rebuilt"}],
    }
    refused = api.post(f"{APP}/rollback", json={"deployment_id": seeded})
    assert "database_config_conflict" in error(refused, 400)["message"]
    emu.rollback_validation = RollbackValidation(warnings=(("image_source_missing_digest", "x"),))
    valid = ok(api.post(f"{APP}/rollback/validate", json={"deployment_id": seeded}))
    assert valid["valid"] is True
    assert roll_back(api, seeded)["cloned_from"] == seeded


# -- faults and the contract -----------------------------------------------------------


def test_faults_are_the_astro_emulators(emu: AppPlatformEmulator, raw: httpx.Client) -> None:
    emu.faults.add("POST", r"/deployments$", 429, retry_after="2")
    limited = raw.post(f"{APP}/deployments", json={})
    assert error(limited, 429)["id"] == "too_many_requests"
    assert limited.headers["retry-after"] == "2"
    assert int(limited.headers["ratelimit-reset"]) > time.time()
    assert len(emu.deployments()) == 1
    emu.faults.add("GET", r"/deployments/[^/]+$", 503)
    assert error(raw.get(f"{APP}/deployments/{seeded_id(emu)}"), 503)["id"] == "server_error"
    emu.faults.add_drop("POST", r"/rollback$")
    with pytest.raises(httpx.RemoteProtocolError):
        raw.post(f"{APP}/rollback", json={"deployment_id": seeded_id(emu)})
    assert "pinned_deployment" in emu.app()  # processed, the answer lost
    assert emu.faults.pending == 0


def test_every_request_is_recorded_and_the_api_clients_match_the_spec(
    emu: AppPlatformEmulator, api: httpx.Client
) -> None:
    deploy(api)
    api.get(APP)
    assert [(r.method, r.path) for r in emu.requests] == [
        ("POST", f"{APP}/deployments"),
        ("GET", APP),
    ]
    assert_do_requests_match_spec(emu.requests)
    with pytest.raises(AssertionError, match="does not match the App Platform API spec"):
        assert_do_request_matches_spec("POST", "/v2/apps", "", {}, b"{}")


def test_it_serves_on_loopback_and_stops(clock: FakeClock) -> None:
    emulator = AppPlatformEmulator(phase_seconds=1, clock=clock)
    assert emulator.base_url.startswith("http://127.0.0.1:")
    with emulator:
        assert httpx.get(f"{emulator.api_url}{APP}", timeout=5).status_code == 401
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{emulator.api_url}{APP}", timeout=1)


def test_the_do_api_fixture_moves_phases_with_the_runs_clock(
    do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    with httpx.Client(
        base_url=do_api.api_url, headers={"Authorization": f"Bearer {do_api.token}"}, timeout=5
    ) as client:
        created = deploy(client)
        clock.sleep(3 * do_api.phase_seconds)
        assert get(client, created["id"])["phase"] == "DEPLOYING"
        clock.sleep(do_api.phase_seconds)
        assert get(client, created["id"])["phase"] == "ACTIVE"
