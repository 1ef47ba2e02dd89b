"""Who may import whom in the runtime package (docs/architecture.md, "Layers").

Read from the source with :mod:`ast`: the module-level imports of each module, leaving out
``if TYPE_CHECKING:`` blocks (types only) and imports inside functions (loaded when used).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ci_deploy"

PURE = (
    "ci_deploy.basecommit",
    "ci_deploy.changeset",
    "ci_deploy.history",
    "ci_deploy.plan",
    "ci_deploy.platform",
    "ci_deploy.preview",
    "ci_deploy.report",
    "ci_deploy.result",
    "ci_deploy.source",
    "ci_deploy.timing",
    "ci_deploy.pr_comment",
    "ci_deploy.verification",
    "ci_deploy.github_deployment",
    "ci_deploy.astro.logs",
    "ci_deploy.astro.preview",
    "ci_deploy.astro.rules",
    "ci_deploy.digitalocean.rules",
    "ci_deploy.digitalocean.preview",
)
"""Decisions and records over plain data: no git, no network, no engine, no runner."""

IMAGE_CODE = ("ci_deploy.image",)
"""The module that talks to the Docker engine."""

IO_LIBRARIES = ("git", "docker", "requests", "httpx", "github_action_utils")
IO_MODULES = (
    "ci_deploy.gitrepo",
    "ci_deploy.gitfetch",
    "ci_deploy.image",
    "ci_deploy.runner",
    "ci_deploy.http",
    "ci_deploy.tls",
    "ci_deploy.github_api",
    "ci_deploy.github_side",
    "ci_deploy.astro.client",
    "ci_deploy.astro.upload",
    "ci_deploy.astro.platform",
    "ci_deploy.astro.hibernation",
    "ci_deploy.digitalocean.client",
    "ci_deploy.digitalocean.platform",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def paths() -> dict[str, Path]:
    """Every runtime module's file."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


@cache
def modules() -> dict[str, frozenset[str]]:
    """Every runtime module and what it imports at module level."""
    found: dict[str, frozenset[str]] = {}
    for name, path in paths().items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{parent}.{base}" if base else parent
                imported.add(base)
                imported.update(f"{base}.{alias.name}" for alias in node.names)
        found[name] = frozenset(imported)
    return found


def imports_any(module: str, prefixes: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name in modules()[module]
        if any(name == p or name.startswith(p + ".") for p in prefixes)
    )


def test_every_listed_module_exists() -> None:
    for name in (*PURE, *IO_MODULES):
        assert name in modules(), name


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_do_no_io(module: str) -> None:
    assert imports_any(module, IO_LIBRARIES + IO_MODULES) == []


@pytest.mark.parametrize(
    "module",
    [m for m in modules() if not m.startswith("ci_deploy.astro")],
)
def test_only_the_astro_subpackage_knows_astro(module: str) -> None:
    """The core talks to the platform port; Astro is one implementation of it."""
    allowed = []
    if module in ("ci_deploy.inputs", "ci_deploy.input_rules"):
        # The inputs are the Astro action's contract: they cut the description to the
        # API's limit, and borrow only that number.
        allowed = ["ci_deploy.astro.limits", "ci_deploy.astro.limits.DESCRIPTION_MAX"]
    assert imports_any(module, ("ci_deploy.astro",)) == allowed


@pytest.mark.parametrize(
    "module", [m for m in modules() if not m.startswith("ci_deploy.digitalocean")]
)
def test_only_the_digitalocean_subpackage_knows_app_platform(module: str) -> None:
    """``run.py`` loads it inside its platform factory, like Astro."""
    assert imports_any(module, ("ci_deploy.digitalocean",)) == []


@pytest.mark.parametrize("module", list(modules()))
def test_the_test_kit_is_never_part_of_the_action(module: str) -> None:
    assert imports_any(module, ("ci_deploy_testkit", "tests")) == []


@pytest.mark.parametrize("module", list(modules()))
def test_only_the_image_code_imports_the_docker_sdk(module: str) -> None:
    """Not even lazily elsewhere: the Docker SDK costs every run that imports it."""
    text = paths()[module].read_text(encoding="utf-8")
    if module in IMAGE_CODE:
        return
    assert "import docker" not in text and "from docker" not in text


@pytest.mark.parametrize("module", ["ci_deploy.report", "ci_deploy.result", "ci_deploy.plan"])
def test_records_and_reports_do_not_reach_back_into_the_run(module: str) -> None:
    assert imports_any(module, ("ci_deploy.run", "ci_deploy.stages", "ci_deploy.cli")) == []


def test_stages_do_not_import_each_other_but_verify() -> None:
    """A stage reaches another only to wait for a rollback like any rollout (the package
    itself, which holds the stages' shared ``Scope``, is for all of them)."""
    stages = [m for m in modules() if m.startswith("ci_deploy.stages.")]
    for module in stages:
        reached = {other for other in stages if other != module and imports_any(module, (other,))}
        assert reached == ({"ci_deploy.stages.verify"} if module.endswith(".recover") else set())
