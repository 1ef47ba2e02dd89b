"""The verification gates' pure decisions, and the rules of their inputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ci_deploy.errors import InputError
from ci_deploy.input_rules import InvalidInput, Run, smoke_dags, verify_window
from ci_deploy.inputs import load_inputs
from ci_deploy.verification import (
    AirflowImportError,
    GateResult,
    Outcome,
    SmokeDag,
    error_line,
    error_message,
    judge_import_errors,
    member_of,
    run_link,
    verification_json,
)

RUN = Run(workspace=Path("/"), token_from_env=True)
MEMBERS = ("dags/etl.py", "dags/sub/etl.py", "dags/report.py")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("filename", "member"),
    [
        ("/usr/local/airflow/dags/etl.py", "dags/etl.py"),
        ("/usr/local/airflow/dags/sub/etl.py", "dags/sub/etl.py"),
        ("sub/etl.py", "dags/sub/etl.py"),  # Airflow 3: relative to the bundle
        ("etl.py", "dags/etl.py"),
        ("/usr/local/airflow/dags/xetl.py", None),
        ("/usr/local/airflow/plugins/p.py", None),
    ],
)
def test_an_airflow_filename_is_the_member_it_ends_in(filename: str, member: str | None) -> None:
    assert member_of(filename, MEMBERS) == member


def test_the_line_is_the_last_frame_in_the_file_and_the_message_the_last_line() -> None:
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/usr/local/lib/python3.12/importlib/__init__.py", line 90, in import_module\n'
        '  File "/usr/local/airflow/dags/etl.py", line 12, in <module>\n'
        "    import missing\n"
        "ModuleNotFoundError: No module named 'missing'\n"
    )
    assert error_line(trace, "/usr/local/airflow/dags/etl.py") == 12
    assert error_line("SyntaxError: invalid syntax (emulated) at line 3", "x.py") == 3
    assert error_line("no line here", "x.py") is None
    assert error_message(trace) == "ModuleNotFoundError: No module named 'missing'"


def test_changed_files_fail_unchanged_warn_older_are_stale_others_are_elsewhere() -> None:
    errors = [
        AirflowImportError("/usr/local/airflow/dags/etl.py", 'File "x", line 2\nBoom', T0),
        AirflowImportError("/usr/local/airflow/dags/report.py", "Bad", T0),
        AirflowImportError("/usr/local/airflow/dags/sub/etl.py", "Old", T0 - timedelta(1)),
        AirflowImportError("/usr/local/airflow/dags/gone.py", "Gone", T0),
    ]
    changed = frozenset({"dags/etl.py", "dags/sub/etl.py"})

    verdict = judge_import_errors(errors, MEMBERS, changed, T0)

    assert verdict.failing == {"dags/etl.py": (2, "Boom")}
    assert verdict.unchanged == ("dags/report.py",)
    assert verdict.stale == ("dags/sub/etl.py",)
    assert verdict.elsewhere == ("/usr/local/airflow/dags/gone.py",)
    # nothing to compare with: every shipped file counts
    assert set(judge_import_errors(errors, MEMBERS, None, None).failing) == set(MEMBERS)


def test_the_verification_output_is_a_json_list_of_gates() -> None:
    text = verification_json(
        [GateResult("rollout", Outcome.PASSED, "ok"), GateResult("smoke:etl", Outcome.FAILED)]
    )
    assert json.loads(text) == [
        {"gate": "rollout", "result": "passed", "detail": "ok"},
        {"gate": "smoke:etl", "result": "failed", "detail": ""},
    ]


def test_a_run_link_without_a_ui_is_empty() -> None:
    assert run_link("", 3, "etl", "r") == ""
    assert run_link("https://a.example/d/", 3, "etl", "r") == "https://a.example/d/dags/etl/runs/r"


def test_smoke_dags_take_ids_by_line_or_comma_each_with_an_optional_json_conf() -> None:
    text = 'etl_daily {"full": true, "days": [1, 2]}, report\n  health.check\n'
    assert smoke_dags(text, RUN) == (
        SmokeDag("etl_daily", {"full": True, "days": [1, 2]}),
        SmokeDag("report"),
        SmokeDag("health.check"),
    )
    assert smoke_dags("", RUN) == ()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('etl {"full": tru}', "not valid JSON"),
        ("etl [1]", "separate DAG ids"),
        ("etl, etl", "twice"),
        ("étl", "must be DAG ids"),
        (",".join(f"d{n}" for n in range(21)), "at most 20"),
    ],
)
def test_a_bad_smoke_dags_says_what_is_accepted(text: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        smoke_dags(text, RUN)


def test_verify_window_is_a_duration_or_0() -> None:
    assert verify_window("0", RUN) == 0.0
    assert verify_window("0s", RUN) == 0.0
    assert verify_window("90s", RUN) == 90.0
    assert verify_window("2m", RUN) == 120.0
    with pytest.raises(InvalidInput, match="or 0 for no settle window"):
        verify_window("soon", RUN)


def problems(raw: dict[str, str]) -> dict[str, str]:
    environ = {"ASTRO_API_TOKEN": "t", "GITHUB_WORKSPACE": "/"}
    with pytest.raises(InputError) as raised:
        load_inputs(raw, environ)
    return {p.name: p.message for p in raised.value.problems}


def test_smoke_dags_need_wait_and_astro() -> None:
    found = problems(
        {"deployment-id": "d", "organization-id": "o", "smoke-dags": "etl", "wait": "false"}
    )
    assert "needs wait: true" in found["smoke-dags"]
    found = problems(
        {"platform": "digitalocean", "app-id": "a", "digitalocean-token": "t", "smoke-dags": "e"}
    )
    assert found["smoke-dags"].startswith("is only used with platform: astro")
