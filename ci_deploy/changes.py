"""Git change detection with GitPython.

Every git process this module starts (and every one started through a repository that
:func:`open_repo` returns) carries ``safe.directory=*`` and ``GIT_TERMINAL_PROMPT=0``: the
action runs as root in a container while the checkout belongs to the runner user, and git
refuses such a repository ("detected dubious ownership") unless ``safe.directory`` comes
from protected (system, global or command-line) configuration.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import git
from git.types import PathLike

from ci_deploy.errors import GitError

ZERO_SHA = "0" * 40

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


@dataclass(frozen=True)
class CommitInfo:
    """The commit being deployed."""

    sha: str
    subject: str
    author_name: str
    author_email: str


@dataclass(frozen=True)
class ChangeSet:
    """Changed files sorted into DAG files, image files and files outside the project."""

    dag_files: tuple[str, ...]
    image_files: tuple[str, ...]
    ignored_files: tuple[str, ...]

    @property
    def files(self) -> tuple[str, ...]:
        """Every changed file, sorted."""
        return tuple(sorted((*self.dag_files, *self.image_files, *self.ignored_files)))

    @property
    def relevant(self) -> bool:
        """Whether any DAG or image file changed."""
        return bool(self.dag_files or self.image_files)


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


def _norm(folder: str) -> str:
    """A repo-relative folder in normal form: no "./", no trailing "/", "" for the root."""
    folder = folder.replace("\\", "/").strip()
    normed = posixpath.normpath(folder) if folder else "."
    return "" if normed in (".", "/") else normed.lstrip("/")


def _under(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or inside it, on path-segment boundaries."""
    return not folder or path == folder or path.startswith(folder + "/")


def classify(files: Iterable[str], root_folder: str, dags_folder: str) -> ChangeSet:
    """Sort repo-relative ``files`` by where they sit relative to the project.

    ``root_folder`` is repo-relative ("." is the repository root) and ``dags_folder`` is
    relative to it. Files under ``<root>/<dags>/`` are DAG files, other files under
    ``<root>/`` image files, the rest ignored. Pure: no git, no filesystem.
    """
    root = _norm(root_folder)
    dags = _norm(posixpath.join(root, _norm(dags_folder)) if root else _norm(dags_folder))
    dag_files: set[str] = set()
    image_files: set[str] = set()
    ignored: set[str] = set()
    for name in files:
        path = name[2:] if name.startswith("./") else name
        if not path:
            continue
        if _under(path, dags):
            dag_files.add(path)
        elif _under(path, root):
            image_files.add(path)
        else:
            ignored.add(path)
    return ChangeSet(
        dag_files=tuple(sorted(dag_files)),
        image_files=tuple(sorted(image_files)),
        ignored_files=tuple(sorted(ignored)),
    )


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
