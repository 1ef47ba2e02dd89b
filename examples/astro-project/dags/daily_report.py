"""Runs the daily orders query kept in include/sql."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(
    dag_id="daily_report",
    schedule="0 6 * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    template_searchpath="/usr/local/airflow/include/sql",
    tags=["example", "report"],
) as report_dag:
    BashOperator(task_id="announce", bash_command="echo 'Building report for {{ ds }}'")
