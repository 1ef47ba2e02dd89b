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
    ASTRO,
    Artifact,
    Environment,
    Refusal,
    Release,
    ReleaseRules,
    ReleaseState,
    Words,
)
from ci_deploy.source import CommitInfo
from ci_deploy.text import capitalized


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
    unchanged_since: str | None = None
    """The commit the environment runs, when the changes were measured from it and the deploy
    is not forced: a file as it is in that commit ships unchanged, so the syntax check skips
    it. None: everything is checked."""


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
    words: Words = ASTRO
    """How the environment's platform names things, for :func:`describe`."""

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
        return Plan(
            Operation.SKIP,
            decision.reason,
            inputs.dry_run,
            decision.warnings,
            words=environment.words,
        )
    artifacts = rules.artifacts(decision.kind, environment)
    release = ReleasePlan(
        kind=decision.kind,
        artifacts=artifacts,
        shows=rules.rollout_shows(decision.kind, artifacts),
        description=inputs.description or detection.head.subject,
        refusal=rules.refusal(decision.kind, environment),
        unchanged_since=_unchanged_since(inputs, detection),
    )
    target = releases.running(history, environment.running)
    words = environment.words
    if not inputs.rollback_on_failure:
        no_rollback = "rollback-on-failure is false"
    elif target is None:
        no_rollback = (
            f"{words.the_environment} has no earlier {words.live} {words.release} to return to"
        )
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
        words=words,
    )


def _unchanged_since(inputs: Inputs, detection: Detection) -> str | None:
    """The commit whose files this deploy does not change: the one the environment runs, when
    the changes were measured from it; None for a forced deploy, or with no such base."""
    base = detection.base
    if inputs.force or detection.changes is None or base is None or base.source != "deployed":
        return None
    return base.sha


def plan_rollback(inputs: Inputs, history: Sequence[Release], environment: Environment) -> Plan:
    """The plan of ``action: rollback``: back to ``rollback-to``, or to the release before the
    one ``environment`` runs. DeployRejectedError when there is no such release."""
    words = environment.words
    noun, live = words.release, words.live
    if inputs.rollback_to:
        target = next((r for r in history if r.id == inputs.rollback_to), None)
        if target is None or target.state is not ReleaseState.LIVE:
            raise DeployRejectedError(
                f"rollback-to '{inputs.rollback_to}' is not a {live} {noun} of this "
                f"{words.environment}. Pick one from the {words.environment}'s {noun} history.",
                title="Invalid input 'rollback-to'",
            )
        reason = f"rollback-to names {noun} {target.id}."
    else:
        target = releases.previous(history, environment.running)
        if target is None:
            raise DeployRejectedError(
                f"There is no earlier {live} {noun} to roll back to.",
                title="Nothing to roll back to",
            )
        reason = f"{capitalized(noun)} {target.id} ran before the {noun} running now."
    return Plan(
        Operation.ROLLBACK,
        reason,
        inputs.dry_run,
        wait_timeout=inputs.wait_timeout,
        rollback_to=target,
        words=words,
    )


def describe(plan: Plan) -> list[str]:
    """The plan in log lines: what is done, what ships, what the rollout must show, the way back."""
    release, words = plan.release, plan.words
    if plan.operation is Operation.ROLLBACK and plan.rollback_to is not None:
        target = plan.rollback_to
        return [
            f"Action: roll back to {words.release} {target.id} ({target.commit_label()})",
            f"Reason: {plan.reason}",
        ]
    if release is None:
        return ["Action: skip", f"Reason: {plan.reason}"]
    lines = [f"Action: deploy {release.kind}", f"Reason: {plan.reason}"]
    ships = [a.noun for a in Artifact if a in release.artifacts]
    lines.append("Ships: " + (_listed(ships) if ships else words.ships_nothing))
    if release.refusal is not None:
        lines.append(f"Not possible: {release.refusal.message}")
    if plan.wait_timeout is None:
        lines.append("Wait: no (wait: false)")
    else:
        shows = [f"the {a.version_name}" for a in Artifact if a in release.shows]
        what = f", showing {_listed(shows)}" if shows else ""
        lines.append(
            f"Wait: up to {plan.wait_timeout:.0f}s until {words.the_environment} is healthy on "
            f"the new {words.release}{what}"
        )
    if plan.rollback_to is not None:
        target = plan.rollback_to
        lines.append(
            f"If the rollout fails: roll back to {words.release} {target.id} "
            f"({target.commit_label()})"
        )
    else:
        lines.append(f"If the rollout fails: no rollback ({plan.no_rollback})")
    return lines


def _listed(items: Iterable[str]) -> str:
    words = list(items)
    if len(words) <= 1:
        return "".join(words) or "nothing"
    return ", ".join(words[:-1]) + " and " + words[-1]
