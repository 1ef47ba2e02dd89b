"""App Platform's settle window in process: the real ``AppsPlatform`` and ``AppsClient``
over HTTP to the App Platform emulator on 127.0.0.1, sharing a fake clock (``do_api``: every
request checked against the spec at teardown).

The verify stage's settle window (issue 13) keeps calling ``platform.observe(release)`` for
``verify-window`` seconds after the rollout was seen done, and fails the rollout on the first
look that is ``failed``. :func:`settle` is that loop, as small as it can be, so App Platform's
side is tested here on its own: a deployment that turns unhealthy inside the window is
caught, and rolled back as a failed rollout is (validate -> roll back, pinned -> commit).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from ci_deploy.digitalocean.client import AppsClient
from ci_deploy.digitalocean.platform import AppsPlatform, AppsSettings, connect
from ci_deploy.digitalocean.rules import DEPLOYMENT
from ci_deploy.platform import Observation, Release, ReleaseState, Shipment
from ci_deploy.runner import Runner
from ci_deploy_testkit.do_emulator import DEMO_APP_ID, DEMO_REPO, AppPlatformEmulator
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import Step, change
from tests.fakes import FakeClock
from tests.gitrepo import GitRepo
from tests.inprocess import run_in_process

PAUSE = 5.0
"""Seconds between two looks in the window (the wait's steady pace)."""
NEW = "c0ffee00" * 5
"""The commit the new deployment builds."""


def settle(
    platform: AppsPlatform, release: Release, clock: FakeClock, window: float
) -> tuple[Observation, float]:
    """Wait for the rollout (looks until done), then look for ``window`` seconds: the first
    failed look and when it came (seconds into the window), else the last look and the
    window's length."""
    while not (seen := platform.observe(release)).done:
        assert not seen.failed, seen.summary
        clock.sleep(PAUSE)
    started = clock()
    while True:
        seen = platform.observe(release)
        if seen.failed or clock() - started >= window:
            return seen, clock() - started
        clock.sleep(min(PAUSE, window - (clock() - started)))


@pytest.fixture
def log() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def platform(
    do_api: AppPlatformEmulator, clock: FakeClock, log: io.StringIO
) -> Iterator[AppsPlatform]:
    do_api.set_branch_head(DEMO_REPO, "main", NEW)
    with AppsClient(do_api.api_url, do_api.token, sleep=clock.sleep) as client:
        yield AppsPlatform(
            client,
            AppsSettings(app_id=DEMO_APP_ID),
            Runner({}, log),
            registry_password=do_api.token,
            images=lambda: pytest.fail("no image here"),
            sleep=clock.sleep,
        )


def deploy(platform: AppsPlatform) -> Release:
    """A new deployment of the app's spec, made as a run's finalize makes it."""
    platform.locate()
    pending = Release("", DEPLOYMENT, ReleaseState.PENDING, datetime.now(UTC), NEW)
    return platform.finalize(pending, Shipment({}))


def test_a_deployment_unhealthy_20s_after_active_is_caught_inside_a_60s_window(
    do_api: AppPlatformEmulator, platform: AppsPlatform, clock: FakeClock, log: io.StringIO
) -> None:
    do_api.unhealthy_next_deployment(20, log=["panic: nil map", "exit status 2"])
    release = deploy(platform)
    seen, at = settle(platform, release, clock, window=60)
    assert seen.failed
    assert 20 <= at < 30  # the first look after it turned: within one pause
    assert f"deployment {release.id} went from ACTIVE to ERROR" in seen.summary
    assert "step 'run' of component web failed: component web failed its health checks" in (
        seen.summary
    )
    assert "[run] web [run] panic: nil map" in log.getvalue()  # the run log's tail, shown


def test_a_deployment_that_stays_active_passes_the_window(
    do_api: AppPlatformEmulator, platform: AppsPlatform, clock: FakeClock
) -> None:
    release = deploy(platform)
    seen, at = settle(platform, release, clock, window=60)
    assert (seen.done, seen.failed, at) == (True, False, 60)
    assert seen.summary == f"deployment {release.id} is ACTIVE"


def test_turning_unhealthy_after_the_window_is_not_seen(
    do_api: AppPlatformEmulator, platform: AppsPlatform, clock: FakeClock
) -> None:
    do_api.unhealthy_next_deployment(90)
    release = deploy(platform)
    seen, _ = settle(platform, release, clock, window=60)
    assert not seen.failed
    clock.sleep(40)
    assert platform.observe(release).failed  # it did turn, later


def test_a_failed_settle_is_rolled_back_as_a_failed_rollout(
    do_api: AppPlatformEmulator, platform: AppsPlatform, clock: FakeClock
) -> None:
    seeded = do_api.app()["active_deployment"]["id"]
    do_api.unhealthy_next_deployment(20)
    release = deploy(platform)
    seen, _ = settle(platform, release, clock, window=60)
    assert seen.failed
    # App Platform serves the deployment before it again, which a rollback may return to.
    assert do_api.app()["active_deployment"]["id"] == seeded
    history = platform.history()
    target = next(r for r in history if r.id == seeded)
    assert next(r for r in history if r.id == release.id).state is ReleaseState.FAILED
    check = platform.validate_rollback(target, pin=True)
    assert check.valid, check
    rollback = platform.roll_back_pinned(target, pin=True)
    assert rollback.restores == seeded
    while not (looked := platform.observe(rollback)).done:
        assert not looked.failed, looked.summary
        clock.sleep(PAUSE)
    assert platform.locate().pinned == rollback.id
    platform.commit_rollback()
    app = do_api.app()
    assert "pinned_deployment" not in app
    assert app["active_deployment"]["id"] == rollback.id
    assert app["active_deployment"]["services"][0]["source_commit_hash"] != NEW


# -- the verify stage's own settle window (issue 13) over App Platform ----------------------


def run(repo: GitRepo, emu: AppPlatformEmulator, clock: FakeClock, inputs: dict[str, str]) -> Step:
    """The action in process on ``repo``'s last commit (a changed source file)."""
    before = change(repo)
    emu.set_branch_head(DEMO_REPO, "main", repo.head())
    return run_in_process(
        repo.path,
        {"platform": "digitalocean", "api-url": emu.api_url, "app-id": emu.app_id, **inputs},
        factory=connect,
        clock=clock,
        event=push_event(before, repo.head()),
        env={"DIGITALOCEAN_TOKEN": emu.token},
        request_timeout=5,
    )


def gates(step: Step) -> dict[str, tuple[str, str]]:
    """The ``verification`` output: gate -> (result, detail)."""
    listed = json.loads(step.outputs["verification"])
    return {g["gate"]: (g["result"], g["detail"]) for g in listed}


def test_a_run_whose_deployment_turns_unhealthy_in_the_window_is_rolled_back(
    repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    seeded = do_api.app()["active_deployment"]["id"]
    do_api.unhealthy_next_deployment(20, log=["panic: nil map"])
    step = run(repo, do_api, clock, {"verify-window": "60s"})
    assert step.result.returncode == 1, step.log
    ours = step.outputs["deploy-id"]
    assert step.outputs["status"] == "rolled-back"
    assert step.outputs["rolled-back"] == "true"
    result, detail = gates(step)["settle-window"]
    assert result == "failed"
    assert f"deployment {ours} went from ACTIVE to ERROR" in detail
    assert "step 'run' of component web failed" in detail
    assert "web [run] panic: nil map" in step.log
    # validate -> roll back (pins) -> commit, as after a failed rollout
    writes = [r.path.rsplit("/", 1)[-1] for r in do_api.requests if r.method == "POST"]
    assert writes[-3:] == ["validate", "rollback", "commit"]
    app = do_api.app()
    assert "pinned_deployment" not in app
    assert app["active_deployment"]["id"] == step.outputs["rollback-deploy-id"]
    assert app["active_deployment"]["cloned_from"] == seeded


def test_a_run_whose_deployment_stays_active_passes_the_window(
    repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    step = run(repo, do_api, clock, {"verify-window": "60s"})
    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "deployed"
    assert gates(step)["settle-window"][0] == "passed"
    assert do_api.app()["active_deployment"]["id"] == step.outputs["deploy-id"]
