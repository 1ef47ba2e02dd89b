"""The config file of many Deployments: its validation, which entries feed a branch, how an
entry's options fill the step's inputs, and the matrix output's shape (pure)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_deploy.config import Config, Entry, filled, from_entry, parse_config, read_config
from ci_deploy.errors import ConfigError, ConfigProblem
from ci_deploy.github import GitHubContext
from ci_deploy.matrix import event_branch, include
from ci_deploy.report import matrix_json
from ci_deploy.result import MatrixEntry, Selected

MONOREPO = """
deployments:
  - deployment-id: dep-sales
    branches: main
    root-folder: projects/sales
    deploy-type: dags-only
    wait-timeout: 20m
    force: false
    ignore-paths: ["**/*.md", "tests/**"]
  - deployment-name: sales staging
    workspace-id: ws-1
    branches: [develop, "release/*"]
    root-folder: projects/sales
  - deployment-id: dep-marketing
    root-folder: projects/marketing
"""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    for project in ("projects/sales", "projects/marketing"):
        (tmp_path / project / "dags").mkdir(parents=True)
    return tmp_path


def problems(text: str, workspace: Path) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, ".astro/ci-deploy.yaml", workspace)
    assert caught.value.path == ".astro/ci-deploy.yaml"
    return caught.value.problems


def test_a_valid_file_gives_its_entries_with_options_as_input_texts(workspace: Path) -> None:
    config = parse_config(MONOREPO, ".astro/ci-deploy.yaml", workspace)
    sales, staging, marketing = config.entries
    assert (sales.deployment_id, sales.branches) == ("dep-sales", ("main",))
    assert sales.options == {
        "root-folder": "projects/sales",
        "deploy-type": "dags-only",
        "wait-timeout": "20m",
        "force": "false",
        "ignore-paths": "**/*.md\ntests/**",
    }
    assert (staging.deployment_name, staging.options["workspace-id"]) == ("sales staging", "ws-1")
    assert (marketing.branches, marketing.where) == ((), "deployments[2]")


def test_branches_pick_the_entries_a_commit_feeds(workspace: Path) -> None:
    config = parse_config(MONOREPO, "c.yaml", workspace)

    def names(branch: str) -> list[str]:
        return [e.deployment_id or e.deployment_name for e in config.for_branch(branch)]

    assert names("main") == ["dep-sales", "dep-marketing"]
    assert names("develop") == ["sales staging", "dep-marketing"]
    assert names("release/2.1") == ["sales staging", "dep-marketing"]
    assert names("feature/x") == ["dep-marketing"]
    assert names("") == ["dep-marketing"], "a tag feeds only entries without branches"


def test_every_bad_field_is_one_problem_naming_its_path_and_what_is_accepted(
    workspace: Path,
) -> None:
    found = problems(
        """
deployments:
  - deployment-id: dep-a
    deploy-type: fast
    root-folder: projects/nowhere
    wait: [1]
  - deployment-id: dep-b
    api-url: https://elsewhere.example.com
  - deployment-id: dep-c
    deployment-name: c
  - deployment-id: dep-d
    speed: 3
  - deployment-id: dep-e
    force: maybe
    branches: [1]
  - 5
""",
        workspace,
    )
    by_field = {p.field: p.message for p in found}
    assert list(by_field) == [
        "deployments[0].wait",
        "deployments[0].root-folder",
        "deployments[0].deploy-type",
        "deployments[1].api-url",
        "deployments[2]",
        "deployments[3].speed",
        "deployments[4].branches",
        "deployments[4].force",
        "deployments[5]",
    ]
    assert by_field["deployments[0].deploy-type"] == (
        "must be one of infer, dags-only, image-and-dags, image-only, bundle; got 'fast'"
    )
    assert "'projects/nowhere' does not exist" in by_field["deployments[0].root-folder"]
    assert by_field["deployments[1].api-url"].startswith("api-url cannot be set per Deployment")
    assert by_field["deployments[2]"].startswith("must name its Deployment with deployment-id or")
    assert by_field["deployments[3].speed"].startswith("is not a known field; entries take")
    assert by_field["deployments[4].force"] == "must be true or false, got 'maybe'"
    assert by_field["deployments[4].branches"].startswith("must be a branch name or a list")
    assert by_field["deployments[5]"].startswith("must be a mapping of fields")


@pytest.mark.parametrize(
    ("text", "field", "start"),
    [
        ("", "", "must be a mapping with one field, deployments"),
        ("deployments: []", "deployments", "must be a list of 1 to 256 Deployments"),
        (
            "deployments: [{deployment-id: a}]\nextra: 1",
            "extra",
            "is not a known field; the file has one field",
        ),
        ("deployments:\n  - deployment-id: [x\n", "", "line 3, column 1: is not valid YAML"),
        (
            "deployments:\n  - deployment-id: a\n  - deployment-id: a\n",
            "deployments[1]",
            "names Deployment 'a' again (deployments[0] does)",
        ),
        (
            "deployments:\n  - deployment-id: a\n    workspace-id: w\n",
            "deployments[0].workspace-id",
            "is only used with deployment-name",
        ),
    ],
)
def test_the_file_as_a_whole(workspace: Path, text: str, field: str, start: str) -> None:
    (found,) = problems(text, workspace)
    assert found.field == field
    assert found.message.startswith(start), found.message


def test_a_missing_file_is_an_error_unless_it_is_the_default_for_a_deploy(tmp_path: Path) -> None:
    assert read_config(".astro/ci-deploy.yaml", tmp_path, required=False) is None
    with pytest.raises(ConfigError) as caught:
        read_config(".astro/ci-deploy.yaml", tmp_path, required=True, action="matrix")
    (problem,) = caught.value.problems
    assert problem.message.startswith(
        "the file does not exist (the config input's default), and action: matrix reads the"
        " Deployments from it"
    )
    (tmp_path / "bad.yaml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_config("bad.yaml", tmp_path, required=True)


def test_an_entry_fills_only_the_inputs_the_step_left_at_their_default() -> None:
    """The runner passes every input's default, so the default's text counts as not set."""
    options = {"deploy-type": "dags-only", "wait-timeout": "20m", "root-folder": "a"}
    entry = Entry(0, "dep-a", options=options)
    raw = {"deploy-type": "", "wait-timeout": "5m", "root-folder": ".", "force": ""}
    assert filled(raw, entry) == {
        "deploy-type": "dags-only",
        "wait-timeout": "5m",
        "root-folder": "a",
        "force": "",
    }
    assert from_entry(raw, entry) == {"deploy-type", "root-folder"}


def test_an_entry_is_found_by_the_deployments_id_or_name() -> None:
    config = Config("c.yaml", (Entry(0, "dep-a"), Entry(1, deployment_name="staging")))
    assert config.entry_for("dep-a", "") is config.entries[0]
    assert config.entry_for("", "staging") is config.entries[1]
    assert config.entry_for("dep-b", "") is None


def test_the_event_branch_is_a_pull_requests_base_or_the_pushed_branch() -> None:
    assert event_branch(GitHubContext(event_name="push", ref="refs/heads/develop")) == "develop"
    assert event_branch(GitHubContext(event_name="push", ref="refs/tags/v1")) == ""
    pull = {"pull_request": {"base": {"ref": "main"}, "head": {"ref": "feature"}}}
    assert event_branch(GitHubContext(event_name="pull_request", event=pull)) == "main"


def test_the_matrix_output_is_what_strategy_matrix_takes() -> None:
    sales = Entry(0, "dep-sales", options={"root-folder": "projects/sales", "wait": "false"})
    staging = Entry(1, deployment_name="staging")
    selected = Selected(
        "c.yaml",
        "main",
        (
            MatrixEntry(include(sales), sales.label, "deploy DAG_ONLY", True),
            MatrixEntry(include(staging), staging.label, "skip", False),
        ),
    )
    assert json.loads(matrix_json(selected)) == {
        "include": [
            {
                "deployment": "dep-sales",
                "deployment-id": "dep-sales",
                "deployment-name": "",
                "root-folder": "projects/sales",
                "wait": "false",
            }
        ]
    }
    assert json.loads(matrix_json(Selected("c.yaml", "main", ()))) == {"include": []}
