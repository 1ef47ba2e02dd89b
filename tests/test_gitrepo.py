"""Git change detection against real repositories."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import git
import pytest

from ci_deploy.errors import GitError
from ci_deploy.gitfetch import Resolved, connect_history, ensure_commit
from ci_deploy.gitrepo import (
    blob_ids,
    changed_files,
    head_commit,
    is_ancestor,
    merge_base,
    open_repo,
    remote_url,
    repo_relative,
    unfetched_submodules,
)
from ci_deploy.gitsafe import SafeGit
from ci_deploy.source import CommitInfo, strip_credentials
from tests.gitrepo import AUTHOR_EMAIL, AUTHOR_NAME, GitRepo

NULL_SHA = "0" * 40


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    r = GitRepo(tmp_path / "repo")
    r.write("README.md", "hello\n")
    r.write("dags/a.py", "A = 1\n")
    r.write("dags/b.py", "B = 1\n")
    r.write("requirements.txt", "")
    r.commit("initial")
    return r


# --- opening ---------------------------------------------------------------------------


def test_open_repo_from_a_subfolder_finds_the_checkout(repo: GitRepo) -> None:
    opened = open_repo(repo.path / "dags")
    assert Path(opened.working_tree_dir or "").resolve() == repo.path.resolve()
    assert repo_relative(opened, repo.path / "dags") == "dags"
    assert repo_relative(opened, repo.path) == "."


def test_not_a_repo_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    with pytest.raises(GitError, match="is not a git checkout; run actions/checkout"):
        open_repo(tmp_path / "plain")


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="does not exist"):
        open_repo(tmp_path / "nothing")


def test_bare_repository_is_not_a_checkout(repo: GitRepo) -> None:
    bare = repo.add_origin()
    with pytest.raises(GitError, match="is not a git checkout"):
        open_repo(bare)


def test_repo_relative_outside_the_checkout(repo: GitRepo, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="outside the git checkout"):
        repo_relative(open_repo(repo.path), tmp_path)


# --- commits ---------------------------------------------------------------------------


def test_head_commit(repo: GitRepo) -> None:
    sha = repo.commit("Add the thing\n\nWith a body.", author=("Grace Hopper", "grace@example.com"))
    assert head_commit(open_repo(repo.path)) == CommitInfo(
        sha=sha,
        subject="Add the thing",
        author_name="Grace Hopper",
        author_email="grace@example.com",
    )


def test_head_commit_on_a_detached_head(repo: GitRepo) -> None:
    first = repo.head()
    repo.commit("second")
    repo.checkout(first)
    info = head_commit(open_repo(repo.path))
    assert info.sha == first
    assert (info.subject, info.author_name, info.author_email) == (
        "initial",
        AUTHOR_NAME,
        AUTHOR_EMAIL,
    )


def test_head_commit_without_commits(tmp_path: Path) -> None:
    empty = GitRepo(tmp_path / "empty")
    with pytest.raises(GitError, match="no commit"):
        head_commit(open_repo(empty.path))


def test_which_commits_are_present_locally(repo: GitRepo) -> None:
    """Without an origin nothing can be fetched: only a local commit resolves."""
    opened = open_repo(repo.path)
    head = repo.head()
    blob = repo.git("rev-parse", "HEAD:README.md").strip()
    assert ensure_commit(opened, head) == Resolved(head, "present locally")
    assert ensure_commit(opened, head[:10]) == Resolved(head, "present locally")
    assert ensure_commit(opened, NULL_SHA) == Resolved(None, "all-zero sha: no previous commit")
    assert ensure_commit(opened, "1" * 40) == Resolved(None, "no remote named origin")
    # The blob exists, but is not a commit.
    assert ensure_commit(opened, blob) == Resolved(None, "no remote named origin")
    assert ensure_commit(opened, "") == Resolved(None, "no revision given: no previous commit")
    for rev in (NULL_SHA, "1" * 40, blob, ""):
        with pytest.raises(GitError, match=r"base commit .* is not in the repository"):
            changed_files(opened, rev, head)


def _record_git_commands(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every command line the code under test runs git with, from now on."""
    commands: list[list[str]] = []
    real_execute = SafeGit.execute

    def recording(self: SafeGit, command: list[str], **kwargs: object) -> object:
        commands.append([str(part) for part in command])
        return real_execute(self, command, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(SafeGit, "execute", recording)
    return commands


@pytest.mark.parametrize(
    "form", ["--output={out}", "-o{out}", "HEAD --output={out}", "HEAD\n--output={out}"]
)
def test_option_like_or_spaced_revs_never_reach_git(
    repo: GitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    out = tmp_path / "written-by-git"
    rev = form.format(out=out)
    opened = open_repo(repo.path)
    head = repo.head()
    commands = _record_git_commands(monkeypatch)

    with pytest.raises(GitError, match=r"base commit .* is not in the repository"):
        changed_files(opened, rev, head)
    with pytest.raises(GitError, match=r"head commit .* is not in the repository"):
        changed_files(opened, head, rev)
    with pytest.raises(GitError, match="is not a commit"):
        is_ancestor(opened, rev, head)
    with pytest.raises(GitError, match="is not a commit"):
        merge_base(opened, head, rev)
    with pytest.raises(GitError, match="is not a commit"):
        connect_history(opened, head, rev)
    assert ensure_commit(opened, rev).sha is None
    assert not out.exists()
    assert commands  # git did run, for the valid revs
    assert all(str(out) not in part for command in commands for part in command)


def test_merge_base_and_ancestry_in_the_local_history(repo: GitRepo) -> None:
    first = repo.head()
    repo.checkout("side", new_branch=True)
    repo.write("dags/side.py", "S = 1\n")
    side = repo.commit("side")
    repo.checkout("main")
    repo.write("dags/main.py", "M = 1\n")
    main = repo.commit("main")
    repo.git("checkout", "--orphan", "lonely")
    repo.commit("unrelated")
    lonely = repo.head()
    opened = open_repo(repo.path)

    assert merge_base(opened, side, main) == first
    assert merge_base(opened, first, main) == first
    assert merge_base(opened, lonely, main) is None
    assert is_ancestor(opened, first, side)
    assert is_ancestor(opened, main, main)
    assert not is_ancestor(opened, side, main)
    with pytest.raises(GitError, match="failed"):
        merge_base(opened, "1" * 40, main)


def test_a_failing_git_command_is_reported_without_credentials(
    repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_execute = SafeGit.execute
    stderr = "fatal: cannot use 'https://x-access-token:ghs_secret@github.com/a/b.git'"

    def failing(self: SafeGit, command: list[str], **kwargs: object) -> object:
        if "--is-inside-work-tree" in command:
            return (128, b"", stderr)
        return real_execute(self, command, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(SafeGit, "execute", failing)
    with pytest.raises(GitError) as raised:
        open_repo(repo.path)
    assert str(raised.value) == (
        f"git rev_parse failed in {repo.path}: fatal: cannot use 'https://github.com/a/b.git'"
    )
    stderr = ""
    with pytest.raises(GitError, match=r"git rev_parse failed in .*: exit code 128$"):
        open_repo(repo.path)


def test_a_missing_git_is_a_clear_error(repo: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = open_repo(repo.path)
    head = repo.head()

    def not_found(*_args: object, **_kwargs: object) -> object:
        raise git.GitCommandNotFound("git", OSError("No such file or directory"))

    monkeypatch.setattr(SafeGit, "execute", not_found)
    missing = r"could not run git \w+: git is not installed or not on PATH"
    with pytest.raises(GitError, match=missing):
        open_repo(repo.path)
    with pytest.raises(GitError, match=missing):
        head_commit(opened)
    with pytest.raises(GitError, match=missing):
        changed_files(opened, head, head)
    with pytest.raises(GitError, match=missing):
        ensure_commit(opened, head)
    with pytest.raises(GitError, match=missing):
        remote_url(opened)


# --- changed files ---------------------------------------------------------------------


def test_changed_files_between_commits(repo: GitRepo) -> None:
    base = repo.head()
    repo.write("dags/a.py", "A = 2\n")
    repo.write("dags/new/c.py", "C = 1\n")
    middle = repo.commit("edit")
    repo.write("Dockerfile", "FROM x\n")
    head = repo.commit("docker")
    opened = open_repo(repo.path)

    assert changed_files(opened, base, middle) == ["dags/a.py", "dags/new/c.py"]
    assert changed_files(opened, base, head) == ["Dockerfile", "dags/a.py", "dags/new/c.py"]
    assert changed_files(opened, head, head) == []


def test_rename_counts_both_paths_and_deletion_counts(repo: GitRepo) -> None:
    base = repo.head()
    repo.rename("dags/a.py", "dags/renamed.py")  # identical content: a pure rename
    repo.delete("requirements.txt")
    head = repo.commit("rename and delete")
    assert changed_files(open_repo(repo.path), base, head) == [
        "dags/a.py",
        "dags/renamed.py",
        "requirements.txt",
    ]


def test_odd_file_names_survive(repo: GitRepo) -> None:
    base = repo.head()
    names = ["dags/with space.py", "dags/new\nline.py", "dags/ünïcødé_dag.py", 'dags/"q".py']
    for name in names:
        repo.write(name, "x = 1\n")
    head = repo.commit("odd names")
    assert changed_files(open_repo(repo.path), base, head) == sorted(names)


def test_a_name_that_is_not_utf8_comes_back_escaped(repo: GitRepo) -> None:
    """Git hands back a name's bytes; undecodable ones read ``\\xNN``, printable anywhere."""
    base = repo.head()
    raw = os.path.join(os.fsencode(repo.path), b"dags", b"caf\xe9.py")
    Path(os.fsdecode(raw)).write_bytes(b"X = 1\n")
    head = repo.commit("a Latin-1 name")
    [name] = changed_files(open_repo(repo.path), base, head)
    assert name == "dags/caf\\xe9.py"
    assert name.encode("utf-8")


def test_unknown_base_commit_is_a_clear_error(repo: GitRepo) -> None:
    opened = open_repo(repo.path)
    with pytest.raises(GitError, match=r"base commit '1{40}' is not in the repository.*fetch"):
        changed_files(opened, "1" * 40, repo.head())
    with pytest.raises(GitError, match="head commit 'nope'"):
        changed_files(opened, repo.head(), "nope")


def test_changed_files_in_a_shallow_clone_misses_the_old_base(
    repo: GitRepo, tmp_path: Path
) -> None:
    base = repo.head()
    repo.write("dags/a.py", "A = 2\n")
    repo.commit("edit")
    origin = repo.add_origin()
    clone = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth=1", f"file://{origin}", str(clone)],
        check=True,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull},
    )
    opened = open_repo(clone)
    assert not GitRepo(clone).has_commit(base)
    with pytest.raises(GitError, match="base commit"):
        changed_files(opened, base, "HEAD")


# --- submodules ------------------------------------------------------------------------


def test_submodules_the_checkout_did_not_fetch(repo: GitRepo, tmp_path: Path) -> None:
    vendor = GitRepo(tmp_path / "vendor")
    vendor.write("shared.py", "SHARED = 1\n")
    sha = vendor.commit("shared code")
    # Gitlinks as a checkout without submodules leaves them: in the index, folders empty.
    for path in ("dags/vendor", "dags/deeper/lib", "include/tools", "dags/present"):
        repo.git("update-index", "--add", "--cacheinfo", f"160000,{sha},{path}")
        (repo.path / path).mkdir(parents=True)
    repo.write("dags/present/file.py", "FETCHED = 1\n")  # as if fetched
    (repo.path / "dags/deeper/lib").rmdir()  # a missing folder lacks the files too
    opened = open_repo(repo.path)

    assert unfetched_submodules(opened, repo.path / "dags") == ["dags/deeper/lib", "dags/vendor"]
    assert unfetched_submodules(opened, repo.path) == [
        "dags/deeper/lib",
        "dags/vendor",
        "include/tools",
    ]
    assert unfetched_submodules(opened, repo.path / "dags" / "deeper") == ["dags/deeper/lib"]
    repo.write("plain/x.py", "X = 1\n")
    assert unfetched_submodules(opened, repo.path / "plain") == []


def test_a_real_submodule_is_lacking_until_fetched(repo: GitRepo, tmp_path: Path) -> None:
    vendor = GitRepo(tmp_path / "vendor")
    vendor.write("shared.py", "SHARED = 1\n")
    vendor.commit("shared code")
    url = vendor.path.resolve().as_uri()
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", url, "dags/vendor")
    repo.commit("add a submodule")
    clone = GitRepo.clone(repo.add_origin(), tmp_path / "clone", depth=1)
    opened = open_repo(clone.path)

    assert unfetched_submodules(opened, clone.path / "dags") == ["dags/vendor"]
    clone.git("-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init")
    assert unfetched_submodules(opened, clone.path / "dags") == []


def test_a_folder_named_like_a_pathspec_is_taken_literally(repo: GitRepo) -> None:
    """The folder reaches git as a literal path: no glob, no magic, no option."""
    sha = repo.head()
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{sha},dags/vendor")
    (repo.path / "d*").mkdir()
    (repo.path / "--all").mkdir()
    opened = open_repo(repo.path)
    assert unfetched_submodules(opened, repo.path / "d*") == []
    assert unfetched_submodules(opened, repo.path / "--all") == []
    assert unfetched_submodules(opened, repo.path / "dags") == ["dags/vendor"]


# --- remote URL ------------------------------------------------------------------------


def test_remote_url_strips_credentials(repo: GitRepo) -> None:
    opened = open_repo(repo.path)
    assert remote_url(opened) is None
    repo.set_remote("origin", "https://x-access-token:ghs_secret@github.com/acme/dags.git")
    assert remote_url(open_repo(repo.path)) == "https://github.com/acme/dags.git"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pa%40ss@host.example:8443/a/b.git", "https://host.example:8443/a/b.git"),
        ("https://token@github.com/a/b", "https://github.com/a/b"),
        ("ssh://git@github.com/a/b.git", "ssh://github.com/a/b.git"),
        ("git@github.com:a/b.git", "git@github.com:a/b.git"),
        ("https://github.com/a/b.git", "https://github.com/a/b.git"),
        ("/srv/git/b.git", "/srv/git/b.git"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


def test_blob_ids_lists_a_folders_files_at_a_commit(tmp_path: Path) -> None:
    r = GitRepo(tmp_path / "blobs")
    r.write("astro/d [x]/a.py", "A = 1\n")
    r.write("astro/d [x]/sub/run.sh", "#!/bin/sh\n", executable=True)
    r.write("astro/d [x]-other/b.py", "B = 1\n")
    (r.path / "astro" / "d [x]" / "link.py").symlink_to("a.py")
    r.write_bytes("top.py", b"T = 1\n")
    first = r.commit("initial")
    r.write("astro/d [x]/a.py", "A = 2\n")
    r.commit("later")
    blob = {path: r.git("hash-object", path).strip() for path in ("top.py",)}

    with open_repo(r.path) as repo:
        at_first = blob_ids(repo, first, "astro/d [x]")
        root = blob_ids(repo, first, ".")
        missing = blob_ids(repo, first, "astro/nothing")
        bad = blob_ids(repo, "0" * 40, "astro")

    assert set(at_first) == {"astro/d [x]/a.py", "astro/d [x]/sub/run.sh"}
    assert at_first["astro/d [x]/a.py"] == r.git("rev-parse", f"{first}:astro/d [x]/a.py").strip()
    assert root["top.py"] == blob["top.py"]
    assert "astro/d [x]-other/b.py" in root and "astro/d [x]/link.py" not in root
    assert missing == bad == {}


def test_gitpython_loads_only_when_a_repository_is_first_opened(repo: GitRepo) -> None:
    """A run's first API request does not wait for GitPython: importing the run loads none
    of it; opening the checkout does."""
    probe = (
        "import sys\n"
        "from pathlib import Path\n"
        "import ci_deploy.cli, ci_deploy.run, ci_deploy.gitfetch\n"
        "from ci_deploy.gitrepo import open_repo\n"
        "print(sorted(m for m in sys.modules if m.startswith('git.')))\n"
        "open_repo(Path(sys.argv[1])).close()\n"
        "print('git.repo' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(repo.path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines() == ["[]", "True"], done.stderr
