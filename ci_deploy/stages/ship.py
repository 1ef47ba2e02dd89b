"""Ship: create the release, upload and push what was built, finalize.

Each step is recorded the moment it is done, so a failure says exactly what it left: a
release created but not finalized changes nothing the environment runs.

Runs overlap (two pushes seconds apart), so the history is read again just before
finalize: when a newer release was made meanwhile, this run's is not finalized (it would
put older code back) and the run ends *superseded*; otherwise the release the environment
runs at that moment is where a failed rollout returns.
"""

from __future__ import annotations

from ci_deploy import history as releases
from ci_deploy.plan import ReleasePlan
from ci_deploy.platform import Artifact, ReleaseState, Shipment
from ci_deploy.result import Built, Created, Finalized, LeftPending, Shipped, Superseded
from ci_deploy.source import Source
from ci_deploy.stages import Scope


def ship(
    scope: Scope,
    release: ReleasePlan,
    built: Built,
    source: Source,
    contains: releases.Contains,
) -> Finalized | Superseded:
    """Create, ship and finalize; the record of the finalized release, or of the newer
    release that superseded it. ``contains`` tells whether one commit contains another."""
    platform, runner, journal = scope.platform, scope.runner, scope.journal
    noun = scope.words.release
    with scope.writing(f"creating the {noun}"):
        created = platform.create(
            release.kind, scope.described(release.description), source, scope.marker
        )
        journal.add(Created(created))
    if created.id:  # else the platform makes it at finalize
        runner.info(
            f"Created {noun} {created.id} ({created.kind}) for commit {source.commit.sha[:12]}."
        )

    versions: dict[Artifact, str] = {}
    for artifact, tarball in ((Artifact.DAGS, built.dags), (Artifact.BUNDLE, built.bundle)):
        if tarball is not None:
            versions[artifact] = platform.upload(created, artifact, tarball)
            journal.add(Shipped(Shipment(dict(versions))))
    if built.image is not None:
        versions[Artifact.IMAGE] = platform.push(created, built.image)
        journal.add(Shipped(Shipment(dict(versions))))
        runner.info(f"Pushed {versions[Artifact.IMAGE]}.")

    environment = platform.locate()
    history = platform.history()
    leftovers = releases.left_pending(history, scope.marker, keep=created.id)
    if leftovers:
        journal.add(LeftPending(tuple(leftovers)))
        names = ", ".join(r.id for r in leftovers)
        runner.warning(
            f"This run also left {noun}(s) {names} created and not finalized (a create whose "
            f"answer was lost was processed late). They change nothing "
            f"{scope.words.the_environment} runs.",
            title=f"Unfinalized {noun} left",
        )
    newer = releases.superseding(
        created, history, contains, marker=scope.marker, shows=environment.running
    )
    if newer is not None:
        superseded = Superseded(newer)
        journal.add(superseded)
        return superseded

    finalized_at = scope.timing.now()
    previous = releases.running(history, environment.running)
    live = frozenset(r.id for r in history if r.state is ReleaseState.LIVE)
    with scope.writing(f"finalizing {noun} {created.id or 'of this run'}"):
        finalized = Finalized(
            platform.finalize(created, Shipment(versions)), finalized_at, previous, live
        )
        journal.add(finalized)
    runner.info(f"Finalized {noun} {finalized.release.id}.")
    return finalized
