"""Verify: wait until the environment runs the release, then look for Airflow's import errors.

Every look at the environment is judged by the platform (:meth:`Platform.observe`); this
stage looks until the rollout ends or the timeout passes (paced and logged by
:mod:`ci_deploy.waiting`) and records each new thing it saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from ci_deploy.bundle import shown
from ci_deploy.errors import RolloutError
from ci_deploy.platform import Artifact, Release, Words
from ci_deploy.result import Seen
from ci_deploy.stages import Scope
from ci_deploy.text import capitalized
from ci_deploy.waiting import Wait, duration


def goal(release: Release, words: Words) -> str:
    """What the environment must show to run ``release``, in words."""
    parts = [f"{a.version_name} {release.versions[a]}" for a in Artifact if a in release.versions]
    return " and ".join(parts) or f"its new {words.release}"


def wait_for(scope: Scope, release: Release, what: str, timeout: float) -> None:
    """Poll until the environment runs ``release``; RolloutError when it fails or times out.

    ``what`` names the release in messages ("deploy X", "the rollback to deploy Y"). The
    looks follow the poll schedule and the log shows each change of what is seen, as every
    wait does (:class:`~ci_deploy.waiting.Wait`).
    """
    platform, runner, journal = scope.platform, scope.runner, scope.journal
    target = goal(release, scope.words)
    the = scope.words.the_environment
    with runner.group(f"Waiting for {the} to run {target}"):
        wait = Wait(scope.timing, timeout, runner.info)
        while True:
            seen = platform.observe(release)
            if wait.seen(seen.summary):
                journal.add(Seen(seen.summary))
            if seen.done:
                runner.info(f"{capitalized(the)} runs {what} after {duration(wait.elapsed)}.")
                return
            if seen.failed:
                raise RolloutError(
                    f"{capitalized(the)} became unhealthy after {what}: {seen.summary}."
                )
            if not wait.pause():
                raise RolloutError(
                    f"Timed out after {timeout:.0f}s (wait-timeout) waiting for {the} "
                    f"to run {what} ({target}); last seen: {seen.summary}."
                )


def check_imports(scope: Scope, *, since: datetime, members: Sequence[str], prefix: str) -> bool:
    """RolloutError when the logs report, since ``since``, an import error in a shipped file.

    ``prefix`` turns a tarball member into the repository path of its annotation. Import
    errors the platform cannot read are a notice, not a failure: False, nothing checked.
    The fallback of the import-errors gate (:mod:`ci_deploy.stages.gates`) when Airflow's API
    cannot be asked.
    """
    runner = scope.runner
    found = scope.platform.import_errors(since, members)
    if found.failed:
        runner.warning(
            f"{found.failed}, so DAG import errors were not checked; the deploy itself is "
            "verified. Look at the Deployment's DAG import errors in the Airflow UI.",
            title="Import errors not checked",
        )
        return False
    if found.unreadable:
        runner.notice(
            f"{found.unreadable}, so DAG import errors were not checked.",
            title="Import errors not checked",
        )
        return False
    if not found.problems:
        runner.info(f"No DAG import errors in {found.where}.")
        return True
    for member, message in found.problems.items():
        runner.error(message, title="DAG import error", file=shown(prefix + member))
    names = ", ".join(shown(prefix + member) for member in found.problems)
    raise RolloutError(
        f"Airflow could not import {len(found.problems)} deployed DAG file(s): {names}."
    )
