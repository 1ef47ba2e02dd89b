"""Build real git repositories in temporary folders for tests.

``GitRepo(path)`` creates a repository on branch ``main``; ``write``/``delete``/
``commit`` change it and ``commit`` returns the new sha (``commit_many`` adds thousands at
once). Git runs as a subprocess with a
fixed identity, fixed commit dates (one second apart) and no user or system config, so
the shas are the same on every machine and no signing or hook setting interferes.
The helper never goes through ci_deploy, so it is independent of the code under test.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

AUTHOR_NAME = "Ada Lovelace"
AUTHOR_EMAIL = "ada@example.com"
_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z


def git_env(**extra: str) -> dict[str, str]:
    """The environment the helper runs git with: isolated from the user's config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_AUTHOR_NAME=AUTHOR_NAME,
        GIT_AUTHOR_EMAIL=AUTHOR_EMAIL,
        GIT_COMMITTER_NAME=AUTHOR_NAME,
        GIT_COMMITTER_EMAIL=AUTHOR_EMAIL,
    )
    env.update(extra)
    return env


def run_git(cwd: Path, *args: str, **env: str) -> str:
    """Run ``git args`` in ``cwd`` and return stdout; fail loudly with git's stderr."""
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=git_env(**env), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


class GitRepo:
    """A working repository at ``path``: ``GitRepo(path)`` creates it unless it exists."""

    def __init__(self, path: Path, *, branch: str = "main") -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        if not (self.path / ".git").exists():
            run_git(self.path, "init", "-q", "-b", branch)
        self._commits = int(self.git("rev-list", "--all", "--count").strip() or "0")

    @classmethod
    def init(cls, path: Path, *, branch: str = "main") -> GitRepo:
        """Same as ``GitRepo(path)``: a new (or the existing) repository at ``path``."""
        return cls(path, branch=branch)

    @classmethod
    def clone(
        cls,
        origin_url: str | Path,
        path: Path,
        depth: int | None = 1,
        branch: str | None = None,
    ) -> GitRepo:
        """Clone ``origin_url`` into ``path`` like actions/checkout: ``depth`` commits deep.

        A path is turned into a ``file://`` URL so ``--depth`` is honoured (git ignores it
        for plain local paths); ``depth=None`` makes a complete clone. ``branch`` picks the
        branch to check out (default: origin's HEAD). A shallow clone fetches that one
        branch only, like actions/checkout.
        """
        url = Path(origin_url).resolve().as_uri() if isinstance(origin_url, Path) else origin_url
        args = ["clone", "-q"]
        if depth is not None:
            args.append(f"--depth={depth}")
        if branch is not None:
            args += ["--branch", branch]
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        run_git(target.parent, *args, "--", url, str(target))
        return cls(target)

    def git(self, *args: str, **env: str) -> str:
        """Run a git command in the repository; returns stdout."""
        return run_git(self.path, *args, **env)

    def write(self, rel: str, text: str = "", *, executable: bool = False) -> Path:
        """Write ``text`` to ``rel`` (parent folders created); returns the file's path."""
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        if executable:
            target.chmod(0o755)
        return target

    def write_bytes(self, rel: str, data: bytes) -> Path:
        """Write raw ``data`` to ``rel``; returns the file's path."""
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    def delete(self, rel: str) -> None:
        """Remove the file or folder ``rel`` from the working tree."""
        target = self.path / rel
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()

    def rename(self, old: str, new: str) -> None:
        """Move ``old`` to ``new`` in the working tree (parent folders created)."""
        target = self.path / new
        target.parent.mkdir(parents=True, exist_ok=True)
        (self.path / old).rename(target)

    def commit(self, message: str = "change", *, author: tuple[str, str] | None = None) -> str:
        """Stage everything and commit (empty commits allowed); returns the new sha."""
        self._commits += 1
        date = f"@{_EPOCH + self._commits} +0000"
        env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
        if author is not None:
            env.update(GIT_AUTHOR_NAME=author[0], GIT_AUTHOR_EMAIL=author[1])
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "--no-verify", "-m", message, **env)
        return self.head()

    def commit_many(self, count: int, rel: str, *, message: str = "change") -> str:
        """Add ``count`` commits on top of HEAD's branch, each rewriting ``rel`` with its
        number, in one ``git fast-import`` (thousands take a second); returns the new head.

        The working tree and index are reset to the new head: uncommitted changes are lost.
        """
        if count < 1:
            raise ValueError("count must be at least 1")
        branch = self.git("symbolic-ref", "HEAD").strip()
        parent = self.head()
        stream = io.BytesIO()
        for n in range(count):
            self._commits += 1
            text = f"{message} {n + 1}".encode()
            data = f"{n + 1}\n".encode()
            stream.write(f"commit {branch}\n".encode())
            for role in ("author", "committer"):
                stamp = f"{AUTHOR_NAME} <{AUTHOR_EMAIL}> {_EPOCH + self._commits} +0000"
                stream.write(f"{role} {stamp}\n".encode())
            stream.write(b"data %d\n%s\n" % (len(text), text))
            if n == 0:
                stream.write(f"from {parent}\n".encode())
            stream.write(b"M 100644 inline %s\ndata %d\n%s\n" % (rel.encode(), len(data), data))
        proc = subprocess.run(
            ["git", "fast-import", "--quiet"],
            cwd=self.path,
            env=git_env(),
            input=stream.getvalue(),
            capture_output=True,
            check=False,
            timeout=120,
        )
        if proc.returncode != 0:
            raise AssertionError(f"git fast-import failed: {proc.stderr.decode(errors='replace')}")
        self.git("reset", "-q", "--hard", branch)
        return self.head()

    def head(self) -> str:
        """The sha of HEAD."""
        return self.git("rev-parse", "HEAD").strip()

    def has_commit(self, rev: str) -> bool:
        """Whether ``rev`` names a commit in the local object store (asked of git directly)."""
        proc = subprocess.run(
            ["git", "cat-file", "-e", f"{rev}^{{commit}}"],
            cwd=self.path,
            env=git_env(),
            capture_output=True,
            check=False,
        )
        return proc.returncode == 0

    def checkout(self, ref: str, *, new_branch: bool = False) -> None:
        """Check out ``ref``; with ``new_branch`` create branch ``ref`` at HEAD first."""
        if new_branch:
            self.git("checkout", "-q", "-b", ref)
        else:
            self.git("checkout", "-q", ref)

    def add_origin(self, bare_path: Path | None = None, *, push: bool = True) -> Path:
        """Create a bare repository (default: ``<path>.origin.git``), add it as ``origin``.

        With ``push`` the current branch is pushed to it and set as upstream.
        """
        bare = (
            Path(bare_path)
            if bare_path is not None
            else self.path.with_name(self.path.name + ".origin.git")
        )
        run_git(self.path.parent, "init", "-q", "--bare", "-b", "main", str(bare))
        self.set_remote("origin", str(bare))
        if push:
            self.push()
        return bare

    def set_remote(self, name: str, url: str) -> None:
        """Point remote ``name`` at ``url``, adding it when missing."""
        remotes = self.git("remote").split()
        self.git("remote", "set-url" if name in remotes else "add", name, url)

    def push(self, branch: str | None = None, remote: str = "origin") -> None:
        """Push ``branch`` (default: the current one) to ``remote`` and set the upstream."""
        branch = branch or self.git("rev-parse", "--abbrev-ref", "HEAD").strip()
        self.git("push", "-q", "-u", remote, branch)


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise TimeoutError in the block once ``seconds`` have passed (SIGALRM, main thread)."""

    def expired(_signum: int, _frame: FrameType | None) -> None:
        raise TimeoutError(f"test ran longer than {seconds} seconds")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
