"""The wire models added for Deployments: hibernation, Deployment pages and logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from ci_deploy.astro.wire import (
    LOG_SOURCES,
    Deploy,
    Deployment,
    DeploymentLogs,
    DeploymentsPage,
    HibernationOverride,
    HibernationOverrideRequest,
    LogEntry,
    rfc3339,
)


def deployment(**extra: Any) -> Deployment:
    return Deployment.model_validate({"id": "dep-1", "status": "HEALTHY", **extra})


def scaling(
    override: dict[str, Any] | None = None, hibernating: bool | None = None
) -> dict[str, Any]:
    """``scalingSpec`` and ``scalingStatus`` as the API sends them (with fields we ignore)."""
    spec: dict[str, Any] = {"schedules": [{"hibernateAtCron": "0 20 * * *", "isEnabled": True}]}
    if override is not None:
        spec["override"] = override
    status: dict[str, Any] = {"nextEventType": "WAKE", "reason": "schedule"}
    if hibernating is not None:
        status["isHibernating"] = hibernating
    return {
        "scalingSpec": {"hibernationSpec": spec},
        "scalingStatus": {"hibernationStatus": status},
    }


# -- Deployment.hibernation_override and is_hibernating -----------------------------------


def test_a_deployment_without_scaling_fields() -> None:
    plain = deployment()
    assert plain.scalingSpec is None
    assert plain.scalingStatus is None
    assert plain.hibernation_override is None
    assert plain.is_hibernating is False


def test_the_override_is_read_from_the_scaling_spec() -> None:
    until = "2024-05-01T12:00:00Z"
    found = deployment(
        **scaling({"isActive": True, "isHibernating": False, "overrideUntil": until})
    )
    assert found.hibernation_override == HibernationOverride(
        isActive=True, isHibernating=False, overrideUntil=until
    )


@pytest.mark.parametrize(
    "payload",
    [
        {"scalingSpec": {}},
        {"scalingSpec": {"hibernationSpec": None}},
        {"scalingSpec": {"hibernationSpec": {"schedules": []}}},
        scaling(),
    ],
)
def test_no_override(payload: dict[str, Any]) -> None:
    assert deployment(**payload).hibernation_override is None


def test_an_empty_override_is_kept_as_sent() -> None:
    override = deployment(**scaling({})).hibernation_override
    assert override == HibernationOverride()
    assert (override.isActive, override.isHibernating, override.overrideUntil) == (None,) * 3


@pytest.mark.parametrize(
    ("status", "hibernating", "expected"),
    [
        ("HEALTHY", None, False),
        ("HIBERNATING", None, True),
        ("HEALTHY", True, True),
        ("HEALTHY", False, False),
        ("HIBERNATING", False, True),  # either source saying so is enough
        ("DEPLOYING", True, True),
    ],
)
def test_is_hibernating(status: str, hibernating: bool | None, expected: bool) -> None:
    payload = scaling(hibernating=hibernating) if hibernating is not None else {}
    assert deployment(status=status, **payload).is_hibernating is expected


def test_is_hibernating_with_a_status_but_no_hibernation_status() -> None:
    assert deployment(scalingStatus={}).is_hibernating is False
    assert deployment(scalingStatus={"hibernationStatus": None}).is_hibernating is False


def test_the_existing_deployment_fields_are_unchanged() -> None:
    found = deployment(isDagDeployEnabled=True, dagTarballVersion="v1", unknown={"x": 1})
    assert (found.id, found.status, found.isDagDeployEnabled, found.dagTarballVersion) == (
        "dep-1",
        "HEALTHY",
        True,
        "v1",
    )
    assert Deployment.model_validate({"id": "d"}).status == "UNKNOWN"


# -- HibernationOverrideRequest -------------------------------------------------------------


def test_the_request_body_leaves_out_a_missing_end() -> None:
    wake = HibernationOverrideRequest(isHibernating=False)
    assert wake.model_dump(exclude_none=True) == {"isHibernating": False}
    until = HibernationOverrideRequest(isHibernating=True, overrideUntil="2024-05-01T12:00:00Z")
    assert until.model_dump(exclude_none=True) == {
        "isHibernating": True,
        "overrideUntil": "2024-05-01T12:00:00Z",
    }


@pytest.mark.parametrize(
    "until",
    [
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.123456Z",
        "2024-05-01T12:00:00.123456789Z",  # Go's RFC3339Nano, as the API may send it back
        "2024-05-01t12:00:00z",
        "2024-05-01T14:00:00+02:00",
    ],
)
def test_rfc3339_ends_are_accepted(until: str) -> None:
    assert HibernationOverrideRequest(isHibernating=False, overrideUntil=until).overrideUntil == (
        until
    )


@pytest.mark.parametrize(
    "until", ["tomorrow", "2024-05-01", "2024-05-01 12:00:00Z", "2024-05-01T12:00:00", ""]
)
def test_other_ends_are_refused(until: str) -> None:
    with pytest.raises(ValidationError, match="RFC 3339"):
        HibernationOverrideRequest(isHibernating=False, overrideUntil=until)


def test_an_impossible_date_is_refused() -> None:
    with pytest.raises(ValidationError):
        HibernationOverrideRequest(isHibernating=False, overrideUntil="2024-13-01T12:00:00Z")


def test_the_request_needs_is_hibernating_and_nothing_else() -> None:
    with pytest.raises(ValidationError, match="isHibernating"):
        HibernationOverrideRequest.model_validate({})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        HibernationOverrideRequest.model_validate({"isHibernating": False, "isActive": True})


# -- rfc3339 --------------------------------------------------------------------------------


def test_rfc3339_is_utc_in_whole_seconds() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert rfc3339(datetime(2024, 5, 1, 14, 0, 5, 999_999, tzinfo=plus_two)) == (
        "2024-05-01T12:00:05Z"
    )
    assert rfc3339(datetime(2024, 5, 1, tzinfo=UTC)) == "2024-05-01T00:00:00Z"


def test_rfc3339_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="has no time zone"):
        rfc3339(datetime(2024, 5, 1))


def test_rfc3339_output_is_a_valid_override_end() -> None:
    until = rfc3339(datetime.now(UTC) + timedelta(hours=1))
    assert HibernationOverrideRequest(isHibernating=False, overrideUntil=until)


# -- pages and logs -------------------------------------------------------------------------


def test_deployments_page() -> None:
    page = DeploymentsPage.model_validate(
        {
            "deployments": [{"id": "a", "name": "prod", **scaling(hibernating=True)}],
            "offset": 0,
            "limit": 20,
            "totalCount": 1,
        }
    )
    assert [(d.id, d.name, d.is_hibernating) for d in page.deployments] == [("a", "prod", True)]
    with pytest.raises(ValidationError, match="totalCount"):
        DeploymentsPage.model_validate({"deployments": [], "offset": 0, "limit": 20})


def test_deployment_logs_in_the_spec_shape() -> None:
    logs = DeploymentLogs.model_validate(
        {
            "limit": 500,
            "maxNumResults": 10000,
            "offset": 0,
            "resultCount": 1,
            "searchId": "s-1",
            "results": [
                {"raw": "Broken DAG", "source": "dag-processor", "timestamp": 1714557600.25}
            ],
        }
    )
    assert logs.results == [
        LogEntry(raw="Broken DAG", source="dag-processor", timestamp=1714557600.25)
    ]
    assert (logs.limit, logs.offset, logs.resultCount, logs.searchId) == (500, 0, 1, "s-1")


def test_log_entries_need_only_the_raw_text() -> None:
    entry = LogEntry.model_validate({"raw": "x", "future": 1})
    assert (entry.raw, entry.source, entry.timestamp) == ("x", "", 0.0)
    with pytest.raises(ValidationError, match="raw"):
        LogEntry.model_validate({"source": "scheduler", "timestamp": 1})
    assert DeploymentLogs.model_validate({"results": []}).searchId is None


def test_log_sources_are_the_spec_enum() -> None:
    assert sorted(LOG_SOURCES) == [
        "apiserver",
        "dag-processor",
        "scheduler",
        "triggerer",
        "webserver",
        "worker",
    ]


def test_deploys_order_by_creation_time_then_id_with_unreadable_times_first() -> None:
    deploys = [
        Deploy(id="b", createdAt="2026-01-02T00:00:00Z"),
        Deploy(id="a", createdAt="2026-01-02T00:00:00Z"),
        Deploy(id="z", createdAt="yesterday"),
        Deploy(id="c", createdAt="2026-01-01T23:00:00-02:00"),  # 01:00 on the 2nd, UTC
        Deploy(id="d", createdAt="2026-01-01T12:00:00"),  # no zone: UTC
    ]
    assert [d.id for d in sorted(deploys, key=lambda d: d.order)] == ["z", "d", "a", "b", "c"]
    assert Deploy(id="x", createdAt="2026-01-01T12:00:00").created.tzinfo is not None
