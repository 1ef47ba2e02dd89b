"""Path classes: gitignore-style globs relative to root-folder, on segment boundaries."""

from __future__ import annotations

import pytest

from ci_deploy.changeset import PathRules, classify, glob_problem
from ci_deploy.inputs import DEFAULT_IGNORE_PATHS

IGNORE = tuple(p.strip() for p in DEFAULT_IGNORE_PATHS.split(","))


def rules(
    root: str = ".",
    dag: tuple[str, ...] = ("dags/**",),
    image: tuple[str, ...] = ("**",),
    ignore: tuple[str, ...] = IGNORE,
) -> PathRules:
    return PathRules(root, dag, image, ignore)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("dags/a.py", "dag"),
        ("dags/sub/b.py", "dag"),
        ("dags/.airflowignore", "dag"),
        ("dags/ignored_by_airflow/x.py", "dag"),
        ("dags2/a.py", "image"),
        ("dags.py", "image"),
        ("requirements.txt", "image"),
        ("include/sql/q.sql", "image"),
        ("x/dags/a.py", "image"),
        ("README.md", "ignored"),
        ("dags/README.md", "ignored"),
        (".github/workflows/ci.yml", "ignored"),
        ("tests/dags/test_x.py", "ignored"),
        ("include/tests/x.py", "image"),
        (".astro/test_dag_integrity_default.py", "ignored"),
        (".astro/config.yaml", "image"),
    ],
)
def test_default_rules_at_the_repository_root(path: str, kind: str) -> None:
    assert rules().kind(path) == kind


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("astro/dags/a.py", "dag"),
        ("astro/Dockerfile", "image"),
        ("astro-other/dags/a.py", "outside"),
        ("astro.txt", "outside"),
        ("other/astro/dags/a.py", "outside"),
        ("README.md", "outside"),
    ],
)
def test_root_folder_matches_on_segment_boundaries(path: str, kind: str) -> None:
    assert rules("astro").kind(path) == kind


def test_nested_root_folder() -> None:
    nested = rules("platform/airflow")
    assert nested.kind("platform/airflow/dags/x.py") == "dag"
    assert nested.kind("platform/airflow-old/dags/x.py") == "outside"
    assert nested.kind("platform/dags/x.py") == "outside"


def test_custom_globs_and_ignore_takes_precedence() -> None:
    custom = rules(
        dag=("dags/**", "plugins/*.py"),
        image=("Dockerfile", "requirements.txt"),
        ignore=("dags/scratch/**",),
    )
    assert custom.kind("plugins/hook.py") == "dag"
    assert custom.kind("plugins/sub/hook.py") == "ignored", "matched by no rule"
    assert custom.kind("Dockerfile") == "image"
    assert custom.kind("packages.txt") == "ignored"
    assert custom.kind("dags/scratch/try.py") == "ignored"


def test_negated_ignore_pattern_re_includes() -> None:
    negated = rules(ignore=("**/*.md", "!dags/**/*.md"))
    assert negated.kind("docs/x.md") == "ignored"
    assert negated.kind("dags/docs/x.md") == "dag"


def test_classify_sorts_and_keeps_odd_names() -> None:
    files = [
        "dags/with space.py",
        "dags/new\nline.py",
        "dags/ünï.py",
        "requirements.txt",
        "README.md",
        "./dags/a.py",
    ]
    change_set = classify(files, rules())
    assert change_set.dag_files == (
        "dags/a.py",
        "dags/new\nline.py",
        "dags/with space.py",
        "dags/ünï.py",
    )
    assert change_set.image_files == ("requirements.txt",)
    assert change_set.ignored_files == ("README.md",)
    assert change_set.relevant


def test_only_ignored_changes_are_not_relevant() -> None:
    assert not classify(["README.md", "tests/t.py"], rules()).relevant


@pytest.mark.parametrize("pattern", ["../x", "dags/../../x"])
def test_globs_may_not_leave_the_root_folder(pattern: str) -> None:
    problem = glob_problem(pattern)
    assert problem is not None and ".." in problem


def test_valid_globs_have_no_problem() -> None:
    assert glob_problem("dags/**") is None
    assert glob_problem("!**/*.md") is None
