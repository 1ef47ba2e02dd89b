"""Recover: roll back after a failed rollout, or on demand (``action: rollback``).

A failed rollout is rolled back only while it is still this run's to undo: to the release
the environment ran just before this run's finalize (read then), and only when no newer
release replaced this run's meanwhile (a rollback would throw that one away). On demand,
the target is the plan's (:func:`ci_deploy.plan.plan_rollback`). The rollback is waited
for like any rollout; it is recorded the moment it exists, so the outputs name it even
when its health is never learnt (the environment unreadable, the run cancelled). One
message says what failed, what was done about it and how that ended. A failure before
finalize never gets here: nothing the environment runs was changed.
"""

from __future__ import annotations

from typing import NoReturn

from ci_deploy import history as releases
from ci_deploy.errors import (
    ApiAmbiguousError,
    ApiError,
    CancelledError,
    CiDeployError,
    RolloutError,
)
from ci_deploy.plan import Operation, Plan
from ci_deploy.platform import PinningPlatform, Release, ReleaseState
from ci_deploy.result import Finalized, PinDecided, RolledBack, Seen
from ci_deploy.stages import Scope
from ci_deploy.stages.verify import wait_for
from ci_deploy.text import capitalized


class Recovery:
    """Rollbacks of one environment, waited for and recorded."""

    def __init__(
        self, scope: Scope, *, timeout: float, pin: str = "commit", wait: bool = True
    ) -> None:
        self._scope = scope
        self._runner = scope.runner
        self._timeout = timeout
        self._wait = wait
        """``wait``: whether a revert's deployment is waited for (a rollback always is: what
        happens to its pin depends on how it ends)."""
        self._pin = pin
        self._step = ""
        """What a pinning rollback was at (for the message should it be cut short)."""
        """``rollback-pin``: commit a pinning rollback once healthy, hold it, or skip the pin."""

    def after_failure(self, plan: Plan, failure: RolloutError, finalized: Finalized) -> NoReturn:
        """Roll back the failed release when the plan allows it and it is still this run's
        to undo; raise what happened."""
        release, scope = finalized.release, self._scope
        words = scope.words
        noun, the, ui = words.release, words.the_environment, words.ui
        if not plan.rollback_on_failure:
            raise RolloutError(
                f"{failure.message} rollback-on-failure is false, so {noun} {release.id} was "
                f"left in place: check {the} in {ui}."
            ) from failure
        try:
            history = scope.platform.history()
        except ApiError as exc:
            raise RolloutError(
                f"{failure.message} Whether a newer {noun} replaced {noun} {release.id} could "
                f"not be read ({exc.message}), so it was not rolled back: check {the} in {ui}.",
                title="Rollout failed; not rolled back",
            ) from exc
        pinning = isinstance(scope.platform, PinningPlatform)
        # A pinning platform's releases carry no marker: taken_over would name ours; its
        # own check (started_after, below) is by creation time.
        newer = (
            None
            if pinning
            else releases.taken_over(history, finalized.live_before, marker=scope.marker)
        )
        if newer is not None:
            raise RolloutError(
                f"{failure.message} {capitalized(noun)} {newer.id} ({newer.commit_label()}) was "
                f"finalized after {noun} {release.id} and replaced it, so {noun} {release.id} "
                f"was not rolled back (that would undo {noun} {newer.id}).",
                title=f"Rollout failed; a newer {noun} took over",
            ) from failure
        target = finalized.previous
        if target is None:
            why = plan.no_rollback or f"{the} ran no known {noun} before this one"
            raise RolloutError(f"{failure.message} A rollback was impossible: {why}.") from failure
        if isinstance(scope.platform, PinningPlatform):
            self._pinned_after_failure(scope.platform, failure, release, target)

        try:
            outcome = self.roll_back(
                target, f"ci-deploy: automatic rollback after {noun} {release.id} failed"
            )
        except ApiError as exc:
            made = (
                f"Whether a rollback was made is unknown: check {the}'s {noun} history"
                if isinstance(exc, ApiAmbiguousError)
                else "No rollback was made"
            )
            raise RolloutError(
                f"{failure.message} The automatic rollback to {noun} {target.id} failed: "
                f"{exc.message} {made}; {the} still runs {noun} {release.id}. Check it in {ui}.",
                title="Rollout failed and the rollback failed",
            ) from exc
        titles = {
            True: "Rollout failed and was rolled back",
            False: "Rollout failed and the rollback is unhealthy",
            None: "Rollout failed and was rolled back; its health is unknown",
        }
        raise RolloutError(
            f"{failure.message} {capitalized(the)} was rolled back to {noun} {target.id} "
            f"({target.commit_label()}) with rollback {noun} {outcome.release.id}; "
            f"{outcome.summary}.",
            title=titles[outcome.healthy],
        ) from failure

    def on_demand(self, plan: Plan) -> None:
        """``action: rollback``: roll back to the plan's target; RolloutError unless healthy."""
        target = plan.rollback_to
        assert target is not None, "plan_rollback always names a target"
        platform = self._scope.platform
        if isinstance(platform, PinningPlatform):
            ended = self.pinned(platform, target, "the rollback requested")
            self._runner.notice(ended, title="Rolled back")
            return
        noun = self._scope.words.release
        outcome = self.roll_back(target, "ci-deploy: rollback requested")
        if not outcome.healthy:
            raise RolloutError(
                f"Rolled back to {noun} {target.id} with rollback {noun} {outcome.release.id}, "
                f"but {outcome.summary}."
            )
        self._runner.notice(
            f"Rolled back to {noun} {target.id} ({target.commit_label()}); {outcome.summary}.",
            title="Rolled back",
        )

    def roll_back(self, to: Release, description: str) -> RolledBack:
        """Roll back to ``to`` and wait for it; the record says how it ended.

        The rollback is recorded as soon as it exists (health unknown), then again once
        its rollout is judged; an environment that cannot be read leaves it unknown.
        """
        scope = self._scope
        noun = scope.words.release
        self._runner.info(f"Rolling back to {noun} {to.id} ({to.commit_label()}).")
        with scope.writing(f"rolling back to {noun} {to.id}"):
            rollback = scope.platform.roll_back(to, scope.described(description), scope.marker)
            scope.journal.add(
                RolledBack(rollback, to, None, "its health is unknown (not yet seen)")
            )
        self._runner.info(f"Rollback {noun} {rollback.id} created.")
        try:
            wait_for(scope, rollback, f"the rollback to {noun} {to.id}", self._timeout)
        except RolloutError as exc:
            outcome = RolledBack(
                rollback, to, False, f"the rollback itself is not healthy: {exc.message}"
            )
        except ApiError as exc:
            outcome = RolledBack(
                rollback,
                to,
                None,
                f"its health is unknown: {scope.words.the_environment} could not be read "
                f"({exc.message})",
            )
        else:
            outcome = RolledBack(rollback, to, True, "the rollback is healthy")
        scope.journal.add(outcome)
        return outcome

    # -- App Platform: validate -> roll back (pins) -> commit / hold / revert ----------------

    def _pinned_after_failure(
        self, platform: PinningPlatform, failure: RolloutError, release: Release, target: Release
    ) -> NoReturn:
        """The automatic rollback on a platform whose rollback pins; raise what happened.

        Its releases start the moment they are made: one made after ours and not failed
        (still building, say) replaced ours, and a rollback would undo it."""
        words = self._scope.words
        noun, the = words.release, words.the_environment
        newer = releases.started_after(release, platform.history())
        if newer is not None:
            raise RolloutError(
                f"{failure.message} {capitalized(noun)} {newer.id} ({newer.commit_label()}) "
                f"started after {noun} {release.id}, so nothing was rolled back (that would undo "
                f"{noun} {newer.id}).",
                title=f"Rollout failed; a newer {noun} took over",
            ) from failure
        try:
            ended = self.pinned(platform, target, f"{noun} {release.id} failed")
        except RolloutError as exc:
            raise RolloutError(f"{failure.message} {exc.message}", title=exc.title) from failure
        except ApiError as exc:
            raise RolloutError(
                f"{failure.message} The automatic rollback to {noun} {target.id} failed: "
                f"{exc.message} Check {the}'s {noun}s in {words.ui}.",
                title="Rollout failed and the rollback failed",
            ) from exc
        raise RolloutError(
            f"{failure.message} {ended}", title="Rollout failed and was rolled back"
        ) from failure

    def pinned(self, platform: PinningPlatform, target: Release, why: str) -> str:
        """Validate, roll back to ``target``, wait, then commit (or hold, or nothing when the
        pin was skipped); a failed rollback is reverted. The sentence saying how it ended;
        RolloutError when no rollback happened or it failed."""
        words = self._scope.words
        noun = words.release
        scope, runner, pin = self._scope, self._runner, self._pin
        check = platform.validate_rollback(target, pin=pin != "skip")
        for warning in check.warnings:
            runner.warning(
                f"Rolling back to {noun} {target.id}: {warning}", title="Rollback warning"
            )
        warned = f" Warnings: {'; '.join(check.warnings)}." if check.warnings else ""
        if not check.valid:
            raise RolloutError(
                f"No rollback happened: {words.platform} says the rollback to {noun} {target.id} "
                f"is invalid ({check.code}: {check.reason}).{warned}",
                title="Rollback invalid",
            )
        runner.info(f"Rolling back to {noun} {target.id} ({target.commit_label()}): {why}.")
        rollback = platform.roll_back_pinned(target, pin=pin != "skip")
        runner.info(f"Rollback {noun} {rollback.id} created.")
        scope.journal.add(
            RolledBack(rollback, target, None, "its health is unknown (not yet seen)")
        )
        try:
            return self._rolled_back(platform, target, rollback, warned, check.warnings)
        except (ApiError, CancelledError) as exc:
            if pin == "skip":
                raise
            raise _left_pinned(platform, rollback, self._step, exc) from exc

    def _rolled_back(
        self,
        platform: PinningPlatform,
        target: Release,
        rollback: Release,
        warned: str,
        warnings: tuple[str, ...],
    ) -> str:
        """Wait for ``rollback``, then commit it (or hold it), or revert it when it failed;
        ``self._step`` says what was being done, should the API fail or the run be
        cancelled meanwhile."""
        scope, pin = self._scope, self._pin
        words = scope.words
        noun, the = words.release, words.the_environment
        self._step = "its health could not be read"
        try:
            wait_for(scope, rollback, f"the rollback to {noun} {target.id}", self._timeout)
        except RolloutError as exc:
            scope.journal.add(
                RolledBack(rollback, target, False, f"the rollback failed: {exc.message}")
            )
            if pin == "skip":
                raise RolloutError(
                    f"The rollback to {noun} {target.id} failed too: {exc.message}{warned}",
                    title="Rollout failed and the rollback failed",
                ) from exc
            self._step = f"it failed ({exc.message}), and reverting it failed"
            reverted = platform.revert_rollback()
            raise RolloutError(
                f"The rollback to {noun} {target.id} (rollback {noun} {rollback.id}) "
                f"failed too: {exc.message} It was reverted ({noun} {reverted.id}), which "
                f"unpinned {the}.{warned}",
                title="Rollout failed and the rollback failed",
            ) from exc
        scope.journal.add(RolledBack(rollback, target, True, "the rollback is healthy", warnings))
        done = (
            f"{capitalized(the)} was rolled back to {noun} {target.id} "
            f"({target.commit_label()}) with rollback {noun} {rollback.id}, which is {words.live}"
        )
        if pin == "commit":
            self._step = "committing it failed (it is ACTIVE)"
            platform.commit_rollback()
            return f"{done}; the rollback was committed ({the} is not pinned).{warned}"
        if pin == "hold":
            return (
                f"{done}. {capitalized(the)} stays pinned to it (rollback-pin: hold): run the "
                "action with `action: rollback-commit` to keep it, or `action: rollback-revert` "
                "to undo it."
                f"{warned}"
            )
        return f"{done} (not pinned: rollback-pin: skip).{warned}"

    def decide_pin(self, platform: PinningPlatform, action: str, pinned: str) -> None:
        """``action: rollback-commit`` or ``rollback-revert`` on an app pinned to ``pinned``
        ("" when it is not pinned: nothing to do)."""
        words = self._scope.words
        noun, the = words.release, words.the_environment
        runner = self._runner
        if not pinned:
            decision = action.split("-")[1]
            reason = f"{capitalized(the)} is not pinned, so there is no rollback to {decision}."
            self._scope.journal.add(Plan(Operation.SKIP, reason))
            runner.notice(reason, title="Nothing to decide")
            return
        if action == "rollback-commit":
            _refuse_unhealthy_commit(platform, pinned)
            platform.commit_rollback()
            self._scope.journal.add(PinDecided(action, pinned))
            runner.notice(
                f"Committed rollback {noun} {pinned}: {the} keeps it and is unpinned.",
                title="Rollback committed",
            )
            return
        reverted = platform.revert_rollback()
        self._scope.journal.add(PinDecided(action, pinned, reverted))
        runner.info(f"Reverted rollback {noun} {pinned}: {noun} {reverted.id} started.")
        if not self._wait:
            self._scope.journal.add(Seen("not awaited (wait: false)"))
            runner.notice(
                f"Reverted rollback {noun} {pinned}: {the} is unpinned and {noun} "
                f"{reverted.id} started; it was not waited for (wait: false).",
                title="Rollback reverted",
            )
            return
        wait_for(self._scope, reverted, f"the revert of rollback {pinned}", self._timeout)
        runner.notice(
            f"Reverted rollback {noun} {pinned}: {noun} {reverted.id} is {words.live} and "
            f"{the} is unpinned.",
            title="Rollback reverted",
        )


def _refuse_unhealthy_commit(platform: PinningPlatform, pinned: str) -> None:
    """Raise unless rollback deployment ``pinned`` is healthy (live): a rollback still in
    progress, failed or not found is never committed."""
    rollback = next((r for r in platform.history() if r.id == pinned), None)
    if rollback is not None and rollback.state is ReleaseState.LIVE:
        return
    if rollback is None:
        why = "is not among the app's deployments, so its health is unknown"
        then = "Check the app in the control panel"
    elif rollback.state is ReleaseState.PENDING:
        why = "is still in progress"
        then = "Wait until it is ACTIVE, then run action: rollback-commit again"
    else:
        why = "failed"
        then = "Run action: rollback-revert to undo it and unpin the app"
    raise RolloutError(
        f"Rollback deployment {pinned} {why}, so it was not committed; the app stays pinned "
        f"to it. {then}.",
        title="Rollback not committed",
    )


def _left_pinned(
    platform: PinningPlatform, rollback: Release, step: str, exc: CiDeployError
) -> CiDeployError:
    """What to say when the API failed or the run was cancelled after rollback deployment
    ``rollback`` was made: the pin the app has now (read again), and what to run next. A
    cancellation stays one."""
    try:
        pinned = platform.locate().pinned
    except ApiError as again:
        now = (
            f"Whether the app is still pinned could not be read ({again.message}): check it in "
            "the control panel, and if it is pinned run action: rollback-commit to keep the "
            "rollback or action: rollback-revert to undo it."
        )
    else:
        now = (
            f"The app is pinned to {pinned}: run action: rollback-commit to keep it or "
            "action: rollback-revert to undo it."
            if pinned
            else "The app is not pinned."
        )
    if isinstance(exc, CancelledError):
        said = f"{exc.message} Rollback deployment {rollback.id} had been made. {now}"
        return CancelledError(said, title=exc.title)
    said = f"Rollback deployment {rollback.id} was made, but {step}: {exc.message} {now}"
    return RolloutError(said, title="Rolled back; the app is left pinned")
