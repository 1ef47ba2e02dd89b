"""Airflow's REST API wire format (``/api/v1`` of Airflow 2, ``/api/v2`` of Airflow 3), as
pydantic models of the fields the verification gates read.

Both versions name these fields alike (``import_errors``, ``total_entries``, ``dag_id``,
``is_paused``, ``dag_run_id``, ``state``); what differs is sent by
:mod:`ci_deploy.airflow_api`. Unknown fields are ignored, so a newer Airflow never breaks a
deploy; each model is built on first use.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class _Response(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)


class ImportErrorItem(_Response):
    filename: str = ""
    stack_trace: str = ""
    timestamp: datetime | None = None


class ImportErrorPage(_Response):
    import_errors: list[ImportErrorItem]
    total_entries: int = 0


class DagItem(_Response):
    dag_id: str
    is_paused: bool | None = None
    fileloc: str | None = None


class DagPage(_Response):
    dags: list[DagItem]
    total_entries: int = 0


class DagRunItem(_Response):
    dag_run_id: str
    dag_id: str = ""
    state: str | None = None


class TaskInstanceItem(_Response):
    task_id: str
    state: str | None = None


class TaskInstancePage(_Response):
    task_instances: list[TaskInstanceItem]


class DagVersionItem(_Response):
    version_number: int
    bundle_version: str | None = None


class DagVersionPage(_Response):
    dag_versions: list[DagVersionItem]
    total_entries: int = 0
