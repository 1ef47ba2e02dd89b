"""Checks every 30 minutes that the Deployment schedules and runs tasks."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task
from utils.notify import format_alert


@dag(
    schedule=timedelta(minutes=30),
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "ops"],
)
def health_check() -> None:
    @task
    def ping() -> str:
        return format_alert("health_check", "scheduler and workers are alive")

    ping()


health_check()
