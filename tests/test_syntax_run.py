"""The syntax check in a run: only what the deploy changes, or everything.

A real git repository holds the example project, with a broken DAG file already on the
Deployment (deployed with the check off, say); the run goes through ``cli.deploy`` in
process against the in-memory platform. Compared with the commit the Deployment runs, only
the files that differ from it are checked; a forced deploy, a first deploy, or a base the
Deployment does not run checks every file.
"""

from __future__ import annotations

import pytest

from ci_deploy_testkit.localrun import push_event
from tests.actionrun import Step, change
from tests.fakes import FakePlatform
from tests.gitrepo import GitRepo
from tests.inprocess import run_in_process

LEGACY = "dags/legacy.py"


@pytest.fixture
def deployed(repo: GitRepo) -> str:
    """The commit the Deployment runs: the example project and a broken ``dags/legacy.py``."""
    (repo.path / LEGACY).write_text("def legacy(:\n    pass\n")
    return repo.commit("A DAG that does not compile, deployed with the check off")


def deploy(
    repo: GitRepo, platform: FakePlatform, before: str, inputs: dict[str, str] | None = None
) -> Step:
    return run_in_process(
        repo.path,
        {"deploy-type": "dags-only", **(inputs or {})},
        platform=platform,
        event_name="push",
        event=push_event(before, repo.head()),
    )


def seeded(commit: str) -> FakePlatform:
    platform = FakePlatform()
    platform.seed(commit)
    return platform


def annotated(step: Step) -> list[str]:
    return [str(c.properties["file"]) for c in step.commands("error") if c.properties.get("file")]


def python_files(repo: GitRepo) -> int:
    return sum(1 for _ in (repo.path / "dags").rglob("*.py"))


def test_only_the_files_changed_since_the_deployed_commit_are_checked(
    repo: GitRepo, deployed: str
) -> None:
    change(repo, "dags/new_dag.py", "from datetime import datetime\n")

    step = deploy(repo, seeded(deployed), deployed)

    assert step.result.returncode == 0, step.log
    unchanged = python_files(repo) - 1
    assert (
        f"Syntax check: 1 changed Python file compiles; {unchanged} are as in the deployed "
        f"commit {deployed[:12]} and not checked again."
    ) in step.log


def test_a_changed_file_that_does_not_compile_is_caught(repo: GitRepo, deployed: str) -> None:
    change(repo, "dags/new_dag.py", "def new(:\n")

    step = deploy(repo, seeded(deployed), deployed)

    assert step.result.returncode == 1
    assert annotated(step) == ["dags/new_dag.py"]


def test_files_the_checkout_changed_after_the_commit_are_checked(
    repo: GitRepo, deployed: str
) -> None:
    """Files a workflow step wrote or edited are not in git's diff, but they ship."""
    change(repo, "dags/new_dag.py", "x = 1\n")
    (repo.path / "dags" / "generated.py").write_text("y = (\n")  # untracked
    (repo.path / "dags" / "daily_report.py").write_text("z = )\n")  # edited, not committed

    step = deploy(repo, seeded(deployed), deployed)

    assert step.result.returncode == 1
    assert annotated(step) == ["dags/daily_report.py", "dags/generated.py"]


@pytest.mark.parametrize(
    "inputs",
    [{"force": "true"}, {"compare-to": "event"}],
    ids=["forced", "base-not-deployed"],
)
def test_a_forced_deploy_or_another_base_checks_every_file(
    repo: GitRepo, deployed: str, inputs: dict[str, str]
) -> None:
    change(repo, "dags/new_dag.py", "x = 1\n")

    step = deploy(repo, seeded(deployed), deployed, inputs)

    assert step.result.returncode == 1
    assert annotated(step) == [LEGACY]


def test_a_first_deploy_checks_every_file(repo: GitRepo, deployed: str) -> None:
    change(repo, "dags/new_dag.py", "x = 1\n")

    step = run_in_process(
        repo.path,
        {"deploy-type": "dags-only"},
        platform=FakePlatform(),
        event_name="workflow_dispatch",
        event={},
    )

    assert step.result.returncode == 1
    assert "No base commit" in step.titles("notice")
    assert annotated(step) == [LEGACY]


def test_a_full_check_says_so(repo: GitRepo) -> None:
    before = change(repo, "dags/new_dag.py", "x = 1\n")

    step = deploy(repo, FakePlatform(), before)

    assert step.result.returncode == 0, step.log
    n = python_files(repo)
    assert f"Syntax check: all {n} Python files in the DAG bundle compile." in step.log
