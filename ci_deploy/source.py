"""Where the deployed code comes from, as plain data: the commit, and its place on GitHub.

No git and no network here: :mod:`ci_deploy.gitrepo` reads commits with GitPython,
:mod:`ci_deploy.github` reads the runner's context, and the platforms turn a
:class:`Source` into their own deploy metadata.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

NULL_SHAS = frozenset({"0" * 40, "0" * 64})
"""What git and GitHub write for "no commit" (a push that created or deleted a branch)."""


def is_null_sha(sha: str) -> bool:
    """Whether ``sha`` is the all-zero sha that stands for "no commit"."""
    return sha in NULL_SHAS


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


@dataclass(frozen=True)
class CommitInfo:
    """The commit being deployed."""

    sha: str
    subject: str
    author_name: str
    author_email: str


@dataclass(frozen=True)
class Source:
    """Where a release's code comes from, for the platform's deploy metadata.

    Strings are "" when unknown. ``repository`` is ``owner/name`` on GitHub; outside GitHub
    ``remote_url`` (without credentials) names the repository instead.
    """

    commit: CommitInfo
    repository: str = ""
    server_url: str = "https://github.com"
    branch: str = ""
    before: str = ""
    """The push's previous commit."""
    author_name: str = ""
    author_username: str = ""
    """The author's GitHub login."""
    path: str = ""
    """The project folder in the repository; "" for its root."""
    remote_url: str = ""

    @property
    def commit_url(self) -> str:
        """The commit's page on GitHub; "" outside GitHub."""
        if not self.repository:
            return ""
        return f"{self.server_url}/{self.repository}/commit/{self.commit.sha}"
