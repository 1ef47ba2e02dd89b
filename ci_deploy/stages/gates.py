"""The verification gates: after the rollout is healthy, know that the new DAGs really work.

In order, each recorded as a :class:`~ci_deploy.result.Verified` the moment it ends:

1. **rollout**: the environment runs the release (the wait of :mod:`ci_deploy.stages.verify`,
   handed in).
2. **import-errors**: Airflow's import errors, read through its REST API
   (:class:`~ci_deploy.platform.Airflow`); an error of a file this deploy changed fails the
   rollout (an error annotation on the file and line, with Airflow's message), one of a file
   nobody changed only warns. When the API cannot be asked, the logs are read instead (the
   check handed in), with a notice.
3. **settle-window** (``verify-window``): the environment watched for that long, by the same
   pacing as every wait (:class:`~ci_deploy.waiting.Wait`): :meth:`Platform.observe` on each
   look (UNHEALTHY fails), and Airflow's import errors (a new one of a changed file fails).
   On Airflow 3 the changed DAGs' latest DAG version must come from this deploy's bundle
   version; one not confirmed by the end is a warning.
4. **smoke:<dag_id>** (``smoke-dags``): a run of each triggered with its conf and followed
   to ``success``; ``failed`` or the ``smoke-timeout`` fails the rollout, naming the failed
   tasks and the run's page. A paused DAG is reported, and unpaused for its run only with
   ``smoke-unpause`` (paused again on every way out).

A gate that fails raises :class:`~ci_deploy.errors.GateError`, a
:class:`~ci_deploy.errors.RolloutError`: the run rolls back as after an UNHEALTHY rollout.
The gates after it are recorded as skipped. What the answers mean is
:mod:`ci_deploy.verification`'s, pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ci_deploy.bundle import shown
from ci_deploy.errors import AirflowApiError, GateError, RolloutError
from ci_deploy.platform import Airflow, AirflowPlatform, Release
from ci_deploy.result import Verified
from ci_deploy.runner import Runner
from ci_deploy.stages import Scope
from ci_deploy.text import capitalized
from ci_deploy.verification import (
    AirflowImportError,
    GateResult,
    ImportVerdict,
    Outcome,
    SmokeDag,
    judge_import_errors,
    member_of,
)
from ci_deploy.waiting import Wait, duration

ROLLOUT = "rollout"
IMPORT_ERRORS = "import-errors"
SETTLE_WINDOW = "settle-window"


def smoke_gate(dag_id: str) -> str:
    """The name of a smoke run's gate: ``smoke:<dag_id>``."""
    return f"smoke:{dag_id}"


@dataclass(frozen=True)
class GateSettings:
    """What the inputs ask of the gates."""

    check_imports: bool = True
    window: float = 60.0
    """Seconds of the settle window; 0: none."""
    smoke: tuple[SmokeDag, ...] = ()
    smoke_timeout: float = 600.0
    smoke_unpause: bool = False


@dataclass(frozen=True)
class Delivered:
    """What the verified release shipped: the DAG tarball's ``members`` (empty: none), those
    this deploy changed (None: all, nothing to compare with), the repository path prefix of a
    member, when it was finalized, and the bundle version Airflow 3 parses it as."""

    release: Release
    at: datetime
    members: tuple[str, ...] = ()
    changed: frozenset[str] | None = None
    prefix: str = ""
    bundle_version: str = ""


class Gates:
    """The gates of one verified release, recorded in the run's journal."""

    def __init__(
        self,
        scope: Scope,
        settings: GateSettings,
        shipped: Delivered,
        *,
        logs_check: Callable[[], bool],
    ) -> None:
        """``logs_check`` reads the import errors from the logs (the fallback): False when
        they could not be checked, RolloutError when a shipped file has one."""
        self._scope, self._settings, self._shipped = scope, settings, shipped
        self._runner = scope.runner
        self._logs_check = logs_check
        self._airflow: Airflow | None = None
        self._why_not = ""
        """Why Airflow's API is not asked ("" while it is, or was never needed)."""
        self._failing_seen: set[str] = set()
        self._warned: set[str] = set()
        self._left = [IMPORT_ERRORS, SETTLE_WINDOW, *(smoke_gate(d.dag_id) for d in settings.smoke)]

    # -- the sequence -------------------------------------------------------------------------

    def rollout(self, wait: Callable[[], None]) -> None:
        """The rollout gate: ``wait`` until the environment runs the release."""
        try:
            wait()
        except RolloutError as exc:
            self._record(ROLLOUT, Outcome.FAILED, exc.message)
            self._skip_the_rest("the rollout failed")
            raise
        self._record(ROLLOUT, Outcome.PASSED, f"{self._scope.words.the_environment} runs it")

    def verify(self) -> None:
        """The gates after a healthy rollout, in order; GateError at the first that fails."""
        try:
            self._import_errors()
            self._settle()
            for dag in self._settings.smoke:
                self._smoke(dag)
        except RolloutError as exc:
            self._skip_the_rest(f"the {getattr(exc, 'gate', 'rollout')} gate failed")
            raise

    # -- import errors ------------------------------------------------------------------------

    def _import_errors(self) -> None:
        shipped = self._shipped
        if not self._settings.check_imports:
            self._record(IMPORT_ERRORS, Outcome.SKIPPED, "check-import-errors is false")
            return
        if not shipped.members:
            self._record(IMPORT_ERRORS, Outcome.SKIPPED, "this deploy shipped no DAG files")
            return
        airflow = self.api()
        if airflow is None:
            self._from_logs()
            return
        try:
            errors = airflow.import_errors()
        except AirflowApiError as exc:
            self.api_lost(exc)
            self._from_logs()
            return
        verdict = self._judge(errors)
        self._fail_on(verdict, IMPORT_ERRORS, "")
        where = f"Airflow's API ({len(errors)} import error(s) in all)"
        warned = self._warn_unchanged(verdict)
        if warned:
            self._record(IMPORT_ERRORS, Outcome.WARNED, f"{warned}; read from {where}")
        else:
            self._record(IMPORT_ERRORS, Outcome.PASSED, f"none in the shipped files; {where}")
            self._runner.info(f"No import errors of the changed DAG files, says {where}.")

    def _from_logs(self) -> None:
        """The fallback: the logs, as before Airflow's API was asked."""
        try:
            checked = self._logs_check()
        except RolloutError as exc:
            self._record(IMPORT_ERRORS, Outcome.FAILED, exc.message)
            raise GateError(exc.message, gate=IMPORT_ERRORS) from exc
        api = f" (Airflow's API: {self._why_not})" if self._why_not else ""
        if checked:
            self._record(IMPORT_ERRORS, Outcome.PASSED, f"none in the logs{api}")
        else:
            self._record(IMPORT_ERRORS, Outcome.SKIPPED, f"the logs could not be read{api}")

    def _judge(self, errors: Sequence[AirflowImportError]) -> ImportVerdict:
        shipped = self._shipped
        return judge_import_errors(errors, shipped.members, shipped.changed, shipped.at)

    def _fail_on(self, verdict: ImportVerdict, gate: str, when: str) -> None:
        """GateError (after an error annotation per file) when a changed file has an error."""
        if not verdict.failing:
            return
        prefix = self._shipped.prefix
        for member, (line, message) in verdict.failing.items():
            self._runner.error(
                f"Airflow could not import {shown(prefix + member)}{when}: {message}",
                title="DAG import error",
                file=shown(prefix + member),
                line=line,
            )
        names = ", ".join(
            f"{shown(prefix + m)}{f':{line}' if line else ''} ({message})"
            for m, (line, message) in verdict.failing.items()
        )
        said = (
            f"Airflow reports an import error in {len(verdict.failing)} file(s) this deploy "
            f"changed{when}: {names}."
        )
        self._record(gate, Outcome.FAILED, said)
        raise GateError(said, gate=gate, title="DAG import error")

    def _warn_unchanged(self, verdict: ImportVerdict) -> str:
        """A warning naming the files nobody changed that have an import error (once each);
        the sentence, "" when there are none."""
        if not verdict.unchanged:
            return ""
        prefix = self._shipped.prefix
        names = ", ".join(shown(prefix + m) for m in verdict.unchanged)
        new = [m for m in verdict.unchanged if m not in self._warned]
        if new:
            self._warned.update(new)
            self._runner.warning(
                f"Airflow reports import errors in files this deploy did not change: {names}. "
                "They are not this deploy's doing, so nothing is rolled back for them; fix "
                "them in a later commit.",
                title="Import errors in unchanged files",
            )
        return f"import errors in unchanged files: {names}"

    # -- the settle window ------------------------------------------------------------------

    def _settle(self) -> None:
        window = self._settings.window
        if window <= 0:
            self._record(SETTLE_WINDOW, Outcome.SKIPPED, "verify-window is 0")
            return
        scope, shipped = self._scope, self._shipped
        the = scope.words.the_environment
        reading = self._settings.check_imports and bool(shipped.members)
        versions = _DagVersions(self, shipped, self._runner)
        verdict = ImportVerdict({})
        with self._runner.group(f"Settle window: watching {the} for {duration(window)}"):
            wait = Wait(scope.timing, window, self._runner.info)
            while True:
                seen = scope.platform.observe(shipped.release)
                wait.seen(seen.summary)
                if seen.failed:
                    said = (
                        f"{capitalized(the)} became unhealthy {duration(wait.elapsed)} into the "
                        f"settle window (verify-window {duration(window)}): {seen.summary}."
                    )
                    self._record(SETTLE_WINDOW, Outcome.FAILED, said)
                    raise GateError(said, gate=SETTLE_WINDOW)
                airflow = self.api() if reading or versions.wanted else None
                if airflow is not None and reading:
                    verdict = self._look_for_errors(airflow, wait.elapsed) or verdict
                if versions.wanted:
                    versions.look()
                if not wait.pause():
                    break
        self._settled(verdict, versions)

    def _look_for_errors(self, airflow: Airflow, elapsed: float) -> ImportVerdict | None:
        """One look at the import errors inside the window; GateError on a changed file's."""
        try:
            errors = airflow.import_errors()
        except AirflowApiError as exc:
            self.api_lost(exc)
            return None
        verdict = self._judge(errors)
        self._fail_on(verdict, SETTLE_WINDOW, f" {duration(elapsed)} into the settle window")
        self._warn_unchanged(verdict)
        return verdict

    def _settled(self, verdict: ImportVerdict, versions: _DagVersions) -> None:
        """The settle window's record, once it passed: warnings for what was not confirmed."""
        window = duration(self._settings.window)
        the = self._scope.words.the_environment
        notes: list[str] = []
        if verdict.stale:
            names = ", ".join(shown(self._shipped.prefix + m) for m in verdict.stale)
            self._runner.warning(
                f"Airflow still reports the import errors these files had before this deploy: "
                f"{names}. It has not parsed the new files within the settle window; look at "
                "them in the Airflow UI.",
                title="Import errors from before this deploy",
            )
            notes.append(f"errors from before this deploy still reported: {names}")
        if verdict.unchanged:
            notes.append(self._warn_unchanged(verdict))
        notes += versions.finish()
        if self._why_not and (self._settings.check_imports and self._shipped.members):
            notes.append(f"import errors not watched (Airflow's API: {self._why_not})")
        healthy = f"{the} stayed healthy for {window}"
        if notes:
            self._record(SETTLE_WINDOW, Outcome.WARNED, f"{healthy}; {'; '.join(notes)}")
        else:
            confirmed = versions.said()
            detail = f"{healthy}; {confirmed}" if confirmed else healthy
            self._record(SETTLE_WINDOW, Outcome.PASSED, detail)
        self._runner.info(f"Settle window passed: {healthy}.")

    # -- smoke runs -------------------------------------------------------------------------

    def _smoke(self, dag: SmokeDag) -> None:
        gate = smoke_gate(dag.dag_id)
        airflow = self.api()
        if airflow is None:
            self._smoke_skipped(gate, dag, f"Airflow's API could not be asked ({self._why_not})")
            return
        try:
            found = airflow.dag(dag.dag_id)
            if found is None:
                said = (
                    f"Airflow has no DAG {dag.dag_id}, so its smoke run could not be triggered: "
                    "check smoke-dags and the DAG's import errors."
                )
                self._record(gate, Outcome.FAILED, said)
                raise GateError(said, gate=gate, title="Smoke run failed")
            if found.is_paused and not self._settings.smoke_unpause:
                self._smoke_skipped(
                    gate, dag, "it is paused; set smoke-unpause: true to unpause it for its run"
                )
                return
            with _Unpaused(airflow, dag.dag_id, found.is_paused, self._runner):
                self._smoke_run(airflow, dag, gate)
        except AirflowApiError as exc:
            self._smoke_skipped(gate, dag, f"Airflow's API failed: {exc.message}")

    def _smoke_run(self, airflow: Airflow, dag: SmokeDag, gate: str) -> None:
        timeout = self._settings.smoke_timeout
        run = airflow.trigger(dag.dag_id, dag.conf)
        link = airflow.run_link(dag.dag_id, run.run_id)
        self._runner.info(f"Smoke run {run.run_id} of DAG {dag.dag_id} triggered. {link}".strip())
        with self._runner.group(f"Smoke run of DAG {dag.dag_id}"):
            wait = Wait(self._scope.timing, timeout, self._runner.info)
            while True:
                wait.seen(f"run {run.run_id} {run.state}")
                if run.state == "success":
                    said = f"run {run.run_id} succeeded in {duration(wait.elapsed)}"
                    self._record(gate, Outcome.PASSED, said)
                    self._runner.info(f"Smoke run of DAG {dag.dag_id}: {said}.")
                    return
                if run.state == "failed":
                    self._smoke_failed(airflow, dag, gate, run.run_id, link)
                if not wait.pause():
                    said = (
                        f"The smoke run {run.run_id} of DAG {dag.dag_id} did not end within "
                        f"{duration(timeout)} (smoke-timeout); it was {run.state}."
                        f"{f' See {link}' if link else ''}"
                    )
                    self._record(gate, Outcome.FAILED, said)
                    raise GateError(said, gate=gate, title="Smoke run timed out")
                run = airflow.dag_run(dag.dag_id, run.run_id)

    def _smoke_failed(
        self, airflow: Airflow, dag: SmokeDag, gate: str, run_id: str, link: str
    ) -> None:
        tasks = airflow.failed_tasks(dag.dag_id, run_id)
        which = f"failed task(s): {', '.join(tasks)}" if tasks else "no failed task was listed"
        said = (
            f"The smoke run {run_id} of DAG {dag.dag_id} failed ({which})."
            f"{f' See {link}' if link else ''}"
        )
        self._runner.error(said, title=f"Smoke run of {dag.dag_id} failed")
        self._record(gate, Outcome.FAILED, said)
        raise GateError(said, gate=gate, title="Smoke run failed")

    def _smoke_skipped(self, gate: str, dag: SmokeDag, why: str) -> None:
        self._runner.warning(
            f"The smoke run of DAG {dag.dag_id} was not made: {why}.", title="Smoke run skipped"
        )
        self._record(gate, Outcome.SKIPPED, why)

    # -- shared -----------------------------------------------------------------------------

    def api(self) -> Airflow | None:
        """Airflow's API, None (and ``_why_not`` says why) when it cannot be asked."""
        if self._airflow is not None or self._why_not:
            return self._airflow
        platform = self._scope.platform
        if not isinstance(platform, AirflowPlatform):
            self._why_not = f"{self._scope.words.platform} serves none"
            return None
        try:
            self._airflow = platform.airflow()
        except AirflowApiError as exc:
            self.api_lost(exc)
        return self._airflow

    def api_lost(self, exc: AirflowApiError) -> None:
        """Stop asking Airflow's API, with a notice saying why and what is done instead."""
        self._airflow = None
        self._why_not = exc.message
        self._runner.notice(
            f"Airflow's API could not be asked: {exc.message}. The import errors are read "
            "from the Deployment's logs instead, and the settle window watches only its "
            "status.",
            title="Airflow API not reachable",
        )

    def _record(self, gate: str, outcome: Outcome, detail: str) -> None:
        self._scope.journal.add(Verified(GateResult(gate, outcome, detail)))
        if gate in self._left:
            self._left.remove(gate)

    def _skip_the_rest(self, why: str) -> None:
        for gate in list(self._left):
            self._record(gate, Outcome.SKIPPED, f"not run: {why}")


class _DagVersions:
    """Airflow 3's DAG versions of the changed DAGs: confirmed once their latest version was
    parsed from this deploy's bundle version."""

    def __init__(self, gates: Gates, shipped: Delivered, runner: Runner) -> None:
        self._gates = gates
        self._runner = runner
        self._shipped = shipped
        self._confirmed: list[str] = []
        self._pending: list[str] | None = None
        """The changed DAGs not confirmed yet; None until they are listed."""
        self.wanted = bool(shipped.bundle_version) and bool(shipped.members)

    def look(self) -> None:
        airflow = self._gates.api()
        if airflow is None or airflow.major < 3:
            self.wanted = False
            return
        try:
            if self._pending is None:
                changed = [
                    m
                    for m in self._shipped.members
                    if self._shipped.changed is None or m in self._shipped.changed
                ]
                self._pending = sorted(
                    d.dag_id for d in airflow.dags() if member_of(d.fileloc, changed) is not None
                )
            for dag_id in list(self._pending):
                if airflow.bundle_version(dag_id) == self._shipped.bundle_version:
                    self._pending.remove(dag_id)
                    self._confirmed.append(dag_id)
                    self._runner.info(
                        f"DAG {dag_id} was parsed from this deploy's bundle version "
                        f"{self._shipped.bundle_version}."
                    )
        except AirflowApiError as exc:
            self._gates.api_lost(exc)
            self.wanted = False
            return
        if not self._pending:
            self.wanted = False

    def said(self) -> str:
        """What was confirmed, for the record; "" when nothing was asked."""
        if not self._confirmed:
            return ""
        return f"DAG versions from bundle version {self._shipped.bundle_version}: " + ", ".join(
            self._confirmed
        )

    def finish(self) -> list[str]:
        """Warnings for the changed DAGs whose new version was not seen."""
        if not self._pending:
            return []
        names = ", ".join(self._pending)
        self._runner.warning(
            f"Airflow did not show DAG versions of bundle version {self._shipped.bundle_version} "
            f"for {names} within the settle window: they may still run the code from before "
            "this deploy. Look at their DAG versions in the Airflow UI.",
            title="DAG versions not confirmed",
        )
        return [f"DAG versions not confirmed for {names}"]


class _Unpaused:
    """A paused DAG unpaused for its smoke run, and paused again on every way out."""

    def __init__(self, airflow: Airflow, dag_id: str, paused: bool, runner: Runner) -> None:
        self._airflow, self._dag_id, self._paused, self._runner = airflow, dag_id, paused, runner

    def __enter__(self) -> None:
        if self._paused:
            self._airflow.set_paused(self._dag_id, False)
            self._runner.info(f"DAG {self._dag_id} is paused: unpaused for its smoke run.")

    def __exit__(self, *exc: object) -> None:
        if not self._paused:
            return
        try:
            self._airflow.set_paused(self._dag_id, True)
        except AirflowApiError as error:
            self._runner.warning(
                f"DAG {self._dag_id} was unpaused for its smoke run and could not be paused "
                f"again ({error.message}): pause it in the Airflow UI.",
                title="DAG left unpaused",
            )
        else:
            self._runner.info(f"DAG {self._dag_id} paused again.")
