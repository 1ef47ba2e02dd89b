"""Fetching missing commits and history from origin, against real git over file://."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import git
import pytest

from ci_deploy import gitfetch
from ci_deploy.errors import GitError
from ci_deploy.gitfetch import (
    Resolved,
    connect_history,
    ensure_commit,
    histories_complete,
    is_shallow,
)
from ci_deploy.gitrepo import _scrub, changed_files, is_ancestor, open_repo
from ci_deploy.gitsafe import SafeGit
from tests.gitrepo import GitRepo, git_env, run_git, time_limit

NULL_SHA = "0" * 40

TEST_TIME_LIMIT_SECONDS = 60
DEEPENING = re.compile(
    r"Deepening the shallow clone to (\d+) commits to find the merge base of (\w+) and (\w+)"
)
SECRET = "ghs_s3cr3tT0ken"
BAD_ORIGIN = f"https://x-access-token:{SECRET}@127.0.0.1:1/acme/dags.git"


@pytest.fixture(autouse=True)
def _isolated_and_bounded(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Git under test ignores the user's config and proxies; every test ends within a minute."""
    for name in list(os.environ):
        if name.startswith("GIT_") or name.lower() in {"http_proxy", "https_proxy", "all_proxy"}:
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)

    with time_limit(TEST_TIME_LIMIT_SECONDS):
        yield


def linear(tmp_path: Path, count: int = 6) -> tuple[GitRepo, Path, list[str], list[str]]:
    """A working repo whose ``main`` (pushed to a bare origin) has ``count`` commits.

    Commit ``i`` adds one file; returns the repo, the origin, the shas and the files.
    """
    work = GitRepo(tmp_path / "work")
    shas: list[str] = []
    files: list[str] = []
    for i in range(count):
        name = "Dockerfile" if i == 3 else f"dags/d{i}.py"
        work.write(name, f"N = {i}\n")
        files.append(name)
        shas.append(work.commit(f"commit {i}"))
    origin = work.add_origin(tmp_path / "origin.git")
    return work, origin, shas, files


def depths(lines: list[str]) -> list[int]:
    """The depths of the deepening steps logged in ``lines``."""
    return [int(m.group(1)) for line in lines if (m := DEEPENING.fullmatch(line))]


def commit_count(repo: GitRepo, rev: str = "HEAD") -> int:
    return int(repo.git("rev-list", "--count", rev).strip())


# --- the common case: fetch-depth 1, base some commits back ----------------------------


def test_shallow_clone_fetches_the_base_and_deepens_to_the_merge_base(tmp_path: Path) -> None:
    _, origin, shas, files = linear(tmp_path)
    base, head = shas[0], shas[5]
    clone = GitRepo.clone(origin, tmp_path / "clone", depth=1)
    opened = open_repo(clone.path)
    assert is_shallow(opened)
    assert not clone.has_commit(base)

    fetch_log: list[str] = []
    assert ensure_commit(opened, base, log=fetch_log.append) == Resolved(
        base, "fetched from origin"
    )
    assert fetch_log == [f"Fetching {base} from origin"]
    assert ensure_commit(opened, base) == Resolved(base, "present locally")
    # Both ends are here, but not the history in between: the documented false negative.
    assert not is_ancestor(opened, base, head)

    log: list[str] = []
    assert connect_history(opened, base, head, log=log.append) == base
    assert depths(log) == [2, 4, 8]
    assert all(DEEPENING.fullmatch(line) for line in log)
    assert DEEPENING.fullmatch(log[0]).groups()[1:] == (base[:12], head[:12])  # type: ignore[union-attr]
    assert is_ancestor(opened, base, head)
    assert changed_files(opened, base, head) == sorted(files[1:])
    # Already connected: answered from local history, nothing more fetched.
    again: list[str] = []
    assert connect_history(opened, base, head, log=again.append) == base
    assert again == []


def test_history_already_fetched_is_never_cut_back(tmp_path: Path) -> None:
    _, origin, shas, files = linear(tmp_path)
    clone = GitRepo.clone(origin, tmp_path / "clone", depth=3)
    opened = open_repo(clone.path)
    assert commit_count(clone) == 3
    assert ensure_commit(opened, shas[0]).sha == shas[0]

    log: list[str] = []
    assert connect_history(opened, shas[0], shas[5], log=log.append) == shas[0]
    assert depths(log) == [4, 8]  # 2 would have cut HEAD's 3 commits back to 2
    assert commit_count(clone) == 6
    assert changed_files(opened, shas[0], shas[5]) == sorted(files[1:])


def test_a_complete_clone_fetches_a_missing_commit_and_stays_complete(tmp_path: Path) -> None:
    work, origin, shas, files = linear(tmp_path)
    clone = GitRepo.clone(origin, tmp_path / "clone", depth=None)
    work.write("dags/late.py", "LATE = 1\n")
    late = work.commit("pushed after the clone")
    work.push()
    opened = open_repo(clone.path)
    assert not clone.has_commit(late)

    assert ensure_commit(opened, late) == Resolved(late, "fetched from origin")
    assert not is_shallow(opened)
    assert commit_count(clone, late) == 7
    log: list[str] = []
    assert connect_history(opened, shas[5], late, log=log.append) == shas[5]
    assert log == []
    assert is_ancestor(opened, shas[0], late)
    assert changed_files(opened, shas[0], late) == sorted([*files[1:], "dags/late.py"])


# --- force pushes, zero shas, hostile revs ---------------------------------------------


@pytest.mark.parametrize("depth", [1, None])
def test_a_commit_force_pushed_away_is_a_reason_not_an_error(
    tmp_path: Path, depth: int | None
) -> None:
    work, origin, shas, _ = linear(tmp_path, count=4)
    before = shas[3]
    work.git("reset", "-q", "--hard", shas[1])
    work.write("dags/rewritten.py", "R = 1\n")
    after = work.commit("rewritten")
    work.git("push", "-q", "-f", "origin", "main")
    run_git(origin, "reflog", "expire", "--expire=now", "--all")
    run_git(origin, "gc", "-q", "--prune=now")
    gone = subprocess.run(
        ["git", "cat-file", "-e", before], cwd=origin, env=git_env(), check=False, timeout=30
    )
    assert gone.returncode != 0, "the old commit must really be gone from origin"

    clone = GitRepo.clone(origin, tmp_path / "clone", depth=depth)
    opened = open_repo(clone.path)
    assert ensure_commit(opened, before) == Resolved(None, "not on origin (force-pushed away?)")
    assert ensure_commit(opened, after) == Resolved(after, "present locally")
    assert ensure_commit(opened, shas[1]).sha == shas[1]


@pytest.mark.parametrize(
    ("rev", "detail"),
    [
        (NULL_SHA, "all-zero sha: no previous commit"),
        ("0" * 64, "all-zero sha: no previous commit"),
        ("", "no revision given: no previous commit"),
        ("  ", "no revision given: no previous commit"),
        ("-", "not a commit or ref"),
        ("--upload-pack=touch pwned", "not a commit or ref"),
        ("-c", "not a commit or ref"),
        ("main --upload-pack=touch pwned", "not a commit or ref"),
    ],
)
def test_answered_without_running_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rev: str, detail: str
) -> None:
    _, origin, _, _ = linear(tmp_path, count=1)
    clone = GitRepo.clone(origin, tmp_path / "clone")
    opened = open_repo(clone.path)

    def no_git(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("git was run")

    monkeypatch.setattr(SafeGit, "execute", no_git)
    assert ensure_commit(opened, rev) == Resolved(None, detail)
    assert not (clone.path / "pwned").exists()


@pytest.mark.parametrize("rev", ["main:refs/heads/evil", "+main:evil", "main~1", "refs/*", "a..b"])
def test_refspecs_and_expressions_are_never_fetched(tmp_path: Path, rev: str) -> None:
    _, origin, _, _ = linear(tmp_path, count=3)
    clone = GitRepo.clone(origin, tmp_path / "clone")
    refs_before = clone.git("for-each-ref")
    log: list[str] = []
    resolved = ensure_commit(open_repo(clone.path), rev, log=log.append)
    assert resolved == Resolved(
        None, "not present locally, and only a full sha or a ref name can be fetched", True
    )
    assert log == []
    assert clone.git("for-each-ref") == refs_before
    assert commit_count(clone) == 1


def test_an_expression_present_locally_resolves(tmp_path: Path) -> None:
    _, origin, shas, _ = linear(tmp_path, count=3)
    clone = GitRepo.clone(origin, tmp_path / "clone", depth=2)
    opened = open_repo(clone.path)
    assert ensure_commit(opened, "HEAD~1") == Resolved(shas[1], "present locally")
    assert ensure_commit(opened, shas[2][:10]) == Resolved(shas[2], "present locally")


# --- ref names -------------------------------------------------------------------------


def test_ref_names_local_and_on_origin_only(tmp_path: Path) -> None:
    work, origin, shas, _ = linear(tmp_path, count=4)
    work.git("tag", "-a", "-m", "release", "v1.2", shas[1])
    work.git("push", "-q", "origin", "v1.2")
    work.checkout(shas[2])
    work.checkout("feature", new_branch=True)
    work.write("dags/feature.py", "F = 1\n")
    feature = work.commit("feature work")
    work.push("feature")
    clone = GitRepo.clone(origin, tmp_path / "clone", depth=1, branch="main")
    opened = open_repo(clone.path)
    assert not clone.has_commit(shas[1])
    assert not clone.has_commit(feature)

    assert ensure_commit(opened, "main") == Resolved(shas[3], "present locally")
    assert ensure_commit(opened, "origin/main") == Resolved(shas[3], "present locally")
    # An abbreviated sha cannot be asked for; the answer says so.
    abbreviated = ensure_commit(opened, feature[:10])
    assert abbreviated.sha is None
    assert "abbreviated sha cannot be fetched" in abbreviated.detail
    assert ensure_commit(opened, "nope") == Resolved(None, "no ref named 'nope' on origin")

    assert ensure_commit(opened, "v1.2") == Resolved(shas[1], "fetched from origin")
    assert ensure_commit(opened, "refs/tags/v1.2").sha == shas[1]
    assert ensure_commit(opened, "origin/feature") == Resolved(feature, "fetched from origin")
    assert ensure_commit(opened, "feature").sha == feature
    assert ensure_commit(opened, "refs/heads/feature").sha == feature
    assert ensure_commit(opened, "refs/remotes/origin/feature").sha == feature
    assert ensure_commit(opened, feature[:10]) == Resolved(feature, "present locally")


# --- other branches, unrelated histories, the bound ------------------------------------


def test_a_commit_on_another_branch_is_not_an_ancestor(tmp_path: Path) -> None:
    work, origin, shas, files = linear(tmp_path, count=4)
    work.checkout(shas[1])
    work.checkout("side", new_branch=True)
    work.write("dags/s1.py", "S = 1\n")
    work.commit("side 1")
    work.write("dags/s2.py", "S = 2\n")
    side = work.commit("side 2")
    work.push("side")
    clone = GitRepo.clone(origin, tmp_path / "clone", depth=1, branch="main")
    opened = open_repo(clone.path)
    head = shas[3]

    assert ensure_commit(opened, side).detail == "fetched from origin"
    log: list[str] = []
    assert connect_history(opened, side, head, log=log.append) == shas[1]
    assert depths(log) == [2, 4]
    assert not is_ancestor(opened, side, head)
    assert is_ancestor(opened, shas[1], head)
    assert changed_files(opened, shas[1], head) == sorted(files[2:])


@pytest.mark.parametrize("depth", [1, None])
def test_unrelated_histories_have_no_merge_base(tmp_path: Path, depth: int | None) -> None:
    work, origin, shas, _ = linear(tmp_path, count=4)
    work.git("checkout", "-q", "--orphan", "pages")
    work.git("rm", "-q", "-r", "--cached", ".")
    work.write("index.html", "<p>0</p>\n")
    work.commit("pages 0")
    work.write("index.html", "<p>1</p>\n")
    pages = work.commit("pages 1")
    work.push("pages")
    clone = GitRepo.clone(origin, tmp_path / "clone", depth=depth, branch="main")
    opened = open_repo(clone.path)

    assert ensure_commit(opened, pages).sha == pages
    log: list[str] = []
    assert connect_history(opened, pages, shas[3], log=log.append) is None
    assert not is_shallow(opened)  # both histories were fetched whole: truly unrelated
    assert histories_complete(opened, pages, shas[3])
    # Git marks the commit at the depth boundary shallow even when it is a root, so the
    # 4-commit history is known to be whole only once fetched deeper than 4.
    assert depths(log) == ([2, 4, 8] if depth else [])
    assert not is_ancestor(opened, pages, shas[3])


@pytest.mark.parametrize(
    ("max_depth", "steps", "found"),
    [(2, [2], False), (5, [2, 4, 5], False), (6, [2, 4, 6], True)],
)
def test_the_depth_bound(tmp_path: Path, max_depth: int, steps: list[int], found: bool) -> None:
    _, origin, shas, _ = linear(tmp_path)
    clone = GitRepo.clone(origin, tmp_path / "clone", depth=1)
    opened = open_repo(clone.path)
    assert ensure_commit(opened, shas[0]).sha == shas[0]

    log: list[str] = []
    result = connect_history(opened, shas[0], shas[5], max_depth=max_depth, log=log.append)
    assert result == (shas[0] if found else None)
    assert depths(log) == steps
    assert (f"within {max_depth} commits" in log[-1]) is not found
    assert is_ancestor(opened, shas[0], shas[5]) is found
    if not found:  # "no merge base" is no answer: HEAD's history is still cut off
        assert not histories_complete(opened, shas[0], shas[5])


def test_histories_are_complete_once_no_shallow_boundary_cuts_them(tmp_path: Path) -> None:
    work, origin, shas, _ = linear(tmp_path, count=4)
    complete = open_repo(GitRepo.clone(origin, tmp_path / "complete", depth=None).path)
    assert histories_complete(complete, shas[3], shas[0])

    shallow = open_repo(GitRepo.clone(origin, tmp_path / "shallow", depth=2).path)
    assert ensure_commit(shallow, shas[0]).sha == shas[0]
    assert not histories_complete(shallow, shas[3]), "HEAD's history is cut after 2 commits"
    assert not histories_complete(shallow, shas[0], shas[3])
    assert connect_history(shallow, shas[0], shas[3]) == shas[0]
    assert histories_complete(shallow, shas[0], shas[3]), "deepened down to the root"
    assert work.head() == shas[3]


# --- whether a commit out of reach may still be in HEAD's history -------------------------


def test_a_commit_out_of_reach_of_a_shallow_clone_is_uncertain(tmp_path: Path) -> None:
    """A shallow clone may lack any commit of HEAD's history; a complete one lacks none."""
    _, origin, shas, _ = linear(tmp_path, count=3)
    shallow = GitRepo.clone(origin, tmp_path / "shallow", depth=1)
    complete = GitRepo.clone(origin, tmp_path / "complete", depth=None)
    feature = "f" * 40
    for clone in (shallow, complete):
        clone.set_remote("origin", "file:///nonexistent/origin.git")
    expected = {shallow: True, complete: False}

    for clone, uncertain in expected.items():
        opened = open_repo(clone.path)
        failed = ensure_commit(opened, feature)
        assert (failed.sha, failed.uncertain) == (None, uncertain)
        assert failed.detail.startswith("fetch from origin failed: fatal:")
        clone.git("remote", "remove", "origin")
        assert ensure_commit(opened, feature) == Resolved(None, "no remote named origin", uncertain)
        # An abbreviated sha is never fetched: only a complete clone can answer for it.
        abbreviated = ensure_commit(opened, feature[:10])
        assert (abbreviated.sha, abbreviated.uncertain) == (None, uncertain)
    assert shas


def test_origin_answering_it_has_no_such_commit_is_certain(tmp_path: Path) -> None:
    _, origin, _, _ = linear(tmp_path, count=3)
    opened = open_repo(GitRepo.clone(origin, tmp_path / "clone", depth=1).path)
    assert ensure_commit(opened, "1" * 40) == Resolved(None, "not on origin (force-pushed away?)")
    assert ensure_commit(opened, "nope") == Resolved(None, "no ref named 'nope' on origin")
    # A name that may be an abbreviated sha is not a "no": the commit may be there.
    maybe = ensure_commit(opened, "1111111111")
    assert (maybe.sha, maybe.uncertain) == (None, True)


# --- no origin, failing origin, credentials --------------------------------------------


def test_without_an_origin(tmp_path: Path) -> None:
    work, origin, shas, _ = linear(tmp_path, count=3)
    lonely = GitRepo(tmp_path / "lonely")
    lonely.write("a.txt", "a\n")
    lonely.commit("only")
    assert ensure_commit(open_repo(lonely.path), "1" * 40) == Resolved(
        None, "no remote named origin"
    )

    clone = GitRepo.clone(origin, tmp_path / "clone", depth=1)
    opened = open_repo(clone.path)
    assert ensure_commit(opened, shas[0]).sha == shas[0]
    clone.git("remote", "remove", "origin")
    log: list[str] = []
    assert connect_history(opened, shas[0], shas[2], log=log.append) is None
    assert log == ["Cannot deepen the shallow clone: no remote named origin"]
    assert work.head() == shas[2]


def test_git_errors_never_show_credentials(tmp_path: Path) -> None:
    _, origin, shas, _ = linear(tmp_path, count=3)
    clone = GitRepo.clone(origin, tmp_path / "clone", depth=1)
    opened = open_repo(clone.path)
    assert ensure_commit(opened, shas[0]).sha == shas[0]
    clone.set_remote("origin", BAD_ORIGIN)

    log: list[str] = []
    resolved = ensure_commit(opened, "1" * 40, log=log.append)
    assert resolved.sha is None
    assert resolved.detail.startswith("fetch from origin failed: fatal:")
    assert connect_history(opened, shas[0], shas[2], log=log.append) is None
    assert log[-1].startswith("Could not deepen the shallow clone: fetch from origin failed")
    assert all(SECRET not in text for text in [resolved.detail, *log])


def test_credentials_in_git_messages_are_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Git redacts most URLs itself; whatever it (or a helper) prints is scrubbed anyway."""
    _, origin, shas, _ = linear(tmp_path, count=3)
    opened = open_repo(GitRepo.clone(origin, tmp_path / "clone", depth=1).path)
    assert ensure_commit(opened, shas[0]).sha == shas[0]
    message = f"fatal: unable to access 'https://x-access-token:{SECRET}@github.com/a/b.git/'"
    real_execute = SafeGit.execute

    def leaky_fetch(self: SafeGit, command: list[str], **kwargs: object) -> object:
        if "fetch" in command:
            return (128, "", f"warning: redirecting\n{message}: 403\n")
        return real_execute(self, command, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(SafeGit, "execute", leaky_fetch)
    scrubbed = (
        "fetch from origin failed: fatal: unable to access 'https://github.com/a/b.git/': 403"
    )
    assert ensure_commit(opened, "1" * 40) == Resolved(None, scrubbed, uncertain=True)
    log: list[str] = []
    assert connect_history(opened, shas[0], shas[2], log=log.append) is None
    assert log[-1] == f"Could not deepen the shallow clone: {scrubbed}"
    assert all(SECRET not in line for line in log)


def test_scrub_removes_userinfo_from_any_url_in_a_line() -> None:
    line = (
        f"fatal: unable to access 'https://x-access-token:{SECRET}@github.com/a/b.git/': 403;"
        f" also ssh://git:{SECRET}@host/x and https://github.com/a/b user@example.com"
    )
    scrubbed = _scrub(line)
    assert SECRET not in scrubbed
    assert scrubbed == (
        "fatal: unable to access 'https://github.com/a/b.git/': 403;"
        " also ssh://host/x and https://github.com/a/b user@example.com"
    )


# --- misuse ----------------------------------------------------------------------------


def test_missing_commits_are_git_errors_for_history_questions(tmp_path: Path) -> None:
    _, origin, shas, _ = linear(tmp_path, count=2)
    clone = GitRepo.clone(origin, tmp_path / "clone", depth=1)
    opened = open_repo(clone.path)
    with pytest.raises(GitError, match="is-ancestor"):
        is_ancestor(opened, "1" * 40, shas[1])
    with pytest.raises(GitError, match="merge-base"):
        connect_history(opened, "1" * 40, shas[1])
    with pytest.raises(GitError, match="not a commit"):
        is_ancestor(opened, "--all", shas[1])


def test_a_fetch_that_hangs_is_killed_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, origin, shas, _ = linear(tmp_path, count=3)
    clone = GitRepo.clone(origin, tmp_path / "clone", depth=1)
    opened = open_repo(clone.path)
    assert ensure_commit(opened, shas[0]).sha == shas[0]
    # Origin never answers: git's local transport runs this instead of git-upload-pack.
    hang = tmp_path / "hanging-upload-pack"
    hang.write_text("#!/bin/sh\nexec sleep 30\n", encoding="utf-8")
    hang.chmod(0o755)
    clone.git("config", "remote.origin.uploadpack", str(hang))
    monkeypatch.setattr(gitfetch, "FETCH_TIMEOUT_SECONDS", 1.0)

    timed_out = "git fetch did not finish within 1 seconds"
    started = time.monotonic()
    assert ensure_commit(opened, "1" * 40) == Resolved(None, timed_out, uncertain=True)
    log: list[str] = []
    assert connect_history(opened, shas[0], shas[2], log=log.append) is None
    assert log[-1] == f"Could not deepen the shallow clone: {timed_out}"
    assert time.monotonic() - started < 20


def test_a_missing_git_is_a_git_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, origin, shas, _ = linear(tmp_path, count=2)
    opened = open_repo(GitRepo.clone(origin, tmp_path / "clone", depth=1).path)

    def not_found(*args: object, **_kwargs: object) -> object:
        raise git.GitCommandNotFound("git", OSError("No such file or directory"))

    monkeypatch.setattr(SafeGit, "execute", not_found)
    with pytest.raises(GitError, match="could not run git merge_base"):
        is_ancestor(opened, shas[0], shas[1])
