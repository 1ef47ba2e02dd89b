"""Helpers shared by the example DAGs."""


def format_alert(dag_id: str, message: str) -> str:
    return f"[{dag_id}] {message}"
