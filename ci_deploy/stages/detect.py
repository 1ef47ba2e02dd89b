"""Detect: the commit deployed, the commit compared with, and what changed in between.

Git's I/O is here (GitPython through :mod:`ci_deploy.gitrepo` and :mod:`ci_deploy.gitfetch`);
which base to take is
:func:`ci_deploy.basecommit.choose_base`, which files count as what is
:func:`ci_deploy.changeset.classify`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING

from ci_deploy import gitfetch, gitrepo
from ci_deploy.basecommit import (
    BaseChoice,
    Candidate,
    Probe,
    Probed,
    choose_base,
    deployed_candidate,
    event_candidate,
)
from ci_deploy.changeset import ChangeSet, PathRules, classify, count_files
from ci_deploy.github import GitHubContext, source_of
from ci_deploy.inputs import Inputs
from ci_deploy.plan import Detection
from ci_deploy.platform import ASTRO, Artifact, Release, Words
from ci_deploy.runner import Runner
from ci_deploy.source import CommitInfo, Source

if TYPE_CHECKING:
    from git import Repo

_FULL_HISTORY_HINT = "; with fetch-depth: 0 on actions/checkout the whole history is there"


class Checkout:
    """The run's git checkout: the commit deployed, and changes since another commit."""

    def __init__(self, inputs: Inputs, context: GitHubContext, runner: Runner) -> None:
        self._inputs = inputs
        self._context = context
        self._runner = runner
        self._present: dict[str, gitfetch.Resolved] = {}

    @cached_property
    def _repo(self) -> Repo:
        """The repository, opened when first needed (GitError when there is none)."""
        return gitrepo.open_repo(self._inputs.root_path)

    @cached_property
    def rules(self) -> PathRules:
        """How the run's changed files are sorted."""
        inputs = self._inputs
        return PathRules(
            gitrepo.repo_relative(self._repo, inputs.root_path),
            inputs.dag_paths,
            inputs.image_paths,
            inputs.ignore_paths,
        )

    @cached_property
    def head(self) -> CommitInfo:
        """The commit deployed: the checkout's HEAD."""
        return gitrepo.head_commit(self._repo)

    def _ensure(self, rev: str) -> gitfetch.Resolved:
        """:func:`gitfetch.ensure_commit`, each commit found once a run (HEAD's known)."""
        if rev == self.head.sha:
            return gitfetch.Resolved(rev, "present locally")
        found = self._present.get(rev)
        if found is None:
            found = gitfetch.ensure_commit(self._repo, rev, log=self._runner.info)
            if found.sha is not None:  # one not found may be fetched later in the run
                self._present[rev] = found
        return found

    def close(self) -> None:
        """Close the repository, when it was opened."""
        if "_repo" in self.__dict__:
            self._repo.close()

    @property
    def root_folder(self) -> str:
        """The project folder, repository-relative (``.`` for the root)."""
        return self.rules.root_folder

    def source(self) -> Source:
        """Where the deployed commit comes from, for the release's metadata."""
        return source_of(
            self._context, self.head, self.rules.root_folder, gitrepo.remote_url(self._repo)
        )

    def contains(self, descendant: str, ancestor: str) -> bool | None:
        """Whether commit ``descendant`` is ``ancestor`` or comes after it; None when that
        cannot be told (a commit cannot be fetched, or the history linking them)."""
        if descendant == ancestor:
            return True
        repo, log = self._repo, self._runner.info
        later = self._ensure(descendant).sha
        earlier = self._ensure(ancestor).sha
        if later is None or earlier is None:
            return None
        linked = gitfetch.connect_history(repo, earlier, later, log=log) is not None
        if linked or gitfetch.histories_complete(repo, earlier, later):
            return gitrepo.is_ancestor(repo, earlier, later)
        return None  # the link may lie beyond what could be fetched

    def detect(
        self,
        history: Sequence[Release],
        shows: Mapping[Artifact, str] | None = None,
        words: Words = ASTRO,
    ) -> Detection:
        """Choose the base commit and classify what changed since it (None: no base);
        ``words`` name things as the environment's platform does."""
        base = self._choose_base(history, shows, words)
        return Detection(self.head, base, self._changes(base, words))

    def _choose_base(
        self, history: Sequence[Release], shows: Mapping[Artifact, str] | None, words: Words
    ) -> BaseChoice:
        inputs, runner = self._inputs, self._runner
        deployed: tuple[Candidate | None, str] = (None, f"compare-to is {inputs.compare_to}")
        if inputs.compare_to in ("auto", "deployed"):
            deployed = deployed_candidate(history, shows, words)
        event = event_candidate(self._context.event_name, self._context.event)
        choice = choose_base(inputs.compare_to, deployed, event, self._probe(), words)
        for rejected in choice.rejected:
            runner.info(f"Not compared with: {rejected}.")
        if choice.sha is None:
            runner.notice(
                f"Deploying everything: {choice.reason} ({'; '.join(choice.rejected)}).",
                title="No base commit",
            )
        else:
            runner.info(f"Comparing with {choice.label} [{choice.source}]: {choice.sha}.")
        return choice

    def _probe(self) -> Probe:
        repo, head_sha, log = self._repo, self.head.sha, self._runner.info

        def probe(candidate: Candidate, needs_ancestor: bool) -> Probed:
            resolved = self._ensure(candidate.rev)
            sha = resolved.sha
            if sha is None:
                hint = _FULL_HISTORY_HINT if resolved.uncertain else ""
                return Probed(None, resolved.detail + hint, resolved.uncertain)
            if needs_ancestor or candidate.merge_base:
                if gitfetch.connect_history(repo, sha, head_sha, log=log) is None:
                    if gitfetch.histories_complete(repo, sha, head_sha):
                        return Probed(None, "it shares no history with HEAD")
                    return Probed(
                        None,
                        "no history linking it to HEAD could be fetched (the shallow clone is "
                        f"deepened up to {gitfetch.MAX_DEPTH} commits)" + _FULL_HISTORY_HINT,
                        uncertain=True,
                    )
                if needs_ancestor and not gitrepo.is_ancestor(repo, sha, head_sha):
                    return Probed(
                        None, "it is not an ancestor of HEAD (deployed from another branch?)"
                    )
            return Probed(sha, resolved.detail)

        return probe

    def _changes(self, choice: BaseChoice, words: Words) -> ChangeSet | None:
        if choice.sha is None:
            return None
        repo = self._repo
        base, head = choice.sha, self.head.sha
        if choice.head:  # a pull request: its own head, not the test merge commit
            head = self._ensure(choice.head).sha or head
        if choice.merge_base:
            base = gitfetch.connect_history(repo, choice.sha, head) or choice.sha
        changes = classify(gitrepo.changed_files(repo, base, head), self.rules)
        how = "..." if choice.merge_base else ".."
        with self._runner.group(
            f"Changes {base[:12]}{how}{head[:12]}: {count_files(len(changes.files))}"
        ):
            for title, names in (
                *words.relevant_files(changes),
                ("Not relevant", changes.ignored_files),
            ):
                self._runner.info(f"{title} ({len(names)}):")
                for name in names:
                    self._runner.info(f"  {name}")
        return changes


@contextmanager
def open_checkout(inputs: Inputs, context: GitHubContext, runner: Runner) -> Iterator[Checkout]:
    """The checkout holding ``root-folder``, opened when first used (GitError when there is
    none, before anything is written): the run's first API request, a read, does not wait
    for git to load."""
    checkout = Checkout(inputs, context, runner)
    try:
        yield checkout
    finally:
        checkout.close()
