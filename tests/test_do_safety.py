"""App Platform's safety: inputs that would do nothing, the report of a run that made
nothing, and a rate limit's reset honoured."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from ci_deploy.digitalocean import rules
from ci_deploy.errors import ApiAmbiguousError, ApiError, CancelledError
from ci_deploy.platform import ReleaseState
from tests.actionrun import change
from tests.fake_apps import FakeApps
from tests.gitrepo import GitRepo
from tests.test_do_run import run


@pytest.fixture
def apps(repo: GitRepo) -> FakeApps:
    """An app whose active deployment built the repository's first commit."""
    apps = FakeApps()
    apps.seed(repo.head())
    return apps


@pytest.mark.parametrize(
    ("name", "value"),
    [("check-import-errors", "false"), ("syntax-check", "false"), ("dags-folder", "src")],
)
def test_astro_only_inputs_are_refused_with_platform_digitalocean(
    repo: GitRepo, apps: FakeApps, name: str, value: str
) -> None:
    change(repo)
    step = run(repo, apps, {name: value})
    assert step.result.returncode == 1
    assert f"Invalid input '{name}'" in step.log
    assert "is only used with platform: astro" in step.log
    assert not any(call.startswith(("create_deployment", "update_app")) for call in apps.calls)


def test_astro_only_inputs_at_their_default_are_accepted(repo: GitRepo, apps: FakeApps) -> None:
    change(repo)
    step = run(
        repo, apps, {"check-import-errors": "true", "syntax-check": "true", "dags-folder": "dags"}
    )
    assert step.result.returncode == 0, step.log


def test_a_failed_deployment_create_reports_no_empty_deploy_id(
    repo: GitRepo, apps: FakeApps
) -> None:
    change(repo)

    def refused(app_id: str, *, force_build: bool) -> dict[str, object]:
        apps.calls.append("create_deployment(force_build=True)")
        raise ApiError("app is being deleted (HTTP 422).", status_code=422)

    apps.create_deployment = refused  # type: ignore[method-assign]
    step = run(repo, apps)
    assert step.result.returncode == 1
    summary = step.result.summary
    assert "app is being deleted" in step.log
    for astro_words in ("was created but not finalized", "INITIALIZED", "``"):
        assert astro_words not in summary, summary
    assert step.outputs["deploy-id"] == ""


def test_a_newer_deployment_that_took_over_is_never_our_own(repo: GitRepo, apps: FakeApps) -> None:
    change(repo)

    def superseded_by_another_run(deployment: dict[str, object]) -> None:
        if deployment["id"] == "dep-2" and deployment["phase"] == "DEPLOYING":
            deployment["phase"], deployment["_script"] = "SUPERSEDED", []
            apps.other_run("e" * 40)

    apps.on_read = superseded_by_another_run
    step = run(repo, apps)
    assert step.result.returncode == 1
    summary = step.result.summary
    assert "a newer deployment took over" in summary
    assert "Deployment dep-3 (commit eeeeeeeeeeee) started after deployment dep-2" in summary
    assert "undo deployment dep-3" in summary
    assert "undo deploy dep-2" not in summary
    assert not any(call.startswith("rollback") for call in apps.calls)


@pytest.mark.parametrize(
    ("phase", "said"),
    [
        (
            "ERROR",
            "Rollback deployment dep-3 failed, so it was not committed; the app stays "
            "pinned to it. Run action: rollback-revert to undo it and unpin the app.",
        ),
        (
            "BUILDING",
            "Rollback deployment dep-3 is still in progress, so it was not committed; "
            "the app stays pinned to it. Wait until it is ACTIVE, then run action: "
            "rollback-commit again.",
        ),
    ],
)
def test_rollback_commit_refuses_a_rollback_that_is_not_active(
    repo: GitRepo, apps: FakeApps, phase: str, said: str
) -> None:
    apps.seed(repo.head())
    rollback = apps.seed(repo.head(), phase=phase)
    apps.pinned = rollback["id"]
    step = run(repo, apps, {"action": "rollback-commit"})
    assert step.result.returncode == 1
    assert "commit_rollback" not in apps.calls
    assert apps.pinned == "dep-3"
    assert said in step.result.summary
    assert "Rollback not committed" in step.titles("error")


def test_rollback_commit_commits_an_active_rollback(repo: GitRepo, apps: FakeApps) -> None:
    rollback = apps.seed(repo.head())
    apps.pinned = rollback["id"]
    step = run(repo, apps, {"action": "rollback-commit"})
    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "committed"
    assert "commit_rollback" in apps.calls and not apps.pinned


def _failing_reads_of(apps: FakeApps, deployment_id: str, error: Exception) -> None:
    read = apps.get_deployment

    def get_deployment(app_id: str, wanted: str) -> dict[str, object]:
        if wanted == deployment_id:
            raise error
        return read(app_id, wanted)

    apps.get_deployment = get_deployment  # type: ignore[method-assign]


def test_a_failed_read_of_the_rollback_says_the_app_is_left_pinned(
    repo: GitRepo, apps: FakeApps
) -> None:
    apps.outcomes = ["ERROR"]
    change(repo)
    _failing_reads_of(apps, "dep-3", ApiError("internal error (HTTP 400).", status_code=400))
    step = run(repo, apps)
    assert step.result.returncode == 1
    assert apps.pinned == "dep-3"
    summary = step.result.summary
    assert "Rolled back; the app is left pinned" in summary
    assert (
        "Rollback deployment dep-3 was made, but its health could not be read: internal error "
        "(HTTP 400). The app is pinned to dep-3: run action: rollback-commit to keep it or "
        "action: rollback-revert to undo it."
    ) in summary


def test_a_cancel_while_waiting_for_the_rollback_says_the_app_is_left_pinned(
    repo: GitRepo, apps: FakeApps
) -> None:
    apps.outcomes = ["ERROR"]
    change(repo)
    # What cancel.py raises inside the run when SIGTERM arrives (here: during a read).
    _failing_reads_of(apps, "dep-3", CancelledError("The run was cancelled."))
    step = run(repo, apps)
    assert step.result.returncode != 0
    assert apps.pinned == "dep-3"
    assert (
        "The run was cancelled. Rollback deployment dep-3 had been made. The app is pinned to "
        "dep-3: run action: rollback-commit to keep it or action: rollback-revert to undo it."
    ) in step.result.summary


def test_a_failed_commit_of_a_healthy_rollback_is_not_a_failed_rollback(
    repo: GitRepo, apps: FakeApps
) -> None:
    apps.outcomes = ["ERROR"]
    change(repo)

    def commit_refused(app_id: str) -> None:
        apps.calls.append("commit_rollback")
        raise ApiError("service unavailable (HTTP 400).", status_code=400)

    apps.commit_rollback = commit_refused  # type: ignore[method-assign]
    step = run(repo, apps)
    assert step.result.returncode == 1
    assert apps.pinned == "dep-3"
    summary = step.result.summary
    assert "the rollback failed" not in summary
    assert (
        "Rollback deployment dep-3 was made, but committing it failed (it is ACTIVE): "
        "service unavailable (HTTP 400). The app is pinned to dep-3"
    ) in summary


@pytest.mark.parametrize(
    ("progress", "state"),
    [
        ({"success_steps": 4, "total_steps": 4}, ReleaseState.LIVE),  # ran, then replaced
        ({"success_steps": 2, "total_steps": 4}, ReleaseState.FAILED),  # replaced mid-build
        ({"success_steps": 4, "total_steps": 4, "error_steps": 1}, ReleaseState.FAILED),
        ({}, ReleaseState.FAILED),  # no progress: not known to have run
    ],
)
def test_a_superseded_deployment_is_live_only_when_it_ran(
    progress: dict[str, int], state: ReleaseState
) -> None:
    deployment = {"id": "d1", "phase": "SUPERSEDED", "progress": progress}
    assert rules.release_of(deployment).state is state


def _never_ran(apps: FakeApps, commit: str) -> None:
    """A deployment of ``commit`` superseded while it built (it never ran)."""
    apps.seed(commit, phase="SUPERSEDED")["progress"]["success_steps"] = 1


def test_a_superseded_deployment_that_never_ran_is_not_the_deployed_commit(
    repo: GitRepo, apps: FakeApps
) -> None:
    change(repo)
    _never_ran(apps, repo.head())  # dep-2: the new commit, never ran; dep-1 still ACTIVE
    step = run(repo, apps)
    assert step.result.returncode == 0, step.log
    assert step.outputs["skipped"] == "false"
    assert step.outputs["base-sha"] != repo.head()
    assert any(call.startswith("create_deployment") for call in apps.calls)


def test_a_superseded_deployment_that_never_ran_is_never_rolled_back_to(
    repo: GitRepo, apps: FakeApps
) -> None:
    first = repo.head()
    change(repo)
    _never_ran(apps, "f" * 40)  # dep-2: never ran
    apps.seed(repo.head())  # dep-3: ACTIVE, dep-1 SUPERSEDED after it ran
    step = run(repo, apps, {"action": "rollback"})
    assert step.result.returncode == 0, step.log
    assert "Rolling back to deployment dep-1" in step.log
    assert apps.by_id("dep-4")["services"][0]["source_commit_hash"] == first


def lost_before_processing(apps: FakeApps, name: str, meanwhile: Callable[[], object]) -> None:
    """The first call of ``name`` is lost before App Platform processed it; ``meanwhile``
    runs in that call, as if something else happened on the app at the same time."""
    real = getattr(apps, name)
    sent: list[int] = []

    def lost(*args: object, **kwargs: object) -> object:
        if not sent:
            sent.append(1)
            apps.calls.append(f"{name} (lost)")
            meanwhile()
            raise ApiAmbiguousError(f"No answer to {name} (ReadTimeout).", operation=name)
        return real(*args, **kwargs)

    setattr(apps, name, lost)


def test_a_pushs_deployment_made_while_an_answer_was_lost_is_never_taken_for_ours(
    repo: GitRepo, apps: FakeApps
) -> None:
    change(repo)
    lost_before_processing(apps, "create_deployment", lambda: apps.other_run("e" * 40))
    step = run(repo, apps)
    assert step.result.returncode == 0, step.log
    push, ours = apps.by_id("dep-2"), apps.by_id("dep-3")
    assert push["cause"] == "commit pushed"
    assert ours["cause"] == "manual"  # the create was sent again: it was not done
    assert step.outputs["deploy-id"] == "dep-3"
    assert apps.calls.count("create_deployment(force_build=True)") == 1
    assert "It was not; creating the deployment again" in step.log


def test_a_pushs_deployment_beside_a_processed_write_leaves_ours_found(
    repo: GitRepo, apps: FakeApps
) -> None:
    change(repo)
    apps.lost = {"create_deployment"}
    real = apps.create_deployment

    def create_then_push(app_id: str, *, force_build: bool) -> dict[str, object]:
        try:
            return real(app_id, force_build=force_build)
        finally:
            if len(apps.deployments) == 2:
                apps.other_run("e" * 40)

    apps.create_deployment = create_then_push  # type: ignore[method-assign]
    step = run(repo, apps)
    assert step.outputs["deploy-id"] == "dep-2", step.log  # ours, not the push's dep-3
    assert apps.calls.count("create_deployment(force_build=True)") == 1
    assert "It was: deployment dep-2" in step.log


def test_two_new_deployments_after_a_lost_answer_are_an_unknown_outcome_not_a_guess(
    repo: GitRepo, apps: FakeApps
) -> None:
    change(repo)
    apps.lost = {"update_app"}
    real = apps.update_app

    def update_and_another_runs_deploy(app_id: str, spec: dict[str, object]) -> object:
        apps.other_run("e" * 40, cause="manual", kind="MANUAL")  # another ci-deploy run
        return real(app_id, spec)

    apps.update_app = update_and_another_runs_deploy  # type: ignore[method-assign]
    repo.write(".do/app.yaml", yaml.safe_dump({**apps.spec, "envs": [{"key": "A", "value": "1"}]}))
    repo.commit("app spec")
    step = run(repo, apps)
    assert step.result.returncode == 1
    assert apps.calls.count("update_app") == 1  # never sent again
    assert "2 new deployments (dep-3, dep-2) appeared meanwhile" in step.log
    assert "Nothing was sent again" in step.result.summary
    assert step.outputs["deploy-id"] == ""


def test_a_lost_rollback_answer_finds_the_rollback_to_its_own_target(
    repo: GitRepo, apps: FakeApps
) -> None:
    older = apps.seed("d" * 40)  # dep-2, the deployment before ours
    apps.outcomes = ["ERROR"]
    change(repo)
    # someone rolls back to dep-1 while our rollback (to dep-2) is lost unprocessed
    lost_before_processing(
        apps, "rollback", lambda: apps.rollback(apps.app_id, "dep-1", skip_pin=True)
    )
    step = run(repo, apps)
    assert step.result.returncode == 1
    ours = apps.deployments[-1]
    assert ours["cloned_from"] == older["id"], step.log
    assert step.outputs["rolled-back"] == "true"
    assert step.outputs["rollback-deploy-id"] == ours["id"]
