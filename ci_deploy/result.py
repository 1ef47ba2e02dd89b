"""What a run did: the records its stages leave, and the result assembled from them once.

Each stage adds immutable records to the run's :class:`Journal` as soon as a fact is true
(the environment was read, the deploy was created, it was finalized, it was rolled back),
so a run that fails or is cancelled half-way still knows exactly how far it got.
:func:`assemble` turns the journal and the run's error into the one :class:`RunResult` the
outputs and the summary are written from; :class:`Status` is decided there, in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

from ci_deploy.errors import CiDeployError
from ci_deploy.plan import Detection, Operation, Plan
from ci_deploy.platform import ASTRO, Artifact, Environment, Release, Shipment, Words
from ci_deploy.verification import GateResult

if TYPE_CHECKING:
    from ci_deploy.bundle import Bundle
    from ci_deploy.image import BuiltImage


class Status(StrEnum):
    """How a run ended: the ``status`` output."""

    DEPLOYED = "deployed"
    SKIPPED = "skipped"
    PLANNED = "planned"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"
    SUPERSEDED = "superseded"
    """A newer deploy was made while this run shipped, so this run did not finalize its own."""
    DELETED = "deleted"
    """Previews were deleted (``preview-delete``, ``preview-cleanup``)."""
    COMMITTED = "committed"
    """A rollback that pinned the environment was kept (``action: rollback-commit``)."""
    REVERTED = "reverted"
    """A rollback that pinned the environment was undone (``action: rollback-revert``)."""


# --- the records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """The environment the run is about: its id from the inputs, then the environment read."""

    id: str
    environment: Environment | None = None


@dataclass(frozen=True)
class Built:
    """What the build stage made before anything touched the environment."""

    dags: Bundle | None = None
    bundle: Bundle | None = None
    image: BuiltImage | None = None


@dataclass(frozen=True)
class Created:
    """The release was created (it does not run until it is finalized)."""

    release: Release


@dataclass(frozen=True)
class Shipped:
    """The artifacts were shipped."""

    shipment: Shipment


@dataclass(frozen=True)
class Finalized:
    """The release was finalized at ``at``: the environment starts running it. ``previous``
    is the release the environment ran just before (read then): where a rollback returns;
    ``live_before`` the ids of the releases finalized before it."""

    release: Release
    at: datetime
    previous: Release | None = None
    live_before: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Superseded:
    """A newer release (``by``) was made while this run shipped; this run's was not finalized."""

    by: Release


@dataclass(frozen=True)
class LeftPending:
    """Releases this run created and never finalized, besides the one it went on with."""

    releases: tuple[Release, ...]


@dataclass(frozen=True)
class Interrupted:
    """The run was cancelled while it was ``what`` ("finalizing deploy X"): a write whose
    outcome is unknown."""

    what: str


@dataclass(frozen=True)
class Seen:
    """The last thing seen of the environment's rollout."""

    state: str


@dataclass(frozen=True)
class RolledBack:
    """A rollback release was made, back to ``to``; ``healthy`` says how it ended (None: not
    known, e.g. the run was cancelled or the environment could not be read while waiting)."""

    release: Release
    to: Release
    healthy: bool | None
    summary: str
    warnings: tuple[str, ...] = ()
    """What the platform warned of when it validated the rollback (App Platform)."""


@dataclass(frozen=True)
class MatrixEntry:
    """One Deployment of the config file, as ``action: matrix`` decided about it."""

    include: Mapping[str, str]
    """Its ``strategy.matrix`` ``include`` entry: the Deployment, root-folder, its options."""
    label: str
    decision: str
    """What was decided and why: the deploy planned, the skip's reason, another branch's."""
    selected: bool
    """Whether its inputs changed: it is in the ``matrix`` output."""


@dataclass(frozen=True)
class Selected:
    """``action: matrix``: the config file's Deployments, for ``branch``, decided."""

    config: str
    branch: str
    entries: tuple[MatrixEntry, ...]

    @property
    def chosen(self) -> tuple[MatrixEntry, ...]:
        return tuple(entry for entry in self.entries if entry.selected)


@dataclass(frozen=True)
class PreviewReady:
    """The pull request's preview, found or ``created`` by this run (``planned``: a dry run
    found none and made none); ``missing_secrets``: the template's secret variables that
    preview-env gave no value for."""

    environment: Environment
    created: bool = False
    planned: bool = False
    missing_secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class PreviewsDeleted:
    """The previews this run deleted (in a dry run: would delete); none found: ``deleted`` is
    empty."""

    deleted: tuple[Environment, ...]
    dry_run: bool = False


@dataclass(frozen=True)
class PinDecided:
    """``action: rollback-commit`` or ``rollback-revert`` done on the rollback ``pinned``;
    ``release`` the revert's release."""

    action: str
    pinned: str
    release: Release | None = None


@dataclass(frozen=True)
class Verified:
    """A verification gate ended (the rollout, import errors, the settle window, a smoke
    run): passed, failed, skipped or warned, and why."""

    gate: GateResult


Record = (
    Subject
    | Detection
    | Plan
    | Built
    | Created
    | Shipped
    | Finalized
    | Superseded
    | LeftPending
    | Interrupted
    | Seen
    | RolledBack
    | Selected
    | PreviewReady
    | PreviewsDeleted
    | PinDecided
    | Verified
)
_R = TypeVar(
    "_R",
    Subject,
    Detection,
    Plan,
    Built,
    Created,
    Shipped,
    Finalized,
    Superseded,
    LeftPending,
    Interrupted,
    Seen,
    RolledBack,
    Selected,
    PreviewReady,
    PreviewsDeleted,
    PinDecided,
    Verified,
)


class Journal:
    """The records of one run, in the order they became true."""

    def __init__(self) -> None:
        self._records: list[Record] = []

    def add(self, record: Record) -> None:
        self._records.append(record)

    def last(self, kind: type[_R]) -> _R | None:
        """The newest record of ``kind``, or None."""
        for record in reversed(self._records):
            if isinstance(record, kind):
                return record
        return None

    @property
    def records(self) -> Sequence[Record]:
        return tuple(self._records)


# --- the result ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunResult:
    """Everything the outputs and the summary say, assembled once at the end of a run."""

    status: Status
    subject: Subject
    error: CiDeployError | None = None
    detection: Detection | None = None
    plan: Plan | None = None
    built: Built | None = None
    release: Release | None = None
    shipment: Shipment | None = None
    finalized: bool = False
    rollback: RolledBack | None = None
    superseded_by: Release | None = None
    left_pending: tuple[Release, ...] = ()
    """Releases this run created and left unfinalized (its own included when it was not
    finalized): named in the log and the summary."""
    interrupted: str = ""
    """What the run was cancelled in the middle of writing ("" when nothing): unknown whether
    it was done."""
    deployment_state: str = ""
    duration_seconds: float = 0.0
    matrix: Selected | None = None
    """``action: matrix``: the Deployments decided about; None for other actions."""
    preview: PreviewReady | None = None
    previews_deleted: PreviewsDeleted | None = None
    verification: tuple[GateResult, ...] = ()
    """Each verification gate's result, in the order the gates ran (a gate's last one)."""

    @property
    def words(self) -> Words:
        """How the environment's platform names things: Astro's unless the environment says."""
        environment = self.subject.environment
        return environment.words if environment is not None else ASTRO

    @property
    def platform(self) -> str:
        """The platform's name for messages: "Astro", "App Platform"."""
        return self.words.platform

    @property
    def skipped(self) -> bool:
        return self.plan is not None and self.plan.operation is Operation.SKIP

    @property
    def deploy_type(self) -> str:
        """The kind deployed (or planned); for a rollback, the kind of the release restored."""
        if self.plan is None:
            return ""
        if self.plan.operation is Operation.ROLLBACK:
            return self.rollback.to.kind if self.rollback is not None else ""
        return self.plan.kind

    @property
    def dag_tarball_version(self) -> str:
        return self.shipment.versions.get(Artifact.DAGS, "") if self.shipment else ""

    @property
    def image(self) -> str:
        """The image pushed, else the image built; "" without one."""
        if self.shipment is not None and Artifact.IMAGE in self.shipment.versions:
            return self.shipment.versions[Artifact.IMAGE]
        image = self.built.image if self.built is not None else None
        return image.reference if image is not None else ""


def assemble(journal: Journal, error: CiDeployError | None, duration_seconds: float) -> RunResult:
    """The result of a run from its journal and the error it ended with (None: success)."""
    subject = journal.last(Subject) or Subject("")
    plan = journal.last(Plan)
    finalized = journal.last(Finalized)
    created = journal.last(Created)
    if created is not None and not created.release.id:
        created = None  # noted, never made (App Platform makes a deployment at finalize)
    made = finalized or created
    shipped, rollback, seen = journal.last(Shipped), journal.last(RolledBack), journal.last(Seen)
    superseded = journal.last(Superseded)
    left = journal.last(LeftPending)
    pending = list(left.releases) if left is not None else []
    cut = journal.last(Interrupted)
    # A cancel cut a write of this unfinalized release off: its finalize, whose outcome is
    # unknown (a create cut off recorded no release; a rollback comes after the finalize).
    if made is not None and finalized is None and cut is None:
        pending.insert(0, made.release)
    pin = journal.last(PinDecided)
    preview, deleted = journal.last(PreviewReady), journal.last(PreviewsDeleted)
    return RunResult(
        status=_status(
            plan, rollback, superseded, error, journal.last(Selected), preview, deleted, pin
        ),
        subject=subject,
        error=error,
        detection=journal.last(Detection),
        plan=plan,
        built=journal.last(Built),
        release=made.release if made is not None else pin.release if pin is not None else None,
        shipment=shipped.shipment if shipped else None,
        finalized=finalized is not None,
        rollback=rollback,
        superseded_by=superseded.by if superseded is not None else None,
        left_pending=tuple(pending),
        interrupted=cut.what if cut is not None else "",
        deployment_state=seen.state if seen else "",
        duration_seconds=duration_seconds,
        matrix=journal.last(Selected),
        preview=preview,
        previews_deleted=deleted,
        verification=_gates(journal),
    )


def _gates(journal: Journal) -> tuple[GateResult, ...]:
    """Each gate's last result, in the order the gates first reported."""
    gates: dict[str, GateResult] = {}
    for record in journal.records:
        if isinstance(record, Verified):
            gates[record.gate.gate] = record.gate
    return tuple(gates.values())


def _status(
    plan: Plan | None,
    rollback: RolledBack | None,
    superseded: Superseded | None,
    error: CiDeployError | None,
    selected: Selected | None,
    preview: PreviewReady | None = None,
    deleted: PreviewsDeleted | None = None,
    pin: PinDecided | None = None,
) -> Status:
    if rollback is not None:
        return Status.ROLLED_BACK
    if error is None and pin is not None:
        return Status.COMMITTED if pin.action == "rollback-commit" else Status.REVERTED
    if error is None and plan is None and selected is not None:
        return Status.PLANNED
    if error is None and plan is None:
        if deleted is not None:
            if deleted.dry_run:
                return Status.PLANNED
            return Status.DELETED if deleted.deleted else Status.SKIPPED
        if preview is not None and preview.planned:
            return Status.PLANNED
    if error is not None or plan is None:
        return Status.FAILED
    if superseded is not None:
        return Status.SUPERSEDED
    if plan.dry_run:
        return Status.PLANNED
    if plan.operation is Operation.SKIP:
        return Status.SKIPPED
    return Status.DEPLOYED
