"""The plan of a run: one pure function from the facts to what will be done, and why.

:func:`make_plan` turns the validated inputs, what changed, the environment and its history
into a frozen :class:`Plan`: deploy or skip (and why), the release's kind, what it ships,
what its rollout must show, and where a failed rollout returns. :func:`plan_rollback` does
the same for ``action: rollback``. A dry run prints :func:`describe` of the plan and stops.
Nothing here does I/O: the platform's pure :class:`~ci_deploy.platform.ReleaseRules` say
what its kinds mean.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ci_deploy import history as releases
from ci_deploy.basecommit import BaseChoice
from ci_deploy.changeset import ChangeSet
from ci_deploy.errors import DeployRejectedError
from ci_deploy.inputs import Inputs
from ci_deploy.platform import (
    Artifact,
    Environment,
    Refusal,
    Release,
    ReleaseRules,
    ReleaseState,
)
from ci_deploy.source import CommitInfo


@dataclass(frozen=True)
class Detection:
    """The commit deployed, and what changed since the commit compared with."""

    head: CommitInfo
    base: BaseChoice | None = None
    changes: ChangeSet | None = None


class Operation(StrEnum):
    """What a run does."""

    DEPLOY = "deploy"
    SKIP = "skip"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class ReleasePlan:
    """The release to make: its kind, what it ships, and what its rollout must show."""

    kind: str
    artifacts: frozenset[Artifact]
    shows: frozenset[Artifact]
    """Whose versions the environment must show to run it (empty: healthy is enough)."""
    description: str
    refusal: Refusal | None = None
    """Why the environment cannot take it; None when it can."""


@dataclass(frozen=True)
class Plan:
    """What a run will do. ``rollback_to`` is where a failed rollout returns (a deploy), or the
    release to return to (a rollback); ``no_rollback`` says why there is none."""

    operation: Operation
    reason: str
    dry_run: bool = False
    warnings: tuple[str, ...] = ()
    release: ReleasePlan | None = None
    wait_timeout: float | None = None
    """Seconds to wait for the rollout; None: not waited for."""
    rollback_to: Release | None = None
    rollback_on_failure: bool = False
    no_rollback: str = ""

    @property
    def kind(self) -> str:
        """The release's kind; "" when the run makes none."""
        return self.release.kind if self.release is not None else ""


def make_plan(
    inputs: Inputs,
    detection: Detection,
    environment: Environment,
    history: Sequence[Release],
    rules: ReleaseRules,
) -> Plan:
    """The plan of a deploy run (``action: deploy``) for what ``detection`` found."""
    rejected = detection.base.rejected if detection.base is not None else ()
    decision = rules.decide(
        inputs.deploy_type,
        detection.changes,
        environment,
        force=inputs.force,
        no_base_reason="; ".join(rejected),
    )
    if decision.kind is None:
        return Plan(Operation.SKIP, decision.reason, inputs.dry_run, decision.warnings)
    artifacts = rules.artifacts(decision.kind, environment)
    release = ReleasePlan(
        kind=decision.kind,
        artifacts=artifacts,
        shows=rules.rollout_shows(decision.kind, artifacts),
        description=inputs.description or detection.head.subject,
        refusal=rules.refusal(decision.kind, environment),
    )
    target = releases.running(history, environment.running)
    if not inputs.rollback_on_failure:
        no_rollback = "rollback-on-failure is false"
    elif target is None:
        no_rollback = "the Deployment has no earlier DEPLOYED deploy to return to"
    else:
        no_rollback = ""
    return Plan(
        Operation.DEPLOY,
        decision.reason,
        inputs.dry_run,
        decision.warnings,
        release,
        wait_timeout=inputs.wait_timeout if inputs.wait else None,
        rollback_to=target if inputs.rollback_on_failure else None,
        rollback_on_failure=inputs.rollback_on_failure,
        no_rollback=no_rollback,
    )


def plan_rollback(inputs: Inputs, history: Sequence[Release], environment: Environment) -> Plan:
    """The plan of ``action: rollback``: back to ``rollback-to``, or to the release before the
    one ``environment`` runs. DeployRejectedError when there is no such release."""
    if inputs.rollback_to:
        target = next((r for r in history if r.id == inputs.rollback_to), None)
        if target is None or target.state is not ReleaseState.LIVE:
            raise DeployRejectedError(
                f"rollback-to '{inputs.rollback_to}' is not a DEPLOYED deploy of this "
                "Deployment. Pick one from the Deployment's deploy history.",
                title="Invalid input 'rollback-to'",
            )
        reason = f"rollback-to names deploy {target.id}."
    else:
        target = releases.previous(history, environment.running)
        if target is None:
            raise DeployRejectedError(
                "There is no earlier DEPLOYED deploy to roll back to.",
                title="Nothing to roll back to",
            )
        reason = f"Deploy {target.id} ran before the deploy running now."
    return Plan(
        Operation.ROLLBACK,
        reason,
        inputs.dry_run,
        wait_timeout=inputs.wait_timeout,
        rollback_to=target,
    )


def describe(plan: Plan) -> list[str]:
    """The plan in log lines: what is done, what ships, what the rollout must show, the way back."""
    release = plan.release
    if plan.operation is Operation.ROLLBACK and plan.rollback_to is not None:
        target = plan.rollback_to
        return [
            f"Action: roll back to deploy {target.id} ({target.commit_label()})",
            f"Reason: {plan.reason}",
        ]
    if release is None:
        return ["Action: skip", f"Reason: {plan.reason}"]
    lines = [f"Action: deploy {release.kind}", f"Reason: {plan.reason}"]
    lines.append("Ships: " + _listed(a.noun for a in Artifact if a in release.artifacts))
    if release.refusal is not None:
        lines.append(f"Not possible: {release.refusal.message}")
    if plan.wait_timeout is None:
        lines.append("Wait: no (wait: false)")
    else:
        shows = [f"the {a.version_name}" for a in Artifact if a in release.shows]
        what = f", showing {_listed(shows)}" if shows else ""
        lines.append(
            f"Wait: up to {plan.wait_timeout:.0f}s until the Deployment is healthy on the new "
            f"deploy{what}"
        )
    if plan.rollback_to is not None:
        target = plan.rollback_to
        lines.append(
            f"If the rollout fails: roll back to deploy {target.id} ({target.commit_label()})"
        )
    else:
        lines.append(f"If the rollout fails: no rollback ({plan.no_rollback})")
    return lines


def _listed(items: Iterable[str]) -> str:
    words = list(items)
    if len(words) <= 1:
        return "".join(words) or "nothing"
    return ", ".join(words[:-1]) + " and " + words[-1]
