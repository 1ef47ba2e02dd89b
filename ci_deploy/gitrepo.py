"""The git checkout, through GitPython: opening it, its commits, diffs and ancestry.

Every git command goes through the one runner, :func:`run_git`. Every git process this
module starts (and every one started through a repository that :func:`open_repo` returns)
carries ``safe.directory=*`` and ``GIT_TERMINAL_PROMPT=0``: the
action runs as root in a container while the checkout belongs to the runner user, and git
refuses such a repository ("detected dubious ownership") unless ``safe.directory`` comes
from protected (system, global or command-line) configuration.

Fetching what a shallow checkout lacks is :mod:`ci_deploy.gitfetch`, through the same
runner.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from ci_deploy.errors import GitError
from ci_deploy.source import CommitInfo, strip_credentials


def _lazy_module(name: str) -> ModuleType:
    """``name``, loaded on its first attribute access (:class:`importlib.util.LazyLoader`)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"No module named {name!r}")
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


if TYPE_CHECKING:
    import git
else:  # GitPython loads when a repository is first opened: a run's first API request
    git = _lazy_module("git")  # goes out without waiting for it

_CHECKOUT_HINT = "run actions/checkout before this step"
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/]*@")


# --- the one git runner -------------------------------------------------------------------


@dataclass(frozen=True)
class GitOutput:
    """What one git command did (see :func:`run_git`): its exit status (negative: killed),
    stdout and stderr."""

    status: int
    stdout: str
    stderr: str


def run_git(
    repo: git.Repo, command: str, *args: str, check: bool = True, timeout: float | None = None
) -> GitOutput:
    """Run ``git <command> <args>`` in ``repo``; stdout decoded as UTF-8, newlines kept.

    Bytes that are not UTF-8 (a file name's, say) become ``\\xNN``, as
    :func:`ci_deploy.bundle.shown` writes a file name read from the file system.

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
        stdout = stdout.decode("utf-8", errors="backslashreplace")
    result = GitOutput(int(status), str(stdout or ""), str(stderr or ""))
    if check and result.status != 0:
        detail = _scrub(result.stderr.strip()) or f"exit code {result.status}"
        raise GitError(f"git {command} failed in {repo.working_dir}: {detail}")
    return result


def _scrub(text: str) -> str:
    """``text`` with the userinfo of every URL in it removed (``https://u:p@h`` -> ``https://h``)."""
    return _URL_USERINFO.sub(r"\1", text)


def error_line(result: GitOutput) -> str:
    """The line of git's stderr that explains the failure ``result``, credentials removed,
    at most 300 characters: for an error message or the log."""
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    chosen = next((line for line in lines if line.startswith(("fatal:", "error:"))), None)
    line = chosen or (lines[0] if lines else f"exit code {result.status}")
    return _scrub(line)[:300]


def is_rev(rev: str) -> bool:
    """Whether ``rev`` may reach git as a revision: not empty, no option, no whitespace.

    Every revision taken from outside (an input, an event, a deployment's metadata) is
    checked with this before it is put on a git command line.
    """
    return bool(rev) and not rev.startswith("-") and not any(c.isspace() for c in rev)


# --- the repository and its commits --------------------------------------------------------


def open_repo(path: Path) -> git.Repo:
    """The git checkout containing ``path`` (parent directories are searched).

    Raises GitError when there is no checkout (or only a bare repository) there.
    """
    from ci_deploy.gitsafe import SafeRepo

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
        run_git(repo, "rev_parse", "--is-inside-work-tree")
    except GitError:
        repo.close()
        raise
    return repo


def resolve_commit(repo: git.Repo, rev: str) -> str | None:
    """The full sha of commit ``rev``, or None when no such commit exists locally."""
    if not is_rev(rev):
        return None
    result = run_git(repo, "rev_parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    return (result.stdout.strip() or None) if result.status == 0 else None


def head_commit(repo: git.Repo) -> CommitInfo:
    """The checked-out commit (HEAD), detached or not."""
    if resolve_commit(repo, "HEAD") is None:
        raise GitError(f"the repository at {repo.working_dir} has no commit checked out")
    out = run_git(
        repo, "log", "-1", "--no-show-signature", "--format=%H%x00%s%x00%an%x00%ae", "HEAD"
    )
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
        sha = resolve_commit(repo, rev)
        if sha is None:
            raise GitError(
                f"the {label} commit {rev or '(empty)'!r} is not in the repository at "
                f"{repo.working_dir}; fetch it first (actions/checkout with fetch-depth: 0, "
                "or git fetch origin <sha>)"
            )
        resolved.append(sha)
    # -z: NUL-separated and unquoted, so spaces, newlines and non-ASCII names survive.
    out = run_git(repo, "diff", "--name-only", "-z", "--no-renames", *resolved, "--")
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


def unfetched_submodules(repo: git.Repo, folder: Path) -> list[str]:
    """The submodules under ``folder`` whose files the working tree lacks, sorted.

    A submodule is a gitlink entry (mode 160000) in the index; a checkout made without its
    submodules (actions/checkout's default) leaves its folder empty. Repository-relative
    POSIX paths. Raises GitError when ``folder`` lies outside the working tree.
    """
    rel = repo_relative(repo, folder)
    top = Path(repo.working_tree_dir or ".")
    # "--" and :(literal): the folder is a path, never an option or a glob.
    pathspec = () if rel == "." else ("--", f":(literal){rel}")
    out = run_git(repo, "ls_files", "--stage", "-z", *pathspec)
    lacking: list[str] = []
    for entry in out.stdout.split("\x00"):
        meta, _, path = entry.partition("\t")
        if not meta.startswith("160000 "):
            continue
        try:
            fetched = any((top / path).iterdir())
        except OSError:  # missing, or not a folder
            fetched = False
        if not fetched:
            lacking.append(path)
    return sorted(lacking)


def remote_url(repo: git.Repo) -> str | None:
    """The URL of the ``origin`` remote with credentials stripped, or None without one."""
    result = run_git(repo, "config", "--get", "remote.origin.url", check=False)
    return (strip_credentials(result.stdout) or None) if result.status == 0 else None


# --- ancestry -----------------------------------------------------------------------------


def _merge_base(repo: git.Repo, *args: str) -> GitOutput:
    """``git merge-base <args>`` (the last two are commits) over the local history.

    Exit status 1 ("none", "no") is an answer; any other failure raises GitError.
    """
    for rev in args[-2:]:
        if not is_rev(rev):
            raise GitError(f"{rev!r} is not a commit")
    result = run_git(repo, "merge_base", *args, check=False)
    if result.status not in (0, 1):
        raise GitError(f"git merge-base {' '.join(args)} failed: {error_line(result)}")
    return result


def merge_base(repo: git.Repo, base: str, head: str) -> str | None:
    """The best common ancestor of commits ``base`` and ``head`` in the local history.

    None when the history present locally links them through no commit (in a shallow
    clone the link may lie beyond it: see :func:`ci_deploy.gitfetch.connect_history`).
    Raises GitError when either commit is missing.
    """
    result = _merge_base(repo, base, head)
    shas = result.stdout.split() if result.status == 0 else []
    return shas[0] if shas else None


def is_ancestor(repo: git.Repo, ancestor: str, descendant: str) -> bool:
    """Whether commit ``ancestor`` is ``descendant`` or one of its ancestors.

    Only the history present locally is searched: in a shallow clone the answer is
    False when the link lies beyond the fetched history, so call
    :func:`ci_deploy.gitfetch.connect_history` first there. Raises GitError when either
    commit is missing.
    """
    return _merge_base(repo, "--is-ancestor", ancestor, descendant).status == 0


def blob_ids(repo: git.Repo, commit: str, folder: str) -> dict[str, str]:
    """The files under repository-relative ``folder`` at ``commit``: repository-relative POSIX
    path to git blob id (regular files; symlinks and submodules left out).

    Paths that are not UTF-8 are written as :func:`run_git` decodes them. Empty when the
    folder is not in that commit, or git cannot read it (e.g. the commit is missing).
    """
    if not is_rev(commit):
        return {}
    folder = "" if folder in ("", ".") else folder.strip("/")
    # <commit>:<path> names the folder's tree: the path is never a glob or an option.
    out = run_git(repo, "ls_tree", "-r", "-z", f"{commit}:{folder}", check=False)
    if out.status != 0:
        return {}
    blobs: dict[str, str] = {}
    for entry in out.stdout.split("\x00"):
        meta, _, name = entry.partition("\t")
        mode, _, rest = meta.partition(" ")
        kind, _, blob = rest.partition(" ")
        if kind == "blob" and mode in ("100644", "100755"):
            blobs[f"{folder}/{name}" if folder else name] = blob
    return blobs
