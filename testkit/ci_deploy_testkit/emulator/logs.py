"""Deployment logs: the entries the emulator keeps and the search GetDeploymentLogs runs.

Entries live in memory per Deployment; tests add them with
:meth:`~ci_deploy_testkit.emulator.Emulator.add_log`, and a finalize can add Airflow's
``Broken DAG`` lines (:func:`broken_dag_line`). A search filters by source, time window
and text, sorts oldest first, keeps the first ``maxNumResults`` and returns one page of
them as a ``DeploymentLog``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

#: The log sources the spec names, in its order.
LOG_SOURCES = ("scheduler", "triggerer", "worker", "webserver", "dag-processor", "apiserver")

#: Where a Deployment's project lives in the Astro Runtime image.
AIRFLOW_HOME = "/usr/local/airflow"


@dataclass(frozen=True)
class LogEntry:
    """One log line: when (epoch seconds), which component, and the line itself."""

    timestamp: float
    source: str
    raw: str

    def json(self) -> dict[str, Any]:
        """The ``DeploymentLogEntry`` JSON; ``timestamp`` is epoch seconds with a fraction."""
        return {"raw": self.raw, "source": self.source, "timestamp": self.timestamp}


@dataclass(frozen=True)
class LogSearch:
    """A validated GetDeploymentLogs query.

    ``start``/``end`` (epoch seconds, both inclusive) come from ``startDate``/``endDate``;
    when they are None the window is the last ``range_seconds`` up to now.
    """

    sources: frozenset[str]
    start: float | None
    end: float | None
    range_seconds: int
    search_text: str | None
    offset: int
    limit: int
    max_results: int
    search_id: str | None


def broken_dag_line(path: str) -> str:
    """The dag-processor line Airflow writes for a DAG file that fails to import.

    ``path`` is a project path (``dags/broken.py``) or an absolute one; relative paths are
    placed under :data:`AIRFLOW_HOME`, as Airflow names them in a Deployment.
    """
    full = path if path.startswith("/") else f"{AIRFLOW_HOME}/{path.removeprefix('./')}"
    return (
        f"Broken DAG: [{full}] Traceback (most recent call last): "
        f'File "{full}", line 1 ... SyntaxError: invalid syntax'
    )


def search_logs(entries: Iterable[LogEntry], query: LogSearch, now: float) -> dict[str, Any]:
    """The ``DeploymentLog`` page of ``entries`` that ``query`` selects, at time ``now``."""
    start, end = query.start, query.end
    if start is None or end is None:
        start, end = now - query.range_seconds, now
    needle = (query.search_text or "").lower()
    found = sorted(
        (
            entry
            for entry in entries
            if entry.source in query.sources
            and start <= entry.timestamp <= end
            and needle in entry.raw.lower()
        ),
        key=lambda entry: entry.timestamp,
    )[: query.max_results]
    page = found[query.offset : query.offset + query.limit]
    return {
        "limit": query.limit,
        "maxNumResults": query.max_results,
        "offset": query.offset,
        "resultCount": len(page),
        "results": [entry.json() for entry in page],
        "searchId": query.search_id or str(uuid.uuid4()),
    }
