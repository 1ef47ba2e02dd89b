"""What a run tells the workflow: step outputs and the job summary, from a :class:`RunResult`."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

from .deploy import RunResult
from .github import GitHubContext

#: Every output the action declares, in action.yml order. All are written on every run.
OUTPUT_NAMES: tuple[str, ...] = (
    "deploy-id",
    "deploy-type",
    "skipped",
    "skip-reason",
    "dag-tarball-version",
    "status",
    "rolled-back",
    "deployment-url",
    "changed-files",
    "base-sha",
    "base-source",
    "rollback-deploy-id",
)

MAX_LISTED_FILES = 200

_HEADINGS = {
    "deployed": "✅ Deployed to Astro",
    "skipped": "⏭️ Deploy skipped",
    "planned": "📝 Deploy plan (dry run)",
    "failed": "❌ Deploy failed",
    "rolled-back": "↩️ Deploy failed and was rolled back",
}


def outputs(result: RunResult) -> dict[str, str]:
    """The step outputs for ``result``; empty strings where a value is unknown."""
    return {
        "deploy-id": result.deploy_id,
        "deploy-type": "" if result.skipped else result.deploy_type,
        "skipped": _bool(result.skipped),
        "skip-reason": result.skip_reason,
        "dag-tarball-version": result.dag_tarball_version,
        "status": result.status,
        "rolled-back": _bool(result.rolled_back),
        "deployment-url": result.deployment_url,
        "changed-files": json.dumps(result.changed_files, ensure_ascii=False),
        "base-sha": result.base_sha,
        "base-source": result.base_source,
        "rollback-deploy-id": result.rollback_deploy_id,
    }


def _bool(value: bool) -> str:
    return "true" if value else "false"


def deployment_left(result: RunResult) -> str:
    """One sentence on the state a failed run left the Deployment in."""
    if result.rolled_back:
        return ""
    if result.finalized:
        return (
            f"Deploy {result.deploy_id} was finalized; the Deployment may still be rolling it out."
        )
    if result.deploy_id:
        return (
            f"Deploy {result.deploy_id} was created but not finalized: the Deployment still "
            "runs what it ran before."
        )
    return "Nothing was changed on the Deployment."


def failure_message(result: RunResult) -> str:
    """The error's message followed by what it left behind."""
    assert result.error is not None
    return f"{result.error.message} {deployment_left(result)}".rstrip()


def summary(result: RunResult, context: GitHubContext) -> str:
    """The job summary in Markdown."""
    heading = _HEADINGS.get(result.status, result.status)
    if result.status == "rolled-back" and result.error is None:
        heading = "↩️ Rolled back"
    lines = [f"## {heading}", ""]
    if result.error is not None:
        lines += [f"**{_cell(result.error.title)}**", "", _text(failure_message(result)), ""]
    elif result.skipped:
        plan = "Plan: skip. " if result.status == "planned" else ""
        lines += [_text(plan + result.skip_reason), ""]
    elif result.reason:
        lines += [_text(result.reason), ""]

    rows = _rows(result, context)
    if rows:
        lines += ["| | |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in rows]
        lines.append("")
    lines += _file_list("DAG files changed", result.dag_files)
    lines += _file_list("Image files changed", result.image_files)
    lines += _file_list("Changed but not relevant", result.ignored_files)
    return "\n".join(lines)


def _rows(result: RunResult, context: GitHubContext) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if result.deployment_url:
        name = result.deployment_name or result.deployment_id
        rows.append(("Deployment", f"[{_cell(name)}]({result.deployment_url})"))
    elif result.deployment_id:
        rows.append(("Deployment", f"`{_cell(result.deployment_id)}`"))
    if result.deploy_id:
        rows.append(("Deploy", f"`{_cell(result.deploy_id)}`"))
    if result.deploy_type and not result.skipped:
        rows.append(("Type", f"`{result.deploy_type}`"))
    if result.head_sha:
        rows.append(("Commit", _commit(result.head_sha, result.head_subject, context)))
    if result.base_sha:
        how = f"{_cell(result.base_label)} ({result.base_source})"
        rows.append(("Compared with", f"{_commit(result.base_sha, '', context)} {how}"))
    elif result.base_source == "none":
        rows.append(("Compared with", "nothing: full deploy"))
    if result.base_rejected:
        rows.append(("Not compared with", "<br>".join(_cell(r) for r in result.base_rejected)))
    if result.head_sha:
        rows.append(("Files changed", _changed_count(result)))
    if result.bundle_files:
        size = _size(result.bundle_bytes)
        rows.append(("DAG bundle", f"{result.bundle_files} files, {size}"))
    if result.image:
        rows.append(("Image", f"`{_cell(result.image)}`"))
    if result.rollback_deploy_id:
        rows.append(("Rollback deploy", f"`{_cell(result.rollback_deploy_id)}`"))
    if result.dag_tarball_version:
        rows.append(("DAG tarball version", f"`{_cell(result.dag_tarball_version)}`"))
    if result.deployment_state:
        rows.append(("Deployment state", _cell(result.deployment_state)))
    rows.append(("Duration", f"{result.duration_seconds:.1f} s"))
    return rows


def _commit(sha: str, subject: str, context: GitHubContext) -> str:
    short = f"`{sha[:12]}`"
    if context.repository:
        short = f"[{short}]({context.server_url}/{context.repository}/commit/{sha})"
    return f"{short} {_cell(subject)}".rstrip()


def _changed_count(result: RunResult) -> str:
    if not result.base_sha:
        return "not compared (full deploy)"
    return (
        f"{len(result.changed_files)} ({len(result.dag_files)} DAG, "
        f"{len(result.image_files)} image, {len(result.ignored_files)} not relevant)"
    )


def _file_list(title: str, files: Sequence[str]) -> list[str]:
    if not files:
        return []
    shown = files[:MAX_LISTED_FILES]
    lines = [f"<details><summary>{title} ({len(files)})</summary>", ""]
    lines += [f"- <code>{html.escape(path)}</code>" for path in shown]
    if len(files) > len(shown):
        lines.append(f"- … and {len(files) - len(shown)} more")
    lines += ["", "</details>", ""]
    return lines


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024 / 1024:.1f} MiB"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return html.escape(" ".join(text.split())).replace("|", "&#124;")


def _text(text: str) -> str:
    return html.escape(text)
