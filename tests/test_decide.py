"""The pure decisions: deploy type from changes, rollout state, poll delays."""

from __future__ import annotations

import itertools

import pytest

from ci_deploy.astro.wire import Deploy, DeployGit, Deployment
from ci_deploy.changeset import ChangeSet
from ci_deploy.decide import (
    Target,
    choose_deploy_type,
    cut_description,
    import_problems,
    latest_deployed,
    poll_delays,
    previous_deploy,
    rollout_state,
)


def changes(dag: int = 0, image: int = 0, ignored: int = 0) -> ChangeSet:
    return ChangeSet(
        dag_files=tuple(f"dags/d{i}.py" for i in range(dag)),
        image_files=tuple(f"requirements{i}.txt" for i in range(image)),
        ignored_files=tuple(f"docs/f{i}.md" for i in range(ignored)),
    )


@pytest.mark.parametrize(
    ("requested", "change_set", "expected"),
    [
        ("infer", changes(dag=2), "DAG_ONLY"),
        ("infer", changes(dag=1, image=1), "IMAGE_AND_DAG"),
        ("infer", changes(image=1), "IMAGE_AND_DAG"),
        ("infer", changes(ignored=3), None),
        ("dags-only", changes(dag=1, image=1), "DAG_ONLY"),
        ("dags-only", changes(image=1), None),
        ("dags-only", changes(ignored=1), None),
        ("image-and-dags", changes(dag=1), "IMAGE_AND_DAG"),
        ("image-only", changes(dag=1), "IMAGE_ONLY"),
        ("bundle", changes(image=1), "BUNDLE"),
        ("image-only", changes(ignored=1), None),
    ],
)
def test_deploy_type_from_changes(
    requested: str, change_set: ChangeSet, expected: str | None
) -> None:
    assert choose_deploy_type(requested, change_set).deploy_type == expected


def test_skip_reason_says_nothing_relevant_changed() -> None:
    decision = choose_deploy_type("infer", changes(ignored=2))
    assert decision.skipped
    assert "No file under root-folder changed" in decision.reason


def test_dags_only_warns_about_image_files_it_does_not_deploy() -> None:
    decision = choose_deploy_type("dags-only", changes(dag=1, image=2))
    assert decision.deploy_type == "DAG_ONLY"
    assert decision.warnings and "2 files outside the DAGs folder" in decision.warnings[0]
    skipped = choose_deploy_type("dags-only", changes(image=1))
    assert skipped.skipped and skipped.warnings


def test_dag_changes_ship_in_the_image_when_dag_deploys_are_disabled() -> None:
    decision = choose_deploy_type("infer", changes(dag=1), dag_deploy_enabled=False)
    assert decision.deploy_type == "IMAGE_AND_DAG"
    assert "DAG deploys are disabled" in decision.reason


@pytest.mark.parametrize(
    ("requested", "expected"),
    [("infer", "IMAGE_AND_DAG"), ("dags-only", "DAG_ONLY"), ("image-only", "IMAGE_ONLY")],
)
def test_no_base_deploys_everything(requested: str, expected: str) -> None:
    decision = choose_deploy_type(requested, None, no_base_reason="a new branch")
    assert decision.deploy_type == expected
    assert "a new branch" in decision.reason


def deployment(status: str, current: str | None, desired: str | None = None) -> Deployment:
    return Deployment(
        id="d", status=status, dagTarballVersion=current, desiredDagTarballVersion=desired
    )


def test_rollout_done_only_when_healthy_and_running_our_version() -> None:
    v2 = Target(dag_version="v2")
    assert rollout_state(deployment("HEALTHY", "v2", "v2"), v2).done
    assert rollout_state(deployment("HIBERNATING", "v2", "v2"), v2).done
    assert not rollout_state(deployment("HEALTHY", "v1", "v2"), v2).done
    assert not rollout_state(deployment("HEALTHY", "v2", "v3"), v2).done, "desired must match"
    assert not rollout_state(deployment("DEPLOYING", "v2", "v2"), v2).done
    state = rollout_state(deployment("DEPLOYING", "v1", "v2"), v2)
    assert not state.done and not state.failed
    assert state.summary == "status DEPLOYING, running DAG version v1, rolling out v2"


def test_unhealthy_is_a_failed_rollout_with_its_reason() -> None:
    unhealthy = Deployment(id="d", status="UNHEALTHY", statusReason="scheduler crash loop")
    state = rollout_state(unhealthy, Target(dag_version="v2"))
    assert state.failed and not state.done
    assert "scheduler crash loop" in state.summary


def test_poll_delays_grow_from_two_to_fifteen_seconds() -> None:
    delays = list(itertools.islice(poll_delays(), 8))
    assert delays[0] == 2.0
    assert delays == sorted(delays)
    assert delays[-1] == 15.0
    assert max(delays) == 15.0


def test_cut_description() -> None:
    assert cut_description("short") == "short"
    cut = cut_description("x" * 600)
    assert len(cut) == 500 and cut.endswith("…")


def test_force_deploys_when_nothing_relevant_changed() -> None:
    assert (
        choose_deploy_type("infer", changes(ignored=1), force=True).deploy_type == "IMAGE_AND_DAG"
    )
    forced = choose_deploy_type("dags-only", changes(), force=True)
    assert forced.deploy_type == "DAG_ONLY"
    assert "force" in forced.reason
    assert choose_deploy_type("infer", changes(dag=1), force=True).deploy_type == "DAG_ONLY"


# --- issue 4: image targets, import errors, rollback targets ---------------------------------


def test_image_target_waits_for_the_image_tag_too() -> None:
    target = Target(dag_version="v2", image_tag="deploy-7")
    old_image = Deployment(
        id="d",
        status="HEALTHY",
        dagTarballVersion="v2",
        desiredDagTarballVersion="v2",
        imageTag="deploy-6",
    )
    new_image = old_image.model_copy(update={"imageTag": "deploy-7"})
    assert not rollout_state(old_image, target).done
    assert rollout_state(new_image, target).done
    image_only = Target(image_tag="deploy-7")
    assert rollout_state(new_image.model_copy(update={"dagTarballVersion": "v1"}), image_only).done
    assert "image tag deploy-6" in rollout_state(old_image, target).summary


def test_import_problems_match_deployed_files_by_their_container_path() -> None:
    lines = [
        "INFO - Filling up the DagBag from /usr/local/airflow/dags",
        "ERROR - Broken DAG: [/usr/local/airflow/dags/etl.py] Traceback: SyntaxError: x",
        "ERROR - Failed to import: /usr/local/airflow/dags/sub/report.py",
        "ERROR - Broken DAG: [/usr/local/airflow/dags/not_ours.py] ImportError: y",
        "ERROR - Broken DAG: [/usr/local/airflow/dags/etl.py] again",
    ]
    members = ["dags/etl.py", "dags/sub/report.py", "dags/ok.py", "dags/data.csv"]
    problems = import_problems(lines, members)
    assert [p.member for p in problems] == ["dags/etl.py", "dags/sub/report.py"]
    assert "SyntaxError" in problems[0].message
    assert import_problems(["all good"], members) == []


def history(*rows: tuple[str, str, str, str | None]) -> list[Deploy]:
    """(id, createdAt, dagTarballVersion, rollbackFromId) rows, all DEPLOYED."""
    return [
        Deploy(
            id=i,
            createdAt=c,
            status="DEPLOYED",
            dagTarballVersion=v,
            rollbackFromId=r,
            git=DeployGit(provider="GITHUB", commitSha=i * 8),
        )
        for i, c, v, r in rows
    ]


def test_latest_deployed_is_what_runs_now() -> None:
    deploys = history(("d1", "2026-01-01", "v1", None), ("d2", "2026-01-02", "v2", None))
    failed = Deploy(id="d3", createdAt="2026-01-03", status="FAILED")
    latest = latest_deployed([*deploys, failed])
    assert latest is not None and latest.id == "d2"
    assert latest_deployed([failed]) is None


def test_previous_deploy_walks_back_one_deploy_per_undo() -> None:
    deploys = history(
        ("d1", "2026-01-01", "v1", None),
        ("d2", "2026-01-02", "v2", None),
        ("d3", "2026-01-03", "v3", None),
    )
    first = previous_deploy(deploys)
    assert first is not None and first.id == "d2"
    undone = [*deploys, *history(("r1", "2026-01-04", "v2", "d3"))]
    second = previous_deploy(undone)
    assert second is not None and second.id == "d1", "undoing again goes further back"
    assert previous_deploy(history(("d1", "2026-01-01", "v1", None))) is None
