"""End to end, the verification gates of issue 13: the real entrypoint, started as the GitHub
runner starts it, against the emulator and its Airflow REST API on 127.0.0.1.

Each test deploys the example project once as the baseline (gates off, so it is the deploy a
rollback returns to), then pushes a commit whose DAG files carry the emulator's markers
(``# ci-deploy-emulator: ...``), and checks the exit code, the rollback, the annotations, the
``verification`` output and what the Deployment runs after. Every Astro request the action
sent is validated against the Astro spec, every Airflow request against its version's spec.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ci_deploy_testkit.emulator import Emulator
from tests.actionrun import Step, assert_requests_match_spec, change, example_repo, run_push
from tests.gitrepo import GitRepo
from tests.spec import assert_emulated_airflow_requests_match_spec

AIRFLOW_2, AIRFLOW_3 = "2.10.5", "3.0.1"
BASELINE = {"verify-window": "0", "check-import-errors": "false"}
ETL = "dags/example_etl.py"
REPORT = "dags/daily_report.py"  # dag_id="daily_report", task "announce"
# the emulator's 20 s of import-error-after 20, times this: 3 s, inside a 15 s window
DELAY_SCALE = 0.15


@pytest.fixture(params=[AIRFLOW_3, AIRFLOW_2], ids=["airflow3", "airflow2"])
def airflow_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def emu(airflow_version: str) -> Iterator[Emulator]:
    """The emulator on the real clock, its Deployment on ``airflow_version``: rollouts end at
    once, the Airflow delays are scaled by :data:`DELAY_SCALE`."""
    with Emulator(
        rollout_seconds=0, airflow_version=airflow_version, airflow_delay_scale=DELAY_SCALE
    ) as emulator:
        yield emulator
    assert_requests_match_spec(emulator)
    assert_emulated_airflow_requests_match_spec(emulator.requests)


@pytest.fixture
def baseline(tmp_path: Any, emu: Emulator) -> tuple[GitRepo, Step]:
    """The example project deployed once, without gates: the deploy a rollback returns to."""
    repo = example_repo(tmp_path / "repo")
    before = change(repo, ETL, "\n# first deploy\n")
    step = run_push(repo, emu, before, BASELINE)
    assert step.result.returncode == 0, step.log
    return repo, step


def gates(step: Step) -> dict[str, tuple[str, str]]:
    """The ``verification`` output: gate -> (result, detail)."""
    listed = json.loads(step.outputs["verification"])
    assert [set(entry) for entry in listed] == [{"gate", "result", "detail"}] * len(listed)
    return {entry["gate"]: (entry["result"], entry["detail"]) for entry in listed}


def dag_version(emu: Emulator) -> str:
    return str(emu.deployment(emu.deployment_id)["dagTarballVersion"])


def assert_rolled_back_to(emu: Emulator, step: Step, first: Step) -> None:
    assert step.result.returncode == 1, step.log
    assert step.outputs["rolled-back"] == "true"
    deployment = emu.deployment(emu.deployment_id)
    assert deployment["status"] == "HEALTHY"
    assert dag_version(emu) == first.outputs["dag-tarball-version"]


def airflow_get(emu: Emulator, path: str) -> Any:
    api = emu.deployment(emu.deployment_id)["apiUrl"]
    answer = httpx.get(f"{api}{path}", headers={"Authorization": f"Bearer {emu.token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


# -- import errors ---------------------------------------------------------------------


def test_an_import_error_20s_after_healthy_is_caught_in_the_window_and_rolled_back(
    emu: Emulator, baseline: tuple[GitRepo, Step]
) -> None:
    repo, first = baseline
    before = change(repo, ETL, "\n# ci-deploy-emulator: import-error-after 20\n")

    step = run_push(repo, emu, before, {"verify-window": "15s"})

    assert_rolled_back_to(emu, step, first)
    verification = gates(step)
    assert verification["rollout"][0] == "passed"
    assert verification["import-errors"][0] == "passed"  # not there yet at HEALTHY
    result, detail = verification["settle-window"]
    assert result == "failed"
    assert ETL in detail and "into the settle window" in detail
    assert "SyntaxError: invalid syntax (emulated)" in detail
    [annotation] = [c for c in step.commands("error") if c.properties.get("file") == ETL]
    line = len((repo.path / ETL).read_text().splitlines())
    assert annotation.properties["line"] == str(line)
    assert "Airflow could not import" in annotation.message
    assert emu.airflow_import_errors() == []  # the rollback brought back clean code


def test_an_import_error_of_a_changed_file_fails_at_once(
    emu: Emulator, baseline: tuple[GitRepo, Step]
) -> None:
    repo, first = baseline
    before = change(repo, ETL, "\n# ci-deploy-emulator: import-error\n")

    step = run_push(repo, emu, before, {"verify-window": "0"})

    assert_rolled_back_to(emu, step, first)
    verification = gates(step)
    assert verification["import-errors"][0] == "failed"
    assert ETL in verification["import-errors"][1]
    assert verification["settle-window"][0] == "skipped"


@pytest.mark.parametrize("airflow_version", [AIRFLOW_3], ids=["airflow3"])
def test_an_import_error_in_an_unchanged_file_only_warns(tmp_path: Any, emu: Emulator) -> None:
    repo = example_repo(tmp_path / "repo")
    before = change(
        repo, "dags/legacy.py", 'dag_id = "legacy"\n# ci-deploy-emulator: import-error\n'
    )
    first = run_push(repo, emu, before, BASELINE)  # the broken legacy.py is deployed already
    assert first.result.returncode == 0, first.log
    before = change(repo, ETL)

    step = run_push(repo, emu, before, {"verify-window": "2s"})

    assert step.result.returncode == 0, step.log
    assert step.outputs["rolled-back"] == "false"
    assert dag_version(emu) == step.outputs["dag-tarball-version"]
    verification = gates(step)
    assert verification["import-errors"][0] == "warned"
    assert "dags/legacy.py" in verification["import-errors"][1]
    warnings = step.commands("warning")
    assert any("dags/legacy.py" in w.message and "did not change" in w.message for w in warnings)
    assert emu.airflow_import_errors() == ["/usr/local/airflow/dags/legacy.py"]


# -- smoke runs ------------------------------------------------------------------------


def test_a_failing_smoke_run_is_rolled_back_naming_the_failed_task(
    emu: Emulator, baseline: tuple[GitRepo, Step]
) -> None:
    repo, first = baseline
    before = change(repo, REPORT, "\n# ci-deploy-emulator: smoke-fails announce\n")

    step = run_push(repo, emu, before, {"smoke-dags": "daily_report", "verify-window": "0"})

    assert_rolled_back_to(emu, step, first)
    result, detail = gates(step)["smoke:daily_report"]
    assert result == "failed"
    assert "failed task(s): announce" in detail
    [(dag_id, run_id)] = emu.airflow_dag_runs()
    assert dag_id == "daily_report"
    assert run_id in detail
    errors = [c.message for c in step.commands("error")]
    assert any("announce" in message and run_id in message for message in errors)
    assert "announce" in step.result.summary


def test_a_succeeding_smoke_run_passes_with_its_conf(
    emu: Emulator, baseline: tuple[GitRepo, Step]
) -> None:
    repo, _ = baseline
    before = change(repo, REPORT)

    step = run_push(
        repo, emu, before, {"smoke-dags": 'daily_report {"full": true}', "verify-window": "2s"}
    )

    assert step.result.returncode == 0, step.log
    assert step.outputs["rolled-back"] == "false"
    verification = gates(step)
    assert verification["smoke:daily_report"][0] == "passed"
    assert verification["settle-window"][0] in ("passed", "warned")
    assert [result for result, _ in verification.values()].count("failed") == 0
    [(_, run_id)] = emu.airflow_dag_runs()
    run = airflow_get(emu, f"/dags/daily_report/dagRuns/{run_id}")
    assert (run["state"], run["conf"]) == ("success", {"full": True})


@pytest.mark.parametrize("airflow_version", [AIRFLOW_3], ids=["airflow3"])
def test_a_paused_smoke_dag_is_unpaused_only_when_asked(
    emu: Emulator, baseline: tuple[GitRepo, Step]
) -> None:
    repo, _ = baseline
    before = change(repo, REPORT, "\n# ci-deploy-emulator: paused\n")
    inputs = {"smoke-dags": "daily_report", "verify-window": "0"}

    skipped = run_push(repo, emu, before, inputs)

    assert skipped.result.returncode == 0, skipped.log
    assert gates(skipped)["smoke:daily_report"][0] == "skipped"
    assert emu.airflow_dag_runs() == []
    before = change(repo, ETL)

    unpaused = run_push(repo, emu, before, {**inputs, "smoke-unpause": "true"})

    assert unpaused.result.returncode == 0, unpaused.log
    assert gates(unpaused)["smoke:daily_report"][0] == "passed"
    assert airflow_get(emu, "/dags/daily_report")["is_paused"] is True  # paused again


# -- the API unreachable ---------------------------------------------------------------


@pytest.mark.parametrize("airflow_version", [AIRFLOW_3], ids=["airflow3"])
def test_the_api_unreachable_falls_back_to_the_logs_with_a_notice(
    emu: Emulator, baseline: tuple[GitRepo, Step]
) -> None:
    repo, first = baseline
    emu.airflow_api = False
    emu.import_errors_after_finalize = [ETL]  # the logs say it is broken
    before = change(repo, ETL)

    step = run_push(repo, emu, before, {"verify-window": "0"})

    notices = step.commands("notice")
    assert any(n.properties.get("title") == "Airflow API not reachable" for n in notices), step.log
    assert_rolled_back_to(emu, step, first)
    result, detail = gates(step)["import-errors"]
    assert result == "failed"
    assert ETL in detail
