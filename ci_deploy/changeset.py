"""Which changed files count as what: DAG files, image files, or neither.

The rules are gitignore-style globs relative to ``root-folder`` (``dag-paths``,
``image-paths``, ``ignore-paths``), matched with :mod:`pathspec`'s implementation of git's
wildmatch: on path-segment boundaries, so ``astro`` never matches ``astro-other/``, and
``tests/**`` only the top-level ``tests`` folder. Pure: no git, no filesystem.

Matching takes time linear in the path: the globs are run by pathspec's RE2 backend
(``google-re2``), not by Python's backtracking ``re``, on which a glob such as
``*a*a*a*a*a*a*a*a*a*ab`` takes seconds on a 40-character name and hours with a few more
stars. A glob may have at most :data:`MAX_GLOB_LENGTH` characters.

pathspec (with RE2: about 60 M instructions, 12 ms) loads when globs are first compiled or
escaped, not with this module: a run whose globs are the defaults loads it at change
detection, and a run with a bad input never.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

MAX_GLOB_LENGTH = 1024
"""The longest glob accepted, in characters."""


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


def glob_spec(patterns: Iterable[str]) -> GitIgnoreSpec:
    """The compiled globs, matched by RE2 in linear time."""
    from pathspec import GitIgnoreSpec

    return GitIgnoreSpec.from_lines(list(patterns), backend="re2")


def literal_glob(path: str) -> str:
    """A glob that matches ``path`` itself: its wildcard characters (``* ? [ ] ! #``) escaped."""
    from pathspec.patterns.gitignore.spec import GitIgnoreSpecPattern

    return GitIgnoreSpecPattern.escape(path)


def glob_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a usable glob, or None when it is."""
    if len(pattern) > MAX_GLOB_LENGTH:
        return f"is {len(pattern)} characters long; a glob may have at most {MAX_GLOB_LENGTH}"
    segments = pattern.strip("/").split("/")
    if any(part == ".." for part in segments):
        return "must not contain .. (it would reach outside root-folder)"
    try:
        glob_spec([pattern])
    except ValueError as exc:  # pathspec's pattern errors are ValueErrors
        return f"is not a valid glob ({exc})"
    return None


@dataclass(frozen=True)
class PathRules:
    """The classification rules of one run. ``root_folder`` is repo-relative; ``.`` is the root."""

    root_folder: str
    dag_paths: tuple[str, ...]
    image_paths: tuple[str, ...]
    ignore_paths: tuple[str, ...] = ()

    @cached_property
    def _specs(self) -> tuple[GitIgnoreSpec, GitIgnoreSpec, GitIgnoreSpec]:
        return (
            glob_spec(self.ignore_paths),
            glob_spec(self.dag_paths),
            glob_spec(self.image_paths),
        )

    def relative(self, path: str) -> str | None:
        """``path`` (repo-relative) relative to the root folder, or None when outside it."""
        root = posixpath.normpath(self.root_folder).strip("/")
        if root in ("", "."):
            return path
        return path[len(root) + 1 :] if path.startswith(root + "/") else None

    def kind(self, path: str) -> str:
        """``dag``, ``image``, ``ignored`` (an ignore-paths match) or ``outside`` (root-folder)."""
        relative = self.relative(path)
        if relative is None:
            return "outside"
        ignore, dag, image = self._specs
        if ignore.match_file(relative):
            return "ignored"
        if dag.match_file(relative):
            return "dag"
        if image.match_file(relative):
            return "image"
        return "ignored"


def classify(files: Iterable[str], rules: PathRules) -> ChangeSet:
    """Sort repo-relative ``files`` into DAG files, image files and the rest."""
    kinds: dict[str, set[str]] = {"dag": set(), "image": set(), "ignored": set(), "outside": set()}
    for name in files:
        path = name.removeprefix("./")
        if path:
            kinds[rules.kind(path)].add(path)
    return ChangeSet(
        dag_files=tuple(sorted(kinds["dag"])),
        image_files=tuple(sorted(kinds["image"])),
        ignored_files=tuple(sorted(kinds["ignored"] | kinds["outside"])),
    )


def count_files(n: int) -> str:
    """'1 file', '2 files'."""
    return f"{n} file" if n == 1 else f"{n} files"
