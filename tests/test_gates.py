"""The verification gates in process: a real git repository, the action through
``cli.deploy``, an in-memory platform whose Deployment serves a fake Airflow API, and a fake
clock (a 60 s settle window takes no time). Each gate's pass, failure (rolled back like an
UNHEALTHY rollout), warning and skip; the fallback to the logs; the ``verification`` output."""

from __future__ import annotations

import json

import pytest

from ci_deploy.verification import AirflowImportError, Dag
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import DAG, Step, change
from tests.fakes import FakeAirflow, FakeAirflowPlatform, FakeClock, Rollout
from tests.gitrepo import GitRepo
from tests.inprocess import run_in_process

OTHER = "dags/daily_report.py"
"""A DAG file the deploys of these tests do not change."""


def trace(path: str, line: int = 4) -> str:
    return (
        "Traceback (most recent call last):\n"
        f'  File "/usr/local/airflow/{path}", line {line}\n'
        "    def broken(:\n"
        "SyntaxError: invalid syntax (emulated)"
    )


def broken(path: str, after: float = 0.0, line: int = 4) -> tuple[float, AirflowImportError]:
    return after, AirflowImportError(f"/usr/local/airflow/{path}", trace(path, line))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def airflow(clock: FakeClock) -> FakeAirflow:
    return FakeAirflow(
        clock,
        dags_known={
            "example_etl": Dag("example_etl", False, f"/usr/local/airflow/{DAG}"),
            "daily_report": Dag("daily_report", False, f"/usr/local/airflow/{OTHER}"),
        },
        versions={"example_etl": "dags-new-1"},  # the deploy's DAG tarball version
    )


@pytest.fixture
def platform(repo: GitRepo, airflow: FakeAirflow) -> FakeAirflowPlatform:
    platform = FakeAirflowPlatform(airflow_api=airflow)
    platform.seed(repo.head())
    return platform


def deploy(
    repo: GitRepo,
    platform: FakeAirflowPlatform,
    clock: FakeClock,
    inputs: dict[str, str] | None = None,
) -> Step:
    before = change(repo)
    return run_in_process(
        repo.path,
        inputs,
        platform=platform,
        clock=clock,
        event_name="push",
        event=push_event(before, repo.head()),
    )


def gates(step: Step) -> dict[str, tuple[str, str]]:
    """The ``verification`` output: gate -> (result, detail)."""
    return {g["gate"]: (g["result"], g["detail"]) for g in json.loads(step.outputs["verification"])}


def results(step: Step) -> dict[str, str]:
    return {gate: result for gate, (result, _) in gates(step).items()}


def test_a_healthy_deploy_passes_every_gate_and_lists_them(
    repo: GitRepo, platform: FakeAirflowPlatform, airflow: FakeAirflow, clock: FakeClock
) -> None:
    step = deploy(repo, platform, clock, {"smoke-dags": 'example_etl {"full": true}'})

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "deployed"
    assert results(step) == {
        "rollout": "passed",
        "import-errors": "passed",
        "settle-window": "passed",
        "smoke:example_etl": "passed",
    }
    assert (
        "DAG versions from bundle version dags-new-1: example_etl"
        in gates(step)["settle-window"][1]
    )
    assert ("trigger", "example_etl", {"full": True}) in airflow.calls
    assert "DAG example_etl was parsed from this deploy's bundle version dags-new-1." in step.log
    assert "**Verification**" in step.result.summary
    assert "| `smoke:example_etl` | ✅ passed |" in step.result.summary
    assert "roll_back" not in platform.names()


def test_an_import_error_20s_after_healthy_is_caught_in_the_window_and_rolled_back(
    repo: GitRepo, platform: FakeAirflowPlatform, airflow: FakeAirflow, clock: FakeClock
) -> None:
    airflow.errors.append(broken(DAG, after=20, line=7))

    step = deploy(repo, platform, clock)

    assert step.result.returncode == 1
    assert step.outputs["status"] == "rolled-back"
    assert step.outputs["rolled-back"] == "true"
    assert results(step) == {
        "rollout": "passed",
        "import-errors": "passed",
        "settle-window": "failed",
    }
    detail = gates(step)["settle-window"][1]
    assert "into the settle window" in detail and DAG in detail
    [annotation] = [c for c in step.commands("error") if c.properties.get("file")]
    assert (annotation.properties["file"], annotation.properties["line"]) == (DAG, "7")
    assert "SyntaxError: invalid syntax (emulated)" in annotation.message
    assert platform.names().count("roll_back") == 1
    assert "SyntaxError: invalid syntax (emulated)" in step.result.summary
    assert "| `settle-window` | ❌ failed |" in step.result.summary


def test_an_import_error_of_a_changed_file_at_once_fails_the_import_errors_gate(
    repo: GitRepo, platform: FakeAirflowPlatform, airflow: FakeAirflow, clock: FakeClock
) -> None:
    airflow.errors.append(broken(DAG))

    step = deploy(repo, platform, clock, {"smoke-dags": "example_etl"})

    assert step.outputs["status"] == "rolled-back"
    assert results(step) == {
        "rollout": "passed",
        "import-errors": "failed",
        "settle-window": "skipped",
        "smoke:example_etl": "skipped",
    }
    assert "trigger" not in [c[0] for c in airflow.calls]


def test_an_import_error_of_an_unchanged_file_only_warns(
    repo: GitRepo, platform: FakeAirflowPlatform, airflow: FakeAirflow, clock: FakeClock
) -> None:
    airflow.errors.append(broken(OTHER))

    step = deploy(repo, platform, clock)

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "deployed"
    assert results(step)["import-errors"] == "warned"
    assert results(step)["settle-window"] == "warned"
    [warning] = [c for c in step.commands("warning") if "did not change" in c.message]
    assert OTHER in warning.message
    assert not [c for c in step.commands("error") if c.properties.get("file")]
    assert "roll_back" not in platform.names()


def test_an_unhealthy_deployment_inside_the_window_is_rolled_back(
    repo: GitRepo, platform: FakeAirflowPlatform, clock: FakeClock
) -> None:
    platform.rollout = Rollout(polls=1, unhealthy_from=5)

    step = deploy(repo, platform, clock)

    assert step.outputs["status"] == "rolled-back"
    assert results(step)["settle-window"] == "failed"
    assert "UNHEALTHY (a scheduler crashed)" in gates(step)["settle-window"][1]


def test_a_failing_smoke_run_is_rolled_back_naming_the_failed_task_and_the_run(
    repo: GitRepo, platform: FakeAirflowPlatform, airflow: FakeAirflow, clock: FakeClock
) -> None:
    airflow.failing["example_etl"] = ("load",)

    step = deploy(repo, platform, clock, {"smoke-dags": "example_etl, daily_report"})

    assert step.outputs["status"] == "rolled-back"
    assert results(step) == {
        "rollout": "passed",
        "import-errors": "passed",
        "settle-window": "passed",
        "smoke:example_etl": "failed",
        "smoke:daily_report": "skipped",
    }
    detail = gates(step)["smoke:example_etl"][1]
    assert "failed task(s): load" in detail
    assert "https://airflow.example/dags/example_etl/runs/manual__1" in detail
    assert "failed task(s): load" in step.result.summary
    assert platform.names().count("roll_back") == 1


def test_a_smoke_run_that_never_ends_fails_at_the_smoke_timeout(
    repo: GitRepo, platform: FakeAirflowPlatform, airflow: FakeAirflow, clock: FakeClock
) -> None:
    airflow.run_looks = 10_000

    step = deploy(repo, platform, clock, {"smoke-dags": "example_etl", "smoke-timeout": "2m"})

    assert step.outputs["status"] == "rolled-back"
    assert "did not end within 2m (smoke-timeout)" in gates(step)["smoke:example_etl"][1]


def test_a_paused_smoke_dag_is_reported_and_skipped_without_smoke_unpause(
    repo: GitRepo, platform: FakeAirflowPlatform, airflow: FakeAirflow, clock: FakeClock
) -> None:
    airflow.dags_known["example_etl"] = Dag("example_etl", True, f"/usr/local/airflow/{DAG}")

    step = deploy(repo, platform, clock, {"smoke-dags": "example_etl"})

    assert step.outputs["status"] == "deployed"
    assert results(step)["smoke:example_etl"] == "skipped"
    assert "smoke-unpause: true" in gates(step)["smoke:example_etl"][1]
    assert any("paused" in c.message for c in step.commands("warning"))
    assert not [c for c in airflow.calls if c[0] in ("trigger", "set_paused")]


@pytest.mark.parametrize("fails", [False, True])
def test_smoke_unpause_unpauses_for_the_run_and_pauses_again_on_every_way_out(
    repo: GitRepo,
    platform: FakeAirflowPlatform,
    airflow: FakeAirflow,
    clock: FakeClock,
    fails: bool,
) -> None:
    airflow.dags_known["example_etl"] = Dag("example_etl", True, f"/usr/local/airflow/{DAG}")
    if fails:
        airflow.failing["example_etl"] = ("extract",)

    step = deploy(repo, platform, clock, {"smoke-dags": "example_etl", "smoke-unpause": "true"})

    pauses = [c for c in airflow.calls if c[0] in ("set_paused", "trigger")]
    assert pauses == [
        ("set_paused", "example_etl", False),
        ("trigger", "example_etl", {}),
        ("set_paused", "example_etl", True),
    ]
    assert airflow.dags_known["example_etl"].is_paused
    assert results(step)["smoke:example_etl"] == ("failed" if fails else "passed")
    assert step.outputs["status"] == ("rolled-back" if fails else "deployed")


def test_an_unreachable_api_falls_back_to_the_logs_with_a_notice(
    repo: GitRepo, platform: FakeAirflowPlatform, airflow: FakeAirflow, clock: FakeClock
) -> None:
    airflow.down = True
    platform.import_problems[DAG] = "Broken DAG: [/usr/local/airflow/dags/example_etl.py]"

    step = deploy(repo, platform, clock)

    [notice] = [
        c
        for c in step.commands("notice")
        if c.properties.get("title") == ("Airflow API not reachable")
    ]
    assert "read from the Deployment's logs instead" in notice.message
    assert "import_errors" in platform.names()  # the logs were read
    assert step.outputs["status"] == "rolled-back"
    assert results(step)["import-errors"] == "failed"
    assert DAG in gates(step)["import-errors"][1]


def test_an_unreachable_api_and_clean_logs_pass_on_the_logs(
    repo: GitRepo, platform: FakeAirflowPlatform, airflow: FakeAirflow, clock: FakeClock
) -> None:
    airflow.down = True

    step = deploy(repo, platform, clock, {"smoke-dags": "example_etl"})

    assert step.outputs["status"] == "deployed", step.log
    import_errors = gates(step)["import-errors"]
    assert import_errors[0] == "passed" and "none in the logs" in import_errors[1]
    assert "503" in import_errors[1]
    assert results(step)["smoke:example_etl"] == "skipped"
    assert "settle window watches only its status" in step.log


def test_dag_versions_not_confirmed_in_the_window_only_warn(
    repo: GitRepo, platform: FakeAirflowPlatform, airflow: FakeAirflow, clock: FakeClock
) -> None:
    airflow.versions["example_etl"] = "dags-old"

    step = deploy(repo, platform, clock)

    assert step.outputs["status"] == "deployed"
    assert results(step)["settle-window"] == "warned"
    assert "DAG versions not confirmed for example_etl" in gates(step)["settle-window"][1]


def test_airflow_2_has_no_dag_versions_to_confirm(
    repo: GitRepo, platform: FakeAirflowPlatform, airflow: FakeAirflow, clock: FakeClock
) -> None:
    airflow.major = 2

    step = deploy(repo, platform, clock)

    assert results(step)["settle-window"] == "passed"
    assert not [c for c in airflow.calls if c[0] in ("dags", "bundle_version")]


def test_verify_window_0_skips_the_window(
    repo: GitRepo, platform: FakeAirflowPlatform, clock: FakeClock
) -> None:
    step = deploy(repo, platform, clock, {"verify-window": "0"})

    assert results(step)["settle-window"] == "skipped"
    assert platform.names().count("observe") == 1


def test_a_failed_rollout_skips_the_gates_after_it(
    repo: GitRepo, platform: FakeAirflowPlatform, clock: FakeClock
) -> None:
    platform.rollout = Rollout(outcome="unhealthy")

    step = deploy(repo, platform, clock, {"smoke-dags": "example_etl"})

    assert results(step) == {
        "rollout": "failed",
        "import-errors": "skipped",
        "settle-window": "skipped",
        "smoke:example_etl": "skipped",
    }
