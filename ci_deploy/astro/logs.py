"""DAG import errors in a Deployment's logs: which log lines say Airflow could not import a file.

Airflow names the file by its path in the container (``/usr/local/airflow/dags/x.py``); a
tarball member (``dags/x.py``) matches when that path ends with ``/`` plus the member.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

LOG_SOURCES = ("dag-processor", "scheduler")
"""The log sources where Airflow reports import errors."""

_BROKEN_DAG = re.compile(
    r"(?:Broken DAG: \[(?P<broken>[^\]]+)\]|Failed to import:? (?P<failed>\S+?\.py))"
)


def import_problems(lines: Iterable[str], members: Iterable[str]) -> Mapping[str, str]:
    """The deployed Python files (``members``) that a log line reports as broken, each with the
    first line that says so, in member order."""
    python_members = [m for m in members if m.endswith(".py")]
    found: dict[str, str] = {}
    for line in lines:
        match = _BROKEN_DAG.search(line)
        if match is None:
            continue
        path = match.group("broken") or match.group("failed") or ""
        for member in python_members:
            if path == member or path.endswith("/" + member):
                found.setdefault(member, line.strip())
    return {member: found[member] for member in sorted(found)}
