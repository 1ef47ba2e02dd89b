"""The decisions of a run, as plain functions over plain data.

Nothing here touches git, the network or the runner: the orchestration in :mod:`deploy`
gathers the facts, these functions say what they mean, and the tests check every rule
without a server.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .changes import ChangeSet
from .models import DESCRIPTION_MAX, Deployment, DeployType

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
class RolloutState:
    """Where a rollout stands after one look at the Deployment."""

    done: bool
    failed: bool
    summary: str


def rollout_state(deployment: Deployment, version: str) -> RolloutState:
    """Judge whether the Deployment runs DAG tarball ``version`` yet.

    Done means ``HEALTHY`` (or ``HIBERNATING``, where nothing runs to be unhealthy) with
    ``dagTarballVersion`` equal to ``version``. ``UNHEALTHY`` is a failure.
    """
    status = deployment.status
    current = deployment.dagTarballVersion or "none"
    summary = f"status {status}, running DAG version {current}"
    if deployment.desiredDagTarballVersion and deployment.desiredDagTarballVersion != current:
        summary += f", rolling out {deployment.desiredDagTarballVersion}"
    if status == "UNHEALTHY":
        reason = f" ({deployment.statusReason})" if deployment.statusReason else ""
        return RolloutState(False, True, summary + reason)
    runs_version = deployment.dagTarballVersion == version
    return RolloutState(runs_version and status in ("HEALTHY", "HIBERNATING"), False, summary)


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
