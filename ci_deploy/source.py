"""Where the deployed code comes from, as plain data: the commit, and its place on GitHub.

No git and no network here: :mod:`ci_deploy.gitrepo` reads commits with GitPython,
:mod:`ci_deploy.github` reads the runner's context, and the platforms turn a
:class:`Source` into their own deploy metadata.
"""

from __future__ import annotations

from dataclasses import dataclass

NULL_SHAS = frozenset({"0" * 40, "0" * 64})
"""What git and GitHub write for "no commit" (a push that created or deleted a branch)."""


def is_null_sha(sha: str) -> bool:
    """Whether ``sha`` is the all-zero sha that stands for "no commit"."""
    return sha in NULL_SHAS


@dataclass(frozen=True)
class CommitInfo:
    """The commit being deployed."""

    sha: str
    subject: str
    author_name: str
    author_email: str
