"""The emulator's Airflow REST API over real HTTP, for Airflow 2 (``/api/v1``) and Airflow 3
(``/api/v2``): every endpoint the verification gates use, driven by the markers of the DAG
tarball the Deployment runs; every answer validated against its version's spec."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ci_deploy_testkit.emulator import DEMO_DEPLOYMENT_ID, Emulator
from tests.fakes import FakeClock
from tests.spec import (
    assert_airflow_response_matches_spec,
    assert_emulated_airflow_requests_match_spec,
)

AIRFLOW_VERSIONS = {"v1": "2.10.5", "v2": "3.0.1"}
CI_DEPLOY = Path(sys.executable).with_name("ci-deploy")

CLEAN = 'from airflow import DAG\n\nwith DAG(dag_id="clean"):\n    op(task_id="only")\n'
BROKEN = 'dag_id = "broken"\n\n# ci-deploy-emulator: import-error\n'
LATE = 'dag_id = "late"\n# ci-deploy-emulator: import-error-after 20\n'
SMOKE_FAILS = (
    'with DAG("etl"):\n'
    '    extract = op(task_id="extract")\n'
    '    load = op(task_id="load")\n'
    "# ci-deploy-emulator: smoke-fails load\n"
)
PAUSED = 'with DAG("sleepy"):\n    op(task_id="nap")\n# ci-deploy-emulator: paused\n'


@pytest.fixture(params=["v1", "v2"])
def api_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(api_version: str, clock: FakeClock) -> Iterator[Emulator]:
    """The emulator of one Airflow version on a fake clock: a rollout takes 5 s of it."""
    started = time.time()
    with Emulator(
        rollout_seconds=5,
        clock=clock,
        wall_clock=lambda: started + clock.now,
        airflow_version=AIRFLOW_VERSIONS[api_version],
    ) as emulator:
        yield emulator


@pytest.fixture
def airflow(emu: Emulator) -> Iterator[httpx.Client]:
    """A client of the Deployment's Airflow API; every answer checked against the spec."""
    with airflow_client(emu) as client:
        yield client


def airflow_client(
    emu: Emulator, *, checked: bool = True, token: str | None = None
) -> httpx.Client:
    def check(response: httpx.Response) -> None:
        response.read()
        if checked:
            assert_airflow_response_matches_spec(response)

    token = emu.token if token is None else token
    return httpx.Client(
        base_url=emu.deployment(DEMO_DEPLOYMENT_ID)["apiUrl"],
        headers={"Authorization": f"Bearer {token}"} if token else {},
        event_hooks={"response": [check]},
        timeout=5,
    )


def tarball(files: dict[str, str]) -> bytes:
    """A gzipped DAG tarball of ``files`` (``dags/x.py``: text), as the action builds it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def deploy(emu: Emulator, files: dict[str, str]) -> str:
    """A DAG-only deploy of ``files`` over the Astro API, finalized; its DAG tarball version."""
    url = emu.upload_url()
    put = httpx.put(url, content=tarball(files), headers={"x-ms-blob-type": "BlockBlob"})
    assert put.status_code == 201, put.text
    version = put.headers["x-ms-version-id"]
    deploy_id = url.split("?")[0].rsplit("/", 1)[1]
    finalize = httpx.post(
        f"{emu.api_url}/organizations/{emu.organization_id}/deployments/{DEMO_DEPLOYMENT_ID}"
        f"/deploys/{deploy_id}/finalize",
        json={"dagTarballVersion": version},
        headers={"Authorization": f"Bearer {emu.token}"},
    )
    assert finalize.status_code == 200, finalize.text
    return version


def rolled_out(emu: Emulator, clock: FakeClock, files: dict[str, str]) -> str:
    """:func:`deploy`, then the fake clock moved to the moment the rollout is HEALTHY."""
    version = deploy(emu, files)
    assert emu.deployment(DEMO_DEPLOYMENT_ID)["status"] == "DEPLOYING"
    clock.now += emu.rollout_seconds
    deployment = emu.deployment(DEMO_DEPLOYMENT_ID)
    assert (deployment["status"], deployment["dagTarballVersion"]) == ("HEALTHY", version)
    return version


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def filenames(airflow: httpx.Client) -> list[str]:
    return [error["filename"] for error in ok(airflow.get("/importErrors"))["import_errors"]]


# -- where the API is --------------------------------------------------------------------


def test_the_api_url_and_version_follow_the_airflow_version(
    emu: Emulator, api_version: str
) -> None:
    deployment = emu.deployment(DEMO_DEPLOYMENT_ID)
    assert deployment["airflowVersion"] == AIRFLOW_VERSIONS[api_version]
    assert deployment["apiUrl"] == (
        f"{emu.base_url}/airflow/{DEMO_DEPLOYMENT_ID}/api/{api_version}"
    )
    other = "v2" if api_version == "v1" else "v1"
    headers = {"Authorization": f"Bearer {emu.token}"}
    wrong = httpx.get(
        f"{emu.base_url}/airflow/{DEMO_DEPLOYMENT_ID}/api/{other}/dags", headers=headers
    )
    assert wrong.status_code == 404
    unknown = httpx.get(f"{emu.base_url}/airflow/nobody/api/{api_version}/dags", headers=headers)
    assert unknown.status_code == 404


def test_a_bearer_token_the_emulator_accepts_is_required(emu: Emulator) -> None:
    for token in ("", "not-a-token"):
        with airflow_client(emu, token=token) as client:
            assert client.get("/dags").status_code == 401
    with airflow_client(emu) as client:
        assert client.get("/dags").status_code == 200


# -- DAGs from the deployed tarball ------------------------------------------------------


def test_the_seeded_deployment_serves_no_dags(airflow: httpx.Client) -> None:
    assert ok(airflow.get("/dags")) == {"dags": [], "total_entries": 0}
    assert ok(airflow.get("/importErrors")) == {"import_errors": [], "total_entries": 0}
    assert airflow.get("/dags/clean").status_code == 404


def test_dags_are_those_of_the_tarball_the_deployment_runs(
    emu: Emulator, clock: FakeClock, airflow: httpx.Client, api_version: str
) -> None:
    deploy(emu, {"dags/clean.py": CLEAN, "dags/etl/pipeline.py": SMOKE_FAILS})
    assert ok(airflow.get("/dags"))["dags"] == []  # still rolling out: the old code runs
    version = rolled_out(emu, clock, {"dags/clean.py": CLEAN, "dags/etl/pipeline.py": SMOKE_FAILS})
    dags = ok(airflow.get("/dags"))
    assert [dag["dag_id"] for dag in dags["dags"]] == ["clean", "etl"]
    assert dags["total_entries"] == 2
    etl = ok(airflow.get("/dags/etl"))
    assert etl["fileloc"] == "/usr/local/airflow/dags/etl/pipeline.py"
    assert etl["is_paused"] is False
    if api_version == "v2":
        assert etl["relative_fileloc"] == "etl/pipeline.py"
        assert etl["bundle_version"] == version
    page = ok(airflow.get("/dags", params={"limit": 1, "offset": 1}))
    assert ([dag["dag_id"] for dag in page["dags"]], page["total_entries"]) == (["etl"], 2)
    assert airflow.get("/dags/nope").status_code == 404


def test_without_kept_blobs_no_dags_are_served() -> None:
    with Emulator(rollout_seconds=0, keep_blobs=False) as emu, airflow_client(emu) as airflow:
        deploy(emu, {"dags/broken.py": BROKEN})
        assert emu.deployment(DEMO_DEPLOYMENT_ID)["status"] == "HEALTHY"
        assert ok(airflow.get("/dags"))["total_entries"] == 0
        assert ok(airflow.get("/importErrors"))["total_entries"] == 0


def test_a_paused_marker_pauses_the_dags_until_patched(
    emu: Emulator, clock: FakeClock, airflow: httpx.Client, api_version: str
) -> None:
    rolled_out(emu, clock, {"dags/sleepy.py": PAUSED, "dags/clean.py": CLEAN})
    assert ok(airflow.get("/dags/sleepy"))["is_paused"] is True
    assert [d["dag_id"] for d in ok(airflow.get("/dags", params={"paused": "true"}))["dags"]] == [
        "sleepy"
    ]
    mask = {"update_mask": "is_paused"} if api_version == "v1" else {}
    assert (
        ok(airflow.patch("/dags/sleepy", params=mask, json={"is_paused": False}))["is_paused"]
        is False
    )
    assert ok(airflow.get("/dags/sleepy"))["is_paused"] is False
    assert ok(airflow.get("/dags", params={"paused": "true"}))["dags"] == []
    assert ok(airflow.patch("/dags/sleepy", json={"is_paused": True}))["is_paused"] is True
    with airflow_client(emu, checked=False) as unchecked:  # the v1 spec lists no 400 here
        assert unchecked.patch("/dags/sleepy", json={"is_paused": "no"}).status_code in (400, 422)
    assert airflow.patch("/dags/nope", json={"is_paused": True}).status_code == 404


# -- import errors ---------------------------------------------------------------------


def test_an_import_error_marker_fails_the_file_once_the_rollout_is_healthy(
    emu: Emulator, clock: FakeClock, airflow: httpx.Client, api_version: str
) -> None:
    files = {"dags/clean.py": CLEAN, "dags/broken.py": BROKEN, "dags/sub/also.py": BROKEN}
    deploy(emu, files)
    clock.now += emu.rollout_seconds - 0.1
    assert filenames(airflow) == []  # DEPLOYING: Airflow has not parsed the new files
    clock.now += 0.1
    page = ok(airflow.get("/importErrors"))
    assert page["total_entries"] == 2
    [first, second] = page["import_errors"]
    assert {first["filename"], second["filename"]} == {
        "/usr/local/airflow/dags/broken.py",
        "/usr/local/airflow/dags/sub/also.py",
    }
    assert "SyntaxError: invalid syntax (emulated)" in first["stack_trace"]
    assert "line 3" in first["stack_trace"]
    assert first["import_error_id"] < second["import_error_id"]
    assert ("bundle_name" in first) is (api_version == "v2")
    assert ok(airflow.get("/dags/broken"))["has_import_errors"] is True
    assert ok(airflow.get("/dags/clean"))["has_import_errors"] is False
    assert emu.airflow_import_errors() == [first["filename"], second["filename"]]
    paged = ok(airflow.get("/importErrors", params={"limit": 1, "offset": 1}))
    assert (paged["import_errors"], paged["total_entries"]) == ([second], 2)
    assert ok(airflow.get("/importErrors", params={"offset": 2}))["import_errors"] == []
    with airflow_client(emu, checked=False) as unchecked:  # the v1 spec lists no 400 here
        assert unchecked.get("/importErrors", params={"limit": -1}).status_code in (400, 422)


def test_a_delayed_import_error_appears_that_many_seconds_after_healthy(
    emu: Emulator, clock: FakeClock, airflow: httpx.Client
) -> None:
    rolled_out(emu, clock, {"dags/late.py": LATE, "dags/clean.py": CLEAN})
    clock.now += 19.9
    assert filenames(airflow) == []
    clock.now += 0.1
    assert filenames(airflow) == ["/usr/local/airflow/dags/late.py"]
    [error] = ok(airflow.get("/importErrors"))["import_errors"]
    assert "line 2" in error["stack_trace"]


def test_the_delay_scale_shortens_the_delay(
    emu: Emulator, clock: FakeClock, airflow: httpx.Client
) -> None:
    emu.airflow_delay_scale = 0.05
    rolled_out(emu, clock, {"dags/late.py": LATE})
    clock.now += 0.9
    assert filenames(airflow) == []
    clock.now += 0.1
    assert filenames(airflow) == ["/usr/local/airflow/dags/late.py"]


def test_a_rollback_to_clean_code_clears_the_import_errors(
    emu: Emulator, clock: FakeClock, airflow: httpx.Client
) -> None:
    rolled_out(emu, clock, {"dags/clean.py": CLEAN})
    clean_deploy = emu.deploys(DEMO_DEPLOYMENT_ID)[-1]["id"]
    rolled_out(emu, clock, {"dags/clean.py": CLEAN, "dags/broken.py": BROKEN})
    assert filenames(airflow) == ["/usr/local/airflow/dags/broken.py"]
    rollback = httpx.post(
        f"{emu.api_url}/organizations/{emu.organization_id}/deployments/{DEMO_DEPLOYMENT_ID}"
        f"/deploys/{clean_deploy}/rollback",
        json={},
        headers={"Authorization": f"Bearer {emu.token}"},
    )
    assert rollback.status_code == 200, rollback.text
    assert filenames(airflow) == ["/usr/local/airflow/dags/broken.py"]  # rolling back
    clock.now += emu.rollout_seconds
    assert filenames(airflow) == []
    assert airflow.get("/dags/broken").status_code == 404


# -- DAG runs --------------------------------------------------------------------------


def trigger(airflow: httpx.Client, dag_id: str, conf: dict[str, Any] | None = None) -> Any:
    body: dict[str, Any] = {"logical_date": None}
    if conf is not None:
        body["conf"] = conf
    return ok(airflow.post(f"/dags/{dag_id}/dagRuns", json=body))


def run_state(airflow: httpx.Client, dag_id: str, run_id: str) -> str:
    return str(ok(airflow.get(f"/dags/{dag_id}/dagRuns/{run_id}"))["state"])


def task_states(airflow: httpx.Client, dag_id: str, run_id: str, **params: Any) -> dict[str, str]:
    page = ok(airflow.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params=params))
    return {task["task_id"]: task["state"] for task in page["task_instances"]}


def test_a_triggered_run_succeeds_after_about_a_second(
    emu: Emulator, clock: FakeClock, airflow: httpx.Client
) -> None:
    rolled_out(emu, clock, {"dags/clean.py": CLEAN})
    run = trigger(airflow, "clean", {"full": True})
    assert (run["dag_id"], run["conf"], run["state"]) == ("clean", {"full": True}, "queued")
    assert run["dag_run_id"].startswith("manual__")
    assert emu.airflow_dag_runs() == [("clean", run["dag_run_id"])]
    clock.now += 0.5
    assert run_state(airflow, "clean", run["dag_run_id"]) == "running"
    assert task_states(airflow, "clean", run["dag_run_id"]) == {"only": "running"}
    clock.now += 0.5
    done = ok(airflow.get(f"/dags/clean/dagRuns/{run['dag_run_id']}"))
    assert done["state"] == "success"
    assert done["end_date"] is not None
    assert task_states(airflow, "clean", run["dag_run_id"]) == {"only": "success"}


def test_a_smoke_fails_marker_fails_the_run_and_names_the_task(
    emu: Emulator, clock: FakeClock, airflow: httpx.Client, api_version: str
) -> None:
    rolled_out(emu, clock, {"dags/etl.py": SMOKE_FAILS})
    run_id = trigger(airflow, "etl")["dag_run_id"]
    clock.now += 1
    assert run_state(airflow, "etl", run_id) == "failed"
    assert task_states(airflow, "etl", run_id) == {"extract": "success", "load": "failed"}
    assert task_states(airflow, "etl", run_id, state="failed") == {"load": "failed"}
    assert airflow.get("/dags/etl/dagRuns/nope").status_code == 404
    unknown_run = airflow.get("/dags/etl/dagRuns/nope/taskInstances")
    if api_version == "v1":  # Airflow 2 lists no task instances of an unknown run
        assert ok(unknown_run) == {"task_instances": [], "total_entries": 0}
    else:
        assert unknown_run.status_code == 404


def test_a_run_of_a_paused_dag_stays_queued_until_unpaused(
    emu: Emulator, clock: FakeClock, airflow: httpx.Client
) -> None:
    rolled_out(emu, clock, {"dags/sleepy.py": PAUSED})
    run_id = trigger(airflow, "sleepy")["dag_run_id"]
    clock.now += 60
    assert run_state(airflow, "sleepy", run_id) == "queued"
    ok(airflow.patch("/dags/sleepy", json={"is_paused": False}))
    clock.now += 1
    assert run_state(airflow, "sleepy", run_id) == "success"


def test_trigger_rules(
    emu: Emulator, clock: FakeClock, airflow: httpx.Client, api_version: str
) -> None:
    rolled_out(emu, clock, {"dags/clean.py": CLEAN})
    body = {"dag_run_id": "smoke-1", "logical_date": None}
    assert ok(airflow.post("/dags/clean/dagRuns", json=body))["dag_run_id"] == "smoke-1"
    assert airflow.post("/dags/clean/dagRuns", json=body).status_code == 409
    assert airflow.post("/dags/nope/dagRuns", json=body).status_code == 404
    bad_conf = {"logical_date": None, "conf": [1]}
    with airflow_client(emu, checked=False) as unchecked:
        assert unchecked.post("/dags/clean/dagRuns", json=bad_conf).status_code in (400, 422)
    if api_version == "v2":  # Airflow 3 requires logical_date, null for "now"
        with airflow_client(emu, checked=False) as client:
            missing = client.post("/dags/clean/dagRuns", json={})
        assert missing.status_code == 422
        assert missing.json()["detail"][0]["loc"] == ["body", "logical_date"]
    else:
        assert ok(airflow.post("/dags/clean/dagRuns", json={}))["state"] == "queued"


# -- DAG versions (Airflow 3) ----------------------------------------------------------


@pytest.mark.parametrize("api_version", ["v2"])
def test_a_dag_gets_a_version_per_rollout_that_changed_its_file(
    emu: Emulator, clock: FakeClock, airflow: httpx.Client
) -> None:
    first = rolled_out(emu, clock, {"dags/clean.py": CLEAN, "dags/etl.py": SMOKE_FAILS})
    second = rolled_out(
        emu, clock, {"dags/clean.py": CLEAN + "# edited\n", "dags/etl.py": SMOKE_FAILS}
    )

    def versions(dag_id: str) -> list[tuple[int, str]]:
        page = ok(airflow.get(f"/dags/{dag_id}/dagVersions"))
        assert page["total_entries"] == len(page["dag_versions"])
        return [(v["version_number"], v["bundle_version"]) for v in page["dag_versions"]]

    assert versions("clean") == [(1, first), (2, second)]
    newest = ok(
        airflow.get("/dags/clean/dagVersions", params={"order_by": "-version_number", "limit": 1})
    )
    assert [v["bundle_version"] for v in newest["dag_versions"]] == [second]
    assert newest["total_entries"] == 2
    assert versions("etl") == [(1, first)]  # unchanged: not parsed into a new version
    run = trigger(airflow, "clean")
    assert run["bundle_version"] == second
    assert [v["version_number"] for v in run["dag_versions"]] == [2]
    assert airflow.get("/dags/nope/dagVersions").status_code == 404


@pytest.mark.parametrize("api_version", ["v1"])
def test_airflow_2_has_no_dag_versions(emu: Emulator, clock: FakeClock) -> None:
    rolled_out(emu, clock, {"dags/clean.py": CLEAN})
    with airflow_client(emu, checked=False) as client:
        assert client.get("/dags/clean/dagVersions").status_code == 404


# -- unreachable -----------------------------------------------------------------------


def test_airflow_api_false_answers_503_and_the_logs_endpoint_keeps_working() -> None:
    with Emulator(rollout_seconds=0, airflow_api=False) as emu:
        emu.import_errors_after_finalize = ["dags/broken.py"]
        deploy(emu, {"dags/broken.py": BROKEN})
        calls: list[Callable[[httpx.Client], httpx.Response]] = [
            lambda c: c.get("/importErrors"),
            lambda c: c.get("/dags"),
            lambda c: c.get("/dags/broken"),
            lambda c: c.patch("/dags/broken", json={"is_paused": False}),
            lambda c: c.post("/dags/broken/dagRuns", json={"logical_date": None}),
            lambda c: c.get("/dags/broken/dagRuns/r"),
            lambda c: c.get("/dags/broken/dagRuns/r/taskInstances"),
            lambda c: c.get("/dags/broken/dagVersions"),
        ]
        with airflow_client(emu, checked=False) as client:
            assert [call(client).status_code for call in calls] == [503] * len(calls)
            logs = httpx.get(
                f"{emu.api_url}/organizations/{emu.organization_id}/deployments/"
                f"{DEMO_DEPLOYMENT_ID}/logs",
                params={"sources": "dag-processor"},
                headers={"Authorization": f"Bearer {emu.token}"},
            )
            assert logs.status_code == 200
            assert "Broken DAG" in logs.text
            emu.airflow_api = True
            assert client.get("/dags").status_code == 200


# -- ci-deploy emulator --airflow-version ----------------------------------------------


def test_the_emulator_command_serves_the_airflow_version_asked_for() -> None:
    process = subprocess.Popen(
        [str(CI_DEPLOY), "emulator", "--port", "0", "--airflow-version", "2.10.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: dict[str, str] = {}
        while "airflow-api" not in lines:
            name, _, value = process.stdout.readline().strip().partition(": ")
            assert name, "the emulator stopped before printing its Airflow API"
            lines[name] = value
        assert lines["airflow-api"].endswith(f"/airflow/{DEMO_DEPLOYMENT_ID}/api/v1")
        headers = {"Authorization": f"Bearer {lines['token']}"}
        dags = httpx.get(f"{lines['airflow-api']}/dags", headers=headers)
        assert dags.status_code == 200
        assert_airflow_response_matches_spec(dags)
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- the request validator the end-to-end tests use ------------------------------------


def test_the_request_validator_catches_a_request_its_spec_refuses(
    emu: Emulator, clock: FakeClock, api_version: str
) -> None:
    rolled_out(emu, clock, {"dags/clean.py": CLEAN})
    with airflow_client(emu, checked=False) as client:
        mask = {"update_mask": "is_paused"} if api_version == "v1" else {}
        client.patch("/dags/clean", params=mask, json={"is_paused": True})
        client.post("/dags/clean/dagRuns", json={"logical_date": None})
    assert_emulated_airflow_requests_match_spec(emu.requests)  # both valid, for v1 and v2
    with airflow_client(emu, checked=False) as client:
        client.post("/dags/clean/dagRuns", json={"conf": "not an object"})
    refused = r"dagRuns does not match the Airflow \d REST API spec"
    with pytest.raises(AssertionError, match=refused):
        assert_emulated_airflow_requests_match_spec(emu.requests)
