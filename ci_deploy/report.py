"""What a run tells the workflow: step outputs and the job summary, from a :class:`RunResult`.

Pure: the result in, text out. No platform, git or Docker code is imported here.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence

from ci_deploy.errors import RolloutError
from ci_deploy.github import GitHubContext
from ci_deploy.plan import Detection, describe
from ci_deploy.platform import Environment, Words
from ci_deploy.result import RunResult, Selected, Status
from ci_deploy.text import capitalized, human_size
from ci_deploy.verification import GateResult, Outcome, verification_json

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
    "changed-files-count",
    "base-sha",
    "base-source",
    "rollback-deploy-id",
    "matrix",
    "matrix-count",
    "preview-deployment-id",
    "preview-name",
    "verification",
)

MAX_LISTED_FILES = 200

CHANGED_FILES_MAX_BYTES = 512 * 1024
"""The most the ``changed-files`` output holds, in bytes of UTF-8: half of GitHub's 1 MB limit
of one output, so the other outputs (50 MB a run) keep room."""

_HEADINGS = {
    Status.DEPLOYED: "✅ Deployed to {platform}",
    Status.SKIPPED: "⏭️ Deploy skipped",
    Status.PLANNED: "📝 Deploy plan (dry run)",
    Status.FAILED: "❌ Deploy failed",
    Status.ROLLED_BACK: "↩️ Deploy failed and was rolled back",
    Status.SUPERSEDED: "⏩ Superseded by a newer deploy",
    Status.DELETED: "🗑️ Preview deleted",
    Status.COMMITTED: "📌 Rollback committed",
    Status.REVERTED: "↩️ Rollback reverted",
}


def outputs(result: RunResult) -> dict[str, str]:
    """The step outputs for ``result``; empty strings where a value is unknown."""
    detection, plan = result.detection, result.plan
    base = detection.base if detection is not None else None
    changes = detection.changes if detection is not None else None
    preview = _preview(result)
    return {
        "deploy-id": result.release.id if result.release is not None else "",
        "deploy-type": "" if result.skipped else result.deploy_type,
        "skipped": _bool(result.skipped),
        "skip-reason": plan.reason if result.skipped and plan is not None else "",
        "dag-tarball-version": result.dag_tarball_version,
        "status": result.status.value,
        "rolled-back": _bool(result.rollback is not None),
        "deployment-url": result.subject.environment.url if result.subject.environment else "",
        "changed-files": changed_files(changes.files if changes else ())[0],
        "changed-files-count": str(len(changes.files)) if changes else "0",
        "base-sha": (base.sha or "") if base is not None else "",
        "base-source": base.source if base is not None else "",
        "rollback-deploy-id": result.rollback.release.id if result.rollback is not None else "",
        "matrix": matrix_json(result.matrix) if result.matrix is not None else "",
        "matrix-count": str(len(result.matrix.chosen)) if result.matrix is not None else "",
        "preview-deployment-id": preview.id if preview is not None else "",
        "preview-name": preview.name if preview is not None else "",
        "verification": verification_json(result.verification) if result.verification else "",
    }


def matrix_json(selected: Selected) -> str:
    """The ``matrix`` output: ``{"include": [...]}``, the shape ``strategy.matrix`` takes."""
    include = [dict(entry.include) for entry in selected.chosen]
    return json.dumps({"include": include}, ensure_ascii=False, separators=(",", ":"))


def _preview(result: RunResult) -> Environment | None:
    """The preview the run is about: made, found or planned; else the one it deleted."""
    if result.preview is not None:
        return result.preview.environment  # a planned one has no id yet
    deleted = result.previews_deleted.deleted if result.previews_deleted is not None else ()
    return deleted[0] if len(deleted) == 1 else None


def _bool(value: bool) -> str:
    return "true" if value else "false"


def changed_files(files: Sequence[str], limit: int = CHANGED_FILES_MAX_BYTES) -> tuple[str, int]:
    """The ``changed-files`` output: a JSON array of the first of ``files`` (whole paths, in
    order) that fit in ``limit`` bytes of UTF-8; and how many were left out."""
    size = len("[]")
    listed = 0
    for path in files:
        size += len(json.dumps(path, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        size += len(", ") if listed else 0
        if size > limit:
            break
        listed += 1
    return json.dumps(list(files[:listed]), ensure_ascii=False), len(files) - listed


def changed_files_cut(result: RunResult) -> str:
    """The warning that ``changed-files`` does not list every changed file; "" when it does."""
    changes = result.detection.changes if result.detection is not None else None
    files = changes.files if changes is not None else ()
    left_out = changed_files(files)[1]
    if not left_out:
        return ""
    return (
        f"The changed-files output lists {len(files) - left_out} of the {len(files)} changed"
        f" files (the first by path) and leaves out {left_out}: GitHub takes at most 1 MB an"
        f" output, and this one is kept under {CHANGED_FILES_MAX_BYTES // 1024} KiB."
        " changed-files-count counts them all."
    )


def deployment_left(result: RunResult) -> str:
    """Sentences on the state a failed run left the environment in."""
    release, words = result.release, result.words
    noun, the = words.release, words.the_environment
    if isinstance(result.error, RolloutError):
        said = ""  # the rollout's message says how it ended and what was done about it
    elif result.rollback is not None:
        rollback = result.rollback
        said = (
            f"Rollback {noun} {rollback.release.id} (back to {noun} {rollback.to.id}) was "
            f"made; {rollback.summary}."
        )
    elif release is not None and result.finalized:
        said = f"{capitalized(noun)} {release.id} was finalized; {the} may still be rolling it out."
    elif release is not None:
        said = (
            f"{capitalized(noun)} {release.id} was created but not finalized (it stays "
            f"INITIALIZED): {the} still runs what it ran before."
        )
    else:
        said = f"Nothing was changed on {the}."
    if result.interrupted:  # a write cut off by the cancel: say so instead of guessing
        unknown = (
            f"The run was cancelled while {result.interrupted}: whether that was done is "
            f"unknown; check {the}'s {noun} history."
        )
        # before the finalize, what was said above guesses at what the cut write decides
        said = f"{said} {unknown}" if result.finalized else unknown
    others = [r.id for r in result.left_pending if release is None or r.id != release.id]
    if others:
        said += f" This run also left {noun} {', '.join(others)} created and not finalized."
    return said.strip()


def left_pending(result: RunResult) -> str:
    """The sentence naming the deploys the run created and never finalized ("" if none)."""
    if not result.left_pending:
        return ""
    names = ", ".join(release.id for release in result.left_pending)
    noun = result.words.release
    return f"Created and not finalized (INITIALIZED, they change nothing): {noun} {names}."


def failure_message(result: RunResult) -> str:
    """The error's message followed by what it left behind."""
    assert result.error is not None
    return f"{result.error.message} {deployment_left(result)}".rstrip()


def summary(result: RunResult, context: GitHubContext) -> str:
    """The job summary in Markdown."""
    if result.matrix is not None:
        return _matrix_summary(result, result.matrix)
    heading = _HEADINGS[result.status].format(platform=result.platform)
    if result.status is Status.ROLLED_BACK and result.error is None:
        heading = "↩️ Rolled back"
    lines = [f"## {heading}", ""]
    plan = result.plan
    if result.error is not None:
        lines += [f"**{_cell(result.error.title)}**", "", _text(failure_message(result)), ""]
    elif result.superseded_by is not None:
        newer, noun = result.superseded_by, result.words.release
        lines += [
            _text(
                f"{capitalized(noun)} {newer.id} ({newer.commit_label()}) is another run's "
                f"{noun} of newer code (or of code whose history could not be told apart), so "
                "this run did not "
                f"finalize its own. {left_pending(result)}"
            ),
            "",
        ]
    elif result.skipped and plan is not None:
        prefix = "Plan: skip. " if result.status is Status.PLANNED else ""
        lines += [_text(prefix + plan.reason), ""]
    elif plan is not None and plan.reason:
        lines += [_text(plan.reason), ""]
    if result.error is None and result.rollback is not None and result.rollback.warnings:
        # a failed run's message has them already
        warned = "; ".join(result.rollback.warnings)
        lines += [_text(f"Rollback warnings: {warned}."), ""]

    if result.status is Status.PLANNED and plan is not None:
        lines += ["**Plan**", ""] + [f"- {_text(line)}" for line in describe(plan)] + [""]
    lines += _verification(result.verification)
    rows = _rows(result, context)
    if rows:
        lines += ["| | |", "|---|---|"]
        lines += [f"| {name} | {value} |" for name, value in rows]
        lines.append("")
    changes = result.detection.changes if result.detection is not None else None
    if changes is not None:
        for title, files in result.words.relevant_files(changes):
            lines += _file_list(f"{title} changed", files)
        lines += _file_list("Changed but not relevant", changes.ignored_files)
    return "\n".join(lines)


_MARKS = {
    Outcome.PASSED: "✅ passed",
    Outcome.FAILED: "❌ failed",
    Outcome.SKIPPED: "⏭️ skipped",
    Outcome.WARNED: "⚠️ warned",
}


def _verification(gates: Sequence[GateResult]) -> list[str]:
    """The table of the verification gates: each gate, its result and why."""
    if not gates:
        return []
    lines = ["**Verification**", "", "| Gate | Result | Detail |", "|---|---|---|"]
    lines += [f"| `{_cell(g.gate)}` | {_MARKS[g.result]} | {_cell(g.detail)} |" for g in gates]
    return [*lines, ""]


def _matrix_summary(result: RunResult, selected: Selected) -> str:
    """The job summary of ``action: matrix``: each Deployment and what was decided."""
    count = len(selected.chosen)
    branch = f"branch `{_cell(selected.branch)}`" if selected.branch else "a ref that is no branch"
    lines = [
        f"## 🧮 Deployments to deploy: {count} of {len(selected.entries)}",
        "",
        f"From `{_cell(selected.config)}`, for {branch}.",
        "",
    ]
    if result.error is not None:
        lines += [f"**{_cell(result.error.title)}**", "", _text(result.error.message), ""]
    if selected.entries:
        lines += ["| Deployment | In the matrix | Why |", "|---|---|---|"]
        lines += [
            f"| {_cell(e.label)} | {'yes' if e.selected else 'no'} | {_cell(e.decision)} |"
            for e in selected.entries
        ]
        lines.append("")
    return "\n".join(lines)


def _rows(result: RunResult, context: GitHubContext) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    environment, subject, words = result.subject.environment, result.subject, result.words
    noun, release_noun = capitalized(words.environment), capitalized(words.release)
    if environment is not None and environment.url:
        name = environment.name or environment.id
        rows.append((noun, f"[{_cell(name)}]({environment.url})"))
    elif subject.id:
        rows.append((noun, f"`{_cell(subject.id)}`"))
    rows += _preview_rows(result)
    if result.release is not None:
        rows.append((release_noun, f"`{_cell(result.release.id)}`"))
    if result.deploy_type and not result.skipped:
        rows.append(("Type", f"`{result.deploy_type}`"))
    detection = result.detection
    if detection is not None:
        head = detection.head
        rows.append(("Commit", _commit(head.sha, head.subject, context)))
        base = detection.base
        if base is not None and base.sha:
            how = f"{_cell(base.label)} ({base.source})"
            rows.append(("Compared with", f"{_commit(base.sha, '', context)} {how}"))
        elif base is not None and base.source == "none":
            rows.append(("Compared with", "nothing: full deploy"))
        if base is not None and base.rejected:
            rows.append(("Not compared with", "<br>".join(_cell(r) for r in base.rejected)))
        if base is not None:
            rows.append(("Files changed", _changed_count(detection, words)))
    built = result.built
    tarball = (built.dags or built.bundle) if built is not None else None
    if tarball is not None:
        rows.append(("DAG bundle", f"{len(tarball.members)} files, {human_size(tarball.size)}"))
    if result.image:
        rows.append(("Image", f"`{_cell(result.image)}`"))
    if result.rollback is not None:
        rollback = result.rollback
        health = {True: "healthy", False: "unhealthy", None: "health unknown"}[rollback.healthy]
        rows.append((f"Rollback {words.release}", f"`{_cell(rollback.release.id)}` ({health})"))
    if result.superseded_by is not None:
        rows.append(("Superseded by", f"`{_cell(result.superseded_by.id)}`"))
    if result.left_pending:
        left = ", ".join(f"`{_cell(release.id)}`" for release in result.left_pending)
        rows.append(
            ("Left INITIALIZED", f"{words.release} {left} (not finalized, changes nothing)")
        )
    if result.dag_tarball_version:
        rows.append(("DAG tarball version", f"`{_cell(result.dag_tarball_version)}`"))
    if result.deployment_state:
        rows.append((f"{noun} state", _cell(result.deployment_state)))
    rows.append(("Duration", f"{result.duration_seconds:.1f} s"))
    return rows


def _preview_rows(result: RunResult) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    preview = result.preview
    if preview is not None:
        how = "planned" if preview.planned else "created" if preview.created else "reused"
        rows.append(("Preview", f"{_cell(preview.environment.name)} ({how})"))
        if preview.missing_secrets:
            keys = ", ".join(f"`{_cell(key)}`" for key in preview.missing_secrets)
            rows.append(("Secret variables not set", f"{keys} (set them in preview-env)"))
    deleted = result.previews_deleted
    if deleted is not None:
        title = "Previews to delete (dry run)" if deleted.dry_run else "Previews deleted"
        names = "<br>".join(f"{_cell(p.name)} (`{_cell(p.id)}`)" for p in deleted.deleted)
        rows.append((title, names or "none"))
    return rows


def _commit(sha: str, subject: str, context: GitHubContext) -> str:
    short = f"`{sha[:12]}`"
    if context.repository:
        short = f"[{short}]({context.server_url}/{context.repository}/commit/{sha})"
    return f"{short} {_cell(subject)}".rstrip()


def _changed_count(detection: Detection, words: Words) -> str:
    changes = detection.changes
    if changes is None:
        return "not compared (full deploy)"
    return f"{len(changes.files)} ({words.counted(changes)})"


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


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return html.escape(" ".join(text.split())).replace("|", "&#124;")


def _text(text: str) -> str:
    return html.escape(text)
