"""What a release history says, as pure functions: what runs now, and what ran before it.

``history`` is always oldest first, as :meth:`ci_deploy.platform.Platform.history` gives it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ci_deploy.platform import Release, ReleaseState


def running(history: Sequence[Release]) -> Release | None:
    """The release the environment runs now: the newest live one, rollbacks included."""
    live = [release for release in history if release.state is ReleaseState.LIVE]
    return live[-1] if live else None


def previous(history: Sequence[Release]) -> Release | None:
    """The release that undoes the last one: the live release before the one running.

    When the running release is itself a rollback, "before" counts from the release it
    restored, so undoing repeatedly walks back one release at a time.
    """
    live = [release for release in history if release.state is ReleaseState.LIVE]
    if not live:
        return None
    releases = {release.id: release for release in live}
    current = releases.get(live[-1].restores, live[-1])
    earlier = [
        release
        for release in live
        if release.created_at < current.created_at and not release.is_rollback
    ]
    return earlier[-1] if earlier else None
