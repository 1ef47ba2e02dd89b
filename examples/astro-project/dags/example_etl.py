"""A small extract-transform-load DAG built with the TaskFlow API."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task


@dag(schedule="@daily", start_date=datetime(2025, 1, 1), catchup=False, tags=["example"])
def example_etl() -> None:
    @task
    def extract() -> list[dict[str, int]]:
        return [{"order_id": 1, "amount": 30}, {"order_id": 2, "amount": 12}]

    @task
    def transform(orders: list[dict[str, int]]) -> int:
        return sum(order["amount"] for order in orders)

    @task
    def load(total: int) -> None:
        print(f"Total order amount: {total}")

    load(transform(extract()))


example_etl()
