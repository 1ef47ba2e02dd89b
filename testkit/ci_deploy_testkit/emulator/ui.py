"""A one-page stand-in for the Astro UI, so a Deployment's ``uiUrl`` leads somewhere."""

from __future__ import annotations

from html import escape
from typing import Any


def deployment_page(deployment: dict[str, Any], deploys: list[dict[str, Any]]) -> bytes:
    """An HTML page with the Deployment's state and its deploys (given in creation order)."""

    def cell(value: Any) -> str:
        return f"<td>{escape(str(value if value is not None else ''))}</td>"

    facts = "".join(
        f"<tr><th>{escape(name)}</th>{cell(deployment.get(name))}</tr>"
        for name in (
            "status",
            "statusReason",
            "dagTarballVersion",
            "desiredDagTarballVersion",
            "imageTag",
            "runtimeVersion",
        )
    )
    rows = "".join(
        "<tr>"
        + cell(d.get("createdAt"))
        + cell(d.get("id"))
        + cell(d.get("type"))
        + cell(d.get("status"))
        + cell((d.get("git") or {}).get("commitSha", "")[:12])
        + cell(d.get("description"))
        + "</tr>"
        for d in reversed(deploys)
    )
    name = escape(str(deployment.get("name", "")))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{name}</title></head><body>"
        f"<h1>Deployment {name} (ci-deploy emulator)</h1><table>{facts}</table>"
        "<h2>Deploys</h2><table><tr><th>created</th><th>id</th><th>type</th><th>status</th>"
        f"<th>commit</th><th>description</th></tr>{rows}</table></body></html>"
    ).encode()
