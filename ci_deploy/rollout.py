"""After finalize: wait until the Deployment runs the deploy, check imports, roll back.

The judgement of each look at the Deployment is :func:`decide.rollout_state`; this module
polls, reads the logs, and asks the API for rollbacks, with progress in the log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from .astro.client import AstroClient
from .astro.wire import Deploy, RollbackRequest
from .decide import Target, import_problems, poll_delays, rollout_state
from .errors import NotFoundError, RolloutError
from .runner import Runner

LOG_SOURCES = ("dag-processor", "scheduler")


class Rollout:
    """Waits for, verifies and, when asked, reverses what a deploy did to one Deployment."""

    def __init__(
        self,
        client: AstroClient,
        deployment_id: str,
        runner: Runner,
        *,
        timeout: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.deployment_id = deployment_id
        self.runner = runner
        self.timeout = timeout
        self.clock = clock
        self.sleep = sleep
        self.last_seen = ""

    def wait(self, target: Target, what: str) -> None:
        """Poll until the Deployment runs ``target``; RolloutError on UNHEALTHY or timeout."""
        runner = self.runner
        started = self.clock()
        deadline = started + self.timeout
        delays = poll_delays()
        with runner.group(f"Waiting for the Deployment to run {target.describe()}"):
            while True:
                deployment = self.client.get_deployment(self.deployment_id)
                state = rollout_state(deployment, target)
                elapsed = self.clock() - started
                self.last_seen = state.summary
                runner.info(f"[{elapsed:5.0f}s] {state.summary}; waiting for {target.describe()}")
                if state.done:
                    runner.info(f"The Deployment runs {what} after {elapsed:.0f}s.")
                    return
                if state.failed:
                    raise RolloutError(
                        f"The Deployment became unhealthy after {what}: {state.summary}."
                    )
                remaining = deadline - self.clock()
                if remaining <= 0:
                    raise RolloutError(
                        f"Timed out after {self.timeout:.0f}s (wait-timeout) waiting for the "
                        f"Deployment to run {what} ({target.describe()}); last seen: "
                        f"{state.summary}."
                    )
                self.sleep(min(next(delays), remaining))

    def check_imports(self, since: datetime, members: Sequence[str], prefix: str) -> None:
        """Fail when the Deployment's logs since ``since`` report an import error in ``members``.

        ``prefix`` turns a tarball member into the repository path used in annotations.
        An API without the logs endpoint is a notice, not a failure.
        """
        try:
            entries = self.client.get_deployment_logs(
                self.deployment_id, sources=LOG_SOURCES, start=since
            )
        except NotFoundError:
            self.runner.notice(
                "The Deployment's logs are not available from this API, so DAG import errors "
                "were not checked.",
                title="Import errors not checked",
            )
            return
        problems = import_problems((entry.raw for entry in entries), members)
        if not problems:
            self.runner.info(f"No DAG import errors in the {', '.join(LOG_SOURCES)} logs.")
            return
        for problem in problems:
            self.runner.error(
                problem.message, title="DAG import error", file=prefix + problem.member
            )
        names = ", ".join(prefix + p.member for p in problems)
        raise RolloutError(
            f"Airflow could not import {len(problems)} deployed DAG file(s): {names}."
        )

    def roll_back(self, target: Deploy, description: str) -> RollbackOutcome:
        """Roll back to ``target`` and wait for it; says how the rollback ended."""
        self.runner.info(f"Rolling back to deploy {target.id} ({commit_of(target)}).")
        rollback = self.client.rollback_deploy(
            self.deployment_id, target.id, RollbackRequest(description=description[:500])
        )
        self.runner.info(f"Rollback deploy {rollback.id} created.")
        goal = Target(
            dag_version=target.dagTarballVersion or None,
            image_tag=target.imageTag if target.type in ("IMAGE_AND_DAG", "IMAGE_ONLY") else None,
        )
        try:
            self.wait(goal, f"the rollback to deploy {target.id}")
        except RolloutError as exc:
            return RollbackOutcome(
                rollback, False, f"the rollback itself is not healthy: {exc.message}"
            )
        return RollbackOutcome(rollback, True, "the rollback is healthy")


@dataclass(frozen=True)
class RollbackOutcome:
    """The rollback deploy, whether the Deployment is healthy on it, and that in words."""

    deploy: Deploy
    healthy: bool
    summary: str


def commit_of(deploy: Deploy) -> str:
    """``commit <sha12>`` of a deploy, or that none is recorded."""
    sha = deploy.git.commitSha if deploy.git else ""
    return f"commit {sha[:12]}" if sha else "no commit recorded"
