"""What a release history says, as pure functions: what runs now, what ran before it, and
whether other runs' releases overlap ours.

``history`` is always oldest first, as :meth:`ci_deploy.platform.Platform.history` gives it.
"What runs" is what the environment shows it runs (:attr:`Environment.running`), mapped to
the newest release that shipped those versions: not merely the newest finalized release,
which may have lost a race to an older one finalized later.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from ci_deploy.platform import Artifact, Release, ReleaseState

Contains = Callable[[str, str], bool | None]
"""``contains(descendant, ancestor)``: whether commit ``descendant`` contains commit
``ancestor`` (is it or comes after it); None when that cannot be told."""


def running(
    history: Sequence[Release], shows: Mapping[Artifact, str] | None = None
) -> Release | None:
    """The release the environment runs now, rollbacks included.

    With ``shows`` (the versions the environment runs), the newest live release whose
    versions are all among them; None when no release shipped what it runs. Without
    (the platform does not say), the newest live release.
    """
    live = [release for release in history if release.state is ReleaseState.LIVE]
    if shows:
        live = [release for release in live if _shown(release, shows)]
    return live[-1] if live else None


def _shown(release: Release, shows: Mapping[Artifact, str]) -> bool:
    versions = release.versions
    return bool(versions) and all(shows.get(a) == version for a, version in versions.items())


def previous(
    history: Sequence[Release], shows: Mapping[Artifact, str] | None = None
) -> Release | None:
    """The release that undoes the one running: the live release created before it.

    When the running release is itself a rollback, "before" counts from the release it
    restored, so undoing repeatedly walks back one release at a time.
    """
    now = running(history, shows)
    if now is None:
        return None
    live = [release for release in history if release.state is ReleaseState.LIVE]
    releases = {release.id: release for release in live}
    current = releases.get(now.restores, now)
    earlier = [
        release
        for release in live
        if release.created_at < current.created_at and not release.is_rollback
    ]
    return earlier[-1] if earlier else None


def created_after(ours: Release, history: Sequence[Release]) -> list[Release]:
    """The releases created after ``ours`` (by the history's order), oldest first."""
    ids = [release.id for release in history]
    if ours.id not in ids:
        return [r for r in history if r.created_at > ours.created_at]
    return list(history[ids.index(ours.id) + 1 :])


def in_flight(
    history: Sequence[Release], now: datetime, window: float, *, marker: str = ""
) -> list[Release]:
    """Releases created in the last ``window`` seconds and not finalized: other runs' deploys
    in progress (those carrying this run's ``marker`` excluded)."""
    since = now - timedelta(seconds=window)
    return [
        release
        for release in history
        if release.state is ReleaseState.PENDING
        and release.created_at >= since
        and not (marker and marker in release.description)
    ]


def superseding(
    ours: Release,
    history: Sequence[Release],
    contains: Contains,
    *,
    marker: str,
    shows: Mapping[Artifact, str] | None = None,
) -> Release | None:
    """A release that makes finalizing ``ours`` wrong, because it ships newer code; None when
    none does. ``shows``: the versions the environment runs now.

    - A release created after ours (pending or live, a rollback judged by the commit it
      restored) whose commit contains ours (the same commit included), or whose ancestry
      cannot be told: ours is then not the last one.
    - Whenever it was created, the release the environment runs now, or one still pending
      (another run shipping), whose commit strictly contains ours: a run that started later
      may have created its release first.

    A release of a commit that ours contains (an older one) does not supersede it. Releases
    carrying this run's ``marker`` are this run's own.
    """
    theirs = [
        release
        for release in history
        if release.id != ours.id
        and release.state is not ReleaseState.FAILED
        and not (marker and marker in release.description)
    ]
    later = {release.id for release in created_after(ours, history)}
    for release in reversed(theirs):
        if release.id not in later:
            continue
        if not (release.commit and ours.commit):
            return release
        if contains(release.commit, ours.commit) is not False:
            return release
    now = running(history, shows)
    current = [r for r in theirs if r.state is ReleaseState.PENDING or r == now]
    for release in reversed(current):
        newer = release.commit and ours.commit and release.commit != ours.commit
        if newer and contains(release.commit, ours.commit) is True:
            return release
    return None


def taken_over(
    history: Sequence[Release], live_before: frozenset[str], *, marker: str
) -> Release | None:
    """The newest release finalized by someone else since ours was: live now, and not among
    the ``live_before`` ours (the ids live when ours was finalized). A rollback of ours would
    undo it. None when ours is still the last one finalized."""
    for release in reversed(history):
        if (
            release.state is ReleaseState.LIVE
            and release.id not in live_before
            and not (marker and marker in release.description)
        ):
            return release
    return None


def started_after(ours: Release, history: Sequence[Release]) -> Release | None:
    """The newest release created after ``ours`` that did not fail: on a platform whose
    releases start the moment they are made (App Platform), one that replaces ours, built
    or not yet. None when there is none."""
    newer = [r for r in created_after(ours, history) if r.state is not ReleaseState.FAILED]
    return newer[-1] if newer else None


def left_pending(history: Sequence[Release], marker: str, *, keep: str = "") -> list[Release]:
    """This run's releases (carrying ``marker``) that were created and never finalized,
    except ``keep`` (the one the run goes on with)."""
    return [
        release
        for release in history
        if release.state is ReleaseState.PENDING
        and marker
        and marker in release.description
        and release.id != keep
    ]


_RUN_URL = re.compile(r"https?://[^\s()\[\]]+/actions/runs/\d+(?:/attempts/\d+)?")


def run_url_of(release: Release) -> str:
    """The workflow run that made ``release``, when its description names one ("" if not)."""
    found = _RUN_URL.search(release.description)
    return found[0] if found else ""
