"""The verification gates' decisions, pure: what Airflow says in, verdicts out.

After a rollout is healthy, a run asks Airflow itself whether the new DAGs work (see
:mod:`ci_deploy.stages.gates`): its import errors, read again through a settle window, and
smoke runs of named DAGs. What the answers mean is decided here, over plain data: which
tarball member an import error is about (Airflow names files by their path on its machine,
``/usr/local/airflow/dags/etl.py``, or relative to the DAG bundle on Airflow 3), the line and
message of Airflow's stack trace, whether an error fails the rollout (a file this deploy
changed) or only warns (a file nobody changed), and the ``verification`` output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

__all__ = [
    "AirflowImportError",
    "Dag",
    "DagRun",
    "GateResult",
    "ImportVerdict",
    "Outcome",
    "SmokeDag",
    "error_line",
    "error_message",
    "judge_import_errors",
    "member_of",
    "run_link",
    "verification_json",
]


class Outcome(StrEnum):
    """How one gate ended: the ``result`` of its entry in the ``verification`` output."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    WARNED = "warned"


@dataclass(frozen=True)
class GateResult:
    """One gate's result: ``gate`` is ``rollout``, ``import-errors``, ``settle-window`` or
    ``smoke:<dag_id>``; ``detail`` says why, in a sentence."""

    gate: str
    result: Outcome
    detail: str = ""


@dataclass(frozen=True)
class AirflowImportError:
    """One of Airflow's import errors: the file as Airflow names it, its stack trace, and
    when Airflow recorded it (None when it did not say)."""

    filename: str
    stack_trace: str
    timestamp: datetime | None = None


@dataclass(frozen=True)
class Dag:
    """A DAG as Airflow lists it: its id, whether it is paused, and its file."""

    dag_id: str
    is_paused: bool
    fileloc: str = ""


@dataclass(frozen=True)
class DagRun:
    """A DAG run: its id and state (``queued``, ``running``, ``success``, ``failed``)."""

    dag_id: str
    run_id: str
    state: str


@dataclass(frozen=True)
class SmokeDag:
    """One entry of ``smoke-dags``: a DAG id and the ``conf`` its run is triggered with."""

    dag_id: str
    conf: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class ImportVerdict:
    """Import errors sorted by what they mean for the rollout.

    ``failing``: the changed members with an error Airflow recorded since the deploy, each
    with its line (None when the trace names none) and Airflow's message; ``stale``: changed
    members whose error is older than the deploy (Airflow has not parsed the new file yet);
    ``unchanged``: members nobody changed that have an error (a warning, never a rollback);
    ``elsewhere``: files of no member (not this deploy's).
    """

    failing: Mapping[str, tuple[int | None, str]]
    stale: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    elsewhere: tuple[str, ...] = ()


_TRACE_FILE_LINE = re.compile(r'File "([^"]+)", line (\d+)')
_ANY_LINE = re.compile(r"\bline (\d+)")


def _under_folder(member: str) -> str:
    """A tarball member without its first part, the DAGs folder: ``dags/a/b.py`` -> ``a/b.py``."""
    return member.split("/", 1)[1] if "/" in member else member


def member_of(filename: str, members: Iterable[str]) -> str | None:
    """The tarball member Airflow's ``filename`` is, None when none is.

    Airflow names a file by its path where the DAGs are (``/usr/local/airflow/dags/a/b.py``)
    or, on Airflow 3, relative to the bundle (``a/b.py``); a member ``dags/a/b.py`` is either
    when it ends the path at a ``/``. The longest match wins (``x/b.py`` before ``b.py``).
    """
    name = filename.replace("\\", "/")
    best: str | None = None
    for member in members:
        for tail in (member, _under_folder(member)):
            if (name == tail or name.endswith("/" + tail)) and (
                best is None or len(member) > len(best)
            ):
                best = member
    return best


def error_line(stack_trace: str, filename: str) -> int | None:
    """The line of ``filename`` Airflow's ``stack_trace`` points at (the last frame in that
    file), else the last ``line N`` it names; None when it names none."""
    found = _TRACE_FILE_LINE.findall(stack_trace)
    frames = [int(line) for path, line in found if _same(path, filename)]
    if frames:
        return frames[-1]
    lines = _ANY_LINE.findall(stack_trace)
    return int(lines[-1]) if lines else None


def _same(path: str, other: str) -> bool:
    """Whether two paths name the same file, one possibly relative to the other's folder."""
    return path == other or path.endswith("/" + other) or other.endswith("/" + path)


def error_message(stack_trace: str) -> str:
    """Airflow's own message: the last line of the stack trace that says something."""
    lines = [line.strip() for line in stack_trace.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "Airflow reported an import error with no message"


def judge_import_errors(
    errors: Iterable[AirflowImportError],
    members: Sequence[str],
    changed: frozenset[str] | None,
    since: datetime | None,
) -> ImportVerdict:
    """Sort Airflow's import ``errors`` for a deploy that shipped ``members``.

    ``changed`` are the members this deploy changed (None: all of them, a deploy with
    nothing to compare with). An error of a changed member fails the rollout when Airflow
    recorded it at or after ``since`` (the finalize), or says no time; an older one is from
    the file before this deploy (``stale``). Errors of unchanged members only warn.
    """
    failing: dict[str, tuple[int | None, str]] = {}
    stale: list[str] = []
    unchanged: list[str] = []
    elsewhere: list[str] = []
    for error in errors:
        member = member_of(error.filename, members)
        if member is None:
            elsewhere.append(error.filename)
        elif changed is not None and member not in changed:
            unchanged.append(member)
        elif since is not None and error.timestamp is not None and error.timestamp < since:
            stale.append(member)
        else:
            line = error_line(error.stack_trace, error.filename)
            failing[member] = (line, error_message(error.stack_trace))
    return ImportVerdict(
        failing,
        tuple(sorted(set(stale) - set(failing))),
        tuple(sorted(set(unchanged))),
        tuple(sorted(set(elsewhere))),
    )


def run_link(ui_url: str, airflow_major: int, dag_id: str, run_id: str) -> str:
    """The Airflow UI's page of a DAG run: ``/dags/<id>/runs/<run>`` on Airflow 3, the grid
    view of the run on Airflow 2; "" without a UI address. A URL without a scheme (Astro's
    ``webServerUrl``) gets ``https://``; its query (``?orgId=...``) stays at the end."""
    if not ui_url:
        return ""
    from urllib.parse import quote

    base = ui_url if "://" in ui_url else f"https://{ui_url}"
    base, _, query = base.partition("?")
    dag, run = quote(dag_id, safe=""), quote(run_id, safe="")
    if airflow_major >= 3:
        link = f"{base.rstrip('/')}/dags/{dag}/runs/{run}"
        return f"{link}?{query}" if query else link
    link = f"{base.rstrip('/')}/dags/{dag}/grid?dag_run_id={run}"
    return f"{link}&{query}" if query else link


def verification_json(results: Sequence[GateResult]) -> str:
    """The ``verification`` output: a JSON list of ``{"gate", "result", "detail"}``."""
    return json.dumps(
        [{"gate": r.gate, "result": r.result.value, "detail": r.detail} for r in results],
        ensure_ascii=False,
        separators=(",", ":"),
    )
