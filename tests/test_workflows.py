"""The reusable workflows (.github/workflows/deploy.yml, preview.yml) and the action agree.

Their contract with callers and with action.yml: inputs pass through to inputs the action
has, with the same defaults; outputs map to outputs the action writes; the API token is a
secret; a concurrency group per Deployment (or pull request) that queues; least permissions;
the action run at the commit the workflow was called at. Then what every workflow of the
repository must do (pins, persist-credentials, no expressions inside scripts), the guard
step run by bash, the README's examples, and one deploy made the way deploy.yml makes it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_deploy.report import OUTPUT_NAMES
from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import DAG, change, example_repo
from tests.inprocess import run_in_process
from tests.monorepo import add_deployments, edit, monorepo

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"

GITHUB_SIDE = (
    "deploy.yml's job holds contents: read only, its least permissions (a called workflow "
    "that asked for more would fail every caller granting less), so it comments on no pull "
    "request and records no GitHub Deployment; preview.yml does both"
)
NOT_PASSED_THROUGH = {
    "image-name": "a local image must be built in the job that deploys it, and a caller's "
    "jobs are not the reusable workflow's job",
    "github-token": GITHUB_SIDE,
    "environment": GITHUB_SIDE,
    "preview-env": "previews have their own workflow, preview.yml",
    "open-pull-requests": "previews have their own workflow, preview.yml",
    **{
        name: "the reusable workflows deploy to Astro; App Platform is used through the action"
        for name in (
            "platform",
            "digitalocean-token",
            "app-id",
            "app-name",
            "app-spec",
            "rollback-pin",
            "docr-registry",
        )
    },
}
"""The action's inputs deploy.yml does not offer, and why (api-token comes from a secret)."""

FIXED = {"pr-comment": ("false", GITHUB_SIDE)}
"""The action's inputs deploy.yml sets to a fixed value, and why."""

PATHS_IN_THE_PROJECT = {"root-folder", "config"}
"""Inputs that are paths in the caller's repository, which deploy.yml checks out in project/."""


PROJECT = "project"
"""Where the reusable workflows check out the caller's repository, inside the workspace."""

ACTION_CHECKOUT = {
    "repository": "${{ job.workflow_repository }}",
    "ref": "${{ job.workflow_sha }}",
    "path": "ci-deploy",
    "persist-credentials": False,
}
"""The checkout of ci-deploy itself, at the commit the reusable workflow was called at."""


def load(path: Path) -> dict[Any, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def action() -> dict[str, Any]:
    return load(ROOT / "action.yml")


def workflow_call(workflow: dict[Any, Any]) -> dict[str, Any]:
    """``on.workflow_call`` (YAML 1.1 reads the key ``on`` as True)."""
    triggers = workflow.get("on", workflow.get(True))
    assert isinstance(triggers, dict) and set(triggers) == {"workflow_call"}
    return triggers["workflow_call"]  # type: ignore[no-any-return]


def action_step(job: dict[str, Any]) -> dict[str, Any]:
    """The job's one step running the action."""
    steps = [step for step in job["steps"] if step.get("uses") == "./ci-deploy"]
    assert len(steps) == 1
    return steps[0]  # type: ignore[no-any-return]


def as_the_action_sees(default: object) -> str:
    """A workflow_call input's default as the action receives it through ``with:``."""
    if isinstance(default, bool):
        return "true" if default else "false"
    return str(default)


def test_deploy_passes_its_inputs_through_to_the_action_with_the_same_defaults() -> None:
    workflow = load(WORKFLOWS / "deploy.yml")
    inputs = workflow_call(workflow)["inputs"]
    given = action_step(workflow["jobs"]["deploy"])["with"]
    declared = action()["inputs"]

    assert set(given) <= set(declared), "every input given to the action is one it has"
    missing = set(declared) - set(given) - set(NOT_PASSED_THROUGH)
    assert not missing, f"add these action inputs to deploy.yml or to NOT_PASSED_THROUGH: {missing}"
    assert given["api-token"] == "${{ secrets.ASTRO_API_TOKEN }}"
    for name, (fixed, _why) in FIXED.items():
        assert given.pop(name) == fixed, name
    for name, value in given.items():
        if name == "api-token":
            continue
        prefix = f"{PROJECT}/" if name in PATHS_IN_THE_PROJECT else ""
        assert value == f"{prefix}${{{{ inputs.{name} }}}}", name
        assert as_the_action_sees(inputs[name].get("default", "")) == str(
            declared[name].get("default", "")
        ), f"{name}: deploy.yml's default differs from action.yml's"
        assert inputs[name]["type"] == ("boolean" if value_is_boolean(declared[name]) else "string")
    assert set(inputs) == set(given) - {"api-token"} | {"runs-on"}


def value_is_boolean(spec: dict[str, Any]) -> bool:
    return str(spec.get("default", "")) in {"true", "false"}


def test_deploy_exposes_every_output_of_the_action() -> None:
    workflow = load(WORKFLOWS / "deploy.yml")
    outputs = workflow_call(workflow)["outputs"]
    job = workflow["jobs"]["deploy"]
    assert list(outputs) == list(action()["outputs"]) == list(OUTPUT_NAMES)
    for name, spec in outputs.items():
        assert spec["value"] == f"${{{{ jobs.deploy.outputs.{name} }}}}", name
        assert job["outputs"][name] == f"${{{{ steps.{action_step(job)['id']}.outputs.{name} }}}}"


def test_the_api_token_is_a_required_secret_and_never_an_input() -> None:
    for name in ("deploy.yml", "preview.yml"):
        call = workflow_call(load(WORKFLOWS / name))
        assert call["secrets"]["ASTRO_API_TOKEN"]["required"] is True, name
        assert not [i for i in call["inputs"] if "token" in i or "secret" in i], name


def test_deploy_queues_per_deployment_with_least_permissions() -> None:
    workflow = load(WORKFLOWS / "deploy.yml")
    job = workflow["jobs"]["deploy"]
    assert workflow["permissions"] == {}
    assert job["permissions"] == {"contents": "read"}
    assert job["concurrency"]["cancel-in-progress"] is False
    group = job["concurrency"]["group"]
    for name in ("deployment-id", "deployment-name", "workspace-id"):
        assert f"inputs.{name}" in group, name


@pytest.mark.parametrize("name", ["deploy.yml", "preview.yml"])
def test_the_action_runs_at_the_commit_the_workflow_was_called_at(name: str) -> None:
    """``uses:`` takes no expression: each job checks out job.workflow_repository at
    job.workflow_sha and runs ``./ci-deploy``, after the caller's repository in project/."""
    for job in load(WORKFLOWS / name)["jobs"].values():
        steps = job["steps"]
        uses = [step.get("uses", "") for step in steps]
        runs_at = uses.index("./ci-deploy")
        checkouts = [
            step for step in steps[:runs_at] if "actions/checkout@" in step.get("uses", "")
        ]
        assert [step["with"] for step in checkouts if step["with"].get("path") == "ci-deploy"] == [
            ACTION_CHECKOUT
        ]
        assert [step["with"]["path"] for step in checkouts] == [PROJECT, "ci-deploy"]
        assert action_step(job)["with"]["root-folder"] == f"{PROJECT}/${{{{ inputs.root-folder }}}}"


def test_preview_deploys_on_open_and_push_and_deletes_on_close() -> None:
    workflow = load(WORKFLOWS / "preview.yml")
    call = workflow_call(workflow)
    jobs = workflow["jobs"]
    assert set(jobs) == {"preview", "delete"}
    assert "github.event.action != 'closed'" in jobs["preview"]["if"]
    assert "github.event.action == 'closed'" in jobs["delete"]["if"]
    assert workflow["permissions"] == {}
    declared = action()
    known_inputs = set(declared["inputs"])
    known_outputs = set(declared["outputs"])
    for name, verb in (("preview", "preview"), ("delete", "preview-delete")):
        job = jobs[name]
        given = action_step(job)["with"]
        assert given["action"] == verb
        assert set(given) <= known_inputs, name
        assert given["api-token"] == "${{ secrets.ASTRO_API_TOKEN }}"
        assert given["github-token"] == "${{ github.token }}"
        assert given["environment"] == "preview/pr-${{ github.event.pull_request.number }}"
        assert given["pr-comment"] == "${{ inputs.pr-comment }}"
        assert job["permissions"] == {
            "contents": "read",
            "pull-requests": "write",
            "deployments": "write",
        }
        assert job["concurrency"] == {
            "group": "ci-deploy-preview-${{ github.event.pull_request.number }}",
            "cancel-in-progress": False,
        }
        for output, value in job["outputs"].items():
            assert output in known_outputs
            assert value == f"${{{{ steps.ci-deploy.outputs.{output} }}}}"
        for input_name in call["inputs"]:
            if input_name in given:
                prefix = f"{PROJECT}/" if input_name == "root-folder" else ""
                assert given[input_name] == f"{prefix}${{{{ inputs.{input_name} }}}}"
    assert action_step(jobs["preview"])["with"]["preview-env"] == "${{ secrets.PREVIEW_ENV }}"
    assert call["secrets"]["PREVIEW_ENV"]["required"] is False
    checkout = next(s for s in jobs["preview"]["steps"] if s.get("with", {}).get("path") == PROJECT)
    assert checkout["with"]["ref"] == "${{ github.event.pull_request.head.sha }}"
    for name, spec in call["outputs"].items():
        assert name in known_outputs
        assert re.fullmatch(
            r"\$\{\{ jobs\.(preview|delete)\.outputs\.[a-z-]+( \|\| .+)? \}\}", spec["value"]
        )


def every_workflow() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yml"))


def steps_of(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


@pytest.mark.parametrize("path", every_workflow(), ids=lambda p: p.name)
def test_every_workflow_pins_checks_out_without_credentials_and_keeps_scripts_plain(
    path: Path,
) -> None:
    text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        match = re.fullmatch(r"\s*(?:- )?uses: ([^\s#]+)(.*)", line)
        if match and not match.group(1).startswith("./"):
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", match.group(1)), line
            assert re.fullmatch(r"\s*# v\d+(\.\d+)*", match.group(2)), f"no version comment: {line}"
    for step in steps_of(load(path)):
        if "actions/checkout@" in step.get("uses", ""):
            assert step.get("with", {}).get("persist-credentials") is False, step
        assert "${{" not in step.get("run", ""), f"pass it through env: instead: {step}"


def guard_scripts() -> list[str]:
    scripts = [
        step["run"]
        for name in ("deploy.yml", "preview.yml")
        for step in steps_of(load(WORKFLOWS / name))
        if step.get("name") == "Know which ci-deploy this workflow was called at"
    ]
    assert len(scripts) == 3  # deploy; preview and delete
    return scripts


@pytest.mark.parametrize("script", guard_scripts())
def test_without_the_workflow_identity_the_job_stops_saying_what_to_do(script: str) -> None:
    """The guard runs before any checkout: an empty job.workflow_* (a runner without them)
    would otherwise check out the caller's repository as ci-deploy."""

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-e", "-c", script],
            env={"PATH": os.environ["PATH"], **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    stopped = run(WORKFLOW_REPOSITORY="", WORKFLOW_SHA="")
    assert stopped.returncode == 1
    assert stopped.stdout.startswith("::error title=ci-deploy::")
    assert "uses: OWNER/ci-deploy@<version>" in stopped.stdout
    sha = "0123456789abcdef0123456789abcdef01234567"
    ran = run(WORKFLOW_REPOSITORY="astro-tools/ci-deploy", WORKFLOW_SHA=sha)
    assert (ran.returncode, ran.stdout) == (0, f"ci-deploy from astro-tools/ci-deploy at {sha}\n")


def readme_calls(workflow: str) -> list[dict[str, Any]]:
    """The jobs of the README's YAML examples that call ``workflow``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    documents = [yaml.safe_load(block) for block in blocks]
    jobs = [
        job
        for document in documents
        if isinstance(document, dict)
        for job in document.get("jobs", {}).values()
        if f"/.github/workflows/{workflow}@" in job.get("uses", "")
    ]
    assert jobs, f"the README shows no call of {workflow}"
    return jobs


@pytest.mark.parametrize("name", ["deploy.yml", "preview.yml"])
def test_the_readme_examples_call_the_workflows_with_what_they_take(name: str) -> None:
    call = workflow_call(load(WORKFLOWS / name))
    for job in readme_calls(name):
        assert job["uses"] == f"OWNER/ci-deploy/.github/workflows/{name}@v0"
        assert set(job.get("with", {})) <= set(call["inputs"]), job
        assert set(job["secrets"]) <= set(call["secrets"]), job
        required = {s for s, spec in call["secrets"].items() if spec.get("required")}
        assert required <= set(job["secrets"]), job


def render(value: object, inputs: dict[str, Any], secrets: dict[str, str]) -> str:
    """A ``with:`` value as the runner evaluates it, for the only expressions deploy.yml's
    action step has: ``inputs.NAME`` and ``secrets.NAME``."""

    def evaluate(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        if kind == "secrets":
            return secrets[name]
        return as_the_action_sees(inputs[name])

    text = str(value)
    rendered = re.sub(r"\$\{\{ (inputs|secrets)\.([\w-]+) \}\}", evaluate, text)
    assert "${{" not in rendered, f"an expression this test cannot evaluate: {text}"
    return rendered


def rendered_deploy_inputs(caller: dict[str, str], token: str) -> dict[str, str]:
    """The action's inputs as deploy.yml's ``with:`` gives them for the caller's values."""
    workflow = load(WORKFLOWS / "deploy.yml")
    call = workflow_call(workflow)
    inputs = {
        name: caller.get(name, spec.get("default", "")) for name, spec in call["inputs"].items()
    }
    given = action_step(workflow["jobs"]["deploy"])["with"]
    return {
        name: render(value, inputs, {"ASTRO_API_TOKEN": token}) for name, value in given.items()
    }


def test_a_monorepo_matrix_then_its_deploy_run_through_deploy_yml(
    tmp_path: Path, astro: Emulator
) -> None:
    """The config file's root-folders are the caller's repository's, which deploy.yml checks
    out in project/: the matrix lists the changed project, the deploy job deploys it."""
    add_deployments(astro)
    workspace = tmp_path / "workspace"
    repo = monorepo(workspace / PROJECT)
    before = edit(repo, "sales")
    event = push_event(before, repo.head())

    matrix = run_in_process(
        workspace,
        rendered_deploy_inputs({"action": "matrix", "api-url": astro.api_url}, astro.token),
        emulator=astro,
        event=event,
        token="",
    )

    assert matrix.result.returncode == 0, matrix.log
    [entry] = json.loads(matrix.outputs["matrix"])["include"]
    assert (entry["deployment-id"], entry["root-folder"]) == ("dep-sales", "projects/sales")

    caller = {"deployment-id": entry["deployment-id"], "api-url": astro.api_url}
    deployed = run_in_process(
        workspace,
        rendered_deploy_inputs(caller, astro.token),
        emulator=astro,
        event=event,
        token="",
    )

    assert deployed.result.returncode == 0, deployed.log
    assert deployed.outputs["status"] == "deployed"
    assert "Options from project/.astro/ci-deploy.yaml" in deployed.log
    assert deployed.outputs["changed-files"] == '["projects/sales/dags/sales_dag.py"]'
    [made] = [d for d in astro.deploys("dep-sales") if d["status"] == "DEPLOYED"]
    assert made["description"].startswith("Sales DAGs")


def test_a_push_deploys_through_deploy_yml_as_its_job_lays_the_workspace_out(
    tmp_path: Path, astro: Emulator
) -> None:
    """The caller's repository in project/ (ci-deploy beside it in the real job), the action's
    inputs rendered from deploy.yml's ``with:`` with the caller's values and the workflow's
    defaults: a DAG change makes a verified DAG-only deploy."""
    workspace = tmp_path / "workspace"
    repo = example_repo(workspace / PROJECT)
    (workspace / "ci-deploy").mkdir()
    before = change(repo)
    caller = {"deployment-id": astro.deployment_id, "api-url": astro.api_url}
    rendered = rendered_deploy_inputs(caller, astro.token)

    step = run_in_process(
        workspace, rendered, emulator=astro, event=push_event(before, repo.head()), token=""
    )

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "deployed"
    assert step.outputs["deploy-type"] == "DAG_ONLY"
    assert step.outputs["changed-files"] == f'["{DAG}"]'
