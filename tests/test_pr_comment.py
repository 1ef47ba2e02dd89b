"""The PR comment's marker and body, and a GitHub Deployment's last status: pure functions."""

from __future__ import annotations

from datetime import UTC, datetime

from ci_deploy.changeset import ChangeSet
from ci_deploy.errors import CancelledError, CiDeployError
from ci_deploy.github import GitHubContext
from ci_deploy.github_deployment import DESCRIPTION_MAX, final_state
from ci_deploy.plan import Detection
from ci_deploy.platform import Environment, Release, ReleaseState
from ci_deploy.pr_comment import COMMENT_MAX, body, is_ours, marker
from ci_deploy.result import (
    Created,
    Finalized,
    Journal,
    RolledBack,
    RunResult,
    Status,
    Subject,
    assemble,
)
from ci_deploy.source import CommitInfo

AT = datetime(2026, 1, 1, tzinfo=UTC)
SHA = "c" * 40
CONTEXT = GitHubContext(
    event_name="pull_request",
    event={"number": 4},
    repository="o/r",
    run_url="https://github.com/o/r/actions/runs/9",
)
ENVIRONMENT = Environment("dep-1", "prod", "https://astro/dep-1", "HEALTHY", "prod", True)


def release(id_: str) -> Release:
    return Release(id_, "DAG_ONLY", ReleaseState.LIVE, AT, commit=SHA)


def result_with(*records: object, error: CiDeployError | None = None) -> RunResult:
    journal = Journal()
    journal.add(Subject("dep-1", ENVIRONMENT))
    for record in records:
        journal.add(record)  # type: ignore[arg-type]
    return assemble(journal, error, 1.0)


def test_the_marker_names_the_target_on_the_first_line_and_cannot_be_broken_out_of() -> None:
    text = body(result_with(), CONTEXT, "dep-1")
    assert text.startswith("<!-- ci-deploy:pr-comment target=dep-1 -->\n")
    assert is_ours(text, "dep-1")
    assert not is_ours(text, "dep-2") and not is_ours(None, "dep-1")
    assert not is_ours("quoted:\n" + text, "dep-1"), "only the first line counts"
    assert marker("a --> b").count("-->") == 1


def test_the_body_is_the_summary_then_notes_run_and_commit() -> None:
    changes = ChangeSet(("dags/a.py",), ("Dockerfile",), ("README.md",))
    result = result_with(Detection(CommitInfo(SHA, "Change", "A", "a@x"), None, changes))
    text = body(result, CONTEXT, "dep-1", notes=["Preview: https://astro/preview"])

    assert "[prod](https://astro/dep-1)" in text
    assert "DAG files changed (1)" in text and "Image files changed (1)" in text
    assert "Changed but not relevant (1)" in text
    assert text.index("Preview: https://astro/preview") < text.index("[Workflow run]")
    assert "[Workflow run](https://github.com/o/r/actions/runs/9)" in text
    assert f"commit `{SHA[:12]}`" in text


def test_a_huge_body_is_cut_within_githubs_limit() -> None:
    many = tuple(f"dags/{'x' * 150}_{n}.py" for n in range(200))
    changes = ChangeSet(many, many, many)
    result = result_with(Detection(CommitInfo(SHA, "s", "a", "e"), None, changes))
    text = body(result, CONTEXT, "dep-1")
    assert len(text) <= COMMENT_MAX
    assert "cut: GitHub takes at most" in text and "[Workflow run]" in text


def test_final_state_of_each_ending() -> None:
    made, subject = release("d-1"), Subject("dep-1", ENVIRONMENT)
    deployed = RunResult(Status.DEPLOYED, subject, release=made, finalized=True)
    superseded = RunResult(Status.SUPERSEDED, subject, release=made, superseded_by=release("d-2"))
    rolled = result_with(
        Created(made), Finalized(made, AT), RolledBack(release("d-3"), release("d-0"), True, "ok")
    )

    assert final_state(deployed) == ("success", "Astro deploy d-1 is running")
    assert final_state(superseded)[0] == "inactive"
    assert final_state(rolled) == ("failure", "Astro deploy d-1 failed; rolled back to deploy d-0")
    assert final_state(result_with(error=CancelledError("stop")))[0] == "error"
    state, said = final_state(result_with(error=CiDeployError("x", title="T" * 300)))
    assert state == "failure" and len(said) == DESCRIPTION_MAX and said.endswith("…")
