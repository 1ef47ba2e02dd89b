"""The plan: the facts in, what a run will do out (pure: no git, no server)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ci_deploy.astro.rules import RULES
from ci_deploy.basecommit import BaseChoice
from ci_deploy.changeset import ChangeSet
from ci_deploy.errors import DeployRejectedError
from ci_deploy.inputs import Inputs, load_inputs
from ci_deploy.plan import Detection, Operation, describe, make_plan, plan_rollback
from ci_deploy.platform import Artifact, Environment, Release, ReleaseState
from ci_deploy.source import CommitInfo
from tests.inprocess import TOKEN

HEAD = CommitInfo("h" * 40, "Make the ETL hourly", "Ada", "ada@example.com")
BASE = BaseChoice("b" * 40, "deployed", "deploy r2", "compare-to is auto")
ENVIRONMENT = Environment("dep-1", "analytics", "", "HEALTHY", "", dag_deploys=True)


def inputs(tmp_path: Path, **values: str) -> Inputs:
    raw = {"deployment-id": "dep-1", **{k.replace("_", "-"): v for k, v in values.items()}}
    return load_inputs(raw, {"GITHUB_WORKSPACE": str(tmp_path), "ASTRO_API_TOKEN": TOKEN})


def release(id_: str, day: int, *, state: ReleaseState = ReleaseState.LIVE, **kw: str) -> Release:
    return Release(
        id=id_,
        kind="DAG_ONLY",
        state=state,
        created_at=datetime(2026, 1, day, tzinfo=UTC),
        commit=id_ * 5,
        restores=kw.get("restores", ""),
        is_rollback=bool(kw.get("restores")),
        versions={Artifact.DAGS: f"v-{id_}"},
    )


def dags_changed(base: BaseChoice | None = BASE) -> Detection:
    return Detection(HEAD, base, ChangeSet(("dags/a.py",), (), ()))


HISTORY = [release("r1", 1), release("r2", 2), release("r3", 3, state=ReleaseState.FAILED)]


def test_a_dag_change_plans_a_dag_only_deploy_and_the_way_back(tmp_path: Path) -> None:
    plan = make_plan(inputs(tmp_path), dags_changed(), ENVIRONMENT, HISTORY, RULES)

    assert plan.operation is Operation.DEPLOY
    assert plan.release is not None
    assert (plan.kind, plan.release.artifacts, plan.release.shows) == (
        "DAG_ONLY",
        frozenset({Artifact.DAGS}),
        frozenset({Artifact.DAGS}),
    )
    assert plan.release.description == "Make the ETL hourly", "the head's subject by default"
    assert plan.wait_timeout == 600
    assert plan.rollback_to is not None and plan.rollback_to.id == "r2", "what runs now"
    assert plan.release.refusal is None


def test_the_way_back_after_a_rollback_is_the_rollback(tmp_path: Path) -> None:
    history = [*HISTORY, release("r4", 4, restores="r1")]

    plan = make_plan(inputs(tmp_path), dags_changed(), ENVIRONMENT, history, RULES)

    assert plan.rollback_to is not None and plan.rollback_to.id == "r4"


@pytest.mark.parametrize(
    ("values", "history", "why"),
    [
        ({}, [], "the Deployment has no earlier DEPLOYED deploy to return to"),
        ({"rollback_on_failure": "false"}, HISTORY, "rollback-on-failure is false"),
    ],
)
def test_no_way_back_is_said(
    tmp_path: Path, values: dict[str, str], history: list[Release], why: str
) -> None:
    plan = make_plan(inputs(tmp_path, **values), dags_changed(), ENVIRONMENT, history, RULES)

    assert plan.rollback_to is None
    assert plan.no_rollback == why
    assert f"If the rollout fails: no rollback ({why})" in describe(plan)


def test_wait_false_plans_no_wait_and_a_description_input_wins(tmp_path: Path) -> None:
    plan = make_plan(
        inputs(tmp_path, wait="false", description="Release 42"),
        dags_changed(),
        ENVIRONMENT,
        HISTORY,
        RULES,
    )

    assert plan.wait_timeout is None
    assert plan.release is not None and plan.release.description == "Release 42"
    assert "Wait: no (wait: false)" in describe(plan)


def test_nothing_relevant_is_a_skip_with_its_reason(tmp_path: Path) -> None:
    detection = Detection(HEAD, BASE, ChangeSet((), (), ("README.md",)))

    plan = make_plan(inputs(tmp_path), detection, ENVIRONMENT, HISTORY, RULES)

    assert (plan.operation, plan.release) == (Operation.SKIP, None)
    assert describe(plan) == ["Action: skip", f"Reason: {plan.reason}"]


def test_no_base_deploys_everything_and_says_why(tmp_path: Path) -> None:
    none = BaseChoice(None, "none", "", "no usable base commit", ("a new branch",))

    plan = make_plan(inputs(tmp_path), Detection(HEAD, none, None), ENVIRONMENT, HISTORY, RULES)

    assert plan.kind == "IMAGE_AND_DAG"
    assert "a new branch" in plan.reason


def test_a_refused_kind_is_in_the_plan(tmp_path: Path) -> None:
    off = Environment("dep-1", "analytics", "", "HEALTHY", "", dag_deploys=False)

    plan = make_plan(inputs(tmp_path, deploy_type="dags-only"), dags_changed(), off, [], RULES)

    assert plan.release is not None and plan.release.refusal is not None
    assert any(line.startswith("Not possible: DAG deploys are disabled") for line in describe(plan))


def test_a_rollback_goes_to_the_release_before_the_one_running(tmp_path: Path) -> None:
    plan = plan_rollback(inputs(tmp_path, action="rollback"), HISTORY, ENVIRONMENT)

    assert plan.operation is Operation.ROLLBACK
    assert plan.rollback_to is not None and plan.rollback_to.id == "r1"
    assert describe(plan)[0] == f"Action: roll back to deploy r1 (commit {'r1' * 5})"


def test_a_rollback_to_a_named_release_must_be_a_live_one(tmp_path: Path) -> None:
    named = plan_rollback(
        inputs(tmp_path, action="rollback", rollback_to="r2"), HISTORY, ENVIRONMENT
    )
    assert named.rollback_to is not None and named.rollback_to.id == "r2"

    for target in ("r3", "nope"):
        with pytest.raises(DeployRejectedError, match=f"rollback-to '{target}' is not a DEPLOYED"):
            plan_rollback(
                inputs(tmp_path, action="rollback", rollback_to=target), HISTORY, ENVIRONMENT
            )


def test_a_rollback_with_nothing_before_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DeployRejectedError, match="no earlier DEPLOYED deploy"):
        plan_rollback(inputs(tmp_path, action="rollback"), HISTORY[:1], ENVIRONMENT)


@pytest.mark.parametrize(
    ("values", "detection", "since"),
    [
        ({}, dags_changed(), "b" * 40),
        ({"force": "true"}, dags_changed(), None),
        ({}, dags_changed(BaseChoice("e" * 40, "event", "the push's", "compare-to is auto")), None),
        ({}, dags_changed(BaseChoice("i" * 40, "input", "compare-to v1", "named")), None),
        ({"deploy_type": "dags-only"}, Detection(HEAD), None),
    ],
    ids=["deployed-base", "forced", "event-base", "named-base", "no-base"],
)
def test_files_ship_unchanged_only_compared_with_the_commit_the_deployment_runs(
    tmp_path: Path, values: dict[str, str], detection: Detection, since: str | None
) -> None:
    plan = make_plan(inputs(tmp_path, **values), detection, ENVIRONMENT, HISTORY, RULES)

    assert plan.release is not None
    assert plan.release.unchanged_since == since
