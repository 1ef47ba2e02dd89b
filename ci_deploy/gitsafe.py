"""GitPython's repository and command runner, made safe for CI: every git command trusts
any repository owner and never prompts. Only :mod:`ci_deploy.gitrepo` opens repositories
through it, when the run first needs git.
"""

from __future__ import annotations

import os

import git
from git.types import PathLike


class SafeGit(git.Git):
    """A :class:`git.Git` whose every command trusts any repository owner and never prompts.

    ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_<n>``/``GIT_CONFIG_VALUE_<n>`` (git >= 2.31) act
    like ``git -c key=value``, i.e. command-line scope, which git honours for
    ``safe.directory`` (repository-local config would not count); the entry is appended
    after any the environment already defines, so those keep working. GitPython overlays
    the instance's environment on ``os.environ`` for each process it starts (including
    its persistent ``cat-file`` helpers), so this covers every call made through it.
    """

    def __init__(self, working_dir: PathLike | None = None) -> None:
        super().__init__(working_dir)
        try:
            count = max(int(os.environ.get("GIT_CONFIG_COUNT", "0") or "0"), 0)
        except ValueError:
            count = 0
        self.update_environment(
            GIT_CONFIG_COUNT=str(count + 1),
            **{f"GIT_CONFIG_KEY_{count}": "safe.directory", f"GIT_CONFIG_VALUE_{count}": "*"},
            GIT_TERMINAL_PROMPT="0",
        )


class SafeRepo(git.Repo):
    """A :class:`git.Repo` that talks to git only through :class:`SafeGit`.

    ``Repo.__init__`` builds ``self.git`` from ``GitCommandWrapperType`` before anything
    can run git, so the repository is opened and used under ``safe.directory=*``.
    """

    GitCommandWrapperType = SafeGit
