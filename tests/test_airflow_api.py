"""The Airflow REST API client against respx, for Airflow 2 (``/api/v1``) and 3 (``/api/v2``):
every request validated against that version's spec before respx answers it; paging, the
version's own request shapes, the token kept to the API's host, failures as AirflowApiError."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import pytest
import respx

from ci_deploy.airflow_api import AirflowClient, airflow_major, usable_api_url
from ci_deploy.astro.client import AstroClient
from ci_deploy.astro.platform import AstroPlatform, AstroSettings
from ci_deploy.errors import AirflowApiError
from ci_deploy.runner import Runner
from ci_deploy_testkit.emulator import Emulator
from tests.spec import assert_airflow_requests_match_spec

TOKEN = "astro-api-token-value"
HOST = "https://org.astronomer.run/d1"


def api_url(major: int) -> str:
    return f"{HOST}/api/v{1 if major == 2 else 2}"


@pytest.fixture(params=[2, 3], ids=["airflow2", "airflow3"])
def major(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def router(major: int) -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=api_url(major), assert_all_called=False) as mock:
        yield mock
    sent = [call.request for call in mock.calls]
    assert_airflow_requests_match_spec(major, sent, api_url(major))
    for request in sent:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.fixture
def client(major: int) -> Iterator[AirflowClient]:
    made = AirflowClient(
        api_url(major), TOKEN, major, ui_url="org.astronomer.run/d1?orgId=o1", sleep=lambda s: None
    )
    yield made
    made.close()


def error(filename: str, line: int = 3) -> dict[str, object]:
    return {
        "import_error_id": 1,
        "timestamp": "2026-01-01T00:00:10+00:00",
        "filename": filename,
        "bundle_name": "dags-folder",
        "stack_trace": f'  File "{filename}", line {line}\nSyntaxError: invalid syntax',
    }


def test_import_errors_are_read_page_by_page(router: respx.MockRouter, client: AirflowClient):
    files = [f"/usr/local/airflow/dags/f{n}.py" for n in range(150)]

    def page(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        limit = int(request.url.params["limit"])
        items = [error(f) for f in files[offset : offset + limit]]
        return httpx.Response(200, json={"import_errors": items, "total_entries": len(files)})

    router.get("/importErrors").mock(side_effect=page)

    found = client.import_errors()

    assert [e.filename for e in found] == files
    assert [c.request.url.params["offset"] for c in router.calls] == ["0", "100"]
    assert found[0].timestamp is not None and found[0].timestamp.second == 10


def test_a_dag_is_read_paused_and_unpaused_and_a_missing_one_is_none(
    router: respx.MockRouter, client: AirflowClient, major: int
) -> None:
    router.get("/dags/etl").respond(200, json={"dag_id": "etl", "is_paused": True, "x": 1})
    router.get("/dags/gone").respond(404, json={"detail": "DAG not found"})
    patch = router.patch("/dags/etl").respond(200, json={"dag_id": "etl", "is_paused": False})

    found = client.dag("etl")
    client.set_paused("etl", False)

    assert found is not None and found.is_paused
    assert client.dag("gone") is None
    sent = patch.calls.last.request
    assert json.loads(sent.content) == {"is_paused": False}
    assert ("update_mask" in sent.url.params) is (major == 2)


def test_a_run_is_triggered_with_its_conf_in_the_versions_shape(
    router: respx.MockRouter, client: AirflowClient, major: int
) -> None:
    trigger = router.post("/dags/etl/dagRuns").respond(
        200, json={"dag_run_id": "manual__1", "dag_id": "etl", "state": "queued"}
    )
    router.get("/dags/etl/dagRuns/manual__1").respond(
        200, json={"dag_run_id": "manual__1", "dag_id": "etl", "state": "failed"}
    )
    router.get("/dags/etl/dagRuns/manual__1/taskInstances").respond(
        200,
        json={
            "task_instances": [
                {"task_id": "load", "state": "failed"},
                {"task_id": "extract", "state": "success"},
                {"task_id": "report", "state": "upstream_failed"},
            ],
            "total_entries": 3,
        },
    )

    run = client.trigger("etl", {"full": True})
    again = client.dag_run("etl", run.run_id)

    body = json.loads(trigger.calls.last.request.content)
    assert body == (
        {"conf": {"full": True}, "logical_date": None} if major == 3 else {"conf": {"full": True}}
    )
    assert (run.run_id, run.state, again.state) == ("manual__1", "queued", "failed")
    assert client.failed_tasks("etl", "manual__1") == ("load", "report")


def test_the_link_to_a_run_is_the_versions_ui_page(client: AirflowClient, major: int) -> None:
    link = client.run_link("etl", "manual__2026-01-01T00:00:00+00:00")
    if major == 3:
        assert link == (
            "https://org.astronomer.run/d1/dags/etl/runs/manual__2026-01-01T00%3A00%3A00%2B00%3A00"
            "?orgId=o1"
        )
    else:
        assert link == (
            "https://org.astronomer.run/d1/dags/etl/grid?dag_run_id="
            "manual__2026-01-01T00%3A00%3A00%2B00%3A00&orgId=o1"
        )


def test_the_bundle_version_is_the_latest_dag_versions_on_airflow_3_only(
    router: respx.MockRouter, client: AirflowClient, major: int
) -> None:
    versions = router.get("/dags/etl/dagVersions").respond(
        200,
        json={
            "dag_versions": [
                {"version_number": 2, "bundle_version": "dags-2", "dag_id": "etl"},
            ],
            "total_entries": 2,
        },
    )

    found = client.bundle_version("etl")

    assert found == ("dags-2" if major == 3 else None)
    assert versions.called is (major == 3)


@pytest.mark.parametrize("status", [401, 403, 404, 503])
def test_a_refused_or_failing_api_is_an_airflow_api_error_without_the_token(
    router: respx.MockRouter, client: AirflowClient, status: int
) -> None:
    route = router.get("/importErrors").respond(status, json={"detail": "no"})

    with pytest.raises(AirflowApiError) as raised:
        client.import_errors()

    assert f"HTTP {status}" in raised.value.message
    assert TOKEN not in raised.value.message
    assert route.call_count == (3 if status == 503 else 1)  # a 503 is retried


def test_no_answer_is_an_airflow_api_error(router: respx.MockRouter, client: AirflowClient):
    router.get("/importErrors").mock(side_effect=httpx.ConnectError("refused"))

    with pytest.raises(AirflowApiError, match="could not be reached"):
        client.import_errors()


def test_the_version_comes_from_airflow_version_else_from_the_api_url() -> None:
    assert airflow_major("2.10.5", "https://x/d/api/v2") == 2
    assert airflow_major("3.0.1", "") == 3
    assert airflow_major("NA", "https://x/d/api/v1") == 2
    assert airflow_major("NA", "https://x/d/api/v2/") == 3
    assert airflow_major("", "https://x/d") is None


def test_the_token_goes_only_to_https_or_this_machine() -> None:
    assert usable_api_url("https://x/d/api/v2", 2) == "https://x/d/api/v1"
    assert usable_api_url("http://127.0.0.1:8080/airflow/d/api/v2", 3).endswith("/d/api/v2")
    with pytest.raises(AirflowApiError, match="not an https://"):
        usable_api_url("http://airflow.example/d/api/v2", 3)


def test_the_astro_platform_asks_the_deployments_own_airflow_api_with_the_token(
    emulator: Emulator,
) -> None:
    log = io.StringIO()
    with AstroClient(emulator.api_url, emulator.token, emulator.organization_id) as client:
        platform = AstroPlatform(
            client,
            AstroSettings(deployment_id=emulator.deployment_id),
            Runner(environ={}, stream=log),
            registry_password=emulator.token,
            images=lambda: pytest.fail("no image here"),
        )
        platform.locate()
        airflow = platform.airflow()

    host = emulator.api_url.split("://", 1)[1].split("/", 1)[0]
    assert airflow.api_url == f"http://{host}/airflow/{emulator.deployment_id}/api/v2"
    assert airflow.major == 3  # the emulator's Deployments run Airflow 3.0.1
    assert platform.airflow() is airflow
    assert airflow.run_link("etl", "r1") == (
        f"http://{host}/airflow/{emulator.deployment_id}/dags/etl/runs/r1"
    )
    airflow.close()
