"""What the emulated Airflow makes of a deployed DAG tarball: its DAG files, their DAG ids
and tasks, and the markers that steer the emulated behaviour.

Pure: bytes in, :class:`DagFile` records out. A file's DAG ids are found by the regexes
``dag_id\\s*=\\s*["']([^"']+)["']`` and ``DAG\\(\\s*["']([^"']+)["']``, its task ids by
``task_id\\s*=\\s*["']([^"']+)["']``. Marker lines (comments, anywhere in the file):

- ``# ci-deploy-emulator: import-error``: the file fails to import, as soon as the rollout
  that brought it is ``HEALTHY``;
- ``# ci-deploy-emulator: import-error-after 20``: the same, 20 seconds later (scaled by the
  emulator's ``airflow_delay_scale``);
- ``# ci-deploy-emulator: smoke-fails TASK_ID``: a triggered run of its DAGs fails, task
  ``TASK_ID`` failed and the others successful;
- ``# ci-deploy-emulator: paused``: its DAGs start paused.
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass

AIRFLOW_HOME = "/usr/local/airflow"

_DAG_ID = re.compile(r"""dag_id\s*=\s*["']([^"']+)["']|DAG\(\s*["']([^"']+)["']""")
_TASK_ID = re.compile(r"""task_id\s*=\s*["']([^"']+)["']""")
_MARKER = re.compile(r"#\s*ci-deploy-emulator:\s*(?P<name>[a-z-]+)(?:[ \t]+(?P<arg>\S+))?")
_DEFAULT_TASK = "run"  # the task of a DAG file that names none


@dataclass(frozen=True)
class ImportFailure:
    """A file's emulated import error: the line it points at, and how many seconds after
    the file's rollout it appears (0: at once)."""

    line: int
    after_seconds: float
    text: str  # the marker's line

    def stack_trace(self, fileloc: str) -> str:
        """The ``stack_trace`` Airflow reports for it."""
        return (
            "Traceback (most recent call last):\n"
            f'  File "{fileloc}", line {self.line}\n'
            f"    {self.text.strip()}\n"
            "    ^\n"
            f"SyntaxError: invalid syntax (emulated) ({fileloc.rsplit('/', 1)[-1]}, "
            f"line {self.line})\n"
        )


@dataclass(frozen=True)
class DagFile:
    """One ``.py`` file of a DAG tarball, as the emulated Airflow sees it."""

    member: str  # the tarball member, dags/etl/daily.py
    sha256: str
    dag_ids: tuple[str, ...]
    task_ids: tuple[str, ...]  # never empty
    import_failure: ImportFailure | None
    failing_task: str | None  # smoke-fails TASK_ID
    paused: bool

    @property
    def fileloc(self) -> str:
        """The absolute path Airflow names it by, /usr/local/airflow/dags/etl/daily.py."""
        return f"{AIRFLOW_HOME}/{self.member}"

    @property
    def relative_fileloc(self) -> str:
        """Its path under the DAGs folder, etl/daily.py."""
        return self.member.split("/", 1)[1] if "/" in self.member else self.member


def read_dag_files(tarball: bytes) -> tuple[DagFile, ...]:
    """The ``.py`` files under ``dags/`` of a (gzipped) DAG tarball, by member name.

    A tarball that cannot be read gives no files: the emulated Airflow then serves no DAGs.
    """
    files: list[DagFile] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:*") as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                if not member.isfile() or not name.endswith(".py"):
                    continue
                extracted = archive.extractfile(member)
                if extracted is not None:
                    files.append(dag_file(name, extracted.read()))
    except (tarfile.TarError, OSError, EOFError):
        return ()
    return tuple(sorted(files, key=lambda file: file.member))


def dag_file(member: str, data: bytes) -> DagFile:
    """What the emulated Airflow reads in one DAG file."""
    text = data.decode("utf-8", errors="replace")
    dag_ids = _unique(match[1] or match[2] for match in _DAG_ID.finditer(text))
    task_ids = _unique(match[1] for match in _TASK_ID.finditer(text))
    failure: ImportFailure | None = None
    failing_task: str | None = None
    paused = False
    for number, line in enumerate(text.splitlines(), start=1):
        marker = _MARKER.search(line)
        if marker is None:
            continue
        name, arg = marker["name"], marker["arg"]
        if name == "import-error" and failure is None:
            failure = ImportFailure(number, 0.0, line)
        elif name == "import-error-after" and failure is None:
            failure = ImportFailure(number, _seconds(arg), line)
        elif name == "smoke-fails" and arg:
            failing_task = arg
        elif name == "paused":
            paused = True
    if failing_task and failing_task not in task_ids:
        task_ids = (*task_ids, failing_task)
    return DagFile(
        member=member,
        sha256=hashlib.sha256(data).hexdigest(),
        dag_ids=dag_ids,
        task_ids=task_ids or (_DEFAULT_TASK,),
        import_failure=failure,
        failing_task=failing_task,
        paused=paused,
    )


def _seconds(text: str | None) -> float:
    try:
        return max(0.0, float(text or 0))
    except ValueError:
        return 0.0


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))
