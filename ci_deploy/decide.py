"""The decisions of a run, as plain functions over plain data.

Nothing here touches git, the network or the runner: the orchestration in :mod:`deploy`
gathers the facts, these functions say what they mean, and the tests check every rule
without a server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from .astro.wire import DESCRIPTION_MAX, Deploy, Deployment, DeployType
from .basecommit import restored_deploy
from .changeset import ChangeSet

#: The ``deploy-type`` input's values and the API's deploy types they name.
EXPLICIT_TYPES: dict[str, DeployType] = {
    "dags-only": "DAG_ONLY",
    "image-and-dags": "IMAGE_AND_DAG",
    "image-only": "IMAGE_ONLY",
    "bundle": "BUNDLE",
}

DAG_TYPES: frozenset[str] = frozenset({"DAG_ONLY", "IMAGE_AND_DAG"})
IMAGE_TYPES: frozenset[str] = frozenset({"IMAGE_AND_DAG", "IMAGE_ONLY"})


@dataclass(frozen=True)
class Decision:
    """What to deploy. ``deploy_type`` is None when the run skips; ``reason`` says why."""

    deploy_type: DeployType | None
    reason: str
    warnings: tuple[str, ...] = ()

    @property
    def skipped(self) -> bool:
        return self.deploy_type is None


def choose_deploy_type(
    requested: str,
    changes: ChangeSet | None,
    *,
    dag_deploy_enabled: bool = True,
    no_base_reason: str = "",
    force: bool = False,
) -> Decision:
    """Pick the deploy type from the ``deploy-type`` input and what changed.

    ``changes`` is None when there is no commit to compare with: everything is deployed, as
    it is when nothing relevant changed but ``force`` is set.
    """
    if changes is not None and not changes.relevant and force:
        if requested == "infer":
            return Decision("IMAGE_AND_DAG", "Nothing relevant changed, but force is true.")
        return Decision(EXPLICIT_TYPES[requested], "Nothing relevant changed, but force is true.")
    if changes is None:
        why = f"no commit to compare with ({no_base_reason})" if no_base_reason else "no base"
        if requested == "infer":
            return Decision("IMAGE_AND_DAG", f"Full deploy: {why}.")
        return Decision(EXPLICIT_TYPES[requested], f"Deploying everything: {why}.")

    if not changes.relevant:
        return Decision(None, "No file under root-folder changed, so there is nothing to deploy.")

    n_dag, n_image = len(changes.dag_files), len(changes.image_files)
    counted = (
        f"{count_files(n_dag)} in the DAGs folder and {count_files(n_image)} outside it changed"
    )

    if requested == "infer":
        if n_image:
            return Decision("IMAGE_AND_DAG", f"{counted}: the image must be rebuilt.")
        if not dag_deploy_enabled:
            return Decision(
                "IMAGE_AND_DAG",
                f"{counted}; DAG deploys are disabled on the Deployment, so DAGs ship "
                "in the image.",
            )
        return Decision("DAG_ONLY", f"{counted}: a DAG-only deploy is enough.")

    if requested == "dags-only":
        if not n_dag:
            return Decision(
                None,
                "Only files outside the DAGs folder changed and deploy-type is dags-only.",
                (
                    f"{count_files(n_image)} outside the DAGs folder changed but were not deployed "
                    "because deploy-type is dags-only.",
                ),
            )
        warnings = (
            (
                f"{count_files(n_image)} outside the DAGs folder also changed; they are not "
                "deployed because deploy-type is dags-only.",
            )
            if n_image
            else ()
        )
        return Decision("DAG_ONLY", f"{counted}; deploy-type is dags-only.", warnings)

    return Decision(EXPLICIT_TYPES[requested], f"{counted}; deploy-type is {requested}.")


def count_files(n: int) -> str:
    """'1 file', '2 files'."""
    return f"{n} file" if n == 1 else f"{n} files"


@dataclass(frozen=True)
class Target:
    """What a rollout must reach: a DAG tarball version, an image tag, or both."""

    dag_version: str | None = None
    image_tag: str | None = None

    def describe(self) -> str:
        parts = [f"DAG version {self.dag_version}"] if self.dag_version else []
        parts += [f"image tag {self.image_tag}"] if self.image_tag else []
        return " and ".join(parts) or "its new deploy"


@dataclass(frozen=True)
class RolloutState:
    """Where a rollout stands after one look at the Deployment."""

    done: bool
    failed: bool
    summary: str


def rollout_state(deployment: Deployment, target: Target) -> RolloutState:
    """Judge whether the Deployment runs ``target`` yet.

    Done means ``HEALTHY`` (or ``HIBERNATING``, where nothing runs to be unhealthy) with
    ``dagTarballVersion == desiredDagTarballVersion ==`` the target version, and the image
    tag equal to the target's. ``UNHEALTHY`` is a failure.
    """
    status = deployment.status
    current = deployment.dagTarballVersion or "none"
    summary = f"status {status}, running DAG version {current}"
    if deployment.desiredDagTarballVersion and deployment.desiredDagTarballVersion != current:
        summary += f", rolling out {deployment.desiredDagTarballVersion}"
    if target.image_tag:
        summary += f", image tag {deployment.imageTag or 'none'}"
    if status == "UNHEALTHY":
        reason = f" ({deployment.statusReason})" if deployment.statusReason else ""
        return RolloutState(False, True, summary + reason)
    runs_dags = target.dag_version is None or (
        deployment.dagTarballVersion
        == (deployment.desiredDagTarballVersion or deployment.dagTarballVersion)
        == target.dag_version
    )
    runs_image = target.image_tag is None or deployment.imageTag == target.image_tag
    return RolloutState(
        runs_dags and runs_image and status in ("HEALTHY", "HIBERNATING"), False, summary
    )


_BROKEN_DAG = re.compile(
    r"(?:Broken DAG: \[(?P<broken>[^\]]+)\]|Failed to import:? (?P<failed>\S+?\.py))"
)


@dataclass(frozen=True)
class ImportProblem:
    """A DAG file of the deploy that Airflow could not import, and the log line saying so."""

    member: str
    message: str


def import_problems(lines: Iterable[str], members: Iterable[str]) -> list[ImportProblem]:
    """The log lines that report an import error in one of the deployed files ``members``.

    Airflow names the file by its path in the container (``/usr/local/airflow/dags/x.py``);
    a member (``dags/x.py``) matches when that path ends with ``/`` plus the member.
    """
    python_members = [m for m in members if m.endswith(".py")]
    found: dict[str, ImportProblem] = {}
    for line in lines:
        match = _BROKEN_DAG.search(line)
        if match is None:
            continue
        path = match.group("broken") or match.group("failed") or ""
        for member in python_members:
            if path == member or path.endswith("/" + member):
                found.setdefault(member, ImportProblem(member, line.strip()))
    return [found[m] for m in sorted(found)]


def latest_deployed(deploys: Sequence[Deploy]) -> Deploy | None:
    """The deploy the Deployment runs now: the newest ``DEPLOYED`` one, rollbacks included."""
    deployed = [d for d in deploys if d.status == "DEPLOYED"]
    return max(deployed, key=lambda d: d.createdAt) if deployed else None


def previous_deploy(deploys: Sequence[Deploy]) -> Deploy | None:
    """The deploy to undo the last one with: the ``DEPLOYED`` deploy before the one running.

    When the running deploy is itself a rollback, "before" counts from the deploy it
    restored, so undoing repeatedly walks back one deploy at a time.
    """
    ordered = sorted((d for d in deploys if d.status == "DEPLOYED"), key=lambda d: d.createdAt)
    if not ordered:
        return None
    running = restored_deploy(ordered[-1], ordered[:-1])
    earlier = [d for d in ordered if d.createdAt < running.createdAt and not d.rollbackFromId]
    return earlier[-1] if earlier else None


def poll_delays(
    initial: float = 2.0, maximum: float = 15.0, factor: float = 1.5
) -> Iterator[float]:
    """Seconds to wait between polls: ``initial``, growing by ``factor``, capped at ``maximum``."""
    delay = initial
    while True:
        yield delay
        delay = min(maximum, delay * factor)


def cut_description(text: str, limit: int = DESCRIPTION_MAX) -> str:
    """``text`` cut to ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
