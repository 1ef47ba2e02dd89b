"""Astro's deploy rules, as pure functions: no network, so every rule is tested without a server.

Each rule is written once here: which deploy type a change needs, what each type ships,
what finalize sends, what a Deployment must show before it runs a deploy, and how a deploy
of the history reads as a :class:`~ci_deploy.platform.Release` (a rollback counting as the
deploy it restored).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ci_deploy.astro.wire import (
    DESCRIPTION_MAX,
    Deploy,
    Deployment,
    DeployType,
    FinalizeDeployRequest,
)
from ci_deploy.changeset import ChangeSet, count_files
from ci_deploy.platform import (
    Artifact,
    Decision,
    Environment,
    Observation,
    Refusal,
    Release,
    ReleaseState,
    Shipment,
)

#: The ``deploy-type`` input's values and the deploy types they name.
EXPLICIT_TYPES: Mapping[str, DeployType] = {
    "dags-only": "DAG_ONLY",
    "image-and-dags": "IMAGE_AND_DAG",
    "image-only": "IMAGE_ONLY",
    "bundle": "BUNDLE",
}

IMAGE_TYPES: frozenset[str] = frozenset({"IMAGE_AND_DAG", "IMAGE_ONLY"})
"""The deploy types that ship an image."""

_DAG_DEPLOYS_OFF = "DAG deploys are disabled"

_STATES: Mapping[str, ReleaseState] = {
    "INITIALIZED": ReleaseState.PENDING,
    "DEPLOYED": ReleaseState.LIVE,
    "FAILED": ReleaseState.FAILED,
}


class AstroRules:
    """The :class:`~ci_deploy.platform.ReleaseRules` of Astro."""

    def decide(
        self,
        requested: str,
        changes: ChangeSet | None,
        environment: Environment,
        *,
        force: bool,
        no_base_reason: str,
    ) -> Decision:
        """The deploy type for the ``deploy-type`` input (``requested``) and what changed.

        With no commit to compare with (``changes`` None), or nothing relevant changed but
        ``force``, everything is deployed: ``IMAGE_AND_DAG`` for ``infer``.
        """
        full = "IMAGE_AND_DAG" if requested == "infer" else EXPLICIT_TYPES[requested]
        if changes is not None and not changes.relevant and force:
            return Decision(full, "Nothing relevant changed, but force is true.")
        if changes is None:
            why = f"no commit to compare with ({no_base_reason})" if no_base_reason else "no base"
            if requested == "infer":
                return Decision(full, f"Full deploy: {why}.")
            return Decision(full, f"Deploying everything: {why}.")
        if not changes.relevant:
            return Decision(
                None, "No file under root-folder changed, so there is nothing to deploy."
            )

        n_dag, n_image = len(changes.dag_files), len(changes.image_files)
        counted = (
            f"{count_files(n_dag)} in the DAGs folder and {count_files(n_image)} outside it changed"
        )
        if requested == "infer":
            if n_image:
                return Decision("IMAGE_AND_DAG", f"{counted}: the image must be rebuilt.")
            if not environment.dag_deploys:
                return Decision(
                    "IMAGE_AND_DAG",
                    f"{counted}; DAG deploys are disabled on the Deployment, so DAGs ship "
                    "in the image.",
                )
            return Decision("DAG_ONLY", f"{counted}: a DAG-only deploy is enough.")
        if requested == "dags-only":
            return _dags_only(counted, n_dag, n_image)
        return Decision(EXPLICIT_TYPES[requested], f"{counted}; deploy-type is {requested}.")

    def refusal(self, kind: str, environment: Environment) -> Refusal | None:
        """Why the Deployment cannot take a deploy of ``kind``; None when it can."""
        if environment.dag_deploys:
            return None
        name = environment.name or environment.id
        if kind == "DAG_ONLY":
            return Refusal(
                _DAG_DEPLOYS_OFF,
                f"DAG deploys are disabled on Deployment '{name}', so a DAG-only deploy is not "
                "possible. Enable DAG deploys in the Deployment's settings, or deploy the image.",
            )
        if kind == "BUNDLE":
            return Refusal(
                _DAG_DEPLOYS_OFF, "Bundle deploys need DAG deploys enabled on the Deployment."
            )
        return None

    def artifacts(self, kind: str, environment: Environment) -> frozenset[Artifact]:
        """What a deploy of ``kind`` ships: with DAG deploys off, the DAGs ride in the image."""
        if kind == "BUNDLE":
            return frozenset({Artifact.BUNDLE})
        if kind == "DAG_ONLY":
            return frozenset({Artifact.DAGS})
        if kind == "IMAGE_AND_DAG" and environment.dag_deploys:
            return frozenset({Artifact.IMAGE, Artifact.DAGS})
        return frozenset({Artifact.IMAGE})

    def rollout_shows(self, kind: str, artifacts: frozenset[Artifact]) -> frozenset[Artifact]:
        """The Deployment runs a deploy once it shows its DAG version (when it shipped one)
        and, for the image types, its image tag."""
        shows = {Artifact.DAGS} if Artifact.DAGS in artifacts else set()
        if kind in IMAGE_TYPES:
            shows.add(Artifact.IMAGE)
        return frozenset(shows)


def _dags_only(counted: str, n_dag: int, n_image: int) -> Decision:
    outside = count_files(n_image)
    if not n_dag:
        return Decision(
            None,
            "Only files outside the DAGs folder changed and deploy-type is dags-only.",
            (
                f"{outside} outside the DAGs folder changed but were not deployed because "
                "deploy-type is dags-only.",
            ),
        )
    warnings = (
        (
            f"{outside} outside the DAGs folder also changed; they are not deployed because "
            "deploy-type is dags-only.",
        )
        if n_image
        else ()
    )
    return Decision("DAG_ONLY", f"{counted}; deploy-type is dags-only.", warnings)


RULES = AstroRules()


def finalize_request(kind: str, dag_deploys: bool, shipment: Shipment) -> FinalizeDeployRequest:
    """What finalize sends: the uploaded version; an empty DAG version for image deploys to a
    Deployment with DAG deploys on that shipped no DAGs; nothing when DAG deploys are off."""
    versions = shipment.versions
    if Artifact.DAGS in versions:
        return FinalizeDeployRequest(dagTarballVersion=versions[Artifact.DAGS])
    if Artifact.BUNDLE in versions:
        return FinalizeDeployRequest(bundleTarballVersion=versions[Artifact.BUNDLE])
    if kind == "IMAGE_ONLY" or (kind in IMAGE_TYPES and dag_deploys):
        return FinalizeDeployRequest(dagTarballVersion="")
    return FinalizeDeployRequest()


def environment_of(deployment: Deployment) -> Environment:
    """A Deployment as the run sees it."""
    dag_deploys = "enabled" if deployment.isDagDeployEnabled else "disabled"
    return Environment(
        id=deployment.id,
        name=deployment.name,
        url=deployment.uiUrl,
        status=deployment.status,
        summary=(
            f"Deployment '{deployment.name}' ({deployment.id}): status {deployment.status}, "
            f"DAG deploys {dag_deploys}, runtime {deployment.runtimeVersion or 'unknown'}."
        ),
        dag_deploys=deployment.isDagDeployEnabled,
        running=running_versions(deployment),
        description=deployment.description or "",
        secret_keys=tuple(v.key for v in deployment.environmentVariables or () if v.isSecret),
        creating=deployment.status == "CREATING",
    )


def running_versions(deployment: Deployment) -> Mapping[Artifact, str]:
    """The versions the Deployment runs now: its DAG tarball version and its image tag."""
    shown = {Artifact.DAGS: deployment.dagTarballVersion or "", Artifact.IMAGE: deployment.imageTag}
    return {artifact: version for artifact, version in shown.items() if version}


def shown_versions(deploy: Deploy) -> Mapping[Artifact, str]:
    """What the Deployment shows while it runs ``deploy``: its DAG version and image tag."""
    shipped = frozenset({Artifact.DAGS}) if deploy.dagTarballVersion else frozenset()
    wanted = RULES.rollout_shows(deploy.type, shipped)
    values = {Artifact.DAGS: deploy.dagTarballVersion or "", Artifact.IMAGE: deploy.imageTag}
    return {artifact: values[artifact] for artifact in Artifact if artifact in wanted}


def release_of(deploy: Deploy, earlier: Sequence[Deploy] = ()) -> Release:
    """``deploy`` as a release; ``earlier`` (oldest first) finds what a rollback restored."""
    restored = restored_deploy(deploy, earlier)
    return Release(
        id=deploy.id,
        kind=deploy.type,
        state=_STATES.get(deploy.status, ReleaseState.FAILED),
        created_at=deploy.created,
        commit=deploy.git.commitSha if deploy.git else "",
        description=deploy.description or "",
        is_rollback=bool(deploy.rollbackFromId),
        restores=restored.id if restored is not deploy else "",
        versions=shown_versions(deploy),
    )


def history_of(deploys: Sequence[Deploy]) -> list[Release]:
    """The deploy history as releases, oldest first."""
    ordered = sorted(deploys, key=lambda deploy: deploy.order)
    return [release_of(deploy, ordered[:index]) for index, deploy in enumerate(ordered)]


def restored_deploy(rollback: Deploy, earlier: Sequence[Deploy]) -> Deploy:
    """The earlier deploy a rollback restored, or ``rollback`` itself when it is none.

    Matched by DAG tarball version (or image tag for image-only deploys) among the earlier
    non-rollback ``DEPLOYED`` deploys, newest first.
    """
    if not rollback.rollbackFromId:
        return rollback
    for deploy in reversed(earlier):
        if deploy.rollbackFromId or deploy.status != "DEPLOYED":
            continue
        same_dags = rollback.dagTarballVersion and deploy.dagTarballVersion == (
            rollback.dagTarballVersion
        )
        same_image = rollback.imageTag and deploy.imageTag == rollback.imageTag
        if same_dags or (not rollback.dagTarballVersion and same_image):
            return deploy
    return rollback


def rollout_state(deployment: Deployment, versions: Mapping[Artifact, str]) -> Observation:
    """Judge whether the Deployment runs a deploy that shows ``versions`` yet.

    Done means ``HEALTHY`` (or ``HIBERNATING``, where nothing runs to be unhealthy) with
    ``dagTarballVersion == desiredDagTarballVersion ==`` the DAG version, and the image tag
    equal to the image's. ``UNHEALTHY`` is a failure.
    """
    status = deployment.status
    current = deployment.dagTarballVersion or "none"
    summary = f"status {status}, running DAG version {current}"
    if deployment.desiredDagTarballVersion and deployment.desiredDagTarballVersion != current:
        summary += f", rolling out {deployment.desiredDagTarballVersion}"
    dag_version, image_tag = versions.get(Artifact.DAGS), versions.get(Artifact.IMAGE)
    if image_tag:
        summary += f", image tag {deployment.imageTag or 'none'}"
    if status == "UNHEALTHY":
        reason = f" ({deployment.statusReason})" if deployment.statusReason else ""
        return Observation(False, True, summary + reason)
    runs_dags = dag_version is None or (
        deployment.dagTarballVersion
        == (deployment.desiredDagTarballVersion or deployment.dagTarballVersion)
        == dag_version
    )
    runs_image = image_tag is None or deployment.imageTag == image_tag
    done = runs_dags and runs_image and status in ("HEALTHY", "HIBERNATING")
    return Observation(done, False, summary)


def cut_description(text: str, limit: int = DESCRIPTION_MAX) -> str:
    """``text`` cut to the API's limit, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
