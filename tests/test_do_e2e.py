"""App Platform end to end: the real entrypoint, started as the runner starts it, against
the App Platform emulator on 127.0.0.1 (every request checked against the DO spec by the
``do_emulator`` fixture): a deploy, a failing deploy rolled back and committed, a held pin
and its commit and revert, a pinned app refusing a deploy, an invalid rollback."""

from __future__ import annotations

from typing import Any

import pytest

from ci_deploy_testkit.do_emulator import DEMO_REPO, AppPlatformEmulator, RollbackValidation
from ci_deploy_testkit.localrun import push_event, runner_environment
from tests.actionrun import NO_SETTLE_WINDOW, Step, change, run_in
from tests.gitrepo import GitRepo


def run(
    repo: GitRepo,
    emu: AppPlatformEmulator,
    inputs: dict[str, str] | None = None,
    *,
    before: str | None = None,
) -> Step:
    """The action on the emulator's app, for a push of ``before..HEAD`` when given."""
    emu.set_branch_head(DEMO_REPO, "main", repo.head())  # what a build records
    environ = runner_environment(
        repo.path,
        repo.path.parent / f"runner-{repo.path.name}",
        {
            "platform": "digitalocean",
            "api-url": emu.api_url,
            "app-id": emu.app_id,
            **NO_SETTLE_WINDOW,
            **(inputs or {}),
        },
        event_name="push",
        event=push_event(before, repo.head()) if before else {},
        sha=repo.head(),
        ref="refs/heads/main",
        env={"DIGITALOCEAN_TOKEN": emu.token},
    )
    return run_in(environ)


def posts(emu: AppPlatformEmulator) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] for r in emu.requests if r.method == "POST"]


def active(emu: AppPlatformEmulator) -> dict[str, Any]:
    return emu.app()["active_deployment"]  # type: ignore[no-any-return]


def test_a_push_deploys_a_new_deployment_until_active(
    repo: GitRepo, do_emulator: AppPlatformEmulator
) -> None:
    before = change(repo)
    step = run(repo, do_emulator, before=before)
    assert step.result.returncode == 0, step.log
    deployment = active(do_emulator)
    assert step.outputs["deploy-id"] == deployment["id"]
    assert deployment["services"][0]["source_commit_hash"] == repo.head()
    assert step.outputs["status"] == "deployed"
    assert do_emulator.token not in step.result.stdout.replace(
        f"::add-mask ::{do_emulator.token}", ""
    )


def test_a_failing_deploy_is_rolled_back_and_committed(
    repo: GitRepo, do_emulator: AppPlatformEmulator
) -> None:
    seeded = active(do_emulator)["id"]
    do_emulator.fail_next_deployment("build", log=["npm ERR! missing script: build"])
    before = change(repo)
    step = run(repo, do_emulator, before=before)
    assert step.result.returncode == 1
    assert posts(do_emulator) == ["deployments", "validate", "rollback", "commit"]
    app = do_emulator.app()
    assert "pinned_deployment" not in app
    assert app["active_deployment"]["cloned_from"] == seeded
    assert step.outputs["rolled-back"] == "true"
    assert step.outputs["rollback-deploy-id"] == app["active_deployment"]["id"]
    assert "npm ERR! missing script: build" in step.log  # the failing step's log tail
    assert "the rollback was committed" in step.result.summary


def test_a_held_pin_is_committed_by_a_later_run(
    repo: GitRepo, do_emulator: AppPlatformEmulator
) -> None:
    do_emulator.fail_next_deployment("deploy")
    before = change(repo)
    held = run(repo, do_emulator, {"rollback-pin": "hold"}, before=before)
    assert held.result.returncode == 1
    pinned = do_emulator.app()["pinned_deployment"]["id"]
    assert pinned == held.outputs["rollback-deploy-id"]
    assert "`action: rollback-commit`" in held.result.summary

    committed = run(repo, do_emulator, {"action": "rollback-commit"})
    assert committed.result.returncode == 0, committed.log
    assert "pinned_deployment" not in do_emulator.app()
    assert active(do_emulator)["id"] == pinned


def test_a_held_pin_is_reverted_by_a_later_run(
    repo: GitRepo, do_emulator: AppPlatformEmulator
) -> None:
    do_emulator.fail_next_deployment("deploy")
    before = change(repo)
    held = run(repo, do_emulator, {"rollback-pin": "hold"}, before=before)
    pinned = held.outputs["rollback-deploy-id"]

    reverted = run(repo, do_emulator, {"action": "rollback-revert"})
    assert reverted.result.returncode == 0, reverted.log
    app = do_emulator.app()
    assert "pinned_deployment" not in app
    assert app["active_deployment"]["id"] != pinned
    assert app["active_deployment"]["cause"] == "revert rollback"


def test_a_pinned_app_refuses_a_deploy(repo: GitRepo, do_emulator: AppPlatformEmulator) -> None:
    do_emulator.fail_next_deployment("deploy")
    before = change(repo)
    run(repo, do_emulator, {"rollback-pin": "hold"}, before=before)
    pinned = do_emulator.app()["pinned_deployment"]["id"]
    count = len(do_emulator.deployments())

    again = change(repo, text="\n# again\n")
    step = run(repo, do_emulator, before=again)
    assert step.result.returncode == 1
    assert step.titles("error") == ["App pinned by a rollback"]
    message = step.commands("error")[0].message
    assert pinned in message
    assert "action: rollback-commit" in message and "action: rollback-revert" in message
    assert len(do_emulator.deployments()) == count


@pytest.mark.parametrize("code", ["incompatible_phase", "exceeded_revision_limit"])
def test_an_invalid_rollback_is_why_none_happened(
    repo: GitRepo, do_emulator: AppPlatformEmulator, code: str
) -> None:
    do_emulator.rollback_validation = RollbackValidation(
        valid=False, error_code=code, error_message="not possible now"
    )
    do_emulator.fail_next_deployment("build")
    before = change(repo)
    step = run(repo, do_emulator, before=before)
    assert step.result.returncode == 1
    assert "rollback" not in posts(do_emulator)
    assert f"({code}: not possible now)" in step.result.summary
    assert step.outputs["rolled-back"] == "false"
