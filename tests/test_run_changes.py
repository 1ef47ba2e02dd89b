"""Which commit changes are measured from, on every kind of event, with real git.

Each test has an upstream repository with a bare ``origin`` over ``file://`` and a checkout
made the way actions/checkout makes it (one commit deep unless said otherwise), so every
fetch the action makes is real. The action runs in process (:mod:`tests.inprocess`) with the
real Astro platform against the emulator on a fake clock: nothing waits for a rollout.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import EXAMPLE, Step, api_posts
from tests.gitrepo import GitRepo, run_git
from tests.inprocess import run_action

ZERO = "0" * 40
DAG = "dags/example_etl.py"


@dataclass
class Project:
    """Where developers commit (``dev``), and the ``origin`` they push to."""

    dev: GitRepo
    origin: Path
    tmp: Path

    def checkout(self, name: str, *, depth: int | None = 1, branch: str | None = None) -> GitRepo:
        return GitRepo.clone(self.origin, self.tmp / name, depth=depth, branch=branch)

    def commit_and_push(self, message: str, files: dict[str, str] | None = None) -> str:
        for path, text in (files or {}).items():
            self.dev.write(path, text)
        sha = self.dev.commit(message)
        self.dev.push()
        return sha


@pytest.fixture
def emulator(astro: Emulator) -> Emulator:
    """The emulator on the fake clock the runs share."""
    return astro


@pytest.fixture
def project(tmp_path: Path) -> Project:
    dev = GitRepo(tmp_path / "dev")
    shutil.copytree(EXAMPLE, dev.path, dirs_exist_ok=True)
    dev.commit("Add the example project")
    return Project(dev, dev.add_origin(), tmp_path)


def edit(repo: GitRepo, path: str = DAG, marker: str = "1") -> None:
    file = repo.path / path
    file.write_text(file.read_text() + f"\n# edit {marker}\n")


def deploy_head(project: Project, emulator: Emulator, name: str, before: str) -> Step:
    """Deploy origin's current main with a push event, as an earlier workflow run did."""
    step = run_action(
        project.checkout(name),
        emulator,
        {"deploy-type": "dags-only"},
        event=push_event(before, "unused"),
    )
    assert step.outputs["status"] == "deployed", step.log
    return step


def test_shallow_clone_compares_with_a_base_five_commits_back(
    project: Project, emulator: Emulator
) -> None:
    base = project.dev.head()
    edit(project.dev)
    project.dev.commit("Edit a DAG")
    for n in range(4):
        project.dev.write(f"docs/note{n}.md", f"note {n}\n")
        project.dev.commit(f"Add note {n}")
    project.dev.push()
    workspace = project.checkout("workspace")
    assert workspace.git("rev-parse", "--is-shallow-repository").strip() == "true"

    step = run_action(workspace, emulator, event=push_event(base, workspace.head()))

    assert step.result.returncode == 0, step.log
    out = step.outputs
    assert (out["base-source"], out["base-sha"]) == ("event", base)
    assert out["deploy-type"] == "DAG_ONLY"
    assert json.loads(out["changed-files"]) == [DAG] + [f"docs/note{n}.md" for n in range(4)]
    assert "not on origin" in step.log, "the seeded deploy's commit was looked for and rejected"
    assert "bad object" not in step.log


def test_deployed_commit_catches_changes_of_a_commit_whose_run_failed(
    project: Project, emulator: Emulator
) -> None:
    deployed = project.dev.head()
    deploy_head(project, emulator, "first-run", ZERO)
    edit(project.dev)
    failed_run = project.commit_and_push("Edit a DAG (its workflow run failed)")
    project.commit_and_push("Update the docs", {"README.md": "docs\n"})
    workspace = project.checkout("workspace")

    step = run_action(workspace, emulator, event=push_event(failed_run, workspace.head()))

    assert step.result.returncode == 0, step.log
    out = step.outputs
    assert (out["base-source"], out["base-sha"]) == ("deployed", deployed)
    assert out["status"] == "deployed"
    assert out["deploy-type"] == "DAG_ONLY"
    assert json.loads(out["changed-files"]) == ["README.md", DAG]
    assert "Deepening the shallow clone" in step.log
    assert "Compared with" in step.result.summary


def test_manual_run_with_history_deploys_what_changed_since_the_last_deploy(
    project: Project, emulator: Emulator
) -> None:
    deployed = project.dev.head()
    deploy_head(project, emulator, "first-run", ZERO)
    edit(project.dev)
    project.commit_and_push("Edit a DAG")

    step = run_action(project.checkout("workspace"), emulator, event_name="workflow_dispatch")

    assert step.result.returncode == 0, step.log
    assert (step.outputs["base-source"], step.outputs["base-sha"]) == ("deployed", deployed)
    assert step.outputs["deploy-type"] == "DAG_ONLY"


def test_manual_run_without_history_plans_a_full_deploy(
    project: Project, emulator: Emulator
) -> None:
    emulator.add_deployment("fresh")
    workspace = project.checkout("workspace")

    step = run_action(
        workspace,
        emulator,
        {"deployment-id": "fresh", "dry-run": "true"},
        event_name="workflow_dispatch",
    )

    assert step.result.returncode == 0, step.log
    out = step.outputs
    assert (out["status"], out["deploy-type"]) == ("planned", "IMAGE_AND_DAG")
    assert (out["base-source"], out["base-sha"]) == ("none", "")
    notice = next(c for c in step.commands("notice") if c.properties["title"] == "No base commit")
    assert "the Deployment has no deploy history" in notice.message
    assert "a workflow_dispatch event has no base commit" in notice.message
    assert api_posts(emulator) == []


def test_dags_only_never_silently_deploys_nothing(project: Project, emulator: Emulator) -> None:
    emulator.add_deployment("fresh")

    step = run_action(
        project.checkout("workspace"),
        emulator,
        {"deployment-id": "fresh", "deploy-type": "dags-only"},
        event_name="workflow_dispatch",
    )

    assert step.result.returncode == 0, step.log
    assert (step.outputs["status"], step.outputs["deploy-type"]) == ("deployed", "DAG_ONLY")
    assert step.outputs["base-source"] == "none"


def force_push(project: Project) -> str:
    """Rewrite origin's main: the pushed head is replaced and garbage-collected away."""
    edit(project.dev, marker="lost")
    gone = project.commit_and_push("A commit that will be force-pushed away")
    project.dev.git("reset", "-q", "--hard", "HEAD~1")
    edit(project.dev, marker="rewritten")
    project.dev.commit("The rewritten commit")
    project.dev.git("push", "-q", "--force", "origin", "main")
    run_git(project.origin, "reflog", "expire", "--expire=now", "--all")
    run_git(project.origin, "gc", "-q", "--prune=now")
    return gone


def test_force_push_is_compared_with_what_is_deployed(project: Project, emulator: Emulator) -> None:
    deployed = project.dev.head()
    deploy_head(project, emulator, "first-run", ZERO)
    gone = force_push(project)
    workspace = project.checkout("workspace")

    step = run_action(
        workspace, emulator, event={**push_event(gone, workspace.head()), "forced": True}
    )

    assert step.result.returncode == 0, step.log
    assert (step.outputs["base-source"], step.outputs["base-sha"]) == ("deployed", deployed)
    assert step.outputs["deploy-type"] == "DAG_ONLY", "no image rebuild after a force push"


def test_force_push_without_history_falls_back_to_a_full_deploy(
    project: Project, emulator: Emulator
) -> None:
    emulator.add_deployment("fresh")
    gone = force_push(project)
    workspace = project.checkout("workspace")

    step = run_action(
        workspace,
        emulator,
        {"deployment-id": "fresh", "dry-run": "true"},
        event={**push_event(gone, workspace.head()), "forced": True},
    )

    assert step.result.returncode == 0, step.log
    assert step.outputs["base-source"] == "none"
    assert step.outputs["deploy-type"] == "IMAGE_AND_DAG"
    assert f"the push's previous commit {gone[:12]}: not on origin" in step.log


def test_new_branch_has_no_event_base(project: Project, emulator: Emulator) -> None:
    emulator.add_deployment("fresh")
    project.dev.checkout("feature", new_branch=True)
    edit(project.dev)
    project.dev.commit("Start a feature")
    project.dev.push("feature")
    workspace = project.checkout("workspace", branch="feature")

    step = run_action(
        workspace,
        emulator,
        {"deployment-id": "fresh", "dry-run": "true"},
        event=push_event(ZERO, workspace.head()),
        ref="refs/heads/feature",
    )

    assert step.result.returncode == 0, step.log
    assert step.outputs["base-source"] == "none"
    assert "the push created the branch" in step.log


def merge_commit_on_origin(project: Project, ref: str, ours: str, theirs: str) -> str:
    """A merge of ``theirs`` into ``ours`` pushed to ``ref``, like GitHub's test merge commits."""
    project.dev.git("checkout", "-q", "--detach", ours)
    project.dev.git("merge", "-q", "--no-ff", "-m", "Merge", theirs)
    merge = project.dev.head()
    project.dev.git("push", "-q", "origin", f"HEAD:{ref}")
    project.dev.git("checkout", "-q", "main")
    return merge


def feature_and_moved_base(project: Project) -> tuple[str, str]:
    """A feature branch editing a DAG, and main moving on with an image change meanwhile."""
    project.dev.checkout("feature", new_branch=True)
    edit(project.dev)
    feature = project.commit_and_push("Edit a DAG on a branch")
    project.dev.push("feature")
    project.dev.checkout("main")
    base = project.commit_and_push("Pin a provider", {"requirements.txt": "pandas==2.2.3\n"})
    return feature, base


def test_pull_request_whose_base_moved_on_counts_only_its_own_changes(
    project: Project, emulator: Emulator
) -> None:
    feature, base = feature_and_moved_base(project)
    merge_commit_on_origin(project, "refs/heads/pull-1-merge", base, feature)
    workspace = project.checkout("workspace", branch="pull-1-merge")
    event: dict[str, Any] = {
        "number": 1,
        "pull_request": {
            "base": {"sha": base, "ref": "main"},
            "head": {"sha": feature, "ref": "feature"},
        },
    }

    step = run_action(
        workspace,
        emulator,
        {"dry-run": "true"},
        event_name="pull_request",
        event=event,
        ref="refs/pull/1/merge",
    )

    assert step.result.returncode == 0, step.log
    out = step.outputs
    assert (out["base-source"], out["base-sha"]) == ("event", base)
    assert json.loads(out["changed-files"]) == [DAG], "main's own change is not the PR's"
    assert (out["status"], out["deploy-type"]) == ("planned", "DAG_ONLY")
    assert "Action: deploy DAG_ONLY" in step.log
    assert "Deploy plan (dry run)" in step.result.summary


def test_merge_group_compares_with_its_base(project: Project, emulator: Emulator) -> None:
    feature, base = feature_and_moved_base(project)
    merge_commit_on_origin(project, "refs/heads/gh-readonly-queue/main/pr-1", base, feature)
    workspace = project.checkout("workspace", branch="gh-readonly-queue/main/pr-1")
    event = {"merge_group": {"base_sha": base, "head_sha": workspace.head()}}

    step = run_action(
        workspace, emulator, {"dry-run": "true"}, event_name="merge_group", event=event
    )

    assert step.result.returncode == 0, step.log
    assert (step.outputs["base-source"], step.outputs["base-sha"]) == ("event", base)
    assert json.loads(step.outputs["changed-files"]) == [DAG]


def test_deployed_commit_on_another_branch_falls_back_to_the_event(
    project: Project, emulator: Emulator
) -> None:
    project.dev.checkout("hotfix", new_branch=True)
    edit(project.dev, marker="hotfix")
    hotfix = project.dev.commit("Hotfix")
    project.dev.push("hotfix")
    hotfix_checkout = project.checkout("hotfix-run", branch="hotfix")
    first = run_action(
        hotfix_checkout,
        emulator,
        {"deploy-type": "dags-only"},
        event=push_event(ZERO, hotfix),
        ref="refs/heads/hotfix",
    )
    assert first.outputs["status"] == "deployed", first.log
    project.dev.checkout("main")
    before = project.dev.head()
    edit(project.dev, marker="main")
    project.commit_and_push("Edit a DAG on main")
    workspace = project.checkout("workspace")

    step = run_action(workspace, emulator, event=push_event(before, workspace.head()))

    assert step.result.returncode == 0, step.log
    assert (step.outputs["base-source"], step.outputs["base-sha"]) == ("event", before)
    assert "it is not an ancestor of HEAD" in step.log


def test_rename_across_the_dag_boundary_counts_both_paths(
    project: Project, emulator: Emulator
) -> None:
    before = project.dev.head()
    project.dev.rename("dags/utils/notify.py", "include/notify.py")
    project.dev.commit("Move a helper out of the DAGs folder")
    project.dev.push()
    workspace = project.checkout("workspace")

    step = run_action(
        workspace, emulator, {"dry-run": "true"}, event=push_event(before, workspace.head())
    )

    assert step.result.returncode == 0, step.log
    assert json.loads(step.outputs["changed-files"]) == [
        "dags/utils/notify.py",
        "include/notify.py",
    ]
    assert step.outputs["deploy-type"] == "IMAGE_AND_DAG"


def test_file_names_with_a_space_and_a_newline(project: Project, emulator: Emulator) -> None:
    before = project.dev.head()
    project.dev.write("dags/with space.py", "x = 1\n")
    project.dev.write("dags/new\nline.py", "y = 2\n")
    project.dev.commit("Odd names")
    project.dev.push()
    workspace = project.checkout("workspace")

    step = run_action(workspace, emulator, event=push_event(before, workspace.head()))

    assert step.result.returncode == 0, step.log
    assert json.loads(step.outputs["changed-files"]) == ["dags/new\nline.py", "dags/with space.py"]
    assert step.outputs["deploy-type"] == "DAG_ONLY"
    blob = emulator.blobs[step.outputs["dag-tarball-version"]]
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        assert {"dags/with space.py", "dags/new\nline.py"} <= set(tar.getnames())


def test_root_folder_prefix_lookalike_is_not_the_project(
    tmp_path: Path, emulator: Emulator
) -> None:
    dev = GitRepo(tmp_path / "dev")
    shutil.copytree(EXAMPLE, dev.path / "astro")
    shutil.copytree(EXAMPLE, dev.path / "astro-other")
    before = dev.commit("Two projects")
    edit(dev, "astro-other/" + DAG)
    dev.commit("Edit the other project's DAG")

    step = run_action(dev, emulator, {"root-folder": "astro"}, event=push_event(before, dev.head()))

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "skipped"
    assert json.loads(step.outputs["changed-files"]) == ["astro-other/" + DAG]
    assert api_posts(emulator) == []


def test_force_deploys_when_only_ignored_files_changed(
    project: Project, emulator: Emulator
) -> None:
    before = project.dev.head()
    project.commit_and_push("Docs", {"README.md": "docs\n"})
    workspace = project.checkout("workspace")

    step = run_action(
        workspace,
        emulator,
        {"force": "true", "deploy-type": "dags-only"},
        event=push_event(before, workspace.head()),
    )

    assert step.result.returncode == 0, step.log
    assert (step.outputs["status"], step.outputs["deploy-type"]) == ("deployed", "DAG_ONLY")
    assert "force is true" in step.log


def test_compare_to_a_named_ref(project: Project, emulator: Emulator) -> None:
    project.dev.git("tag", "v1.0.0")
    project.dev.git("push", "-q", "origin", "v1.0.0")
    tagged = project.dev.head()
    edit(project.dev)
    project.commit_and_push("Edit a DAG")
    workspace = project.checkout("workspace")

    step = run_action(
        workspace,
        emulator,
        {"compare-to": "v1.0.0", "dry-run": "true"},
        event_name="workflow_dispatch",
    )
    missing = run_action(
        workspace,
        emulator,
        {"compare-to": "v9.9.9", "dry-run": "true"},
        event_name="workflow_dispatch",
    )

    assert step.result.returncode == 0, step.log
    assert (step.outputs["base-source"], step.outputs["base-sha"]) == ("input", tagged)
    assert json.loads(step.outputs["changed-files"]) == [DAG]
    assert missing.result.returncode == 1
    assert missing.titles("error") == ["Invalid input 'compare-to'"]
