"""The syntax check of the DAG bundle: every ``.py`` file must compile.

Only the syntax is checked: each file is decoded and passed to :func:`compile`. Nothing is
imported or executed, so no Airflow (and none of the DAGs' dependencies) is needed, and a
file's top-level code never runs here.

Paths, with the tarball of ``build_dag_tarball(base_dir)`` as the example:

- a *member* is a tarball member name, relative to ``base_dir``'s parent: ``dags/x.py`` for
  ``base_dir=/w/repo/astro/dags``;
- the file read is ``abspath(base_dir).parent / member``: ``/w/repo/astro/dags/x.py``;
- the problem's ``path``, for an annotation's ``file=``, is ``path_prefix`` joined with the
  member and normalised: with ``path_prefix="astro/"`` (root-folder ``astro``),
  ``astro/dags/x.py``; with ``path_prefix=""`` or ``"."``, ``dags/x.py``. The prefix is the
  repository-relative folder that holds ``base_dir``. A name that is not UTF-8 is given as
  :func:`ci_deploy.bundle.shown` writes it (``dags/caf\\xe9.py``), so it can be printed.
"""

from __future__ import annotations

import os
import posixpath
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.util import decode_source
from pathlib import Path

from ci_deploy.bundle import shown

__all__ = ["SyntaxProblem", "check_python_files"]

_SAVE_AS = "save it as UTF-8, or declare its encoding in a coding comment (PEP 263)"


@dataclass(frozen=True)
class SyntaxProblem:
    """A Python file that does not compile."""

    path: str
    """The file, repository-relative and POSIX, for an annotation's ``file=``."""
    line: int
    """1-based."""
    column: int
    """1-based; 1 when Python gives no column."""
    message: str
    """Python's own message, e.g. ``'(' was never closed``, or ours for unreadable files."""


def check_python_files(
    base_dir: Path, members: Iterable[str], *, path_prefix: str
) -> list[SyntaxProblem]:
    """Compile every ``.py`` member and return one problem per broken file, sorted by path.

    ``members`` are tarball member names relative to ``base_dir``'s parent; ``path_prefix``
    turns a member into the repository-relative path of the problem (see the module
    docstring). Other members are ignored. A member that is absolute or leaves the folder
    with ``..`` raises ValueError: members come from our own tarball, never from users.
    """
    parent = Path(os.path.abspath(base_dir)).parent
    problems: list[SyntaxProblem] = []
    for member in members:
        if not member.endswith(".py"):
            continue
        parts = member.split("/")
        if member.startswith("/") or ".." in parts or "\\" in member:
            raise ValueError(f"not a tarball member name: {member!r}")
        path = shown(posixpath.normpath(posixpath.join(path_prefix, member)))
        problem = _check(parent.joinpath(*parts), path)
        if problem is not None:
            problems.append(problem)
    problems.sort(key=lambda p: p.path)
    return problems


def _check(file: Path, path: str) -> SyntaxProblem | None:
    """Compile one file; ``path`` is its repository-relative name for the problem."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        return SyntaxProblem(path, 1, 1, f"cannot be read: {exc.strerror or exc}")

    null = data.find(b"\x00")
    if null >= 0:
        line, column = _position(data, null)
        return SyntaxProblem(
            path,
            line,
            column,
            "contains a null byte, which Python source cannot hold (is it a binary file"
            " saved as .py?)",
        )

    try:
        # Honours a PEP 263 coding cookie and a UTF-8 BOM; UTF-8 otherwise.
        source = decode_source(data)
    except SyntaxError as exc:  # a bad or unknown coding cookie, or undecodable first lines
        return SyntaxProblem(path, 1, 1, f"cannot be decoded: {exc.msg}; {_SAVE_AS}")
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start)
        return SyntaxProblem(
            path,
            1,
            1,
            f"cannot be decoded as {exc.encoding}: byte 0x{data[exc.start]:02x} at line {line},"
            f" column {column}; {_SAVE_AS}",
        )

    try:
        with warnings.catch_warnings():
            # SyntaxWarnings (e.g. an invalid escape) are not errors, even under -W error.
            warnings.simplefilter("ignore")
            compile(source, path, "exec", dont_inherit=True)
    except SyntaxError as exc:  # IndentationError and TabError too
        return SyntaxProblem(path, exc.lineno or 1, exc.offset or 1, exc.msg)
    except (ValueError, RecursionError, MemoryError) as exc:
        return SyntaxProblem(path, 1, 1, f"cannot be compiled: {exc}")
    return None


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """The 1-based line and column of byte ``offset`` in ``data``, counting UTF-8 characters."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", "replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column
