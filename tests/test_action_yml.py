"""action.yml, the Dockerfile and the code agree."""

from __future__ import annotations

from pathlib import Path

import yaml

from ci_deploy.inputs import INPUTS
from ci_deploy.report import OUTPUT_NAMES

ROOT = Path(__file__).resolve().parent.parent


def action() -> dict[str, object]:
    return yaml.safe_load((ROOT / "action.yml").read_text())  # type: ignore[no-any-return]


def test_inputs_match_the_code_with_the_same_defaults() -> None:
    declared = action()["inputs"]
    assert isinstance(declared, dict)
    assert list(declared) == list(INPUTS)
    for name, spec in declared.items():
        assert str(spec.get("default", "")) == INPUTS[name], name
        assert spec.get("description"), f"input {name} has no description"


README_COMPUTED_DEFAULTS = {
    "dag-paths": "`<dags-folder>/**`",
    "image-paths": "everything else",
}
"""The README default cells that describe a default computed from other inputs.

action.yml and the model give these inputs the empty default, which means "computed".
"""


def readme_inputs() -> list[tuple[str, str]]:
    """The rows of the README's "### Inputs" table: (input name, default cell)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n### Inputs\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    return [(name.strip("`"), default) for name, default, *_ in cells]


def test_action_yml_the_model_and_the_readme_list_the_same_inputs() -> None:
    declared = action()["inputs"]
    assert isinstance(declared, dict)
    readme = readme_inputs()
    assert list(declared) == list(INPUTS) == [name for name, _ in readme]
    assert {name: str(spec.get("default", "")) for name, spec in declared.items()} == INPUTS
    for name, cell in readme:
        if name in README_COMPUTED_DEFAULTS:
            assert (cell, INPUTS[name]) == (README_COMPUTED_DEFAULTS[name], ""), name
        else:
            literal = INPUTS[name] or '""'
            assert cell == f"`{literal}`", name


def test_outputs_match_the_code() -> None:
    declared = action()["outputs"]
    assert isinstance(declared, dict)
    assert list(declared) == list(OUTPUT_NAMES)


def test_runs_as_a_docker_action_built_from_the_dockerfile() -> None:
    assert action()["runs"] == {"using": "docker", "image": "Dockerfile"}


def test_dockerfile_follows_the_runner_rules() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    instructions = [
        line.split()[0]
        for line in lines
        if line and not line.startswith("#") and line.split()[0].isupper()
    ]
    assert "USER" not in instructions and "WORKDIR" not in instructions
    entrypoint = [line for line in lines if line.startswith("ENTRYPOINT")]
    assert len(entrypoint) == 1
    assert entrypoint[0].startswith('ENTRYPOINT ["/'), "absolute exec-form ENTRYPOINT"
    text = (ROOT / "Dockerfile").read_text()
    assert "PYTHONUNBUFFERED=1" in text
    assert "git config --system --add safe.directory '*'" in text
    assert "git" in text.split("apt-get install", 1)[1].split("&&", 1)[0]


def test_the_image_carries_the_bytecode_of_the_code_the_entrypoint_imports() -> None:
    """Each job starts a fresh container that writes no bytecode: without it every start
    compiles the whole package again."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    lines = dockerfile.splitlines()
    copied = [line.split()[2] for line in lines if line.startswith("COPY ci_deploy")]
    assert copied == ["/opt/ci-deploy/ci_deploy"]
    assert f"python -m compileall -q {copied[0]}" in dockerfile


def test_the_image_installs_only_the_action() -> None:
    """The emulator and the local runner (the test kit) stay out of every user's run."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    copies = [line for line in dockerfile.splitlines() if line.startswith("COPY")]
    assert any(line.split()[1] == "ci_deploy" for line in copies)
    assert not any("testkit" in line or "tests" in line for line in copies)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"testkit", "tests"} <= set(ignored)
