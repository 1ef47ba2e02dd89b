"""App Platform's lost answers and refusals, in process: the real client and platform
against the emulator (``do_api``: a fake clock shared with the run, every request checked
against the DO spec). A write whose answer is lost is read back, never blindly repeated."""

from __future__ import annotations

import pytest
import yaml

from ci_deploy.digitalocean.platform import connect
from ci_deploy_testkit.do_emulator import DEMO_REPO, AppPlatformEmulator
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import Step, change
from tests.fakes import FakeClock
from tests.gitrepo import GitRepo
from tests.inprocess import run_in_process


def run(
    repo: GitRepo,
    emu: AppPlatformEmulator,
    clock: FakeClock,
    before: str,
    inputs: dict[str, str] | None = None,
) -> Step:
    emu.set_branch_head(DEMO_REPO, "main", repo.head())
    return run_in_process(
        repo.path,
        {
            "platform": "digitalocean",
            "api-url": emu.api_url,
            "app-id": emu.app_id,
            **(inputs or {}),
        },
        factory=connect,
        clock=clock,
        event=push_event(before, repo.head()),
        env={"DIGITALOCEAN_TOKEN": emu.token},
        request_timeout=5,
    )


def made(emu: AppPlatformEmulator, path: str) -> int:
    return sum(1 for r in emu.requests if r.method in ("POST", "PUT") and r.path.endswith(path))


@pytest.mark.parametrize("method", ["drop", "500"])
def test_a_lost_create_answer_is_read_back_and_not_repeated(
    repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock, method: str
) -> None:
    if method == "drop":
        do_api.faults.add_drop("POST", r"/deployments$")
    else:  # a 500 says nothing of whether it was done: here it was not
        do_api.faults.add("POST", r"/deployments$", 500)
    before = change(repo)
    step = run(repo, do_api, clock, before)
    assert step.result.returncode == 0, step.log
    assert len(do_api.deployments()) == 2  # the seed and ours: never two of ours
    assert step.outputs["deploy-id"] == do_api.deployments()[-1]["id"]
    assert "was lost" in step.log


def test_a_lost_spec_update_answer_is_read_back(
    repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    spec = {**do_api.app()["spec"], "envs": [{"key": "MODE", "value": "fast"}]}
    repo.write(".do/app.yaml", yaml.safe_dump(spec))
    before = repo.head()
    repo.commit("app spec")
    do_api.faults.add_drop("PUT", r"/v2/apps/[^/]+$")
    step = run(repo, do_api, clock, before)
    assert step.result.returncode == 0, step.log
    assert made(do_api, do_api.app_id) == 1
    assert len(do_api.deployments()) == 2
    assert do_api.app()["spec"]["envs"] == [{"key": "MODE", "value": "fast"}]


def test_lost_rollback_and_commit_answers_leave_one_committed_rollback(
    repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    do_api.fail_next_deployment("deploy")
    do_api.faults.add_drop("POST", r"/rollback$")
    do_api.faults.add_drop("POST", r"/rollback/commit$")
    before = change(repo)
    step = run(repo, do_api, clock, before)
    assert step.result.returncode == 1
    assert step.outputs["rolled-back"] == "true", step.log
    assert made(do_api, "/rollback") == 1
    assert made(do_api, "/rollback/commit") == 1
    assert "pinned_deployment" not in do_api.app()
    assert len(do_api.deployments()) == 3


def test_an_app_spec_the_api_rejects_changes_nothing(
    repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    repo.write(".do/app.yaml", yaml.safe_dump({"name": "web-app", "services": []}))
    before = repo.head()
    repo.commit("bad spec")
    step = run(repo, do_api, clock, before)
    assert step.result.returncode == 1
    assert step.titles("error") == ["Invalid app spec"]
    assert "invalid app spec" in step.log
    assert made(do_api, do_api.app_id) == 0
    assert len(do_api.deployments()) == 1


def test_rate_limits_are_waited_out(
    repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    do_api.faults.add("POST", r"/deployments$", 429, retry_after="7")
    before = change(repo)
    step = run(repo, do_api, clock, before)
    assert step.result.returncode == 0, step.log
    assert 7.0 in clock.sleeps
    assert len(do_api.deployments()) == 2


def test_a_rejected_token_says_what_to_do(
    repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    do_api.tokens.clear()
    before = change(repo)
    step = run(repo, do_api, clock, before)
    assert step.result.returncode == 1
    assert step.titles("error") == ["DigitalOcean token rejected"]
    assert "digitalocean-token" in step.log
