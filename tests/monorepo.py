"""A monorepo of two Astro projects and its config file, and the Deployments it feeds."""

from __future__ import annotations

import shutil
from pathlib import Path

from ci_deploy_testkit.emulator import Emulator
from tests.actionrun import EXAMPLE
from tests.gitrepo import GitRepo

CONFIG = """\
deployments:
  - deployment-id: dep-sales
    branches: [main]
    root-folder: projects/sales
    description: Sales DAGs
  - deployment-name: sales staging
    branches: [develop]
    root-folder: projects/sales
  - deployment-id: dep-marketing
    branches: main
    root-folder: projects/marketing
    deploy-type: dags-only
"""


def add_deployments(emulator: Emulator) -> None:
    """The Deployments :data:`CONFIG` names, each with its own (empty) deploy history."""
    emulator.add_deployment("dep-sales", name="sales")
    emulator.add_deployment("dep-sales-staging", name="sales staging")
    emulator.add_deployment("dep-marketing", name="marketing")


def monorepo(path: Path, config: str = CONFIG) -> GitRepo:
    """Two copies of the example project and the config file, committed once."""
    repo = GitRepo(path)
    for project in ("sales", "marketing"):
        shutil.copytree(EXAMPLE, repo.path / "projects" / project)
        (repo.path / "projects" / project / "dags" / f"{project}_dag.py").write_text(
            f"# the {project} DAG\n"
        )
    (repo.path / ".astro").mkdir()
    (repo.path / ".astro" / "ci-deploy.yaml").write_text(config)
    repo.commit("Two Astro projects")
    return repo


def edit(repo: GitRepo, project: str) -> str:
    """Commit a change to ``project``'s DAG; returns the commit before."""
    before = repo.head()
    dag = repo.path / "projects" / project / "dags" / f"{project}_dag.py"
    dag.write_text(dag.read_text() + "# changed\n")
    repo.commit(f"Change the {project} DAG")
    return before
