"""The client of Airflow's REST API on one Deployment: what the verification gates ask.

The Deployment's ``apiUrl`` is the base (``.../api/v1`` for Airflow 2, ``.../api/v2`` for
Airflow 3, chosen from its Airflow version); the Astro API token is the bearer, sent only to
that host (redirects are never followed, and a plain ``http://`` address is refused unless it
is this machine). Requests go through :mod:`ci_deploy.http`'s retries; every failure becomes
an :class:`~ci_deploy.errors.AirflowApiError` here, in one place, whose message names the
request and never the token. Answers are read as :mod:`ci_deploy.airflow_wire`'s models and
returned as :mod:`ci_deploy.verification`'s plain data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote, urlsplit

import httpx

from ci_deploy import __version__
from ci_deploy.errors import AirflowApiError
from ci_deploy.http import (
    API_GET,
    API_POST,
    Retryable,
    TransportFailure,
    bearer_client,
    send_with_retries,
)
from ci_deploy.verification import AirflowImportError, Dag, DagRun, run_link

if TYPE_CHECKING:  # imported where an answer is parsed
    from pydantic import BaseModel

__all__ = ["PAGE_SIZE", "AirflowClient", "airflow_major", "usable_api_url"]

PAGE_SIZE = 100
"""Import errors or DAGs asked for per page."""

_FAILED_TASK_STATES = frozenset({"failed", "upstream_failed"})
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

_Model = TypeVar("_Model", bound="BaseModel")


def airflow_major(airflow_version: str, api_url: str) -> int | None:
    """Airflow's major version from the Deployment's ``airflowVersion`` ("2.10.5", "3.0.1"),
    else from its ``apiUrl``'s end (``/api/v1`` or ``/api/v2``); None when neither says."""
    head = airflow_version.strip().split(".", 1)[0]
    if head in ("2", "3"):
        return int(head)
    path = urlsplit(api_url).path.rstrip("/")
    if path.endswith("/api/v1"):
        return 2
    if path.endswith("/api/v2"):
        return 3
    return None


def usable_api_url(api_url: str, major: int) -> str:
    """``api_url`` ending in the API of Airflow ``major`` (``/api/v1`` or ``/api/v2``): an
    Airflow 2 Deployment whose address ends ``/api/v2`` is asked at ``/api/v1``. Raises
    AirflowApiError when the token must not go there (not https, and not this machine)."""
    parts = urlsplit(api_url.strip())
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        raise AirflowApiError(
            "The Deployment's Airflow API address is not an https:// URL, so the API token is "
            "not sent to it"
        )
    base = api_url.strip().rstrip("/")
    for suffix in ("/api/v1", "/api/v2"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return f"{base}/api/v{1 if major == 2 else 2}"


class AirflowClient:
    """Airflow's REST API at ``api_url`` (see :func:`usable_api_url`), for Airflow ``major``;
    ``ui_url`` is the Airflow UI, for the links to runs. The :class:`~ci_deploy.platform.Airflow`
    port."""

    def __init__(
        self,
        api_url: str,
        token: str,
        major: int,
        *,
        ui_url: str = "",
        timeout: float = 30.0,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._major = major
        self._ui_url = ui_url
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._on_retry = on_retry
        self._http = bearer_client(
            self.api_url,
            token.strip(),
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json", "User-Agent": f"ci-deploy/{__version__}"},
        )

    def __repr__(self) -> str:
        return f"AirflowClient(api_url={self.api_url!r}, major={self._major})"

    @property
    def major(self) -> int:
        return self._major

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    # -- the port ---------------------------------------------------------------------------

    def import_errors(self) -> list[AirflowImportError]:
        from ci_deploy.airflow_wire import ImportErrorPage

        found: list[AirflowImportError] = []
        offset = 0
        while True:
            page = self._get("importErrors", ImportErrorPage, _paged(offset))
            found += [
                AirflowImportError(item.filename, item.stack_trace, item.timestamp)
                for item in page.import_errors
            ]
            offset += len(page.import_errors)
            if not page.import_errors or offset >= page.total_entries:
                return found

    def dags(self) -> list[Dag]:
        from ci_deploy.airflow_wire import DagPage

        found: list[Dag] = []
        offset = 0
        while True:
            page = self._get("dags", DagPage, _paged(offset))
            found += [
                Dag(item.dag_id, bool(item.is_paused), item.fileloc or "") for item in page.dags
            ]
            offset += len(page.dags)
            if not page.dags or offset >= page.total_entries:
                return found

    def dag(self, dag_id: str) -> Dag | None:
        from ci_deploy.airflow_wire import DagItem

        response = self._send("GET", _dag(dag_id), missing_ok=True)
        if response.status_code == 404:
            return None
        item = self._parse(response, DagItem, f"GET {_dag(dag_id)}")
        return Dag(item.dag_id, bool(item.is_paused), item.fileloc or "")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        # Airflow 2 patches every field of the body unless told which; Airflow 3's body has
        # only is_paused
        mask = [("update_mask", "is_paused")] if self._major < 3 else []
        self._send(
            "PATCH",
            _dag(dag_id),
            params=mask,
            body={"is_paused": paused},
            retryable=API_GET,  # setting the same value again is harmless
        )

    def trigger(self, dag_id: str, conf: Mapping[str, object]) -> DagRun:
        from ci_deploy.airflow_wire import DagRunItem

        body: dict[str, object] = {"conf": dict(conf)}
        if self._major >= 3:
            body["logical_date"] = None  # required by Airflow 3; null: "now", no interval
        path = f"{_dag(dag_id)}/dagRuns"
        response = self._send("POST", path, body=body, retryable=API_POST)
        item = self._parse(response, DagRunItem, f"POST {path}")
        return DagRun(dag_id, item.dag_run_id, item.state or "queued")

    def dag_run(self, dag_id: str, run_id: str) -> DagRun:
        from ci_deploy.airflow_wire import DagRunItem

        item = self._get(_run(dag_id, run_id), DagRunItem)
        return DagRun(dag_id, item.dag_run_id, item.state or "queued")

    def failed_tasks(self, dag_id: str, run_id: str) -> tuple[str, ...]:
        from ci_deploy.airflow_wire import TaskInstancePage

        page = self._get(f"{_run(dag_id, run_id)}/taskInstances", TaskInstancePage)
        failed = (t.task_id for t in page.task_instances if t.state in _FAILED_TASK_STATES)
        return tuple(sorted(set(failed)))

    def bundle_version(self, dag_id: str) -> str | None:
        if self._major < 3:
            return None
        from ci_deploy.airflow_wire import DagVersionPage

        page = self._get(
            f"{_dag(dag_id)}/dagVersions",
            DagVersionPage,
            [("order_by", "-version_number"), ("limit", "1")],
        )
        latest = max(page.dag_versions, key=lambda v: v.version_number, default=None)
        return latest.bundle_version if latest is not None else None

    def run_link(self, dag_id: str, run_id: str) -> str:
        return run_link(self._ui_url, self._major, dag_id, run_id)

    # -- HTTP -------------------------------------------------------------------------------

    def _get(
        self, path: str, model: type[_Model], params: Sequence[tuple[str, str]] = ()
    ) -> _Model:
        return self._parse(self._send("GET", path, params=params), model, f"GET {path}")

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Sequence[tuple[str, str]] = (),
        body: object = None,
        retryable: Retryable = API_GET,
        missing_ok: bool = False,
    ) -> httpx.Response:
        """Send with retries; the answer, else AirflowApiError (a 404 too, unless
        ``missing_ok``)."""
        what = f"{method} {path}"
        query = tuple(params) or None

        def build() -> httpx.Request:
            return self._http.build_request(method, path, params=query, json=body)

        try:
            response = send_with_retries(
                self._http,
                build,
                retryable=retryable,
                label=f"Airflow API {what}",
                max_attempts=self._max_attempts,
                sleep=self._sleep,
                on_retry=self._on_retry,
            )
        except TransportFailure as failure:
            raise AirflowApiError(
                f"Airflow's API at {self.api_url} could not be reached ({what}: "
                f"{type(failure.error).__name__} after {failure.attempts} attempt(s))",
                operation=what,
            ) from None
        if response.is_success or (missing_ok and response.status_code == 404):
            return response
        raise AirflowApiError(
            f"Airflow's API at {self.api_url} answered {what} with HTTP "
            f"{response.status_code}{_refused(response.status_code)}",
            status_code=response.status_code,
            operation=what,
        )

    def _parse(self, response: httpx.Response, model: type[_Model], what: str) -> _Model:
        from pydantic import ValidationError

        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise AirflowApiError(
                f"Airflow's API at {self.api_url} answered {what} with a body that is not "
                f"what its spec says ({exc.error_count()} problem(s))",
                status_code=response.status_code,
                operation=what,
            ) from None


def _paged(offset: int) -> list[tuple[str, str]]:
    return [("limit", str(PAGE_SIZE)), ("offset", str(offset))]


def _dag(dag_id: str) -> str:
    return f"dags/{quote(dag_id, safe='')}"


def _run(dag_id: str, run_id: str) -> str:
    return f"{_dag(dag_id)}/dagRuns/{quote(run_id, safe='')}"


def _refused(status: int) -> str:
    if status in (401, 403):
        return " (the API token was refused: it needs a role that may read DAGs and trigger runs)"
    if status == 404:
        return " (not found: the Deployment serves no Airflow API there)"
    return ""
