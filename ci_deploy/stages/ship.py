"""Ship: create the release, upload and push what was built, finalize.

Each step is recorded the moment it is done, so a failure says exactly what it left: a
release created but not finalized changes nothing the environment runs.
"""

from __future__ import annotations

from ci_deploy.plan import ReleasePlan
from ci_deploy.platform import Artifact, Shipment
from ci_deploy.result import Built, Created, Finalized, Shipped
from ci_deploy.source import Source
from ci_deploy.stages import Scope


def ship(scope: Scope, release: ReleasePlan, built: Built, source: Source) -> Finalized:
    """Create, ship and finalize; the record of the finalized release."""
    platform, runner, journal = scope.platform, scope.runner, scope.journal
    created = platform.create(release.kind, release.description, source)
    journal.add(Created(created))
    runner.info(
        f"Created deploy {created.id} ({created.kind}) for commit {source.commit.sha[:12]}."
    )

    versions: dict[Artifact, str] = {}
    for artifact, tarball in ((Artifact.DAGS, built.dags), (Artifact.BUNDLE, built.bundle)):
        if tarball is not None:
            versions[artifact] = platform.upload(created, artifact, tarball.data)
            journal.add(Shipped(Shipment(dict(versions))))
    if built.image is not None:
        versions[Artifact.IMAGE] = platform.push(created, built.image)
        journal.add(Shipped(Shipment(dict(versions))))
        runner.info(f"Pushed {versions[Artifact.IMAGE]}.")

    finalized_at = scope.timing.now()
    finalized = Finalized(platform.finalize(created, Shipment(versions)), finalized_at)
    journal.add(finalized)
    runner.info(f"Finalized deploy {created.id}.")
    return finalized
