"""Prebuild: the DAG tarball packed early, in a process of its own, while the run locates
the environment, reads its history and detects what changed. :mod:`ci_deploy.cli` starts it
(:func:`start_prebuild`) as soon as the inputs are valid, before any thread starts, so the
run's process forks; a run called without one starts it in :func:`prebuilding`.

Whether to start it is :func:`worth_prebuilding`, pure: only a run that deploys (not a dry
run) on Astro with a deploy type that may ship DAGs. The packing runs in
:mod:`ci_deploy.bundle_worker` (another process: it runs on another core, not against the
run's own Python work for the interpreter's lock) into a folder of its own in the spool
folder. The build stage takes
the tarball when the plan ships the DAGs of the same folder, packed the same way
(:meth:`Prebuild.take`); when the early packing failed for any reason it packs the folder
itself, so a failure is reported exactly as before, and only when the plan needs the
tarball. The run discards the prebuild on every path (deploy, skip, error, cancellation):
:meth:`Prebuild.discard` stops the process if it still runs and deletes its folder, spool
file included. Nothing touches the environment here: the build stage still finishes the
tarball (and its syntax check) before anything is created.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from ci_deploy.bundle import Bundle, Packing
from ci_deploy.bundle_worker import Worker, from_json, start
from ci_deploy.inputs import Inputs
from ci_deploy.runner import Runner

_MAY_SHIP_DAGS = ("infer", "dags-only", "image-and-dags")
"""The deploy types whose plan may ship a DAG tarball (bundle and image-only never do)."""


def worth_prebuilding(inputs: Inputs) -> bool:
    """Whether a run of ``inputs`` may ship a DAG tarball, so that packing it early can pay:
    a deploy (or a preview's deploy) on Astro, not a dry run, of a type that may ship DAGs."""
    return (
        inputs.platform == "astro"
        and inputs.action in ("deploy", "preview")
        and not inputs.dry_run
        and inputs.deploy_type in _MAY_SHIP_DAGS
    )


class Prebuild:
    """The DAG tarball of ``dags_path`` packed as ``packing``, being made by another process."""

    def __init__(self, dags_path: Path, packing: Packing) -> None:
        self._made_of = (dags_path, packing)
        self.how = ""
        """How the packing process was started (for the debug log), once taken."""
        self._folder = tempfile.mkdtemp(prefix="ci-deploy-prebuild-", dir=packing.spool)
        try:
            self._worker: Worker | None = start(dags_path, replace(packing, spool=self._folder))
        except BaseException:
            shutil.rmtree(self._folder, ignore_errors=True)
            raise

    def take(self, dags_path: Path, packing: Packing) -> Bundle | None:
        """The tarball when it is the one of ``dags_path`` packed as ``packing`` and it was
        made; None otherwise (the caller packs the folder itself). The caller closes it; the
        folder it lies in goes with :meth:`discard`."""
        if self._worker is None:
            return None
        if (dags_path, packing) != self._made_of:  # not this one: stopped now, not at the end
            self.discard()
            return None
        self.how = self._worker.how
        try:
            output = self._worker.answer()  # a cancellation meanwhile: discard stops it
        except OSError:
            output = None
        self._worker = None
        if output is None:
            return None
        try:
            tarball = from_json(output)
        except (ValueError, KeyError, TypeError):
            return None
        if tarball.compression != packing.compression or tarball.path.parent != Path(self._folder):
            return None
        return tarball

    def discard(self) -> None:
        """Stop the process if it still runs, and delete its folder (a tarball included)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            with contextlib.suppress(OSError):  # never fails the run: the folder goes anyway
                worker.stop()
        shutil.rmtree(self._folder, ignore_errors=True)


def start_prebuild(inputs: Inputs, environ: Mapping[str, str]) -> Prebuild | None:
    """The prebuild of a run of ``inputs`` started now, when :func:`worth_prebuilding` and
    it can start; else None (the build packs the folder, as it always did)."""
    if not worth_prebuilding(inputs):
        return None
    try:
        return Prebuild(inputs.dags_path, Packing.of_run(inputs.compression_level, environ))
    except OSError:  # no folder, no process
        return None


@contextmanager
def prebuilding(
    inputs: Inputs, runner: Runner, started: Prebuild | None = None
) -> Iterator[Prebuild | None]:
    """The prebuild of a run of ``inputs``: ``started`` (the CLI starts it before any thread,
    see :mod:`ci_deploy.cli`), else one started now (:func:`start_prebuild`); discarded when
    the block exits, however it exits."""
    prebuild = started if started is not None else start_prebuild(inputs, runner.environ)
    try:
        yield prebuild
    finally:
        if prebuild is not None:
            prebuild.discard()
