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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import git
from git.types import PathLike

from ci_deploy.errors import GitError
from ci_deploy.source import CommitInfo, is_null_sha
from ci_deploy.source import strip_credentials as strip_credentials  # re-exported

FETCH_TIMEOUT_SECONDS = 300.0
"""How long one ``git fetch`` from origin may run before it is killed."""

_CHECKOUT_HINT = "run actions/checkout before this step"
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/]*@")


class SafeGit(git.Git):
    """A :class:`git.Git` whose every command trusts any repository owner and never prompts.

    ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_<n>``/``GIT_CONFIG_VALUE_<n>`` (git >= 2.31) act
    like ``git -c key=value``, i.e. command-line scope, which git honours for
    ``safe.directory`` (repository-local config would not count); the entry is appended
    after any the environment already defines, so those keep working. GitPython overlays
    the instance's environment on ``os.environ`` for each process it starts (including
    its persistent ``cat-file`` helpers), so this covers every call made through it.
    """

    def __init__(self, working_dir: PathLike | None = None) -> None:
        super().__init__(working_dir)
        try:
            count = max(int(os.environ.get("GIT_CONFIG_COUNT", "0") or "0"), 0)
        except ValueError:
            count = 0
        self.update_environment(
            GIT_CONFIG_COUNT=str(count + 1),
            **{f"GIT_CONFIG_KEY_{count}": "safe.directory", f"GIT_CONFIG_VALUE_{count}": "*"},
            GIT_TERMINAL_PROMPT="0",
        )


class SafeRepo(git.Repo):
    """A :class:`git.Repo` that talks to git only through :class:`SafeGit`.

    ``Repo.__init__`` builds ``self.git`` from ``GitCommandWrapperType`` before anything
    can run git, so the repository is opened and used under ``safe.directory=*``.
    """

    GitCommandWrapperType = SafeGit


@dataclass(frozen=True)
class _Output:
    """What one git command did: its exit status (negative: killed), stdout and stderr."""

    status: int
    stdout: str
    stderr: str


def _git(
    repo: git.Repo, command: str, *args: str, check: bool = True, timeout: float | None = None
) -> _Output:
    """Run ``git <command> <args>`` in ``repo``; stdout decoded as UTF-8, newlines kept.

    With ``check``, a non-zero exit raises GitError quoting git's stderr; without, the
    caller reads ``status``. A command still running after ``timeout`` seconds is killed
    (a negative status). A git that cannot be started at all always raises GitError.
    """
    try:
        status, stdout, stderr = getattr(repo.git, command)(
            *args,
            with_extended_output=True,
            with_exceptions=False,
            stdout_as_string=False,
            strip_newline_in_stdout=False,
            kill_after_timeout=timeout,
        )
    except git.GitCommandNotFound as exc:
        reason = f"git is not installed or not on PATH ({_scrub(str(exc))})"
        raise GitError(f"could not run git {command}: {reason}") from exc
    except git.GitCommandError as exc:
        raise GitError(f"could not run git {command}: {_scrub(str(exc))}") from exc
    if isinstance(stdout, bytes):
        stdout = stdout.decode("utf-8", errors="replace")
    result = _Output(int(status), str(stdout or ""), str(stderr or ""))
    if check and result.status != 0:
        detail = _scrub(result.stderr.strip()) or f"exit code {result.status}"
        raise GitError(f"git {command} failed in {repo.working_dir}: {detail}")
    return result


def _scrub(text: str) -> str:
    """``text`` with the userinfo of every URL in it removed (``https://u:p@h`` -> ``https://h``)."""
    return _URL_USERINFO.sub(r"\1", text)


def _error_line(result: _Output) -> str:
    """The line of git's stderr that explains a failure, credentials removed."""
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    chosen = next((line for line in lines if line.startswith(("fatal:", "error:"))), None)
    line = chosen or (lines[0] if lines else f"exit code {result.status}")
    return _scrub(line)[:300]


def _is_rev(rev: str) -> bool:
    """Whether ``rev`` may reach git as a revision: not empty, no option, no whitespace."""
    return bool(rev) and not rev.startswith("-") and not any(c.isspace() for c in rev)


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
        _git(repo, "rev_parse", "--is-inside-work-tree")
    except GitError:
        repo.close()
        raise
    return repo


def _resolve_commit(repo: git.Repo, rev: str) -> str | None:
    """The full sha of commit ``rev``, or None when no such commit exists locally."""
    if not _is_rev(rev):
        return None
    result = _git(repo, "rev_parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    return (result.stdout.strip() or None) if result.status == 0 else None


def head_commit(repo: git.Repo) -> CommitInfo:
    """The checked-out commit (HEAD), detached or not."""
    if _resolve_commit(repo, "HEAD") is None:
        raise GitError(f"the repository at {repo.working_dir} has no commit checked out")
    out = _git(repo, "log", "-1", "--no-show-signature", "--format=%H%x00%s%x00%an%x00%ae", "HEAD")
    fields = out.stdout.rstrip("\n").split("\x00")
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
    out = _git(repo, "diff", "--name-only", "-z", "--no-renames", *resolved, "--")
    return sorted({name for name in out.stdout.split("\x00") if name})


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


def remote_url(repo: git.Repo) -> str | None:
    """The URL of the ``origin`` remote with credentials stripped, or None without one."""
    result = _git(repo, "config", "--get", "remote.origin.url", check=False)
    return (strip_credentials(result.stdout) or None) if result.status == 0 else None


# --- fetching what a shallow checkout lacks --------------------------------------------
#
# actions/checkout fetches a single commit by default (fetch-depth: 1), so the commit to
# diff against, and the history linking it to HEAD, are usually missing. They are fetched
# from ``origin`` with the credentials checkout stored in the repository's own config:
# git simply runs in the repository, and nothing secret is ever put on a command line.
# Only shas and ref names reach git, and every git message surfaced here is scrubbed.

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


def _quiet(_message: str) -> None:
    """The default ``log``: say nothing."""


def is_shallow(repo: git.Repo) -> bool:
    """Whether the repository is a shallow clone (some commits' parents were not fetched)."""
    return _git(repo, "rev_parse", "--is-shallow-repository").stdout.strip() == "true"


def _has_origin(repo: git.Repo) -> bool:
    """Whether a remote named ``origin`` is configured (its URL is never read)."""
    return "origin" in _git(repo, "remote").stdout.split()


def _fetch(repo: git.Repo, *args: str) -> _Output:
    """``git fetch --no-tags --no-recurse-submodules <args>``, killed after the timeout."""
    options = ("--no-tags", "--no-recurse-submodules")
    return _git(repo, "fetch", *options, *args, check=False, timeout=FETCH_TIMEOUT_SECONDS)


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


def _fetch_failure(rev: str, is_sha: bool, result: _Output) -> str:
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
    return f"fetch from origin failed: {_error_line(result)}"


def ensure_commit(
    repo: git.Repo, rev: str, *, log: Callable[[str], None] | None = None
) -> Resolved:
    """Make commit ``rev`` present locally, fetching it from ``origin`` if need be.

    ``rev`` is a full or abbreviated sha or a ref name ("main", "v1.2", "origin/main",
    "refs/heads/x"). An empty or all-zero ``rev`` (a push that created the branch) and
    one that is no rev (see :func:`_is_rev`) are answered without running git. A commit
    that cannot be had (force-pushed away, no origin, no network...) is not an error:
    ``sha`` is None and ``detail`` says why. A shallow repository fetches with
    ``--depth=1`` (see :func:`connect_history` for the history in between); a complete
    one fetches without a depth, so it stays complete and only the missing commits are
    transferred. Raises GitError only when git cannot be run in the repository at all.
    """
    rev = rev.strip()
    if not rev:
        return Resolved(None, "no revision given: no previous commit")
    if is_null_sha(rev):
        return Resolved(None, "all-zero sha: no previous commit")
    if not _is_rev(rev):
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
    result = _fetch(repo, *(["--depth=1"] if is_shallow(repo) else []), "origin", name)
    if result.status != 0:
        return Resolved(None, _fetch_failure(rev, is_sha, result))
    fetched = _resolve_commit(repo, name if is_sha else "FETCH_HEAD")
    if fetched is None:
        return Resolved(None, "fetched from origin, but it is not a commit")
    return Resolved(fetched, "fetched from origin")


def _merge_base(repo: git.Repo, *args: str) -> _Output:
    """``git merge-base <args>`` (the last two are commits) over the local history.

    Exit status 1 ("none", "no") is an answer; any other failure raises GitError.
    """
    for rev in args[-2:]:
        if not _is_rev(rev):
            raise GitError(f"{rev!r} is not a commit")
    result = _git(repo, "merge_base", *args, check=False)
    if result.status not in (0, 1):
        raise GitError(f"git merge-base {' '.join(args)} failed: {_error_line(result)}")
    return result


def _shallow_commits(repo: git.Repo) -> frozenset[str]:
    """The commits whose parents a shallow clone lacks (git's ``shallow`` file)."""
    rel = _git(repo, "rev_parse", "--git-path", "shallow").stdout.strip()
    try:
        return frozenset(Path(repo.working_dir, rel).read_text(encoding="ascii").split())
    except FileNotFoundError:
        return frozenset()


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

    def merge_base() -> str | None:
        result = _merge_base(repo, base, head)
        shas = result.stdout.split() if result.status == 0 else []
        return shas[0] if shas else None

    found = merge_base()
    if found is not None or not is_shallow(repo):
        return found
    if not _has_origin(repo):
        say("Cannot deepen the shallow clone: no remote named origin")
        return None
    pair = f"{base[:12]} and {head[:12]}"
    depth = 2
    while True:
        # How many commits each tip's history has here, for the histories a shallow
        # boundary cuts off (a complete history is left out).
        shallow = _shallow_commits(repo)
        truncated: dict[str, int] = {}
        for tip in dict.fromkeys((head, base)):
            history = _git(repo, "rev_list", tip).stdout.split()
            if shallow.intersection(history):
                truncated[tip] = len(history)
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
        found = merge_base()
        if found is not None:
            return found
        if depth >= max_depth:
            break
        depth *= 2
    say(f"No merge base of {pair} within {max_depth} commits")
    return None


def is_ancestor(repo: git.Repo, ancestor: str, descendant: str) -> bool:
    """Whether commit ``ancestor`` is ``descendant`` or one of its ancestors.

    Only the history present locally is searched: in a shallow clone the answer is
    False when the link lies beyond the fetched history, so call
    :func:`connect_history` first there. Raises GitError when either commit is missing.
    """
    return _merge_base(repo, "--is-ancestor", ancestor, descendant).status == 0
