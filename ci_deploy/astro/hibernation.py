"""``wake-on-deploy``: wake a hibernating development Deployment for the deploy, then restore.

Whatever override was there before is put back when the deploy ends, on success, failure
and cancellation alike; a failure to restore is a warning that says what to do, and never
hides the deploy's own outcome.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ci_deploy.astro.client import AstroClient
from ci_deploy.astro.wire import Deployment, HibernationOverride, HibernationOverrideRequest
from ci_deploy.errors import CiDeployError
from ci_deploy.runner import Runner


@contextmanager
def awake(
    client: AstroClient, deployment: Deployment, runner: Runner, *, enabled: bool
) -> Iterator[bool]:
    """Keep ``deployment`` awake inside the block when ``enabled``; yields whether it woke it."""
    if not enabled:
        yield False
        return
    if not deployment.isDevelopmentMode:
        runner.notice(
            "wake-on-deploy has no effect: the Deployment is not a development Deployment, "
            "so it never hibernates.",
            title="Nothing to wake",
        )
        yield False
        return
    if not deployment.is_hibernating:
        runner.info("The Deployment is awake; no hibernation override needed.")
        yield False
        return

    previous = deployment.hibernation_override
    runner.info("The Deployment is hibernating: waking it with a hibernation override.")
    client.set_hibernation_override(deployment.id, HibernationOverrideRequest(isHibernating=False))
    try:
        yield True
    finally:
        _restore(client, deployment.id, runner, previous)


def _restore(
    client: AstroClient,
    deployment_id: str,
    runner: Runner,
    previous: HibernationOverride | None,
) -> None:
    try:
        if previous is not None and previous.isActive:
            client.set_hibernation_override(
                deployment_id,
                HibernationOverrideRequest(
                    isHibernating=bool(previous.isHibernating),
                    overrideUntil=previous.overrideUntil,
                ),
            )
            runner.info("Restored the hibernation override that was there before.")
        else:
            client.delete_hibernation_override(deployment_id)
            runner.info("Removed the hibernation override: the schedule applies again.")
    except (CiDeployError, ValueError) as exc:  # ValueError: an override the API sent oddly
        detail = exc.message if isinstance(exc, CiDeployError) else "an unreadable override"
        runner.warning(
            f"Could not restore the Deployment's hibernation override ({detail}). Check its "
            "hibernation settings in the Astro UI.",
            title="Hibernation override not restored",
        )
