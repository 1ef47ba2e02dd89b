"""The log operation of the Astro API client: a Deployment's log entries, page by page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from ci_deploy.astro import wire as models
from ci_deploy.astro.client_core import Operations
from ci_deploy.http import API_GET

__all__ = ["LOG_PAGES", "LOG_PAGE_SIZE", "LogCalls"]

LOG_PAGE_SIZE = 500
"""Log entries asked for per page (the API's default page size)."""

LOG_PAGES = 10
"""The most pages :meth:`LogCalls.get_deployment_logs` reads."""


class LogCalls(Operations):
    """Deployment logs (GetDeploymentLogs)."""

    def get_deployment_logs(
        self,
        deployment_id: str,
        *,
        sources: Sequence[str],
        start: datetime | None = None,
        end: datetime | None = None,
        search_text: str | None = None,
        limit: int = 1000,
    ) -> list[models.LogEntry]:
        """A Deployment's log entries (GetDeploymentLogs), oldest first, at most ``limit``.

        ``sources`` (at least one of :data:`ci_deploy.astro.wire.LOG_SOURCES`) are sent as
        repeated ``sources`` parameters. ``start`` and ``end`` must be aware datetimes;
        they are sent in UTC as ``startDate``/``endDate`` (``...Z``, whole seconds, the
        range widened to include the partial seconds). ``end`` defaults to now when only
        ``start`` is given; with neither, the API's default range (the last hour) applies.
        ``limit`` is also sent as ``maxNumResults``. Pages of :data:`LOG_PAGE_SIZE` entries
        are read, with the first answer's ``searchId``, until ``limit`` entries, a short
        page, or :data:`LOG_PAGES` pages (so at most 5000 entries). Raises ValueError for
        arguments the API would refuse.
        """
        query = _log_query(sources, start, end, search_text, limit)
        call = self._call(
            "GetDeploymentLogs",
            f"Get logs of Deployment '{deployment_id}'",
            "deployment.logs.get",
            API_GET,
            deployment_id,
        )
        path = self._deployment_path(deployment_id) + "/logs"
        page_size = min(limit, LOG_PAGE_SIZE)
        entries: list[models.LogEntry] = []
        search_id: str | None = None
        for _ in range(LOG_PAGES):
            params = [
                *query,
                ("limit", str(page_size)),
                ("offset", str(len(entries))),
                ("maxNumResults", str(limit)),
            ]
            if search_id:
                params.append(("searchId", search_id))
            page = self._session.request(call, "GET", path, models.DeploymentLogs, params=params)
            entries.extend(page.results)
            search_id = page.searchId or search_id
            if len(page.results) < page_size or len(entries) >= limit:
                break
        return sorted(entries[:limit], key=lambda entry: entry.timestamp)


def _log_query(
    sources: Sequence[str],
    start: datetime | None,
    end: datetime | None,
    search_text: str | None,
    limit: int,
) -> list[tuple[str, str]]:
    """The filter parameters of GetDeploymentLogs; ValueError for what the API refuses."""
    chosen = [sources] if isinstance(sources, str) else list(dict.fromkeys(sources))
    if not chosen:
        raise ValueError("get_deployment_logs needs at least one log source")
    unknown = [source for source in chosen if source not in models.LOG_SOURCES]
    if unknown:
        raise ValueError(
            f"unknown log source(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(models.LOG_SOURCES))}"
        )
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    query = [("sources", source) for source in chosen]
    if end is not None and start is None:
        raise ValueError("an end needs a start: the API takes endDate only with startDate")
    if start is not None:
        until = end if end is not None else datetime.now(UTC)
        start_text = models.rfc3339(start)
        if until.microsecond:  # round up, so the last partial second is included
            until += timedelta(microseconds=1_000_000 - until.microsecond)
        end_text = models.rfc3339(until)
        if start_text > end_text:
            raise ValueError(f"the start {start_text} is after the end {end_text}")
        query += [("startDate", start_text), ("endDate", end_text)]
    if search_text:
        query.append(("searchText", search_text))
    return query
