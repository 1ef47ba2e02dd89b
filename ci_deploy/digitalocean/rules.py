"""App Platform's rules, as pure functions over the API's JSON: no network.

Each rule is written once here: what a change needs (the app spec changed -> the app is
updated with it; the source changed -> a new deployment, rebuilt from the repository; an
image component -> the image built, pushed to DigitalOcean Container Registry and set in the
spec), how a deployment reads as a :class:`~ci_deploy.platform.Release` (its commit from the
components' ``source_commit_hash``), how a look at a deployment is judged (phases, progress,
the failing step), what a rollback's validation says, and why a pinned app takes no deploy.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from ci_deploy.changeset import ChangeSet
from ci_deploy.platform import (
    Artifact,
    Decision,
    Environment,
    Observation,
    Refusal,
    Release,
    ReleaseState,
    RollbackCheck,
    Words,
)

Json = dict[str, Any]

SPEC = "spec-update"
"""The kind of release that updates the app with the repository's spec."""
DEPLOYMENT = "deployment"
"""A new deployment of the app's spec, rebuilt from source (``force_build``)."""
IMAGE = "image"
"""The image built and pushed to DOCR, its digest set in the spec, the app updated."""

MARKER_ENV = "CI_DEPLOY_PREVIEW"
"""The app-level environment variable whose value is a preview's marker (App Platform apps
have no description): only apps carrying it are previews."""
COMPONENT_KINDS = ("services", "workers", "jobs", "static_sites", "functions")
DOCR_HOST = "registry.digitalocean.com"

_LIVE = frozenset({"ACTIVE", "SUPERSEDED"})
_FAILED = frozenset({"ERROR", "CANCELED"})
ENDED_BADLY = frozenset({"ERROR", "CANCELED", "SUPERSEDED"})


@dataclass(frozen=True)
class AppsRules:
    """The :class:`~ci_deploy.platform.ReleaseRules` of one app: ``spec_path`` is the app
    spec's path relative to root-folder; ``image`` whether a component runs an image from
    DOCR (so a change is built and pushed to ``registry``)."""

    spec_path: str = ".do/app.yaml"
    image: bool = False
    registry: str = ""
    """``docr-registry``: where an image is pushed ("" when not set)."""

    def decide(
        self,
        requested: str,
        changes: ChangeSet | None,
        environment: Environment,
        *,
        force: bool,
        no_base_reason: str,
    ) -> Decision:
        source_kind = IMAGE if self.image else DEPLOYMENT
        source_what = (
            "the image is built, pushed and set in the app's spec"
            if self.image
            else "a new deployment rebuilds the app from source"
        )
        if changes is None:
            why = f"no commit to compare with ({no_base_reason})" if no_base_reason else "no base"
            return Decision(source_kind, f"Full deploy: {why}; {source_what}.")
        if not changes.relevant:
            if force:
                return Decision(
                    source_kind, f"Nothing relevant changed, but force is true; {source_what}."
                )
            return Decision(
                None, "No file under root-folder changed, so there is nothing to deploy."
            )
        relevant = [*changes.dag_files, *changes.image_files]
        if self.spec_path in relevant:
            others = [path for path in relevant if path != self.spec_path]
            if self.image and others:
                return Decision(
                    IMAGE,
                    f"The app spec ({self.spec_path}) and {len(others)} other file(s) changed: "
                    "the image is built and pushed, and the app updated with the spec.",
                )
            return Decision(
                SPEC, f"The app spec ({self.spec_path}) changed: the app is updated with it."
            )
        return Decision(source_kind, f"{len(relevant)} file(s) changed: {source_what}.")

    def refusal(self, kind: str, environment: Environment) -> Refusal | None:
        if kind == IMAGE and not self.registry:
            return Refusal(
                "Invalid input 'docr-registry'",
                f"App '{environment.name}' runs an image from DigitalOcean Container Registry, "
                "so the image is built and pushed there: set docr-registry to the registry's "
                "name.",
            )
        if not environment.pinned:
            return None
        return Refusal(
            "App pinned by a rollback",
            f"App '{environment.name}' is pinned to rollback deployment {environment.pinned}, "
            "so it takes no new deployment. Decide on the rollback first: keep it with "
            "`action: rollback-commit`, or undo it with `action: rollback-revert`; then deploy "
            "again.",
        )

    def artifacts(self, kind: str, environment: Environment) -> frozenset[Artifact]:
        return frozenset({Artifact.IMAGE}) if kind == IMAGE else frozenset()

    def rollout_shows(self, kind: str, artifacts: frozenset[Artifact]) -> frozenset[Artifact]:
        return frozenset()  # the deployment's own phase says when it runs


def components(spec: Mapping[str, Any]) -> list[Json]:
    """Every component of ``spec`` (services, workers, jobs, static sites, functions)."""
    found: list[Json] = []
    for kind in COMPONENT_KINDS:
        found.extend(c for c in spec.get(kind) or () if isinstance(c, dict))
    return found


def docr_images(spec: Mapping[str, Any]) -> list[Json]:
    """The components that run an image from DigitalOcean Container Registry."""
    return [
        c
        for c in components(spec)
        if isinstance(c.get("image"), dict) and c["image"].get("registry_type") == "DOCR"
    ]


def image_repository(spec: Mapping[str, Any], registry: str) -> str:
    """Where the image is pushed: ``registry.digitalocean.com/<registry>/<repository>`` of
    the first DOCR image component (the spec leaves a DOCR component's ``registry`` empty:
    it is the account's); "" without one."""
    images = docr_images(spec)
    if not images:
        return ""
    return f"{DOCR_HOST}/{registry}/{images[0]['image'].get('repository', '')}"


def with_image(spec: Mapping[str, Any], tag: str, digest: str) -> Json:
    """``spec`` with every DOCR image component set to ``digest`` (better: a rollback can
    return to it exactly), else to ``tag``."""
    updated: Json = copy.deepcopy(dict(spec))
    for component in docr_images(updated):
        image = component["image"]
        if digest:
            image.pop("tag", None)
            image["digest"] = digest
        else:
            image.pop("digest", None)
            image["tag"] = tag
    return updated


def spec_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The spec's change as unified diff lines (YAML, keys sorted)."""

    def lines(spec: Mapping[str, Any]) -> list[str]:
        return yaml.safe_dump(dict(spec), sort_keys=True).splitlines()

    return list(difflib.unified_diff(lines(old), lines(new), "app", "repository", lineterm=""))


#: How App Platform names things in a run's messages, plan and summary.
WORDS = Words(
    platform="App Platform",
    environment="app",
    release="deployment",
    live="ACTIVE",
    ui="the DigitalOcean control panel",
    ships_nothing="nothing from here (App Platform builds the commit from the repository)",
    file_kinds=None,
)


def environment_of(app: Mapping[str, Any]) -> Environment:
    """The app as the port's :class:`Environment`."""
    spec = app.get("spec") or {}
    active = app.get("active_deployment") or {}
    pinned = (app.get("pinned_deployment") or {}).get("id", "")
    name = str(spec.get("name", ""))
    moving = app.get("in_progress_deployment") or {}
    status = (active or moving).get("phase") or "without a deployment"
    summary = f"App '{name}' ({app.get('id', '')}): active deployment {active.get('id', 'none')}"
    if pinned:
        summary += f"; pinned to rollback deployment {pinned}"
    envs = [e for e in spec.get("envs") or () if isinstance(e, dict)]
    return Environment(
        id=str(app.get("id", "")),
        name=name,
        url=f"https://cloud.digitalocean.com/apps/{app.get('id', '')}",
        status=str(status),
        summary=summary,
        dag_deploys=False,
        description=marker_of(spec),
        secret_keys=tuple(str(e.get("key")) for e in envs if e.get("type") == "SECRET"),
        creating=not active and bool(app.get("in_progress_deployment")),
        words=WORDS,
        pinned=str(pinned),
    )


def marker_of(spec: Mapping[str, Any]) -> str:
    """The preview marker an app's spec carries in ``CI_DEPLOY_PREVIEW`` ("" when none)."""
    for env in spec.get("envs") or ():
        if isinstance(env, dict) and env.get("key") == MARKER_ENV:
            return str(env.get("value", ""))
    return ""


def commit_of(deployment: Mapping[str, Any]) -> str:
    """The commit a deployment built: its components' ``source_commit_hash`` (one for all)."""
    for kind in ("services", "workers", "jobs", "static_sites", "functions"):
        for component in deployment.get(kind) or ():
            if isinstance(component, dict) and component.get("source_commit_hash"):
                return str(component["source_commit_hash"])
    return ""


def is_rollback(deployment: Mapping[str, Any]) -> bool:
    """Whether the deployment restored an earlier one (a rollback, or its revert): it was
    cloned from it, or its cause says so."""
    return (
        bool(deployment.get("cloned_from"))
        or "rollback" in str(deployment.get("cause", "")).lower()
    )


def state_of(deployment: Mapping[str, Any]) -> ReleaseState:
    """ACTIVE is live; SUPERSEDED only when it ran (every step of its progress succeeded:
    it was active until a newer one replaced it), else it never ran and counts as failed."""
    phase = str(deployment.get("phase", "UNKNOWN"))
    if phase == "SUPERSEDED":
        return ReleaseState.LIVE if ran(deployment) else ReleaseState.FAILED
    if phase in _LIVE:
        return ReleaseState.LIVE
    if phase in _FAILED:
        return ReleaseState.FAILED
    return ReleaseState.PENDING


def ran(deployment: Mapping[str, Any]) -> bool:
    """Whether the deployment's progress shows every step succeeded (none failed)."""
    progress = deployment.get("progress") or {}
    total = progress.get("total_steps") or 0
    return (
        bool(total) and progress.get("success_steps") == total and not progress.get("error_steps")
    )


def release_of(deployment: Mapping[str, Any], kind: str = "") -> Release:
    """A deployment as a :class:`Release` (its ``cause`` as the description)."""
    return Release(
        id=str(deployment.get("id", "")),
        kind=kind or ("rollback" if is_rollback(deployment) else DEPLOYMENT),
        state=state_of(deployment),
        created_at=parse_time(deployment.get("created_at")),
        commit=commit_of(deployment),
        description=str(deployment.get("cause", "")),
        is_rollback=is_rollback(deployment),
        restores=str(deployment.get("cloned_from") or ""),
    )


def history_of(deployments: Sequence[Mapping[str, Any]]) -> list[Release]:
    """The deployments (as the API lists them: newest first) as releases, oldest first;
    those created in the same second keep the API's order."""
    releases = [release_of(d) for d in reversed(deployments)]
    return sorted(releases, key=lambda r: r.created_at)


def parse_time(value: object) -> datetime:
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.min.replace(tzinfo=UTC)


def progress_of(deployment: Mapping[str, Any]) -> str:
    """``3/5 steps done`` (``, 1 failed``) from the deployment's progress."""
    progress = deployment.get("progress") or {}
    total = progress.get("total_steps")
    if not total:
        return "no progress reported"
    done = progress.get("success_steps") or 0
    failed = progress.get("error_steps") or 0
    return f"{done}/{total} steps done" + (f", {failed} failed" if failed else "")


def failing_step(deployment: Mapping[str, Any]) -> str:
    """The deepest step in ERROR, with its component and reason; "" when none."""
    progress = deployment.get("progress") or {}

    def search(steps: Sequence[Any]) -> str:
        for step in steps:
            if not isinstance(step, dict) or step.get("status") != "ERROR":
                continue
            deeper = search(step.get("steps") or ())
            if deeper:
                return deeper
            reason = step.get("reason") or {}
            said = reason.get("message", "") if isinstance(reason, dict) else ""
            component = step.get("component_name")
            where = f" of component {component}" if component else ""
            return f"step '{step.get('name', '?')}'{where} failed" + (f": {said}" if said else "")
        return ""

    return search(progress.get("steps") or ())


def observation_of(deployment: Mapping[str, Any], superseded_by: str = "") -> Observation:
    """One look at a deployment: ACTIVE is done; ERROR, CANCELED and SUPERSEDED end it."""
    phase = str(deployment.get("phase", "UNKNOWN"))
    summary = f"deployment {deployment.get('id', '?')} is {phase} ({progress_of(deployment)})"
    if phase == "SUPERSEDED":
        by = f" by deployment {superseded_by}" if superseded_by else " by a newer deployment"
        summary += f", replaced{by}"
    elif phase in _FAILED:
        step = failing_step(deployment)
        if step:
            summary += f"; {step}"
    return Observation(done=phase == "ACTIVE", failed=phase in ENDED_BADLY, summary=summary)


def settled_observation(
    deployment: Mapping[str, Any], replaced_by: Mapping[str, Any] | None = None
) -> Observation:
    """One look at a deployment already seen ``ACTIVE`` (the settle window after its rollout).

    Still ``ACTIVE``: it runs (done). ``ERROR`` or ``CANCELED``: it went from ``ACTIVE`` to a
    failed state (failed, with the failing step and its reason). ``SUPERSEDED``: the app
    moved on to ``replaced_by`` (the app's active or in-progress deployment): a rollback
    (cloned from an earlier deployment: App Platform's or a person's) means ours failed;
    any other newer deployment (another run, a push) replaced a deployment that ran, which
    is nothing of ours to fail or roll back (done).
    """
    phase = str(deployment.get("phase", "UNKNOWN"))
    name = f"deployment {deployment.get('id', '?')}"
    if phase == "ACTIVE":
        return Observation(done=True, failed=False, summary=f"{name} is ACTIVE")
    if phase in _FAILED:
        since = str(deployment.get("phase_last_updated_at") or "")
        summary = f"{name} went from ACTIVE to {phase}" + (f" at {since}" if since else "")
        step = failing_step(deployment)
        return Observation(done=False, failed=True, summary=summary + (f"; {step}" if step else ""))
    if phase == "SUPERSEDED":
        other = replaced_by or {}
        by = f"deployment {other['id']}" if other.get("id") else "a newer deployment"
        if other and is_rollback(other):
            restores = other.get("cloned_from")
            to = f" to deployment {restores}" if restores else ""
            return Observation(
                done=False,
                failed=True,
                summary=f"{name} was rolled back{to} by {by} ({other.get('cause', 'rollback')})",
            )
        return Observation(
            done=True, failed=False, summary=f"{name} ran and was then replaced by {by}"
        )
    return Observation(done=False, failed=False, summary=f"{name} is {phase}")


def rollback_check(answer: Mapping[str, Any]) -> RollbackCheck:
    """What ``rollback/validate`` answered."""
    warnings = tuple(
        f"{w.get('code', 'warning')}: {w.get('message', '')}".rstrip(": ")
        for w in answer.get("warnings") or ()
        if isinstance(w, dict)
    )
    if answer.get("valid"):
        return RollbackCheck(True, warnings=warnings)
    error = answer.get("error") or {}
    return RollbackCheck(
        False,
        code=str(error.get("code", "unknown")),
        reason=str(error.get("message", "the API gave no reason")),
        warnings=warnings,
    )
