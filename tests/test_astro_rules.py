"""Astro's pure rules: deploy type from changes, what ships, finalize bodies, rollout state,
import errors in logs, and the deploy history read as releases."""

from __future__ import annotations

import pytest

from ci_deploy import history as releases
from ci_deploy.astro.logs import import_problems
from ci_deploy.astro.rules import (
    RULES,
    cut_description,
    finalize_request,
    history_of,
    rollout_state,
)
from ci_deploy.astro.wire import Deploy, DeployGit, Deployment
from ci_deploy.changeset import ChangeSet
from ci_deploy.platform import Artifact, Decision, Environment, ReleaseState, Shipment

DAG_DEPLOYS = Environment("d", "dep", "", "HEALTHY", "", dag_deploys=True)
NO_DAG_DEPLOYS = Environment("d", "dep", "", "HEALTHY", "", dag_deploys=False)


def choose_deploy_type(
    requested: str,
    change_set: ChangeSet | None,
    *,
    dag_deploy_enabled: bool = True,
    no_base_reason: str = "",
    force: bool = False,
) -> Decision:
    environment = DAG_DEPLOYS if dag_deploy_enabled else NO_DAG_DEPLOYS
    return RULES.decide(
        requested, change_set, environment, force=force, no_base_reason=no_base_reason
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
    assert choose_deploy_type(requested, change_set).kind == expected


def test_skip_reason_says_nothing_relevant_changed() -> None:
    decision = choose_deploy_type("infer", changes(ignored=2))
    assert decision.kind is None
    assert "No file under root-folder changed" in decision.reason


def test_dags_only_warns_about_image_files_it_does_not_deploy() -> None:
    decision = choose_deploy_type("dags-only", changes(dag=1, image=2))
    assert decision.kind == "DAG_ONLY"
    assert decision.warnings and "2 files outside the DAGs folder" in decision.warnings[0]
    skipped = choose_deploy_type("dags-only", changes(image=1))
    assert skipped.kind is None and skipped.warnings


def test_dag_changes_ship_in_the_image_when_dag_deploys_are_disabled() -> None:
    decision = choose_deploy_type("infer", changes(dag=1), dag_deploy_enabled=False)
    assert decision.kind == "IMAGE_AND_DAG"
    assert "DAG deploys are disabled" in decision.reason


@pytest.mark.parametrize(
    ("requested", "expected"),
    [("infer", "IMAGE_AND_DAG"), ("dags-only", "DAG_ONLY"), ("image-only", "IMAGE_ONLY")],
)
def test_no_base_deploys_everything(requested: str, expected: str) -> None:
    decision = choose_deploy_type(requested, None, no_base_reason="a new branch")
    assert decision.kind == expected
    assert "a new branch" in decision.reason


def deployment(status: str, current: str | None, desired: str | None = None) -> Deployment:
    return Deployment(
        id="d", status=status, dagTarballVersion=current, desiredDagTarballVersion=desired
    )


def test_rollout_done_only_when_healthy_and_running_our_version() -> None:
    v2 = {Artifact.DAGS: "v2"}
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
    state = rollout_state(unhealthy, {Artifact.DAGS: "v2"})
    assert state.failed and not state.done
    assert "scheduler crash loop" in state.summary


def test_cut_description() -> None:
    assert cut_description("short") == "short"
    cut = cut_description("x" * 600)
    assert len(cut) == 500 and cut.endswith("…")


def test_force_deploys_when_nothing_relevant_changed() -> None:
    assert choose_deploy_type("infer", changes(ignored=1), force=True).kind == "IMAGE_AND_DAG"
    forced = choose_deploy_type("dags-only", changes(), force=True)
    assert forced.kind == "DAG_ONLY"
    assert "force" in forced.reason
    assert choose_deploy_type("infer", changes(dag=1), force=True).kind == "DAG_ONLY"


# --- issue 4: image targets, import errors, rollback targets ---------------------------------


def test_image_target_waits_for_the_image_tag_too() -> None:
    target = {Artifact.DAGS: "v2", Artifact.IMAGE: "deploy-7"}
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
    image_only = {Artifact.IMAGE: "deploy-7"}
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
    assert list(problems) == ["dags/etl.py", "dags/sub/report.py"]
    assert "SyntaxError" in problems["dags/etl.py"]
    assert import_problems(["all good"], members) == {}


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


def test_the_running_release_is_the_newest_deployed_one() -> None:
    deploys = history(("d1", "2026-01-01", "v1", None), ("d2", "2026-01-02", "v2", None))
    failed = Deploy(id="d3", createdAt="2026-01-03", status="FAILED")
    latest = releases.running(history_of([*deploys, failed]))
    assert latest is not None and latest.id == "d2"
    assert releases.running(history_of([failed])) is None


def test_previous_release_walks_back_one_deploy_per_undo() -> None:
    deploys = history(
        ("d1", "2026-01-01", "v1", None),
        ("d2", "2026-01-02", "v2", None),
        ("d3", "2026-01-03", "v3", None),
    )
    first = releases.previous(history_of(deploys))
    assert first is not None and first.id == "d2"
    undone = [*deploys, *history(("r1", "2026-01-04", "v2", "d3"))]
    second = releases.previous(history_of(undone))
    assert second is not None and second.id == "d1", "undoing again goes further back"
    assert releases.previous(history_of(history(("d1", "2026-01-01", "v1", None)))) is None


def test_the_history_reads_as_releases_oldest_first_with_what_rollbacks_restored() -> None:
    deploys = [
        *history(("r1", "2026-01-04", "v2", "d3")),
        Deploy(
            id="d2",
            createdAt="2026-01-02",
            status="DEPLOYED",
            type="IMAGE_AND_DAG",
            dagTarballVersion="v2",
            imageTag="tag-2",
        ),
        Deploy(id="d3", createdAt="2026-01-03", status="INITIALIZED", type="DAG_ONLY"),
    ]
    [d2, d3, r1] = history_of(deploys)
    assert (d2.id, d3.id, r1.id) == ("d2", "d3", "r1")
    assert d2.versions == {Artifact.DAGS: "v2", Artifact.IMAGE: "tag-2"}
    assert d2.state is ReleaseState.LIVE and d3.state is ReleaseState.PENDING
    assert (r1.is_rollback, r1.restores, r1.commit) == (True, "d2", "r1" * 8)
    assert d2.restores == "" and not d2.is_rollback


@pytest.mark.parametrize(
    ("kind", "dag_deploys", "artifacts", "shows"),
    [
        ("DAG_ONLY", True, {Artifact.DAGS}, {Artifact.DAGS}),
        ("IMAGE_AND_DAG", True, {Artifact.IMAGE, Artifact.DAGS}, {Artifact.DAGS, Artifact.IMAGE}),
        ("IMAGE_AND_DAG", False, {Artifact.IMAGE}, {Artifact.IMAGE}),
        ("IMAGE_ONLY", True, {Artifact.IMAGE}, {Artifact.IMAGE}),
        ("BUNDLE", True, {Artifact.BUNDLE}, set()),
    ],
)
def test_what_each_deploy_type_ships_and_what_its_rollout_shows(
    kind: str, dag_deploys: bool, artifacts: set[Artifact], shows: set[Artifact]
) -> None:
    environment = DAG_DEPLOYS if dag_deploys else NO_DAG_DEPLOYS
    shipped = RULES.artifacts(kind, environment)
    assert shipped == artifacts
    assert RULES.rollout_shows(kind, shipped) == shows


@pytest.mark.parametrize(
    ("kind", "dag_deploys", "versions", "body"),
    [
        ("DAG_ONLY", True, {Artifact.DAGS: "v9"}, {"dagTarballVersion": "v9"}),
        (
            "IMAGE_AND_DAG",
            True,
            {Artifact.DAGS: "v9", Artifact.IMAGE: "r:t"},
            {"dagTarballVersion": "v9"},
        ),
        ("IMAGE_ONLY", True, {Artifact.IMAGE: "r:t"}, {"dagTarballVersion": ""}),
        ("IMAGE_ONLY", False, {Artifact.IMAGE: "r:t"}, {"dagTarballVersion": ""}),
        ("IMAGE_AND_DAG", False, {Artifact.IMAGE: "r:t"}, {}),
        ("BUNDLE", True, {Artifact.BUNDLE: "b1"}, {"bundleTarballVersion": "b1"}),
    ],
)
def test_finalize_sends_what_the_protocol_asks_for_each_type(
    kind: str, dag_deploys: bool, versions: dict[Artifact, str], body: dict[str, str]
) -> None:
    request = finalize_request(kind, dag_deploys, Shipment(versions))
    assert request.model_dump(exclude_none=True) == body


def test_refusals_name_the_deployment_and_the_way_out() -> None:
    refusal = RULES.refusal("DAG_ONLY", NO_DAG_DEPLOYS)
    assert refusal is not None and refusal.title == "DAG deploys are disabled"
    assert "Deployment 'dep'" in refusal.message and "Enable DAG deploys" in refusal.message
    assert RULES.refusal("BUNDLE", NO_DAG_DEPLOYS) is not None
    assert RULES.refusal("IMAGE_AND_DAG", NO_DAG_DEPLOYS) is None
    assert RULES.refusal("DAG_ONLY", DAG_DEPLOYS) is None


def test_a_marked_description_keeps_its_marker_whatever_its_length() -> None:
    from ci_deploy.astro.platform import marked
    from ci_deploy.astro.wire import DESCRIPTION_MAX

    marker = "ci-deploy:0123456789ab"
    assert marked("Fix the DAG", marker) == f"Fix the DAG [{marker}]"
    assert marked("", marker) == f"[{marker}]"
    long = marked("x" * 2000, marker)
    assert len(long) == DESCRIPTION_MAX and long.endswith(f"… [{marker}]")
    assert marked("x" * 2000, "") == "x" * (DESCRIPTION_MAX - 1) + "…"
