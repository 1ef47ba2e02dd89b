"""Which commit the changes are measured from.

The candidates are the commit the Deployment actually runs (from its deploy history), the
event's base (a push's ``before``, a pull request's base, a merge group's base), or a commit
the user names with ``compare-to``. Extracting them and choosing among them is pure; whether
a candidate is usable (fetched, an ancestor of HEAD) is asked of a probe that the
orchestration supplies, so every rule is tested without git or a server.

The deployed commit comes first because the event's base may be newer than what the
Deployment runs: a change made in between would never be deployed. So when the deployed
commit is known but cannot be reached (its history lies beyond what a shallow clone could
fetch), no other base is taken, and everything is deployed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ci_deploy.errors import GitError
from ci_deploy.history import running
from ci_deploy.platform import ASTRO, Artifact, Release, Words
from ci_deploy.source import is_null_sha

BaseSource = Literal["deployed", "event", "input", "none"]


@dataclass(frozen=True)
class Candidate:
    """A commit the changes could be measured from.

    ``merge_base`` asks for the diff from the merge base of this commit and the head
    (``base...head``), as a pull request's changes are read; ``head`` is the pull request's
    head commit, which the diff runs to instead of HEAD (the test merge commit) when set.
    """

    source: BaseSource
    rev: str
    label: str
    merge_base: bool = False
    head: str = ""


@dataclass(frozen=True)
class BaseChoice:
    """The chosen base: ``sha`` None means there is none and everything is deployed."""

    sha: str | None
    source: BaseSource
    label: str
    reason: str
    rejected: tuple[str, ...] = ()
    merge_base: bool = False
    head: str = ""


@dataclass(frozen=True)
class Probed:
    """A probe's answer: the candidate's full sha, or None and why it cannot be used.

    ``uncertain`` (with ``sha`` None): the candidate could not be checked, e.g. a commit that
    may be an ancestor of HEAD beyond the history that could be fetched; it says nothing
    about whether the candidate is usable.
    """

    sha: str | None
    why: str = ""
    uncertain: bool = False


#: Tells whether a candidate can be used (the bool: it must be an ancestor of HEAD).
Probe = Callable[[Candidate, bool], Probed]

NO_BASE = "no usable base commit"
"""The reason of a choice without a base when no candidate could be used."""


def deployed_out_of_reach(words: Words = ASTRO) -> str:
    """The reason of a choice without a base when the deployed commit could not be checked."""
    return (
        f"the commit {words.the_environment} runs could not be reached, and a later base "
        "could miss changes it lacks"
    )


DEPLOYED_OUT_OF_REACH = deployed_out_of_reach()
"""That reason in Astro's words."""


def deployed_candidate(
    history: Sequence[Release],
    shows: Mapping[Artifact, str] | None = None,
    words: Words = ASTRO,
) -> tuple[Candidate | None, str]:
    """The commit the environment runs: the release it runs (see
    :func:`ci_deploy.history.running`; ``shows``: the versions it runs), when it carries one;
    ``words`` name things as its platform does.

    A rollback counts as the commit of the release it restored; failing that, its own.
    ``history`` is oldest first.
    """
    the, release_noun = words.the_environment, words.release
    if not history:
        return None, f"{the} has no {release_noun} history"
    release = running(history, shows)
    live = f"no {words.live} {release_noun} in the history"
    if release is None:
        if shows:
            seen = ", ".join(f"{a.version_name} {v}" for a, v in shows.items())
            return None, f"{live} shipped what {the} runs ({seen})"
        return None, live
    releases = {r.id: r for r in history}
    source = releases.get(release.restores, release)
    if not source.commit:
        return None, f"{release_noun} {release.id}, which {the} runs, carries no git commit"
    how = f", a rollback to {release_noun} {source.id}" if source is not release else ""
    label = f"{release_noun} {release.id} ({release.created_at:%Y-%m-%dT%H:%M:%SZ}{how})"
    return Candidate("deployed", source.commit, label), ""


def event_candidate(event_name: str, event: Mapping[str, Any]) -> tuple[Candidate | None, str]:
    """The event's own base commit, or None and why it has none."""
    if event_name == "push":
        before = str(event.get("before") or "")
        if not before or is_null_sha(before):
            return None, "the push created the branch (its 'before' is all zeros)"
        return Candidate("event", before, f"the push's previous commit {before[:12]}"), ""
    if event_name in ("pull_request", "pull_request_target"):
        base = _dig(event, "pull_request", "base", "sha")
        head = _dig(event, "pull_request", "head", "sha")
        if base:
            label = f"the pull request's base {base[:12]}"
            return Candidate("event", base, label, merge_base=True, head=head), ""
        return None, "the pull_request event has no pull_request.base.sha"
    if event_name == "merge_group":
        base = _dig(event, "merge_group", "base_sha")
        if base:
            return Candidate("event", base, f"the merge group's base {base[:12]}"), ""
        return None, "the merge_group event has no merge_group.base_sha"
    if not event_name:
        return None, "not run by a GitHub event"
    return None, f"a {event_name} event has no base commit"


def _dig(data: Mapping[str, Any], *keys: str) -> str:
    value: Any = data
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value if isinstance(value, str) else ""


def choose_base(
    compare_to: str,
    deployed: tuple[Candidate | None, str],
    event: tuple[Candidate | None, str],
    probe: Probe,
    words: Words = ASTRO,
) -> BaseChoice:
    """Choose the base for ``compare-to`` (``auto``, ``deployed``, ``event`` or a rev);
    ``words`` name things as the environment's platform does.

    ``auto`` takes the deployed commit when it can be had and is an ancestor of HEAD, else
    the event's base, else none; a deployed commit the probe could not check
    (``uncertain``) means none, never the event's base. A rev named by the user must
    resolve, or it is an error.
    """
    if compare_to not in ("auto", "deployed", "event"):
        named = Candidate("input", compare_to, f"compare-to {compare_to}")
        found = probe(named, False)
        if found.sha is None:
            raise GitError(
                f"compare-to {compare_to!r} is not a commit in the checkout nor on origin "
                f"({found.why}). Give a commit SHA or a ref that exists, or use auto.",
                title="Invalid input 'compare-to'",
            )
        return BaseChoice(found.sha, "input", named.label, "named by compare-to")

    order: list[tuple[tuple[Candidate | None, str], bool]] = []
    if compare_to in ("auto", "deployed"):
        order.append((deployed, compare_to == "auto"))
    if compare_to in ("auto", "event"):
        order.append((event, False))

    rejected: list[str] = []
    for (candidate, missing_why), needs_ancestor in order:
        if candidate is None:
            rejected.append(missing_why)
            continue
        found = probe(candidate, needs_ancestor)
        if found.sha is not None:
            reason = f"compare-to is {compare_to}"
            return BaseChoice(
                found.sha,
                candidate.source,
                candidate.label,
                reason,
                tuple(rejected),
                candidate.merge_base,
                candidate.head,
            )
        rejected.append(f"{candidate.label}: {found.why}")
        if found.uncertain and candidate.source == "deployed":
            return BaseChoice(None, "none", "", deployed_out_of_reach(words), tuple(rejected))
    return BaseChoice(None, "none", "", NO_BASE, tuple(rejected))
