"""ci_deploy.syntax: every .py file of the DAG bundle compiles, and nothing runs."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

from ci_deploy.bundle import build_dag_tarball
from ci_deploy.syntax import SyntaxProblem, check_python_files


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
