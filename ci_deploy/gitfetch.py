"""Fetching what a shallow checkout lacks, from ``origin``.

actions/checkout fetches a single commit by default (fetch-depth: 1), so the commit to
diff against, and the history linking it to HEAD, are usually missing. They are fetched
from ``origin`` with the credentials checkout stored in the repository's own config:
git simply runs in the repository, and nothing secret is ever put on a command line.
Only shas and ref names reach git, and every git message surfaced here is scrubbed.

Git runs through :func:`ci_deploy.gitrepo.run_git`, like everything else in a repository
that :func:`ci_deploy.gitrepo.open_repo` opened.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ci_deploy.gitrepo import GitOutput, error_line, is_rev, merge_base, resolve_commit, run_git
from ci_deploy.source import is_null_sha

if TYPE_CHECKING:
    import git

FETCH_TIMEOUT_SECONDS = 300.0
"""How long one ``git fetch`` from origin may run before it is killed."""

MAX_DEPTH = 4096
"""How many commits deep :func:`connect_history` deepens a shallow clone at most."""

_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_ABBREVIATED_SHA = re.compile(r"[0-9a-fA-F]{4,63}")
# What git's check-ref-format refuses, plus a leading "+" (a forced refspec) or "-".
_NOT_A_REF_NAME = re.compile(
    r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[-+/.]|/\.|\.lock(?:/|$)|[/.]$"
)
_GONE_FROM_ORIGIN = ("not our ref", "unadvertised object", "no such remote ref")


@dataclass(frozen=True)
class Resolved:
    """The outcome of :func:`ensure_commit`."""

    sha: str | None
    """The full sha of the commit, now present locally; None when it could not be had."""
    detail: str
    """What happened, for the log ("present locally", "fetched from origin", or why not)."""
    uncertain: bool = False
    """When ``sha`` is None: whether the commit may yet be in HEAD's history, out of reach
    (a shallow clone that could not fetch it: no origin, a fetch that failed or timed out, a
    rev that cannot be fetched). False when it surely is not: origin has no such commit, the
    rev names none, or the clone is complete (it holds every commit of HEAD's history)."""


def _quiet(_message: str) -> None:
    """The default ``log``: say nothing."""


def is_shallow(repo: git.Repo) -> bool:
    """Whether the repository is a shallow clone (some commits' parents were not fetched)."""
    return run_git(repo, "rev_parse", "--is-shallow-repository").stdout.strip() == "true"


def _has_origin(repo: git.Repo) -> bool:
    """Whether a remote named ``origin`` is configured (its URL is never read)."""
    return "origin" in run_git(repo, "remote").stdout.split()


def _fetch(repo: git.Repo, *args: str) -> GitOutput:
    """``git fetch --no-tags --no-recurse-submodules <args>``, killed after the timeout."""
    options = ("--no-tags", "--no-recurse-submodules")
    return run_git(repo, "fetch", *options, *args, check=False, timeout=FETCH_TIMEOUT_SECONDS)


def _fetch_target(rev: str) -> tuple[str, bool] | None:
    """What to ask origin for to get ``rev``, and whether it is a sha; None if unfetchable.

    A full sha is asked for directly. A ref name is passed as is, except that a
    remote-tracking name (``origin/x``, ``refs/remotes/origin/x``) means origin's branch
    ``x``. Anything else (an abbreviated sha, ``HEAD~2``, a refspec such as ``a:b``)
    cannot be fetched.
    """
    if _FULL_SHA.fullmatch(rev.lower()):
        return rev.lower(), True
    if rev == "@" or _NOT_A_REF_NAME.search(rev):
        return None
    for prefix in ("refs/remotes/origin/", "origin/"):
        name = rev.removeprefix(prefix)
        if name != rev:
            return ("HEAD" if name == "HEAD" else f"refs/heads/{name}"), False
    return rev, False


def _origin_lacks(rev: str, is_sha: bool, result: GitOutput) -> bool:
    """Whether the failed ``git fetch`` ``result`` of ``rev`` is origin answering that it has
    no such commit, rather than a fetch that could not ask (network, timeout...) or a name
    that may be an abbreviated sha, which cannot be asked for."""
    if result.status < 0:
        return False
    lowered = result.stderr.lower()
    if is_sha:
        return any(marker in lowered for marker in _GONE_FROM_ORIGIN)
    return "couldn't find remote ref" in lowered and not _ABBREVIATED_SHA.fullmatch(rev)


def _fetch_failure(rev: str, is_sha: bool, result: GitOutput) -> str:
    """Why ``git fetch`` of ``rev`` failed, in words for the log."""
    if result.status < 0:
        return f"git fetch did not finish within {FETCH_TIMEOUT_SECONDS:g} seconds"
    lowered = result.stderr.lower()
    if is_sha and any(marker in lowered for marker in _GONE_FROM_ORIGIN):
        return "not on origin (force-pushed away?)"
    if not is_sha and "couldn't find remote ref" in lowered:
        hint = ""
        if _ABBREVIATED_SHA.fullmatch(rev):
            hint = " (an abbreviated sha cannot be fetched: pass the full sha)"
        return f"no ref named {rev!r} on origin{hint}"
    return f"fetch from origin failed: {error_line(result)}"


def ensure_commit(
    repo: git.Repo, rev: str, *, log: Callable[[str], None] | None = None
) -> Resolved:
    """Make commit ``rev`` present locally, fetching it from ``origin`` if need be.

    ``rev`` is a full or abbreviated sha or a ref name ("main", "v1.2", "origin/main",
    "refs/heads/x"). An empty or all-zero ``rev`` (a push that created the branch) and
    one that is no rev (see :func:`ci_deploy.gitrepo.is_rev`) are answered without
    running git. A commit that cannot be had (force-pushed away, no origin, no network...)
    is not an error: ``sha`` is None, ``detail`` says why and ``uncertain`` whether the
    commit may still be in HEAD's history. A shallow repository fetches
    with ``--depth=1`` (see :func:`connect_history` for the history in between); a
    complete one fetches without a depth, so it stays complete and only the missing
    commits are transferred. Raises GitError only when git cannot be run in the
    repository at all.
    """
    rev = rev.strip()
    if not rev:
        return Resolved(None, "no revision given: no previous commit")
    if is_null_sha(rev):
        return Resolved(None, "all-zero sha: no previous commit")
    if not is_rev(rev):
        return Resolved(None, "not a commit or ref")
    local = resolve_commit(repo, rev)
    if local is not None:
        return Resolved(local, "present locally")
    # Out of reach, a commit may still be in HEAD's history, unless the clone holds it all.
    shallow = is_shallow(repo)
    target = _fetch_target(rev)
    if target is None:
        return Resolved(
            None, "not present locally, and only a full sha or a ref name can be fetched", shallow
        )
    if not _has_origin(repo):
        return Resolved(None, "no remote named origin", shallow)
    name, is_sha = target
    (log or _quiet)(f"Fetching {rev} from origin")
    result = _fetch(repo, *(["--depth=1"] if shallow else []), "origin", name)
    if result.status != 0:
        lacks = _origin_lacks(rev, is_sha, result)
        return Resolved(None, _fetch_failure(rev, is_sha, result), shallow and not lacks)
    fetched = resolve_commit(repo, name if is_sha else "FETCH_HEAD")
    if fetched is None:
        return Resolved(None, "fetched from origin, but it is not a commit")
    return Resolved(fetched, "fetched from origin")


def _shallow_commits(repo: git.Repo) -> frozenset[str]:
    """The commits whose parents a shallow clone lacks (git's ``shallow`` file)."""
    rel = run_git(repo, "rev_parse", "--git-path", "shallow").stdout.strip()
    try:
        return frozenset(Path(repo.working_dir, rel).read_text(encoding="ascii").split())
    except FileNotFoundError:
        return frozenset()


def _truncated(repo: git.Repo, tips: tuple[str, ...]) -> dict[str, int]:
    """How many commits each tip's history has here, for the histories a shallow boundary
    cuts off (a complete history is left out)."""
    shallow = _shallow_commits(repo)
    truncated: dict[str, int] = {}
    for tip in dict.fromkeys(tips):
        history = run_git(repo, "rev_list", tip).stdout.split()
        if shallow.intersection(history):
            truncated[tip] = len(history)
    return truncated


def histories_complete(repo: git.Repo, *tips: str) -> bool:
    """Whether the local history of every commit in ``tips`` is whole: no shallow boundary
    cuts it off, so what git answers about their ancestry is final."""
    return not is_shallow(repo) or not _truncated(repo, tips)


def connect_history(
    repo: git.Repo,
    base: str,
    head: str,
    *,
    max_depth: int = MAX_DEPTH,
    log: Callable[[str], None] | None = None,
) -> str | None:
    """The merge base of commits ``base`` and ``head`` (both present), fetching history as needed.

    When the history present locally does not link them and the clone is shallow, the
    truncated histories are deepened from ``origin`` with ``git fetch --depth=<n>`` for
    n = 2, 4, 8, ... up to ``max_depth``, retrying after each step (each is logged). A
    depth is only used when it exceeds the history already present, so nothing fetched
    before is cut off, and a complete history is never made shallow. Returns None when
    the histories are unrelated, ``max_depth`` is reached or a fetch fails
    (:func:`histories_complete` tells the first from the others).
    """
    say = log or _quiet
    found = merge_base(repo, base, head)
    if found is not None or not is_shallow(repo):
        return found
    if not _has_origin(repo):
        say("Cannot deepen the shallow clone: no remote named origin")
        return None
    pair = f"{base[:12]} and {head[:12]}"
    depth = 2
    while True:
        truncated = _truncated(repo, (head, base))
        if not truncated:
            return None  # both histories are complete and share no commit
        longest = max(truncated.values())
        while depth <= longest and depth < max_depth:
            depth *= 2
        depth = min(depth, max_depth)
        if depth <= longest:
            break
        say(f"Deepening the shallow clone to {depth} commits to find the merge base of {pair}")
        result = _fetch(repo, f"--depth={depth}", "origin", *truncated)
        if result.status != 0:
            say(f"Could not deepen the shallow clone: {_fetch_failure(head, True, result)}")
            return None
        found = merge_base(repo, base, head)
        if found is not None:
            return found
        if depth >= max_depth:
            break
        depth *= 2
    say(f"No merge base of {pair} within {max_depth} commits")
    return None
