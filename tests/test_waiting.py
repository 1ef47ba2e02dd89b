"""Waiting: the poll schedule, the rule of what a wait logs, and the waits of real runs.

The schedule and the log rule are pure; :class:`~ci_deploy.waiting.Wait` runs on a
:class:`~tests.fakes.FakeClock`. The runs are the whole action in process against the Astro
and App Platform emulators on that clock, so a ten-minute rollout takes no real time.
"""

from __future__ import annotations

import itertools
import re

import pytest

from ci_deploy.timing import poll_delays
from ci_deploy.waiting import Logged, Wait, duration, progress_line
from ci_deploy_testkit.do_emulator import AppPlatformEmulator
from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import NO_SETTLE_WINDOW, Step, change
from tests.fakes import FakeClock
from tests.gitrepo import GitRepo
from tests.inprocess import run_action
from tests.test_do_faults import run as do_run

HOUR = 3600.0


def look_times(limit: float) -> list[float]:
    """When a wait looks, in seconds from its start, up to ``limit``."""
    times = [0.0]
    for delay in poll_delays():
        if times[-1] + delay > limit:
            return times
        times.append(times[-1] + delay)
    raise AssertionError("unreachable")


def wait_group(step: Step) -> list[str]:
    """The lines of the run's first wait, inside its log group."""
    lines = step.log.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"::group ?::Waiting for", line))
    end = next(i for i in range(start, len(lines)) if re.match(r"::endgroup ?::", lines[i]))
    return lines[start + 1 : end]


def noticed_after(step: Step) -> float:
    """The seconds the run says the rollout took to be seen done."""
    found = re.search(r" runs .* after (?:(\d+)m ?)?(?:(\d+)s)?\.", step.log)
    assert found, step.log
    return 60 * int(found.group(1) or 0) + int(found.group(2) or 0)


# -- the schedule ----------------------------------------------------------------------------


def test_the_schedule_looks_after_one_two_three_four_seconds_then_every_five() -> None:
    assert list(itertools.islice(poll_delays(), 8)) == [1, 2, 3, 4, 5, 5, 5, 5]


def test_a_rollout_ending_at_any_moment_of_an_hour_is_seen_within_five_seconds() -> None:
    looks = look_times(HOUR + 5)
    for finished in range(int(HOUR)):
        seen = next(t for t in looks if t >= finished)
        assert seen - finished <= 5, f"a rollout done at {finished}s is seen at {seen}s"


def test_an_hour_of_waiting_stays_well_inside_app_platforms_rate_limits() -> None:
    looks = look_times(HOUR)
    assert len(looks) <= 725, "about 720 looks an hour (App Platform allows 5,000 requests)"
    busiest_minute = max(sum(1 for t in looks if start <= t < start + 60) for start in looks)
    assert busiest_minute <= 15, "App Platform allows 250 requests a minute"


# -- what a wait logs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0s"), (45.4, "45s"), (60, "1m"), (130, "2m 10s"), (3600, "1h"), (3900, "1h 5m")],
)
def test_durations_read_as_words(seconds: float, words: str) -> None:
    assert duration(seconds) == words


def test_a_new_state_is_always_logged_and_the_same_one_only_every_thirty_seconds() -> None:
    first = progress_line("status DEPLOYING", 0, 900, None)
    assert first == "[0s] Status DEPLOYING"
    assert progress_line("status DEPLOYING", 29, 900, Logged("status DEPLOYING", 0)) is None
    assert progress_line("status DEPLOYING", 130, 900, Logged("status DEPLOYING", 100)) == (
        "Still waiting (2m 10s of 15m): status DEPLOYING"
    )
    assert progress_line("status HEALTHY", 1, 900, Logged("status DEPLOYING", 0)) == (
        "[1s] Status HEALTHY"
    )


def test_a_wait_logs_every_change_and_otherwise_a_line_every_thirty_seconds() -> None:
    clock, lines = FakeClock(), []
    changes = {0.0: "queued", 100.0: "building 1/3", 107.0: "building 2/3", 400.0: "live"}
    wait = Wait(clock.timing(), 600, lines.append)
    state, seen_new = "", []
    while state != "live":
        state = max((t, s) for t, s in changes.items() if t <= clock.now)[1]
        if wait.seen(state):
            seen_new.append(state)
        assert wait.pause()

    assert seen_new == ["queued", "building 1/3", "building 2/3", "live"]
    changed = [line for line in lines if line.startswith("[")]
    assert changed == [
        "[0s] Queued",
        "[1m 40s] Building 1/3",
        "[1m 50s] Building 2/3",
        "[6m 40s] Live",
    ]
    still = [line for line in lines if line.startswith("Still waiting")]
    assert still[0] == "Still waiting (30s of 10m): queued"
    assert len(lines) == len(changed) + len(still) <= 4 + 400 / 30
    assert len(clock.sleeps) > 80, "it looked far more often than it logged"


def test_a_wait_never_sleeps_past_its_timeout_and_then_says_so() -> None:
    clock = FakeClock()
    wait = Wait(clock.timing(), 12.5, lambda line: None)
    while wait.pause():
        pass
    assert clock.sleeps == [1, 2, 3, 4, 2.5]
    assert clock.now == 12.5 and not wait.pause()


# -- the waits of real runs --------------------------------------------------------------------


@pytest.mark.parametrize("rollout", [12, 60, 300])
def test_a_finished_astro_rollout_is_seen_within_five_seconds(
    repo: GitRepo, astro: Emulator, clock: FakeClock, rollout: int
) -> None:
    astro.rollout_seconds = rollout
    before = change(repo)

    step = run_action(
        repo,
        astro,
        {"wait-timeout": "15m", **NO_SETTLE_WINDOW},
        event=push_event(before, repo.head()),
    )

    assert step.result.returncode == 0, step.log
    assert rollout <= noticed_after(step) <= rollout + 5
    assert sum(clock.sleeps) <= rollout + 5, "nothing else slept"


def test_a_ten_minute_astro_rollout_logs_its_changes_and_about_twenty_more_lines(
    repo: GitRepo, astro: Emulator
) -> None:
    astro.rollout_seconds = 600
    before = change(repo)

    step = run_action(
        repo,
        astro,
        {"wait-timeout": "15m", **NO_SETTLE_WINDOW},
        event=push_event(before, repo.head()),
    )

    assert step.result.returncode == 0, step.log
    version = step.outputs["dag-tarball-version"]
    lines = wait_group(step)
    assert lines[0].startswith("[0s] Status DEPLOYING, running DAG version ")
    assert lines[0].endswith(f", rolling out {version}")
    assert lines[-2] == f"[10m] Status HEALTHY, running DAG version {version}"
    assert lines[-1].endswith(" after 10m.")
    still = lines[1:-2]
    assert all(line.startswith("Still waiting (") for line in still)
    assert still[-1].startswith("Still waiting (9m 30s of 15m): status DEPLOYING")
    assert len(lines) <= 3 + 600 / 30
    looks = [
        r for r in astro.requests if r.method == "GET" and re.search(r"/deployments/[^/]+$", r.path)
    ]
    assert len(looks) > 100, "it looked every 5 s and logged every 30 s"


def test_a_429_while_waiting_is_waited_out_and_the_schedule_goes_on(
    repo: GitRepo, astro: Emulator, clock: FakeClock
) -> None:
    astro.faults.add(
        "GET", r"/deployments/[^/]+$", 429, retry_after="7", after=("POST", r"/finalize$")
    )
    before = change(repo)

    step = run_action(repo, astro, NO_SETTLE_WINDOW, event=push_event(before, repo.head()))

    assert step.result.returncode == 0, step.log
    assert clock.sleeps == [7.0, 1.0, 2.0, 3.0, 4.0, 5.0], "Retry-After, then the schedule"
    lines = wait_group(step)
    assert "HTTP 429, retrying in 7.0 s" in lines[0]
    assert lines[1].startswith("[7s] Status DEPLOYING")
    assert lines[-1].endswith(" after 22s."), "the 20 s rollout, seen at the next look"


def test_app_platform_phases_are_each_logged_once_with_their_steps(
    repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    do_api.phase_seconds = 100
    before = change(repo)

    step = do_run(repo, do_api, clock, before, {"wait-timeout": "15m", **NO_SETTLE_WINDOW})

    assert step.result.returncode == 0, step.log
    lines = wait_group(step)
    changed = [re.sub(r" [0-9a-f-]{36} ", " D ", line) for line in lines if line.startswith("[")]
    assert changed == [
        "[0s] Deployment D is PENDING_BUILD (0/2 steps done)",
        "[1m 40s] Deployment D is BUILDING (0/2 steps done)",
        "[3m 20s] Deployment D is PENDING_DEPLOY (1/2 steps done)",
        "[5m] Deployment D is DEPLOYING (1/2 steps done)",
        "[6m 40s] Deployment D is ACTIVE (2/2 steps done)",
    ]
    still = [line for line in lines if line.startswith("Still waiting (")]
    assert len(still) == len(lines) - len(changed) - 1, "the rest: progress, and the end"
    assert len(lines) <= 6 + 400 / 30


def test_an_app_platform_rate_limit_while_waiting_is_waited_out_until_its_reset(
    repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    do_api.phase_seconds = 30  # a two-minute rollout: it goes on after the minute waited
    do_api.faults.add("GET", r"/deployments/[^/]+$", 429, after=("POST", r"/deployments$"))
    before = change(repo)

    step = do_run(repo, do_api, clock, before)

    assert step.result.returncode == 0, step.log
    [waited] = [s for s in clock.sleeps if s > 5]
    assert 55 <= waited <= 60, "until ratelimit-reset (a minute ahead)"
    after = clock.sleeps[clock.sleeps.index(waited) + 1 :]
    assert after[:4] == [1.0, 2.0, 3.0, 4.0], "then the schedule"
    assert "HTTP 429, retrying in " in "\n".join(wait_group(step))


def test_a_wait_to_its_end_ends_when_rounding_leaves_a_sliver_of_time() -> None:
    """From 5.6 s on a fake clock, the float sum of a minute's delays falls 1e-14 s short of
    60 s, and a sleep that short does not move the clock: the wait still ends."""
    clock = FakeClock()
    clock.now = 5.6
    wait = Wait(clock.timing(), 60.0, lambda line: None)
    looks = 0
    while wait.pause():
        looks += 1
        assert looks < 100, "the wait never ended"
    assert 59.99 <= wait.elapsed <= 60.01
