"""Git change detection with GitPython.

Every git process this module starts (and every one started through a repository that
:func:`open_repo` returns) carries ``safe.directory=*`` and ``GIT_TERMINAL_PROMPT=0``: the
action runs as root in a container while the checkout belongs to the runner user, and git
refuses such a repository ("detected dubious ownership") unless ``safe.directory`` comes
from protected (system, global or command-line) configuration.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import git
from git.types import PathLike

from ci_deploy.errors import GitError
from ci_deploy.source import CommitInfo, is_null_sha

FETCH_TIMEOUT_SECONDS = 300.0
"""How long one ``git fetch`` from origin may run before it is killed."""

_CHECKOUT_HINT = "run actions/checkout before this step"


def _safe_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables that make git trust any repository owner and never prompt.

    ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_<n>``/``GIT_CONFIG_VALUE_<n>`` (git >= 2.31) act
    like ``git -c key=value``, i.e. command-line scope, which git honours for
    ``safe.directory`` (repository-local config would not count). The entry is appended
    after any the environment already defines, so those keep working.
    """
    try:
        count = max(int(environ.get("GIT_CONFIG_COUNT", "0") or "0"), 0)
    except ValueError:
        count = 0
    return {
        "GIT_CONFIG_COUNT": str(count + 1),
        f"GIT_CONFIG_KEY_{count}": "safe.directory",
        f"GIT_CONFIG_VALUE_{count}": "*",
        "GIT_TERMINAL_PROMPT": "0",
    }


class SafeGit(git.Git):
    """A :class:`git.Git` whose every command runs with :func:`_safe_environment`.

    GitPython copies ``os.environ`` and overlays the instance's environment for each
    process it starts (including its persistent ``cat-file`` helpers), so setting the
    variables here, in the constructor, covers every call made through this object.
    """

    def __init__(self, working_dir: PathLike | None = None) -> None:
        super().__init__(working_dir)
        self.update_environment(**_safe_environment(os.environ))


class SafeRepo(git.Repo):
    """A :class:`git.Repo` that talks to git only through :class:`SafeGit`.

    ``Repo.__init__`` builds ``self.git`` from ``GitCommandWrapperType`` before anything
    can run git, so the repository is opened and used under ``safe.directory=*``
    (opening itself only reads files; should a GitPython version run git there, it
    would go through this class too).
    """

    GitCommandWrapperType = SafeGit


def _run(repo: git.Repo, command: str, *args: str) -> bytes:
    """Run ``git <command> <args>`` in ``repo``; stdout as bytes, GitError on failure."""
    try:
        status, stdout, stderr = getattr(repo.git, command)(
            *args,
            with_extended_output=True,
            with_exceptions=False,
            stdout_as_string=False,
            strip_newline_in_stdout=False,
        )
    except git.GitCommandNotFound as exc:
        raise GitError(f"git is not installed or not on PATH: {exc}") from exc
    if status != 0:
        detail = str(stderr or "").strip() or f"exit code {status}"
        raise GitError(f"git {command} failed in {repo.working_dir}: {detail}")
    return bytes(stdout or b"")


def open_repo(path: Path) -> git.Repo:
    """The git checkout containing ``path`` (parent directories are searched).

    Raises GitError when there is no checkout (or only a bare repository) there.
    """
    try:
        repo = SafeRepo(os.fspath(path), search_parent_directories=True)
    except git.NoSuchPathError as exc:
        raise GitError(f"{path} does not exist; {_CHECKOUT_HINT}") from exc
    except git.InvalidGitRepositoryError as exc:
        raise GitError(f"{path} is not a git checkout; {_CHECKOUT_HINT}") from exc
    if repo.bare or repo.working_tree_dir is None:
        repo.close()
        raise GitError(f"{path} is not a git checkout; {_CHECKOUT_HINT}")
    # Fail here, with git's own words, if git cannot use the repository at all.
    try:
        _run(repo, "rev_parse", "--is-inside-work-tree")
    except GitError:
        repo.close()
        raise
    return repo


def _resolve_commit(repo: git.Repo, rev: str) -> str | None:
    """The full sha of commit ``rev``, or None when no such commit exists locally."""
    if not rev or rev.startswith("-") or any(c.isspace() for c in rev):
        return None
    try:
        out = _run(repo, "rev_parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except GitError:
        return None
    sha = out.decode("ascii", errors="replace").strip()
    return sha or None


def has_commit(repo: git.Repo, sha: str) -> bool:
    """Whether ``sha`` names a commit present in the local object store."""
    return _resolve_commit(repo, sha) is not None


def head_commit(repo: git.Repo) -> CommitInfo:
    """The checked-out commit (HEAD), detached or not."""
    if _resolve_commit(repo, "HEAD") is None:
        raise GitError(f"the repository at {repo.working_dir} has no commit checked out")
    out = _run(repo, "log", "-1", "--no-show-signature", "--format=%H%x00%s%x00%an%x00%ae", "HEAD")
    fields = out.decode("utf-8", errors="replace").rstrip("\n").split("\x00")
    if len(fields) != 4:
        raise GitError(f"could not read the HEAD commit of {repo.working_dir}")
    sha, subject, author_name, author_email = fields
    return CommitInfo(sha=sha, subject=subject, author_name=author_name, author_email=author_email)


def changed_files(repo: git.Repo, base: str, head: str) -> list[str]:
    """Repo-relative POSIX paths that differ between commits ``base`` and ``head``.

    Renames count as a deletion plus an addition (both paths); deletions count.
    Raises GitError when either commit is not in the local repository.
    """
    resolved: list[str] = []
    for label, rev in (("base", base), ("head", head)):
        sha = _resolve_commit(repo, rev)
        if sha is None:
            raise GitError(
                f"the {label} commit {rev or '(empty)'!r} is not in the repository at "
                f"{repo.working_dir}; fetch it first (actions/checkout with fetch-depth: 0, "
                "or git fetch origin <sha>)"
            )
        resolved.append(sha)
    # -z: NUL-separated and unquoted, so spaces, newlines and non-ASCII names survive.
    out = _run(repo, "diff", "--name-only", "-z", "--no-renames", resolved[0], resolved[1], "--")
    names = out.decode("utf-8", errors="replace").split("\x00")
    return sorted({name for name in names if name})


def repo_relative(repo: git.Repo, path: Path) -> str:
    """``path`` as a POSIX path relative to the repository's working tree ("." for the root).

    Raises GitError when ``path`` lies outside the working tree.
    """
    if repo.working_tree_dir is None:
        raise GitError(f"the repository at {repo.git_dir} has no working tree")
    top = Path(os.path.realpath(repo.working_tree_dir))
    target = Path(os.path.realpath(path))
    try:
        rel = target.relative_to(top)
    except ValueError:
        raise GitError(f"{path} is outside the git checkout at {top}") from None
    return rel.as_posix() or "."


def strip_credentials(url: str) -> str:
    """``url`` without userinfo (``https://user:token@host/x`` -> ``https://host/x``).

    scp-like addresses (``git@host:owner/repo``) and local paths carry no password and
    are returned unchanged.
    """
    url = url.strip()
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def remote_url(repo: git.Repo) -> str | None:
    """The URL of the ``origin`` remote with credentials stripped, or None without one."""
    try:
        out = _run(repo, "config", "--get", "remote.origin.url")
    except GitError:
        return None
    url = out.decode("utf-8", errors="replace").strip()
    return strip_credentials(url) or None


# --- fetching what a shallow checkout lacks --------------------------------------------
#
# actions/checkout fetches a single commit by default (fetch-depth: 1), so the commit to
# diff against, and the history linking it to HEAD, are usually missing. They are fetched
# from ``origin`` with the credentials checkout stored in the repository's own config:
# git simply runs in the repository, and nothing secret is ever put on a command line.
# Only shas and ref names reach git, as separate arguments (no shell), and every git
# message surfaced here has URL credentials removed.

_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_ABBREVIATED_SHA = re.compile(r"[0-9a-fA-F]{4,63}")
# What git's check-ref-format refuses, plus a leading "+" (a forced refspec) or "-".
_NOT_A_REF_NAME = re.compile(
    r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^[-+/.]|/\.|\.lock(?:/|$)|[/.]$"
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/]*@")
_GONE_FROM_ORIGIN = ("not our ref", "unadvertised object", "no such remote ref")


@dataclass(frozen=True)
class Resolved:
    """The outcome of :func:`ensure_commit`."""

    sha: str | None
    """The full sha of the commit, now present locally; None when it could not be had."""
    detail: str
    """What happened, for the log ("present locally", "fetched from origin", or why not)."""


def _quiet(_message: str) -> None:
    """The default ``log``: say nothing."""


def _scrub(text: str) -> str:
    """``text`` with the userinfo of every URL in it removed (``https://u:p@h`` -> ``https://h``)."""
    return _URL_USERINFO.sub(r"\1", text)


def _error_line(stderr: str, status: int) -> str:
    """The line of git's stderr that explains a failure, credentials removed."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    chosen = next((line for line in lines if line.startswith(("fatal:", "error:"))), None)
    line = chosen or (lines[0] if lines else f"exit code {status}")
    return _scrub(line)[:300]


def _short(sha: str) -> str:
    return sha[:12]


def _git(
    repo: git.Repo, command: str, *args: str, timeout: float | None = None
) -> tuple[int, str, str]:
    """Run ``git <command> <args>`` in ``repo``: (exit status, stdout, stderr).

    A failing command is reported by its status, for the caller to interpret; a git that
    cannot be started at all raises GitError. A command still running after ``timeout``
    seconds is killed and reported with a negative status.
    """
    try:
        status, stdout, stderr = getattr(repo.git, command)(
            *args,
            with_extended_output=True,
            with_exceptions=False,
            kill_after_timeout=timeout,
        )
    except (git.GitCommandNotFound, git.GitCommandError) as exc:
        raise GitError(f"could not run git {command}: {_scrub(str(exc))}") from exc
    return int(status), str(stdout or ""), str(stderr or "")


def _require_revs(*revs: str) -> None:
    """GitError unless every rev could be a sha or ref (not empty, not an option)."""
    for rev in revs:
        if not rev or rev.startswith("-") or any(c.isspace() for c in rev):
            raise GitError(f"{rev!r} is not a commit")


def is_shallow(repo: git.Repo) -> bool:
    """Whether the repository is a shallow clone (some commits' parents were not fetched)."""
    out = _run(repo, "rev_parse", "--is-shallow-repository")
    return out.decode("ascii", errors="replace").strip() == "true"


def _has_origin(repo: git.Repo) -> bool:
    """Whether a remote named ``origin`` is configured (its URL is never read)."""
    return "origin" in _run(repo, "remote").decode("utf-8", errors="replace").split()


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


def _fetch_failure(rev: str, is_sha: bool, status: int, stderr: str) -> str:
    """Why ``git fetch`` of ``rev`` failed, in words for the log."""
    if status < 0:
        return f"git fetch did not finish within {FETCH_TIMEOUT_SECONDS:g} seconds"
    lowered = stderr.lower()
    if is_sha and any(marker in lowered for marker in _GONE_FROM_ORIGIN):
        return "not on origin (force-pushed away?)"
    if not is_sha and "couldn't find remote ref" in lowered:
        hint = ""
        if _ABBREVIATED_SHA.fullmatch(rev):
            hint = " (an abbreviated sha cannot be fetched: pass the full sha)"
        return f"no ref named {rev!r} on origin{hint}"
    return f"fetch from origin failed: {_error_line(stderr, status)}"


def ensure_commit(
    repo: git.Repo, rev: str, *, log: Callable[[str], None] | None = None
) -> Resolved:
    """Make commit ``rev`` present locally, fetching it from ``origin`` if need be.

    ``rev`` is a full or abbreviated sha or a ref name ("main", "v1.2", "origin/main",
    "refs/heads/x"). An empty or all-zero ``rev`` (a push that created the branch) and
    one starting with "-" are answered without running git. A commit that cannot be had
    (force-pushed away, no origin, no network...) is not an error: ``sha`` is None and
    ``detail`` says why. A shallow repository fetches with ``--depth=1`` (see
    :func:`connect_history` for the history in between); a complete one fetches
    without a depth, so it stays complete and only the missing commits are transferred.
    Raises GitError only when git cannot be run in the repository at all.
    """
    rev = rev.strip()
    if not rev:
        return Resolved(None, "no revision given: no previous commit")
    if is_null_sha(rev):
        return Resolved(None, "all-zero sha: no previous commit")
    if rev.startswith("-"):
        return Resolved(None, "not a commit or ref")
    local = _resolve_commit(repo, rev)
    if local is not None:
        return Resolved(local, "present locally")
    target = _fetch_target(rev)
    if target is None:
        return Resolved(
            None, "not present locally, and only a full sha or a ref name can be fetched"
        )
    if not _has_origin(repo):
        return Resolved(None, "no remote named origin")
    name, is_sha = target
    (log or _quiet)(f"Fetching {rev} from origin")
    depth = ["--depth=1"] if is_shallow(repo) else []
    status, _, stderr = _git(
        repo,
        "fetch",
        "--no-tags",
        "--no-recurse-submodules",
        *depth,
        "origin",
        name,
        timeout=FETCH_TIMEOUT_SECONDS,
    )
    if status != 0:
        return Resolved(None, _fetch_failure(rev, is_sha, status, stderr))
    fetched = _resolve_commit(repo, name if is_sha else "FETCH_HEAD")
    if fetched is None:
        return Resolved(None, "fetched from origin, but it is not a commit")
    return Resolved(fetched, "fetched from origin")


def _merge_base(repo: git.Repo, base: str, head: str) -> str | None:
    """``git merge-base base head`` over the history present locally; None when none."""
    _require_revs(base, head)
    status, stdout, stderr = _git(repo, "merge_base", base, head)
    if status == 1:
        return None
    if status != 0:
        raise GitError(f"git merge-base {base} {head} failed: {_error_line(stderr, status)}")
    return stdout.split()[0] if stdout.split() else None


def _truncated_history(repo: git.Repo, tip: str, shallow: frozenset[str]) -> int:
    """How many commits of ``tip``'s history are here if it stops at a shallow boundary, else 0."""
    history = _run(repo, "rev_list", tip).decode("ascii", errors="replace").split()
    return len(history) if shallow.intersection(history) else 0


def _shallow_commits(repo: git.Repo) -> frozenset[str]:
    """The commits whose parents a shallow clone lacks (git's ``shallow`` file)."""
    rel = _run(repo, "rev_parse", "--git-path", "shallow").decode("utf-8", errors="replace")
    try:
        text = Path(repo.working_dir, rel.strip()).read_text(encoding="ascii")
    except FileNotFoundError:
        return frozenset()
    return frozenset(text.split())


def connect_history(
    repo: git.Repo,
    base: str,
    head: str,
    *,
    max_depth: int = 4096,
    log: Callable[[str], None] | None = None,
) -> str | None:
    """The merge base of commits ``base`` and ``head`` (both present), fetching history as needed.

    When the history present locally does not link them and the clone is shallow, the
    truncated histories are deepened from ``origin`` with ``git fetch --depth=<n>`` for
    n = 2, 4, 8, ... up to ``max_depth``, retrying after each step (each is logged). A
    depth is only used when it exceeds the history already present, so nothing fetched
    before is cut off, and a complete history is never made shallow. Returns None when
    the histories are unrelated, ``max_depth`` is reached or a fetch fails.
    """
    say = log or _quiet
    found = _merge_base(repo, base, head)
    if found is not None or not is_shallow(repo):
        return found
    if not _has_origin(repo):
        say("Cannot deepen the shallow clone: no remote named origin")
        return None
    pair = f"{_short(base)} and {_short(head)}"
    depth = 2
    while True:
        shallow = _shallow_commits(repo)
        truncated = {
            tip: n
            for tip in dict.fromkeys((head, base))
            if (n := _truncated_history(repo, tip, shallow))
        }
        if not truncated:
            return None  # both histories are complete and share no commit
        while depth <= max(truncated.values()) and depth < max_depth:
            depth *= 2
        depth = min(depth, max_depth)
        if depth <= max(truncated.values()):
            say(f"No merge base of {pair} within {max_depth} commits")
            return None
        say(f"Deepening the shallow clone to {depth} commits to find the merge base of {pair}")
        status, _, stderr = _git(
            repo,
            "fetch",
            "--no-tags",
            "--no-recurse-submodules",
            f"--depth={depth}",
            "origin",
            *truncated,
            timeout=FETCH_TIMEOUT_SECONDS,
        )
        if status != 0:
            reason = _fetch_failure(head, True, status, stderr)
            say(f"Could not deepen the shallow clone: {reason}")
            return None
        found = _merge_base(repo, base, head)
        if found is not None:
            return found
        if depth >= max_depth:
            say(f"No merge base of {pair} within {max_depth} commits")
            return None
        depth *= 2


def is_ancestor(repo: git.Repo, ancestor: str, descendant: str) -> bool:
    """Whether commit ``ancestor`` is ``descendant`` or one of its ancestors.

    Only the history present locally is searched: in a shallow clone the answer is
    False when the link lies beyond the fetched history, so call
    :func:`connect_history` first there. Raises GitError when either commit is missing.
    """
    _require_revs(ancestor, descendant)
    status, _, stderr = _git(repo, "merge_base", "--is-ancestor", ancestor, descendant)
    if status in (0, 1):
        return status == 0
    raise GitError(
        f"git merge-base --is-ancestor {ancestor} {descendant} failed: "
        f"{_error_line(stderr, status)}"
    )
