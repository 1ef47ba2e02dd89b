"""The fault-injection matrix: every Astro API call of a run x every network fault.

Each case runs the whole action in process against the emulator (``astro`` fixture: a fake
clock shared with the run, every API request checked against the spec at teardown). A
first real deploy makes a DEPLOYED deploy to compare with and to roll back to; then a DAG
change is pushed and deployed with ONE fault armed at one step:

- the steps of the deploy (the first GET of the Deployment, the history, the create, the
  upload, the finalize, the polls after the finalize, the logs): the run still deploys,
  exactly once, and the Deployment runs the new DAG version;
- the steps of the rollback (the rollback POST, the polls after it), with a rollout that
  goes UNHEALTHY: the run still rolls back, exactly once, to the previous DAG version.

Then faults that last beyond any retry budget, each with what the run must say.

Every armed fault must be consumed (``faults.pending == 0``): the fault really hit the
request it was meant for. Slow faults answer 1.5 s (real time) after handling the request,
in runs whose request timeout is 0.5 s.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from ci_deploy_testkit.emulator import Emulator, Faults
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import Step, change
from tests.gitrepo import GitRepo
from tests.inprocess import run_action

REQUEST_TIMEOUT = 0.5
"""The request timeout (real seconds) of runs with a slow fault."""
SLOW_ANSWER = 1.5
"""How late (real seconds) a slow fault answers: well beyond :data:`REQUEST_TIMEOUT`."""
PERSISTENT = 10_000
"""The count of a fault that lasts beyond any retry budget."""

DEPLOYMENT = r"/deployments/[^/]+$"
FINALIZE = ("POST", r"/finalize$")
ROLLBACK = ("POST", r"/rollback$")


@dataclass(frozen=True)
class Target:
    """The requests of one step: method, path regex, and the request that arms the fault."""

    method: str
    path: str
    after: tuple[str, str] | None = None


STEPS: dict[str, Target] = {
    "get": Target("GET", DEPLOYMENT),  # the first GET of the Deployment
    "list": Target("GET", r"/deploys$"),
    "create": Target("POST", r"/deploys$"),
    "upload": Target("PUT", r"^/blob/"),
    "finalize": Target(*FINALIZE),
    "poll": Target("GET", DEPLOYMENT, after=FINALIZE),
    "logs": Target("GET", r"/logs$"),
    "rollback": Target(*ROLLBACK),
    "rollback-poll": Target("GET", DEPLOYMENT, after=ROLLBACK),
}
DEPLOY_STEPS = ["get", "list", "create", "upload", "finalize", "poll", "logs"]
ROLLBACK_STEPS = ["rollback", "rollback-poll"]

Arm = Callable[[Faults, Target, int], None]

FAULTS: dict[str, Arm] = {
    "429": lambda f, t, n: f.add(t.method, t.path, 429, retry_after="1", count=n, after=t.after),
    "500": lambda f, t, n: f.add(t.method, t.path, 500, count=n, after=t.after),
    "503": lambda f, t, n: f.add(t.method, t.path, 503, count=n, after=t.after),
    "drop-before": lambda f, t, n: f.add_drop(t.method, t.path, n, processed=False, after=t.after),
    "drop-after": lambda f, t, n: f.add_drop(t.method, t.path, n, processed=True, after=t.after),
    "slow": lambda f, t, n: f.add_slow(t.method, t.path, SLOW_ANSWER, count=n, after=t.after),
}


def cases(steps: list[str]) -> list[Any]:
    return [pytest.param(step, fault, id=f"{step}-{fault}") for step in steps for fault in FAULTS]


# --- the runs -------------------------------------------------------------------------------


@dataclass
class Scene:
    """The Deployment after a first real deploy of the example project."""

    repo: GitRepo
    emulator: Emulator
    first: Step
    known: set[str]
    """The ids of the deploys that existed before the faulted run."""

    def run(self, request_timeout: float | None = None) -> Step:
        """Push a DAG change and deploy it (the faulted run)."""
        before = change(self.repo, text="\n# the faulted run's change\n")
        return run_action(
            self.repo,
            self.emulator,
            event=push_event(before, self.repo.head()),
            request_timeout=request_timeout,
        )

    def new_deploys(self) -> list[dict[str, Any]]:
        """The deploys the faulted run made that are not rollbacks."""
        return [d for d in self.created() if not d.get("rollbackFromId")]

    def new_rollbacks(self) -> list[dict[str, Any]]:
        return [d for d in self.created() if d.get("rollbackFromId")]

    def created(self) -> list[dict[str, Any]]:
        deploys = self.emulator.deploys(self.emulator.deployment_id)
        return [d for d in deploys if d["id"] not in self.known]

    def initialized(self) -> list[str]:
        deploys = self.emulator.deploys(self.emulator.deployment_id)
        return [str(d["id"]) for d in deploys if d["status"] == "INITIALIZED"]

    def dag_version(self) -> str:
        return str(self.emulator.deployment(self.emulator.deployment_id)["dagTarballVersion"])


@pytest.fixture
def scene(repo: GitRepo, astro: Emulator) -> Scene:
    before = change(repo, text="\n# the first deploy's change\n")
    first = run_action(repo, astro, event=push_event(before, repo.head()))
    assert (first.result.returncode, first.outputs["status"]) == (0, "deployed"), first.log
    assert astro.faults.pending == 0
    known = {str(d["id"]) for d in astro.deploys(astro.deployment_id)}
    return Scene(repo, astro, first, known)


def faulted_run(scene: Scene, step: str, fault: str, count: int = 1) -> Step:
    if step == "logs":  # read only when Airflow's API cannot be (the import errors' fallback)
        scene.emulator.airflow_api = False
    FAULTS[fault](scene.emulator.faults, STEPS[step], count)
    return scene.run(REQUEST_TIMEOUT if fault == "slow" else None)


def gist(step: Step) -> str:
    """What a failed assertion shows: the run's error annotations, or the end of its log."""
    errors = [f"{c.properties.get('title', '')}: {c.message}" for c in step.commands("error")]
    return " | ".join(errors) or step.log[-1500:]


def consumed(scene: Scene) -> None:
    """Every armed fault hit its request (the harness hit what it meant to)."""
    assert scene.emulator.faults.pending == 0, "the armed fault never met its request"


# --- one fault at one step of the deploy ----------------------------------------------------


@pytest.mark.parametrize(("step", "fault"), cases(DEPLOY_STEPS))
def test_one_fault_in_the_deploy_still_deploys_exactly_once(
    scene: Scene, step: str, fault: str
) -> None:
    run = faulted_run(scene, step, fault)

    out = run.outputs
    assert run.result.returncode == 0, gist(run)
    assert out["status"] == "deployed", gist(run)
    [deploy] = scene.new_deploys()
    assert out["deploy-id"] == deploy["id"]
    assert scene.new_rollbacks() == []
    assert (out["rolled-back"], out["rollback-deploy-id"]) == ("false", "")
    assert scene.initialized() == []
    assert scene.dag_version() == out["dag-tarball-version"] != ""
    assert out["dag-tarball-version"] != scene.first.outputs["dag-tarball-version"]
    consumed(scene)


# --- one fault at one step of the rollback --------------------------------------------------


@pytest.mark.parametrize(("step", "fault"), cases(ROLLBACK_STEPS))
def test_one_fault_in_the_rollback_still_rolls_back_exactly_once(
    scene: Scene, step: str, fault: str
) -> None:
    scene.emulator.unhealthy_after_finalize = True

    run = faulted_run(scene, step, fault)

    out = run.outputs
    assert run.result.returncode == 1, gist(run)
    assert (out["status"], out["rolled-back"]) == ("rolled-back", "true"), gist(run)
    [deploy] = scene.new_deploys()
    assert out["deploy-id"] == deploy["id"]
    [rollback] = scene.new_rollbacks()
    assert out["rollback-deploy-id"] == rollback["id"]
    assert scene.initialized() == []
    assert scene.dag_version() == scene.first.outputs["dag-tarball-version"] != ""
    consumed(scene)


# --- faults beyond the retry budget ---------------------------------------------------------


def hits(scene: Scene) -> int:
    """How many requests the persistent fault took."""
    return PERSISTENT - scene.emulator.faults.pending


def test_finalize_failing_every_time_fails_and_names_the_deploy_left_initialized(
    scene: Scene,
) -> None:
    run = faulted_run(scene, "finalize", "500", PERSISTENT)

    assert run.result.returncode == 1
    assert run.outputs["status"] == "failed", gist(run)
    [deploy] = scene.new_deploys()
    assert scene.initialized() == [deploy["id"]]
    assert deploy["id"] in run.log, "the log names the deploy left INITIALIZED"
    assert deploy["id"] in run.result.summary, "the summary names it"
    assert scene.dag_version() == scene.first.outputs["dag-tarball-version"]
    assert hits(scene) >= 1


@pytest.mark.parametrize("fault", ["500", "503"])
def test_logs_failing_every_time_after_a_verified_rollout_is_a_warning(
    scene: Scene, fault: str
) -> None:
    run = faulted_run(scene, "logs", fault, PERSISTENT)

    assert run.result.returncode == 0, gist(run)
    assert run.outputs["status"] == "deployed"
    assert scene.dag_version() == run.outputs["dag-tarball-version"]
    warnings = [f"{c.properties.get('title', '')} {c.message}" for c in run.commands("warning")]
    assert any(
        "import errors" in text.lower() and "not checked" in text.lower() for text in warnings
    ), warnings
    assert hits(scene) >= 1


def test_rollback_failing_every_time_fails_without_a_rollback(scene: Scene) -> None:
    scene.emulator.unhealthy_after_finalize = True

    run = faulted_run(scene, "rollback", "500", PERSISTENT)

    assert run.result.returncode == 1
    assert (run.outputs["status"], run.outputs["rolled-back"]) == ("failed", "false"), gist(run)
    assert run.outputs["rollback-deploy-id"] == ""
    assert scene.new_rollbacks() == []
    assert re.search(r"rollback[^\n]*failed", run.log, re.IGNORECASE), gist(run)
    assert hits(scene) >= 1


def test_rollback_polls_failing_every_time_leave_the_rollback_health_unknown(
    scene: Scene,
) -> None:
    scene.emulator.unhealthy_after_finalize = True

    run = faulted_run(scene, "rollback-poll", "500", PERSISTENT)

    assert run.result.returncode == 1
    assert run.outputs["rolled-back"] == "true", gist(run)
    [rollback] = scene.new_rollbacks()
    assert run.outputs["rollback-deploy-id"] == rollback["id"]
    said = run.log + run.result.summary
    assert re.search(r"roll(back|ed back)[^\n]*unknown", said, re.IGNORECASE), gist(run)
    assert "the rollback is healthy" not in said
    assert "failed too" not in said
    assert hits(scene) >= 1


def test_a_finalize_processed_only_after_the_run_looked_is_not_misread(scene: Scene) -> None:
    # The answer is lost and the API finishes the finalize only as the retry arrives: the
    # retry is refused (the deploy is DEPLOYED by then), and the state read back says so.
    scene.emulator.faults.add_late(*FINALIZE, until=FINALIZE)

    run = scene.run()

    assert run.result.returncode == 0, gist(run)
    assert run.outputs["status"] == "deployed"
    assert scene.initialized() == []
    assert scene.dag_version() == run.outputs["dag-tarball-version"]
    assert "an earlier attempt went through late" in run.log
