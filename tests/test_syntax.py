"""ci_deploy.syntax: every .py file of the DAG bundle compiles, and nothing runs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import pytest

from ci_deploy import syntax
from ci_deploy.bundle import build_dag_tarball
from ci_deploy.syntax import (
    SyntaxCheck,
    SyntaxProblem,
    check_python_files,
    git_blob_id,
    syntax_summary,
)
from tests.gitrepo import run_git


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)


@pytest.fixture
def dags(tmp_path: Path) -> Path:
    """``<repo>/astro/dags``, the DAG folder of root-folder ``astro``."""
    folder = tmp_path / "repo" / "astro" / "dags"
    folder.mkdir(parents=True)
    return folder


def check(dags: Path, *members: str, prefix: str = "astro/") -> list[SyntaxProblem]:
    return list(check_python_files(dags, members, path_prefix=prefix, cache={}).problems)


def test_a_good_file_passes(dags: Path) -> None:
    source = "from __future__ import annotations\n\n\ndef f(x: int) -> int:\n    return x + 1\n"
    _write(dags / "good.py", source)
    assert check(dags, "dags/good.py") == []


def test_a_syntax_error_gives_its_line_column_and_message(dags: Path) -> None:
    _write(dags / "broken.py", "import os\n\nx = (1,\n     2\ny = 3\n")
    _write(dags / "colon.py", "def f()\n    return 1\n")
    assert check(dags, "dags/broken.py", "dags/colon.py") == [
        SyntaxProblem("astro/dags/broken.py", 3, 5, "'(' was never closed"),
        SyntaxProblem("astro/dags/colon.py", 1, 8, "expected ':'"),
    ]


def test_an_indentation_error_is_reported(dags: Path) -> None:
    _write(dags / "indent.py", "x = 1\n    y = 2\n")
    [problem] = check(dags, "dags/indent.py")
    assert (problem.path, problem.line, problem.message) == (
        "astro/dags/indent.py",
        2,
        "unexpected indent",
    )


def test_the_column_counts_characters_not_bytes(dags: Path) -> None:
    _write(dags / "unicode.py", 'é = "ü" + 1)\n')
    [problem] = check(dags, "dags/unicode.py")
    assert (problem.line, problem.column, problem.message) == (1, 12, "unmatched ')'")


def test_errors_of_the_compiler_stage_are_found_too(dags: Path) -> None:
    _write(dags / "ret.py", "x = 1\nreturn x\n")
    _write(dags / "future.py", "from __future__ import braces_please\n")
    problems = check(dags, "dags/ret.py", "dags/future.py")
    assert [(p.path, p.line) for p in problems] == [
        ("astro/dags/future.py", 1),
        ("astro/dags/ret.py", 2),
    ]
    assert problems[1].message == "'return' outside function"


def test_every_broken_file_is_reported_sorted_by_path(dags: Path) -> None:
    _write(dags / "z.py", "def (:\n")
    _write(dags / "ok.py", "x = 1\n")
    _write(dags / "a" / "deep.py", "class\n")
    _write(dags / "m.py", "print 'py2'\n")
    problems = check(dags, "dags/z.py", "dags/ok.py", "dags/m.py", "dags/a/deep.py")
    assert [p.path for p in problems] == ["astro/dags/a/deep.py", "astro/dags/m.py",
                                          "astro/dags/z.py"]  # fmt: skip
    assert all(p.line == 1 and p.column >= 1 and p.message for p in problems)


def test_a_latin_1_coding_cookie_is_honoured(dags: Path) -> None:
    _write(dags / "latin.py", b'# -*- coding: latin-1 -*-\nNAME = "caf\xe9"\n')
    assert check(dags, "dags/latin.py") == []


def test_a_utf_8_bom_is_accepted(dags: Path) -> None:
    _write(dags / "bom.py", b'\xef\xbb\xbfNAME = "caf\xc3\xa9"\n')
    assert check(dags, "dags/bom.py") == []


def test_an_undecodable_file_is_a_problem_at_line_1(dags: Path) -> None:
    _write(dags / "late.py", b'x = 1\ny = 2\nNAME = "caf\xe9"\n')
    _write(dags / "early.py", b'NAME = "caf\xe9"\n')  # in the lines the cookie could be on
    _write(dags / "cookie.py", b"# coding: no-such-codec\nx = 1\n")
    late, early, cookie = (check(dags, f"dags/{n}.py") for n in ("late", "early", "cookie"))
    assert len(late) == len(early) == len(cookie) == 1
    assert (late[0].line, late[0].column) == (1, 1)
    assert late[0].message.startswith("cannot be decoded as utf-8: byte 0xe9 at line 3, column 12")
    assert "coding comment (PEP 263)" in late[0].message
    assert (early[0].line, early[0].column) == (1, 1)
    assert early[0].message.startswith("cannot be decoded")
    assert cookie[0].line == 1
    assert cookie[0].message.startswith("cannot be decoded: unknown encoding: no-such-codec")


def test_null_bytes_are_a_problem(dags: Path) -> None:
    _write(dags / "binary.py", b"x = 1\nabc\x00def\n")
    assert check(dags, "dags/binary.py") == [
        SyntaxProblem(
            "astro/dags/binary.py",
            2,
            4,
            "contains a null byte, which Python source cannot hold (is it a binary file saved"
            " as .py?)",
        )
    ]


def test_other_files_are_ignored(dags: Path) -> None:
    for name in ("notes.txt", "query.sql", "script.PY", "data.pyc", "x.pyi", "README"):
        _write(dags / name, "this is ( not python\n")
    members = ["dags/notes.txt", "dags/query.sql", "dags/script.PY", "dags/data.pyc",
               "dags/x.pyi", "dags/README"]  # fmt: skip
    assert check(dags, *members) == []


def test_the_code_is_never_executed(dags: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    _write(dags / "exits.py", "raise SystemExit(3)\n")
    _write(
        dags / "writes.py",
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "import os\nos._exit(4)\n",
    )
    _write(dags / "imports.py", "import this_module_does_not_exist\n")
    assert check(dags, "dags/exits.py", "dags/writes.py", "dags/imports.py") == []
    assert not marker.exists()


def test_syntax_warnings_are_no_problems_even_when_warnings_are_errors(dags: Path) -> None:
    _write(dags / "escape.py", 'PATTERN = "\\d+"\nassert (1, "always true")\nx = 1 is 1\n')
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # as python -W error does
        assert check(dags, "dags/escape.py") == []


# --- the path mapping -------------------------------------------------------------------------


PREFIXES = [("astro/", "astro/dags/bad.py"), ("astro", "astro/dags/bad.py"), ("", "dags/bad.py"),
            (".", "dags/bad.py"), ("./", "dags/bad.py"), ("a/b/", "a/b/dags/bad.py")]  # fmt: skip


@pytest.mark.parametrize(("prefix", "path"), PREFIXES)
def test_path_prefix_makes_the_repository_relative_path(dags: Path, prefix: str, path: str) -> None:
    _write(dags / "bad.py", "(\n")
    [problem] = check(dags, "dags/bad.py", prefix=prefix)
    assert problem.path == path


def test_members_are_relative_to_the_parent_of_base_dir(tmp_path: Path) -> None:
    # A DAG folder with another name: members start with that name, as in the tarball.
    folder = tmp_path / "repo" / "pipelines"
    _write(folder / "sub" / "bad.py", "x =\n")
    _write(tmp_path / "repo" / "dags" / "sub" / "bad.py", "fine = True\n")  # never read
    [problem] = check_python_files(folder, ["pipelines/sub/bad.py"], path_prefix="").problems
    assert problem.path == "pipelines/sub/bad.py"


def test_a_relative_base_dir_works_like_the_tarball(
    dags: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(dags / "bad.py", "x =\n")
    monkeypatch.chdir(dags)
    [problem] = check_python_files(Path(), ["dags/bad.py"], path_prefix="astro/").problems
    assert problem.path == "astro/dags/bad.py"


def test_the_members_of_the_dag_tarball_can_be_checked(dags: Path) -> None:
    _write(dags / "good.py", "x = 1\n")
    _write(dags / "sub" / "bad.py", "if True\n    pass\n")
    _write(dags / "sub" / "notes.md", "# (\n")
    (dags / "link.py").symlink_to("sub/bad.py")
    members = build_dag_tarball(dags).members
    assert [p.path for p in check(dags, *members)] == ["astro/dags/link.py",
                                                       "astro/dags/sub/bad.py"]  # fmt: skip


@pytest.mark.parametrize("member", ["/etc/passwd.py", "../x.py", "dags/../../x.py", "dags\\x.py"])
def test_members_that_are_no_tarball_names_are_refused(dags: Path, member: str) -> None:
    with pytest.raises(ValueError, match="not a tarball member name"):
        check(dags, member)


def test_an_unreadable_member_is_a_problem(dags: Path) -> None:
    [problem] = check(dags, "dags/missing.py")
    assert (problem.path, problem.line, problem.column) == ("astro/dags/missing.py", 1, 1)
    assert problem.message == "cannot be read: No such file or directory"


def test_a_name_that_is_not_utf8_is_checked_and_given_escaped(dags: Path) -> None:
    """The file is read under its real name; the problem's path can be printed anywhere."""
    raw = os.path.join(os.fsencode(dags), b"caf\xe9.py")
    Path(os.fsdecode(raw)).write_bytes(b"def f(:\n")
    [member] = build_dag_tarball(dags).members
    [problem] = check(dags, member)
    assert problem.path == "astro/dags/caf\\xe9.py"
    assert problem.path.encode("utf-8")


# --- what is compiled, and where ------------------------------------------------------------


def _broken_tree(dags: Path) -> list[str]:
    """A tree with several broken files among good ones, some identical; its members."""
    _write(dags / "ok.py", "x = 1\n")
    _write(dags / "a" / "twin1.py", "def f(:\n")
    _write(dags / "b" / "twin2.py", "def f(:\n")
    _write(dags / "c" / "indent.py", "x = 1\n    y = 2\n")
    _write(dags / "d" / "latin.py", b'# -*- coding: latin-1 -*-\nNAME = "caf\xe9"\n')
    _write(dags / "d" / "bad_utf8.py", b'x = 1\nNAME = "caf\xe9"\n')
    _write(dags / "e" / "null.py", b"x = 1\nab\x00c\n")
    for n in range(20):
        _write(dags / "many" / f"m{n:02}.py", f"value_{n} = {n}\n" * 50)
    _write(dags / "many" / "m07.py", "value = (\n")
    return [*build_dag_tarball(dags).members, "dags/missing.py"]


def test_the_parallel_compile_gives_exactly_the_serial_result(dags: Path) -> None:
    members = _broken_tree(dags)
    serial = check_python_files(dags, members, path_prefix="astro/", workers=1, cache={})
    # batch_bytes=1: every content is a batch of its own, so the pool starts at the first.
    parallel = check_python_files(
        dags, members, path_prefix="astro/", workers=2, batch_bytes=1, cache={}
    )

    assert (serial.processes, parallel.processes) == (1, 2)
    assert parallel == serial
    assert [(p.path, p.line) for p in parallel.problems] == [
        ("astro/dags/a/twin1.py", 1),
        ("astro/dags/b/twin2.py", 1),
        ("astro/dags/c/indent.py", 2),
        ("astro/dags/d/bad_utf8.py", 1),
        ("astro/dags/e/null.py", 2),
        ("astro/dags/many/m07.py", 1),
        ("astro/dags/missing.py", 1),
    ]
    assert (parallel.checked, parallel.unchanged) == (len(members) - 1, 0)


def test_workers_are_started_safely_while_other_threads_run(dags: Path) -> None:
    """With another thread alive the workers come from a fork server, not a fork."""
    members = _broken_tree(dags)
    expected = check_python_files(dags, members, path_prefix="", workers=1, cache={})
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        found = check_python_files(
            dags, members, path_prefix="", workers=2, batch_bytes=1, cache={}
        )
    finally:
        stop.set()
        other.join()
    assert found.processes == 2
    assert found == expected


def test_little_work_is_compiled_in_this_process(dags: Path) -> None:
    members = _broken_tree(dags)
    found = check_python_files(dags, members, path_prefix="", workers=2, cache={})
    assert found.processes == 1
    assert len(found.problems) == 7


def test_without_worker_processes_everything_is_compiled_here(
    dags: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where no process can be started (no /dev/shm, say), the check still runs, here."""
    members = _broken_tree(dags)
    expected = check_python_files(dags, members, path_prefix="", workers=1, cache={})

    def no_pool(*args: object, **kwargs: object) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr("concurrent.futures.ProcessPoolExecutor", no_pool)
    found = check_python_files(dags, members, path_prefix="", workers=2, batch_bytes=1, cache={})

    assert found.processes == 1
    assert found == expected


def test_identical_contents_compile_once_and_every_path_is_reported(
    dags: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    members = _broken_tree(dags)
    compiled: list[bytes] = []
    real = syntax._compile

    def counting(data: bytes) -> syntax.Outcome:
        compiled.append(data)
        return real(data)

    monkeypatch.setattr(syntax, "_compile", counting)
    cache: dict[bytes, syntax.Outcome] = {}

    first = check_python_files(dags, members, path_prefix="", workers=1, cache=cache)

    assert compiled.count(b"def f(:\n") == 1
    assert len(compiled) == len(set(compiled)) == first.compiled == len(cache)
    assert {"dags/a/twin1.py", "dags/b/twin2.py"} <= {p.path for p in first.problems}

    again = check_python_files(dags, members, path_prefix="x/", workers=1, cache=cache)

    assert len(compiled) == first.compiled, "the second check compiled nothing"
    assert again.compiled == 0
    assert [(p.path, p.line, p.column, p.message) for p in again.problems] == [
        ("x/" + p.path, p.line, p.column, p.message) for p in first.problems
    ]


def test_the_cache_is_keyed_by_the_sha256_of_the_content(dags: Path) -> None:
    data = b"x = 1\n"
    _write(dags / "one.py", data)
    _write(dags / "two.py", data)
    cache: dict[bytes, syntax.Outcome] = {hashlib.sha256(data).digest(): (7, 3, "seen before")}

    found = check_python_files(dags, ["dags/one.py", "dags/two.py"], path_prefix="", cache=cache)

    assert found.problems == (
        SyntaxProblem("dags/one.py", 7, 3, "seen before"),
        SyntaxProblem("dags/two.py", 7, 3, "seen before"),
    )
    assert (found.checked, found.compiled) == (2, 0)


def test_files_as_the_environment_runs_them_are_not_checked_again(dags: Path) -> None:
    broken = b"def f(:\n"
    _write(dags / "deployed_broken.py", broken)  # as deployed: not this deploy's doing
    _write(dags / "edited.py", broken)  # deployed with other bytes
    _write(dags / "moved.py", broken)  # these bytes were deployed, but at another path
    _write(dags / "new.py", "x = (\n")
    _write(dags / "good.py", "x = 1\n")
    deployed = {
        "astro/dags/deployed_broken.py": git_blob_id(broken),
        "astro/dags/edited.py": git_blob_id(b"x = 1\n"),
        "astro/dags/gone.py": git_blob_id(broken),
        "astro/dags/good.py": git_blob_id(b"x = 1\n"),
    }
    members = build_dag_tarball(dags).members

    found = check_python_files(dags, members, path_prefix="astro/", deployed=deployed, cache={})

    assert [p.path for p in found.problems] == [
        "astro/dags/edited.py",
        "astro/dags/moved.py",
        "astro/dags/new.py",
    ]
    assert (found.checked, found.unchanged) == (3, 2)


def test_the_git_blob_id_is_gits(tmp_path: Path) -> None:
    data = b"print('hello')\n\x00\xff"
    (tmp_path / "f").write_bytes(data)
    assert git_blob_id(data) == run_git(tmp_path, "hash-object", "f").strip()


@pytest.mark.parametrize(
    ("check_", "since", "line"),
    [
        (SyntaxCheck(checked=3000), None,
         "Syntax check: all 3,000 Python files in the DAG bundle compile."),
        (SyntaxCheck(checked=1), None,
         "Syntax check: the 1 Python file in the DAG bundle compiles."),
        (SyntaxCheck(), None, "Syntax check: the DAG bundle has no Python files."),
        (SyntaxCheck(checked=3, unchanged=2997), "0123456789abcdef", "Syntax check: 3 changed "
         "Python files compile; 2,997 are as in the deployed commit 0123456789ab and not "
         "checked again."),
        (SyntaxCheck(checked=1, unchanged=1), "0123456789abcdef", "Syntax check: 1 changed "
         "Python file compiles; 1 is as in the deployed commit 0123456789ab and not checked "
         "again."),
    ],
)  # fmt: skip
def test_the_summary_says_what_was_checked(
    check_: SyntaxCheck, since: str | None, line: str
) -> None:
    assert syntax_summary(check_, since) == line


_FORKS_FAIL = """
import os, sys
from pathlib import Path
from ci_deploy import syntax

folder, mode = Path(sys.argv[1]), sys.argv[2]
members = []
for i in range(40):  # 40 x 42 KB: enough for the pool to start
    (folder / f"f{i}.py").write_text(f"x = {i}\\n" + "# pad\\n" * 7000)
    members.append(f"{folder.name}/f{i}.py")
(folder / "broken.py").write_text("def f(:\\n")
members.append(f"{folder.name}/broken.py")
real_fork, forks = os.fork, []

def fork():  # as under a pids limit: EAGAIN from the first fork, or from the second on
    forks.append(1)
    if mode == "all" or len(forks) > 1:
        raise BlockingIOError(11, "Resource temporarily unavailable")
    return real_fork()

os.fork = fork
check = syntax.check_python_files(folder, members, path_prefix="", workers=2)
print(check.checked, check.processes, [p.path for p in check.problems])
"""


@pytest.mark.parametrize("mode", ["all", "second"])
def test_worker_processes_that_cannot_start_leave_the_check_to_this_process(
    tmp_path: Path, mode: str
) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", _FORKS_FAIL, str(folder), mode],
        capture_output=True,
        text=True,
        timeout=60,  # a worker left waiting for work would hold the process at exit
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[0] == "41 1 ['dags/broken.py']"
