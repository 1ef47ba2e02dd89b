"""Runs that overlap, in process: two pushes seconds apart without a concurrency group.

A real git repository holds commits C1 (deployed), C2 (this run's) and C3 (a later push
that contains C2); the other run's deploys appear in the in-memory platform at the moment
they would really come (during this run's upload, during its wait). No stale deploy may
win, a rollback never throws a newer deploy away, and "what is deployed" is what the
environment runs.
"""

from __future__ import annotations

import io
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ci_deploy.errors import ApiUnavailableError, CancelledError
from ci_deploy.platform import Artifact
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import change
from tests.fakes import FakePlatform, Rollout
from tests.gitrepo import GitRepo
from tests.inprocess import run_in_process
from tests.test_run import deploy, error

OTHER_RUN = "https://github.com/example/astro-project/actions/runs/2"


@pytest.fixture
def commits(repo: GitRepo) -> dict[str, str]:
    """C1 (the example project), C2 (HEAD: a DAG change) and C3 (a later DAG change, which
    contains C2; in the repository, but not checked out)."""
    c1 = repo.head()
    change(repo)
    c2 = repo.head()
    change(repo, text="\n# changed again\n")
    c3 = repo.head()
    repo.git("checkout", "-q", "--detach", c2)
    return {"C1": c1, "C2": c2, "C3": c3}


def at(platform: FakePlatform, method: str, action: Callable[[], object]) -> None:
    """Run ``action`` the first time ``method`` is called (another run's step happens then)."""
    done: list[bool] = []

    def hook() -> None:
        if not done:
            done.append(True)
            action()

    platform.on_call[method] = hook


# --- 1: a newer deploy made while this run ships ----------------------------------------------


@pytest.mark.parametrize("finalized", [True, False], ids=["finalized", "in-flight"])
def test_a_deploy_of_a_commit_containing_ours_made_meanwhile_supersedes_it(
    repo: GitRepo, commits: dict[str, str], finalized: bool
) -> None:
    platform = FakePlatform()
    platform.seed(commits["C1"], dags="v1")
    newer: list[str] = []
    at(
        platform,
        "upload",
        lambda: newer.append(
            platform.other_run(commits["C3"], finalized=finalized, run_url=OTHER_RUN).id
        ),
    )

    step = deploy(repo, platform, before=commits["C1"])

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "superseded"
    assert "finalize" not in platform.names(), "the older code is never put back"
    [ours] = platform.deploys()
    assert step.outputs["deploy-id"] == ours.id
    [notice] = [
        c
        for c in step.commands("notice")
        if c.properties.get("title") == "Superseded by a newer deploy"
    ]
    assert newer[0] in notice.message and OTHER_RUN in notice.message
    assert f"deploy {ours.id} was not finalized" in notice.message
    summary = step.result.summary
    assert "## ⏩ Superseded by a newer deploy" in summary
    assert (
        f"Created and not finalized (INITIALIZED, they change nothing): deploy {ours.id}" in summary
    )


@pytest.mark.parametrize("finalized", [True, False], ids=["finalized", "in-flight"])
def test_a_newer_commits_deploy_made_just_before_ours_supersedes_it(
    repo: GitRepo, commits: dict[str, str], finalized: bool
) -> None:
    # the run of the later push got going first: its deploy was created before this run's
    platform = FakePlatform()
    platform.seed(commits["C1"], dags="v1")
    at(platform, "create", lambda: platform.other_run(commits["C3"], finalized=finalized))

    step = deploy(repo, platform, before=commits["C1"])

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "superseded"
    assert "finalize" not in platform.names(), "C2 never replaces C3"


def test_another_runs_rollback_to_an_older_commit_does_not_stop_a_newer_one(
    repo: GitRepo, commits: dict[str, str]
) -> None:
    platform = FakePlatform()
    seeded = platform.seed(commits["C1"], dags="v1")
    at(platform, "upload", lambda: platform.roll_back(seeded, "another run's rollback", "theirs"))

    step = deploy(repo, platform, before=commits["C1"])

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "deployed"
    assert platform.shows[Artifact.DAGS] == step.outputs["dag-tarball-version"]


def test_a_deploy_of_an_older_commit_made_meanwhile_does_not_stop_ours(
    repo: GitRepo, commits: dict[str, str]
) -> None:
    platform = FakePlatform()
    platform.seed(commits["C1"], dags="v1")
    at(platform, "upload", lambda: platform.other_run(commits["C1"], run_url=OTHER_RUN))

    step = deploy(repo, platform, before=commits["C1"])

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "deployed"
    assert "finalize" in platform.names()
    assert platform.shows[Artifact.DAGS] == step.outputs["dag-tarball-version"]


def test_what_is_deployed_is_what_the_environment_runs_not_the_newest_deploy(
    repo: GitRepo, commits: dict[str, str]
) -> None:
    # C3's deploy was created after C2's, but C2's was finalized last: the Deployment runs C2.
    platform = FakePlatform()
    platform.seed(commits["C1"], dags="v1")
    platform.seed(commits["C2"], dags="v2")
    platform.seed(commits["C3"], dags="v3")
    platform.shows = {Artifact.DAGS: "v2"}
    repo.git("checkout", "-q", "--detach", commits["C3"])

    step = deploy(repo, platform, before=commits["C2"])

    assert step.result.returncode == 0, step.log
    assert step.outputs["skipped"] == "false", "C3 was never running: it must be deployed"
    assert (step.outputs["base-sha"], step.outputs["base-source"]) == (commits["C2"], "deployed")
    assert step.outputs["deploy-type"] == "DAG_ONLY"
    assert platform.shows[Artifact.DAGS] == step.outputs["dag-tarball-version"]


def test_another_deploy_in_flight_is_said_in_the_log(
    repo: GitRepo, commits: dict[str, str]
) -> None:
    platform = FakePlatform()
    platform.seed(commits["C1"], dags="v1")
    other = platform.other_run(commits["C1"], finalized=False, run_url=OTHER_RUN)

    step = deploy(repo, platform, before=commits["C1"])

    assert step.result.returncode == 0, step.log
    [notice] = [
        c
        for c in step.commands("notice")
        if c.properties.get("title") == "Another deploy in progress"
    ]
    assert other.id in notice.message and OTHER_RUN in notice.message
    assert "concurrency group" in notice.message


# --- 2: roll back only what is ours -------------------------------------------------------------


def test_a_failed_rollout_replaced_by_a_newer_deploy_is_not_rolled_back(
    repo: GitRepo, commits: dict[str, str]
) -> None:
    platform = FakePlatform(rollout=Rollout(outcome="unhealthy"))
    platform.seed(commits["C1"], dags="v1")
    newer: list[str] = []
    at(
        platform,
        "observe",
        lambda: newer.append(platform.other_run(commits["C3"], run_url=OTHER_RUN).id),
    )

    step = deploy(repo, platform, before=commits["C1"])

    assert step.result.returncode == 1
    assert "roll_back" not in platform.names(), "the newer, healthy deploy is kept"
    assert step.outputs["rolled-back"] == "false"
    assert step.titles("error") == ["Rollout failed; a newer deploy took over"]
    assert f"Deploy {newer[0]}" in error(step) and "was not rolled back" in error(step)


def test_a_rollback_returns_to_what_ran_just_before_our_finalize(
    repo: GitRepo, commits: dict[str, str]
) -> None:
    # While this run uploads, another run finalizes an older commit (C1 again, a re-run):
    # that is what the Deployment runs when ours is finalized, so that is where ours returns.
    platform = FakePlatform(rollout=Rollout(outcome="unhealthy"))
    seeded = platform.seed(commits["C1"], dags="v1")
    meanwhile: list[str] = []
    at(platform, "upload", lambda: meanwhile.append(platform.other_run(commits["C1"]).id))

    step = deploy(repo, platform, before=commits["C1"])

    assert step.result.returncode == 1
    assert [call[1] for call in platform.calls if call[0] == "roll_back"] == [meanwhile[0]]
    assert meanwhile[0] != seeded.id
    assert step.outputs["rolled-back"] == "true"


# --- 7: a rollback that exists is always reported ------------------------------------------------


def test_a_rollback_whose_health_cannot_be_read_is_reported_with_its_id(
    repo: GitRepo, commits: dict[str, str]
) -> None:
    platform = FakePlatform(rollout=Rollout(outcome="unhealthy"))
    platform.seed(commits["C1"], dags="v1")

    def unreadable_after_rollback() -> None:
        if "roll_back" in platform.names():
            raise ApiUnavailableError("Get Deployment 'dep-1' failed: could not reach the API.")

    platform.on_call["observe"] = unreadable_after_rollback

    step = deploy(repo, platform, before=commits["C1"])

    assert step.result.returncode == 1
    [rollback] = [r for r in platform.releases if r.is_rollback]
    assert (step.outputs["rolled-back"], step.outputs["rollback-deploy-id"]) == (
        "true",
        rollback.id,
    )
    assert step.outputs["status"] == "rolled-back"
    assert step.titles("error") == ["Rollout failed and was rolled back; its health is unknown"]
    message = error(step)
    assert f"rollback deploy {rollback.id}; its health is unknown" in message
    assert "failed too" not in message and "may still be rolling it out" not in message
    assert f"`{rollback.id}` (health unknown)" in step.result.summary


@pytest.fixture
def sigterm_recorded() -> Iterator[list[int]]:
    """SIGTERM's handler outside the run records the signal instead of ending pytest."""
    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_during_the_rollback_wait_still_reports_the_rollback(
    repo: GitRepo, commits: dict[str, str], sigterm_recorded: list[int]
) -> None:
    platform = FakePlatform(rollout=Rollout(outcome="unhealthy"))
    platform.seed(commits["C1"], dags="v1")

    def cancel_after_rollback() -> None:
        if "roll_back" in platform.names():
            os.kill(os.getpid(), signal.SIGTERM)

    platform.on_call["observe"] = cancel_after_rollback

    step = deploy(repo, platform, before=commits["C1"])

    assert step.result.returncode == 1
    assert step.titles("error") == ["Deploy cancelled"]
    [rollback] = [r for r in platform.releases if r.is_rollback]
    assert (step.outputs["rolled-back"], step.outputs["rollback-deploy-id"]) == (
        "true",
        rollback.id,
    )
    assert "(health unknown)" in step.result.summary
    assert (
        f"Rollback deploy {rollback.id} (back to deploy r1) was made; its health is unknown"
        in error(step)
    )
    assert sigterm_recorded == []


# --- 18: a second SIGTERM while the report is written -------------------------------------------


def test_a_second_sigterm_does_not_cut_the_report_off(
    repo: GitRepo, commits: dict[str, str], sigterm_recorded: list[int]
) -> None:
    platform = FakePlatform(rollout=Rollout(outcome="stuck"))
    platform.seed(commits["C1"], dags="v1")
    at(platform, "observe", lambda: os.kill(os.getpid(), signal.SIGTERM))
    # The second SIGTERM comes as the run reports its failure, before the outputs are written.
    step = run_in_process(
        repo.path,
        platform=platform,
        event=push_event(commits["C1"], repo.head()),
        log=_SignalOn("::error title=Deploy cancelled"),
    )

    assert step.result.returncode == 1
    assert step.outputs["status"] == "failed"
    assert step.outputs["deploy-id"] == platform.deploys()[0].id
    assert "## ❌ Deploy failed" in step.result.summary
    assert sigterm_recorded == [], "ci-deploy handled the second SIGTERM itself"


def test_a_sigterm_before_the_run_begins_stops_it_before_any_call(
    repo: GitRepo, commits: dict[str, str], sigterm_recorded: list[int]
) -> None:
    platform = FakePlatform()
    platform.seed(commits["C1"], dags="v1")

    step = run_in_process(
        repo.path,
        platform=platform,
        event=push_event(commits["C1"], repo.head()),
        log=_SignalOn("ci-deploy "),  # the first line, written while the inputs are read
    )

    assert step.result.returncode == 1
    assert step.titles("error") == ["Deploy cancelled"]
    assert platform.calls == [], "nothing was asked of the Deployment"
    assert sigterm_recorded == []


class _SignalOn(io.StringIO):
    """A log that sends this process SIGTERM when a line starting with ``line`` is written."""

    def __init__(self, line: str) -> None:
        super().__init__()
        self._line = line

    def write(self, text: str) -> int:
        if text.startswith(self._line):
            os.kill(os.getpid(), signal.SIGTERM)
        return super().write(text)


def test_a_newer_commit_missing_from_a_shallow_checkout_is_fetched_to_compare(
    repo: GitRepo, tmp_path: Path
) -> None:
    # actions/checkout's default: one commit deep, and the later push is not in it at all
    c1 = repo.head()
    change(repo)
    c2 = repo.head()
    origin = repo.add_origin()
    workspace = GitRepo.clone(origin, tmp_path / "shallow")
    change(repo, text="\n# changed again\n")
    c3 = repo.head()
    repo.push()
    assert not workspace.has_commit(c3)

    platform = FakePlatform()
    platform.seed(c1, dags="v1")
    at(platform, "upload", lambda: platform.other_run(c3, finalized=False, run_url=OTHER_RUN))
    step = run_in_process(workspace.path, platform=platform, event=push_event(c1, c2))

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "superseded"
    assert workspace.has_commit(c3), "fetched to tell that it contains this run's commit"


@pytest.mark.parametrize(
    ("method", "what"),
    [("finalize", "finalizing deploy new-1"), ("roll_back", "rolling back to deploy r1")],
)
def test_a_cancel_in_the_middle_of_a_write_says_its_outcome_is_unknown(
    repo: GitRepo, commits: dict[str, str], method: str, what: str
) -> None:
    outcome = "unhealthy" if method == "roll_back" else "healthy"
    platform = FakePlatform(rollout=Rollout(outcome=outcome))
    platform.seed(commits["C1"], dags="v1")
    platform.on_call[method] = _cancel

    step = deploy(repo, platform, before=commits["C1"])

    assert step.result.returncode == 1
    assert step.titles("error") == ["Deploy cancelled"]
    message = error(step)
    assert f"cancelled while {what}: whether that was done is unknown" in message
    assert "stays INITIALIZED" not in message and "Left INITIALIZED" not in step.result.summary


def _cancel() -> None:
    raise CancelledError("The run was cancelled (SIGTERM) and stopped where it was.")
