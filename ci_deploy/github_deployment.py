"""What a GitHub Deployment records of a run (pure): whether it is one, and how it ended.

A run with ``environment`` set records a deploy it makes as a GitHub Deployment of the
deployed commit: ``in_progress`` before the release is created, then the state
:func:`final_state` gives. A skip, a dry run and a rollback deploy nothing new: no GitHub
Deployment (the environment's last one still says what runs).
"""

from __future__ import annotations

from typing import Literal

from ci_deploy.errors import CancelledError
from ci_deploy.result import RunResult, Status

DeploymentState = Literal[
    "error", "failure", "inactive", "in_progress", "queued", "pending", "success"
]
DESCRIPTION_MAX = 140
"""The most characters GitHub takes in a Deployment's or a status's description."""


def final_state(result: RunResult) -> tuple[DeploymentState, str]:
    """The last status of the run's GitHub Deployment, and its description."""
    noun, platform = result.words.release, result.platform
    release = f"{noun} {result.release.id}" if result.release is not None else f"the {noun}"
    if result.status is Status.DEPLOYED:
        state: DeploymentState = "success"
        kind = f" ({result.deploy_type})" if result.deploy_type else ""
        said = f"{platform} {release}{kind} is running"
    elif result.status in (Status.COMMITTED, Status.REVERTED):
        state, said = "success", f"{platform}: rollback {result.status.value}"
    elif result.status is Status.SUPERSEDED:
        state, said = "inactive", f"{platform} {release} was superseded by a newer {noun}"
    elif result.rollback is not None:
        state = "failure"
        said = f"{platform} {release} failed; rolled back to {noun} {result.rollback.to.id}"
    elif isinstance(result.error, CancelledError):
        state, said = "error", f"{platform} {release} was cancelled"
    else:
        title = result.error.title if result.error is not None else "failed"
        state, said = "failure", f"{platform} {release}: {title}"
    return state, shorten_description(said)


def shorten_description(text: str) -> str:
    """``text`` on one line, within GitHub's limit."""
    text = " ".join(text.split())
    return text if len(text) <= DESCRIPTION_MAX else text[: DESCRIPTION_MAX - 1] + "…"
