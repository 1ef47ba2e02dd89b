"""The stages of a run, in order: detect, build, ship, verify, recover.

Each stage is a function (or a small class) over the run's :class:`Scope` and what the
stage before it made; it adds its records to the run's
:class:`~ci_deploy.result.Journal` and returns what the next stage needs. The sequence
itself is :func:`ci_deploy.run.run`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ci_deploy.errors import CancelledError
from ci_deploy.platform import ASTRO, Platform, Words
from ci_deploy.result import Interrupted, Journal
from ci_deploy.runner import Runner
from ci_deploy.timing import Timing


@dataclass(frozen=True)
class Scope:
    """What every stage of one run works with: the platform, the runner's log, the run's
    journal and its clocks; ``marker`` is unique to the run (the releases it makes carry
    it), ``run_url`` the run's page ("" outside GitHub); ``words`` name things as the
    environment's platform does (known once it is located)."""

    platform: Platform
    runner: Runner
    journal: Journal
    timing: Timing
    marker: str = ""
    run_url: str = ""
    words: Words = ASTRO

    @contextmanager
    def writing(self, what: str) -> Iterator[None]:
        """Around a write to the environment: a cancellation inside it is recorded, since
        whether the write was done is then unknown ("finalizing deploy X")."""
        try:
            yield
        except CancelledError:
            self.journal.add(Interrupted(what))
            raise

    def described(self, description: str) -> str:
        """A release's description, with the run's page when there is one."""
        return f"{description} ({self.run_url})" if self.run_url else description
