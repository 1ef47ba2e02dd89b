"""Recover: roll back after a failed rollout, or on demand (``action: rollback``).

Where to return is the plan's (:func:`ci_deploy.plan.make_plan`, :func:`plan_rollback`);
this stage asks the platform for the rollback, waits for it like any rollout, and says in
one message what failed, what was done about it and how that ended. A failure before
finalize never gets here: nothing the environment runs was changed.
"""

from __future__ import annotations

from typing import NoReturn

from ci_deploy.errors import ApiError, RolloutError
from ci_deploy.plan import Plan
from ci_deploy.platform import Release
from ci_deploy.result import RolledBack
from ci_deploy.stages import Scope
from ci_deploy.stages.verify import wait_for


class Recovery:
    """Rollbacks of one environment, waited for and recorded."""

    def __init__(self, scope: Scope, *, timeout: float, run_url: str) -> None:
        self._scope = scope
        self._runner = scope.runner
        self._timeout = timeout
        self._run_url = run_url

    def after_failure(self, plan: Plan, failure: RolloutError, release: Release) -> NoReturn:
        """Roll back the failed ``release`` when the plan allows it; raise what happened."""
        target = plan.rollback_to
        if not plan.rollback_on_failure:
            raise RolloutError(
                f"{failure.message} rollback-on-failure is false, so deploy {release.id} was "
                "left in place: check the Deployment in the Astro UI."
            ) from failure
        if target is None:
            raise RolloutError(
                f"{failure.message} A rollback was impossible: {plan.no_rollback}."
            ) from failure
        try:
            outcome = self.roll_back(
                target, f"ci-deploy: automatic rollback after deploy {release.id} failed"
            )
        except ApiError as exc:
            raise RolloutError(
                f"{failure.message} The automatic rollback to deploy {target.id} failed too: "
                f"{exc.message} Check the Deployment in the Astro UI.",
                title="Rollout failed and the rollback failed",
            ) from exc
        raise RolloutError(
            f"{failure.message} The Deployment was rolled back to deploy {target.id} "
            f"({target.commit_label()}) with rollback deploy {outcome.release.id}; "
            f"{outcome.summary}.",
            title="Rollout failed and was rolled back",
        ) from failure

    def on_demand(self, plan: Plan) -> None:
        """``action: rollback``: roll back to the plan's target; RolloutError when unhealthy."""
        target = plan.rollback_to
        assert target is not None, "plan_rollback always names a target"
        outcome = self.roll_back(target, "ci-deploy: rollback requested")
        if not outcome.healthy:
            raise RolloutError(f"Rolled back to deploy {target.id}, but {outcome.summary}.")
        self._runner.notice(
            f"Rolled back to deploy {target.id} ({target.commit_label()}); {outcome.summary}.",
            title="Rolled back",
        )

    def roll_back(self, to: Release, description: str) -> RolledBack:
        """Roll back to ``to`` and wait for it; the record says how it ended."""
        if self._run_url:
            description = f"{description} ({self._run_url})"
        self._runner.info(f"Rolling back to deploy {to.id} ({to.commit_label()}).")
        rollback = self._scope.platform.roll_back(to, description)
        self._runner.info(f"Rollback deploy {rollback.id} created.")
        try:
            wait_for(self._scope, rollback, f"the rollback to deploy {to.id}", self._timeout)
        except RolloutError as exc:
            outcome = RolledBack(
                rollback, to, False, f"the rollback itself is not healthy: {exc.message}"
            )
        else:
            outcome = RolledBack(rollback, to, True, "the rollback is healthy")
        self._scope.journal.add(outcome)
        return outcome
