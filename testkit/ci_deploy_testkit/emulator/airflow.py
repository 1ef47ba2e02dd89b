"""The Airflow REST API each emulated Deployment serves at its ``apiUrl``: the subset the
verification gates use, driven by the Deployment's deployed DAG tarball.

``/airflow/<deployment>/api/v1/...`` (Airflow 2, spec ``airflow-2.10.5-rest-api-v1.yaml``)
or ``/airflow/<deployment>/api/v2/...`` (Airflow 3, ``airflow-3.3.2-rest-api-v2.yaml``), as
the Deployment's ``airflowVersion`` says; the other answers 404. Both take the emulator's
API tokens as bearer tokens. Served: list import errors (``limit``/``offset``), list DAGs,
get and PATCH a DAG (``is_paused``), trigger a DAG run (optional ``conf``), get a DAG run,
list a run's task instances, and on v2 a DAG's versions (``dagVersions``).

What it serves comes from the DAG files of the tarball the Deployment runs
(:mod:`~ci_deploy_testkit.emulator.airflow_dags` reads them and their markers): the DAGs,
their import errors (from when the rollout that brought the file ended, or ``N`` seconds
later for ``import-error-after N``), how a triggered run ends (about
:data:`RUN_SECONDS` after it starts). Both delays are on the emulator's clock, multiplied
by ``delay_scale`` (the emulator's ``airflow_delay_scale``), so a test can make 20 seconds
one. A Deployment whose tarball is unknown (the seeded deploy, an image deploy, an
emulator with ``keep_blobs=False``) serves no DAGs. A DAG gets a new DAG version when a
rollout brings its file changed, with the rollout's bundle version (the DAG tarball
version, or the image deploy's id on a Deployment without DAG deploys).

Errors are answered in each version's shape: v1 ``{"type", "title", "status", "detail"}``,
v2 ``{"detail"}`` (422 with the list of problems).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ci_deploy_testkit.emulator.airflow_dags import DagFile, read_dag_files
from ci_deploy_testkit.emulator.routing import NoRoute, Route, find_route
from ci_deploy_testkit.emulator.state import AstroState, Parse, airflow_api_path
from ci_deploy_testkit.emulator.wire import RecordedRequest, Response, json_response, parse_query

RUN_SECONDS = 1.0  # how long a triggered run takes (times delay_scale): queued, running, done
BUNDLE_NAME = "dags-folder"

_PATH = re.compile(r"/airflow/(?P<deployment>[^/]+)(?P<api>/api/v[12])(?P<rest>/.*)?")
_DAG = r"/dags/(?P<dag_id>[^/]+)"
_RUN = _DAG + r"/dagRuns/(?P<run_id>[^/]+)"
_NAMESPACE = uuid.UUID("6f1d1f52-3c36-4a4f-9d64-3a6b8f0f3a11")


class AirflowProblem(Exception):
    """An Airflow API error answer (shaped per API version by :meth:`AirflowApi.handle`)."""

    def __init__(self, status: int, title: str, detail: str, field: str = "") -> None:
        super().__init__(f"{status}: {detail}")
        self.status, self.title, self.detail, self.field = status, title, detail, field


@dataclass(frozen=True)
class DagVersion:
    """One version of a DAG: a rollout that brought its file new or changed."""

    number: int
    dag_id: str
    bundle_version: str
    created: float  # epoch seconds

    def json(self) -> dict[str, Any]:
        """The v2 ``DagVersionResponse``."""
        return {
            "id": str(uuid.uuid5(_NAMESPACE, f"{self.dag_id}/{self.number}")),
            "version_number": self.number,
            "dag_id": self.dag_id,
            "bundle_name": BUNDLE_NAME,
            "bundle_version": self.bundle_version,
            "created_at": _iso(self.created),
            "dag_display_name": self.dag_id,
            "bundle_url": None,
        }


@dataclass
class DagRun:
    """A triggered run: it starts once its DAG is unpaused and ends ``duration`` later."""

    dag_id: str
    run_id: str
    file: DagFile  # the DAG's file when it was triggered
    conf: dict[str, Any]
    logical_date: str | None
    queued_at: float  # epoch seconds
    duration: float
    version: DagVersion | None
    bundle_version: str | None
    started: float | None = None  # the clock when it began running


@dataclass
class AirflowRecord:
    """The Airflow of one Deployment: what the API changed (pauses, runs) and error ids."""

    paused: dict[str, bool] = field(default_factory=dict)  # PATCHed, by DAG id
    runs: dict[tuple[str, str], DagRun] = field(default_factory=dict)
    error_ids: dict[tuple[str, str], int] = field(default_factory=dict)  # (bundle, member)


class AirflowApi:
    """Answers ``/airflow/...`` requests from ``state``, for bearer tokens that ``accepts``.

    ``enabled`` False answers every request 503, as an unreachable API server behind
    Astro's ingress does (set :attr:`enabled` at any time).
    """

    def __init__(
        self,
        state: AstroState,
        accepts: Callable[[str], bool],
        *,
        enabled: bool = True,
        delay_scale: float = 1.0,
    ) -> None:
        self._state = state
        self._accepts = accepts
        self.enabled = enabled
        self.delay_scale = delay_scale
        self._records: dict[str, AirflowRecord] = {}
        self._files: dict[str, tuple[DagFile, ...]] = {}  # by DAG tarball version
        self._error_ids = 0
        self._routes = [
            Route("GET", re.compile("/importErrors"), self.list_import_errors),
            Route("GET", re.compile("/dags"), self.list_dags),
            Route("GET", re.compile(_DAG), self.get_dag),
            Route("PATCH", re.compile(_DAG), self.patch_dag),
            Route("POST", re.compile(_DAG + "/dagRuns"), self.trigger_dag_run),
            Route("GET", re.compile(_RUN), self.get_dag_run),
            Route("GET", re.compile(_RUN + "/taskInstances"), self.list_task_instances),
            Route("GET", re.compile(_DAG + "/dagVersions"), self.list_dag_versions),
        ]

    def handle(self, request: RecordedRequest) -> Response:
        match = _PATH.fullmatch(request.path)
        v2 = match is not None and match["api"] == "/api/v2"
        if not self.enabled:
            return json_response(503, {"detail": "Service Unavailable (emulated: airflow_api)"})
        try:
            if match is None:
                raise AirflowProblem(404, "Not Found", f"no Airflow API at {request.path}")
            deployment, api = match["deployment"], match["api"]
            self._authenticate(request)
            if not self._state.has_deployment(deployment):
                raise AirflowProblem(404, "Not Found", f"no Deployment {deployment}")
            served = airflow_api_path(self._deployment_json(deployment)["airflowVersion"])
            if api != served:
                raise AirflowProblem(
                    404, "Not Found", f"this Deployment's Airflow serves {served}, not {api}"
                )
            sub = RecordedRequest(
                request.method, match["rest"] or "/", request.query, request.headers, request.body
            )
            try:
                handler, params = find_route(self._routes, sub)
            except NoRoute as no_route:
                status = 405 if no_route.allowed else 404
                raise AirflowProblem(
                    status, "Not Found", f"{request.method} {request.path}"
                ) from None
            if handler == self.list_dag_versions and not v2:
                raise AirflowProblem(404, "Not Found", "dagVersions is an Airflow 3 endpoint")
            return handler(sub, deployment, v2, **params)
        except AirflowProblem as problem:
            return _problem_response(problem, v2)

    # -- handlers --------------------------------------------------------------------

    def list_import_errors(self, request: RecordedRequest, deployment: str, v2: bool) -> Response:
        offset, limit = _paging(request, v2)
        errors = _ordered(request, self.import_errors(deployment, v2), "import_error_id", v2)
        page = {"import_errors": errors[offset : offset + limit], "total_entries": len(errors)}
        return json_response(200, page)

    def list_dags(self, request: RecordedRequest, deployment: str, v2: bool) -> Response:
        offset, limit = _paging(request, v2)
        query = parse_query(request.query)
        dags = [
            self._dag_json(deployment, dag_id, file, v2)
            for dag_id, file in self._dags(deployment).items()
        ]
        if "paused" in query:
            wanted = _query_bool(query["paused"], "paused", v2)
            dags = [dag for dag in dags if dag["is_paused"] == wanted]
        if query.get("dag_id_pattern"):
            pattern = query["dag_id_pattern"].lower()
            dags = [dag for dag in dags if pattern in dag["dag_id"].lower()]
        dags = _ordered(request, dags, "dag_id", v2)
        return json_response(
            200, {"dags": dags[offset : offset + limit], "total_entries": len(dags)}
        )

    def get_dag(self, request: RecordedRequest, deployment: str, v2: bool, dag_id: str) -> Response:
        file = self._dag_file(deployment, dag_id)
        return json_response(200, self._dag_json(deployment, dag_id, file, v2))

    def patch_dag(
        self, request: RecordedRequest, deployment: str, v2: bool, dag_id: str
    ) -> Response:
        file = self._dag_file(deployment, dag_id)
        body = _json_object(request, v2)
        mask = parse_query(request.query).get("update_mask")
        if mask is not None and mask != "is_paused":
            raise AirflowProblem(
                400, "Bad Request", f"update_mask {mask!r}: only is_paused can be updated"
            )
        paused = body.get("is_paused")
        if not isinstance(paused, bool):
            raise AirflowProblem(
                422 if v2 else 400, "Bad Request", "is_paused must be true or false", "is_paused"
            )
        record = self._record(deployment)
        record.paused[dag_id] = paused
        for run in record.runs.values():
            if run.dag_id == dag_id:
                self._advance(deployment, run)  # unpaused: its queued runs start now
        return json_response(200, self._dag_json(deployment, dag_id, file, v2))

    def trigger_dag_run(
        self, request: RecordedRequest, deployment: str, v2: bool, dag_id: str
    ) -> Response:
        file = self._dag_file(deployment, dag_id)
        body = _json_object(request, v2)
        if v2 and "logical_date" not in body:
            raise AirflowProblem(422, "Unprocessable Entity", "Field required", "logical_date")
        conf = body.get("conf") or {}
        if not isinstance(conf, dict):
            raise AirflowProblem(
                422 if v2 else 400, "Bad Request", "conf must be a JSON object", "conf"
            )
        record = self._record(deployment)
        now = self._state.wall_clock()
        run_id = body.get("dag_run_id") or f"manual__{_iso(now)}"
        if not isinstance(run_id, str):
            raise AirflowProblem(
                422 if v2 else 400, "Bad Request", "dag_run_id must be a string", "dag_run_id"
            )
        if (dag_id, run_id) in record.runs:
            raise AirflowProblem(
                409,
                "Conflict",
                f"DAGRun with DAG ID: '{dag_id}' and DAGRun ID: '{run_id}' already exists",
            )
        parse = self._current(deployment)
        versions = self.dag_versions(deployment, dag_id)
        run = DagRun(
            dag_id=dag_id,
            run_id=run_id,
            file=file,
            conf=conf,
            logical_date=body.get("logical_date")
            if isinstance(body.get("logical_date"), str)
            else None,
            queued_at=now,
            duration=RUN_SECONDS * self.delay_scale,
            version=versions[-1] if versions else None,
            bundle_version=parse.bundle_version if parse else None,
        )
        record.runs[(dag_id, run_id)] = run
        self._advance(deployment, run)
        return json_response(200, self._run_json(run, v2))

    def get_dag_run(
        self, request: RecordedRequest, deployment: str, v2: bool, dag_id: str, run_id: str
    ) -> Response:
        run = self._run(deployment, dag_id, run_id)
        return json_response(200, self._run_json(run, v2))

    def list_task_instances(
        self, request: RecordedRequest, deployment: str, v2: bool, dag_id: str, run_id: str
    ) -> Response:
        offset, limit = _paging(request, v2)
        if not v2 and (dag_id, run_id) not in self._record(deployment).runs:
            return json_response(200, {"task_instances": [], "total_entries": 0})  # as Airflow 2
        run = self._run(deployment, dag_id, run_id)
        states = [value for name, value in _query_pairs(request.query) if name == "state"]
        tasks = [self._task_json(run, task_id, v2) for task_id in run.file.task_ids]
        if states:
            tasks = [task for task in tasks if task["state"] in states]
        page = {"task_instances": tasks[offset : offset + limit], "total_entries": len(tasks)}
        return json_response(200, page)

    def list_dag_versions(
        self, request: RecordedRequest, deployment: str, v2: bool, dag_id: str
    ) -> Response:
        offset, limit = _paging(request, v2)
        self._dag_file(deployment, dag_id)
        versions = [version.json() for version in self.dag_versions(deployment, dag_id)]
        versions = _ordered(request, versions, "version_number", v2)
        page = {"dag_versions": versions[offset : offset + limit], "total_entries": len(versions)}
        return json_response(200, page)

    # -- the model -------------------------------------------------------------------

    def run_ids(self, deployment: str) -> list[tuple[str, str]]:
        """The ``(dag_id, dag_run_id)`` of every run triggered on the Deployment, in order."""
        return list(self._record(deployment).runs)

    def import_errors(self, deployment: str, v2: bool = True) -> list[dict[str, Any]]:
        """The import errors Airflow shows now, by id: those of the files of the tarball the
        Deployment runs whose error has appeared."""
        parse = self._current(deployment)
        if parse is None:
            return []
        record = self._record(deployment)
        now, wall = self._state.clock(), self._state.wall_clock()
        errors: list[dict[str, Any]] = []
        for file in self._parsed_files(parse):
            appears = self._appears(parse, file)
            if appears is None or now < appears:
                continue
            key = (parse.bundle_version, file.member)
            if key not in record.error_ids:
                self._error_ids += 1
                record.error_ids[key] = self._error_ids
            failure = file.import_failure
            assert failure is not None
            error: dict[str, Any] = {
                "import_error_id": record.error_ids[key],
                "timestamp": _iso(wall - (now - appears)),
                "filename": file.fileloc,
                "stack_trace": failure.stack_trace(file.fileloc),
            }
            if v2:
                error["bundle_name"] = BUNDLE_NAME
            errors.append(error)
        return sorted(errors, key=lambda error: int(error["import_error_id"]))

    def dag_versions(self, deployment: str, dag_id: str) -> list[DagVersion]:
        """The DAG's versions, oldest first: one per rollout that brought its file new or
        changed, with that rollout's bundle version."""
        versions: list[DagVersion] = []
        previous: str | None = None
        wall_offset = self._state.wall_clock() - self._state.clock()
        for parse in self._state.parses(deployment):
            file = next((f for f in self._parsed_files(parse) if dag_id in f.dag_ids), None)
            if file is None or file.sha256 == previous:
                continue
            previous = file.sha256
            versions.append(
                DagVersion(
                    len(versions) + 1, dag_id, parse.bundle_version, parse.since + wall_offset
                )
            )
        return versions

    def _appears(self, parse: Parse, file: DagFile) -> float | None:
        """When the file's import error appears (the clock), None when it has none."""
        if file.import_failure is None:
            return None
        return parse.since + file.import_failure.after_seconds * self.delay_scale

    def _current(self, deployment: str) -> Parse | None:
        parses = self._state.parses(deployment)
        return parses[-1] if parses else None

    def _parsed_files(self, parse: Parse) -> tuple[DagFile, ...]:
        version = parse.dag_version
        if version is None:
            return ()
        if version not in self._files:
            tarball = self._state.blobs.get(version)
            if tarball is None:
                return ()  # the seeded deploy's, or not kept (keep_blobs=False)
            self._files[version] = read_dag_files(tarball)
        return self._files[version]

    def _dags(self, deployment: str) -> dict[str, DagFile]:
        """The DAGs of the files the Deployment runs, by id (the first file naming one)."""
        parse = self._current(deployment)
        dags: dict[str, DagFile] = {}
        for file in self._parsed_files(parse) if parse else ():
            for dag_id in file.dag_ids:
                dags.setdefault(dag_id, file)
        return dict(sorted(dags.items()))

    def _dag_file(self, deployment: str, dag_id: str) -> DagFile:
        file = self._dags(deployment).get(dag_id)
        if file is None:
            raise AirflowProblem(404, "DAG not found", f"DAG with dag_id: '{dag_id}' not found")
        return file

    def _is_paused(self, deployment: str, dag_id: str, file: DagFile) -> bool:
        return self._record(deployment).paused.get(dag_id, file.paused)

    def _run(self, deployment: str, dag_id: str, run_id: str) -> DagRun:
        run = self._record(deployment).runs.get((dag_id, run_id))
        if run is None:
            raise AirflowProblem(
                404,
                "DAGRun not found",
                f"DAGRun with DAG ID: '{dag_id}' and DagRun ID: '{run_id}' not found",
            )
        self._advance(deployment, run)
        return run

    def _advance(self, deployment: str, run: DagRun) -> None:
        """Start a queued run once its DAG is unpaused (a paused DAG's runs stay queued)."""
        if run.started is None and not self._is_paused(deployment, run.dag_id, run.file):
            run.started = self._state.clock()

    def _run_state(self, run: DagRun) -> str:
        if run.started is None:
            return "queued"
        elapsed = self._state.clock() - run.started
        if elapsed < run.duration * 0.3:
            return "queued"
        if elapsed < run.duration:
            return "running"
        return "failed" if run.file.failing_task else "success"

    def _task_state(self, run: DagRun, task_id: str) -> str | None:
        state = self._run_state(run)
        if state == "queued":
            return "scheduled"
        if state == "running":
            return "running"
        return "failed" if task_id == run.file.failing_task else "success"

    def _record(self, deployment: str) -> AirflowRecord:
        return self._records.setdefault(deployment, AirflowRecord())

    def _deployment_json(self, deployment: str) -> dict[str, Any]:
        return self._state.deployment_by_id(deployment)

    def _authenticate(self, request: RecordedRequest) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self._accepts(token.strip()):
            raise AirflowProblem(401, "Unauthorized", "Not authenticated")

    # -- JSON ------------------------------------------------------------------------

    def _dag_json(self, deployment: str, dag_id: str, file: DagFile, v2: bool) -> dict[str, Any]:
        parse = self._current(deployment)
        parsed = (
            None
            if parse is None
            else _iso(self._state.wall_clock() - (self._state.clock() - parse.since))
        )
        appears = None if parse is None else self._appears(parse, file)
        broken = appears is not None and self._state.clock() >= appears
        common: dict[str, Any] = {
            "dag_id": dag_id,
            "dag_display_name": dag_id,
            "is_paused": self._is_paused(deployment, dag_id, file),
            "last_parsed_time": parsed,
            "last_expired": None,
            "fileloc": file.fileloc,
            "file_token": file.member,
            "owners": ["airflow"],
            "description": None,
            "timetable_description": "Never, external triggers only",
            "tags": [],
            "max_active_tasks": 16,
            "max_active_runs": 16,
            "max_consecutive_failed_dag_runs": 0,
            "has_task_concurrency_limits": False,
            "has_import_errors": broken,
            "next_dagrun_data_interval_start": None,
            "next_dagrun_data_interval_end": None,
        }
        if not v2:
            return common | {
                "root_dag_id": None,
                "is_active": True,
                "is_subdag": False,
                "last_pickled": None,
                "scheduler_lock": None,
                "pickle_id": None,
                "default_view": "grid",
                "next_dagrun": None,
                "next_dagrun_create_after": None,
            }
        return common | {
            "is_stale": False,
            "last_parse_duration": 0.1,
            "bundle_name": BUNDLE_NAME,
            "bundle_version": None if parse is None else parse.bundle_version,
            "relative_fileloc": file.relative_fileloc,
            "timetable_summary": None,
            "timetable_partitioned": False,
            "timetable_periodic": False,
            "next_dagrun_logical_date": None,
            "next_dagrun_run_after": None,
            "allowed_run_types": None,
            "is_backfillable": False,
        }

    def _run_json(self, run: DagRun, v2: bool) -> dict[str, Any]:
        state = self._run_state(run)
        wall_offset = self._state.wall_clock() - self._state.clock()
        start = None if run.started is None else run.started + wall_offset
        end = None if state not in ("success", "failed") or start is None else start + run.duration
        common: dict[str, Any] = {
            "dag_run_id": run.run_id,
            "dag_id": run.dag_id,
            "logical_date": run.logical_date,
            "start_date": None if start is None else _iso(start),
            "end_date": None if end is None else _iso(end),
            "data_interval_start": run.logical_date,
            "data_interval_end": run.logical_date,
            "last_scheduling_decision": None if start is None else _iso(start),
            "run_type": "manual",
            "state": state,
            "conf": run.conf,
            "note": None,
        }
        if not v2:
            return common | {"execution_date": run.logical_date, "external_trigger": True}
        return common | {
            "queued_at": _iso(run.queued_at),
            "duration": None if end is None or start is None else end - start,
            "run_after": _iso(run.queued_at),
            "triggered_by": "rest_api",
            "triggering_user_name": "emulator-api-token",
            "dag_versions": [] if run.version is None else [run.version.json()],
            "bundle_version": run.bundle_version,
            "dag_display_name": run.dag_id,
            "partition_key": None,
            "partition_date": None,
        }

    def _task_json(self, run: DagRun, task_id: str, v2: bool) -> dict[str, Any]:
        state = self._task_state(run, task_id)
        run_json = self._run_json(run, v2)
        common: dict[str, Any] = {
            "task_id": task_id,
            "task_display_name": task_id,
            "dag_id": run.dag_id,
            "dag_run_id": run.run_id,
            "start_date": run_json["start_date"],
            "end_date": run_json["end_date"],
            "duration": None if run_json["end_date"] is None else run.duration,
            "state": state,
            "try_number": 1,
            "map_index": -1,
            "max_tries": 0,
            "hostname": "emulator-worker",
            "unixname": "astro",
            "pool": "default_pool",
            "pool_slots": 1,
            "queue": "default",
            "priority_weight": 1,
            "operator": "PythonOperator",
            "queued_when": run_json["start_date"],
            "pid": None,
            "executor": None,
            "executor_config": "{}",
            "note": None,
            "rendered_map_index": None,
            "rendered_fields": {},
        }
        if not v2:
            return common | {"execution_date": run.logical_date or _iso(run.queued_at)}
        return common | {
            "id": str(uuid.uuid5(_NAMESPACE, f"{run.dag_id}/{run.run_id}/{task_id}")),
            "logical_date": run.logical_date,
            "run_after": _iso(run.queued_at),
            "dag_display_name": run.dag_id,
            "operator_name": "PythonOperator",
            "scheduled_when": run_json["start_date"],
            "trigger": None,
            "triggerer_job": None,
            "dag_version": run_json["dag_versions"][0] if run_json["dag_versions"] else None,
        }


def _problem_response(problem: AirflowProblem, v2: bool) -> Response:
    if not v2:
        payload: dict[str, Any] = {
            "type": "https://airflow.apache.org/docs/apache-airflow/2.10.5/stable-rest-api-ref.html"
            f"#section/Errors/{problem.title.replace(' ', '')}",
            "title": problem.title,
            "status": problem.status,
            "detail": problem.detail,
        }
    elif problem.status == 422:
        loc = ["body", problem.field] if problem.field else ["query"]
        payload = {"detail": [{"loc": loc, "msg": problem.detail, "type": "value_error"}]}
    else:
        payload = {"detail": problem.detail}
    return json_response(problem.status, payload)


def _paging(request: RecordedRequest, v2: bool) -> tuple[int, int]:
    query = parse_query(request.query)
    values: list[int] = []
    for name, default in (("offset", 0), ("limit", 50 if v2 else 100)):
        text = query.get(name)
        try:
            value = default if text is None else int(text)
        except ValueError:
            value = -1
        if value < 0:
            raise AirflowProblem(
                422 if v2 else 400, "Bad Request", f"{name} must be an integer of at least 0", name
            )
        values.append(value)
    return values[0], values[1]


def _ordered(
    request: RecordedRequest, items: list[dict[str, Any]], key: str, v2: bool
) -> list[dict[str, Any]]:
    """``items`` in the order of the query's ``order_by`` (``name`` or ``-name``, repeated
    or comma-separated; ``id`` means ``key``); as they are without one."""
    orders = [
        part.strip()
        for name, value in _query_pairs(request.query)
        if name == "order_by"
        for part in value.split(",")
        if part.strip()
    ]
    for order in reversed(orders):  # the first order_by sorts last: it decides
        name = order.removeprefix("-")
        name = key if name == "id" else name
        if any(name not in item for item in items):
            raise AirflowProblem(
                422 if v2 else 400,
                "Bad Request",
                f"order_by {order}: no such attribute",
                "order_by",
            )
        items = sorted(items, key=lambda item: _sort_key(item[name]), reverse=order[0] == "-")
    return items


def _sort_key(value: Any) -> tuple[int, float, str]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, float(value), "")
    return (1, 0.0, str(value))


def _query_bool(text: str, name: str, v2: bool) -> bool:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    raise AirflowProblem(422 if v2 else 400, "Bad Request", f"{name} must be true or false", name)


def _query_pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(query, keep_blank_values=True)


def _json_object(request: RecordedRequest, v2: bool) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise AirflowProblem(
            422 if v2 else 400, "Bad Request", "the body must be a JSON object", "body"
        )
    return body


def _iso(epoch_seconds: float) -> str:
    """``2026-01-01T00:00:00.123456Z``: Airflow's timestamps, with microseconds."""
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat().replace("+00:00", "Z")
