"""Path classes: gitignore-style globs relative to root-folder, on segment boundaries."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from pathspec import GitIgnoreSpec

from ci_deploy.changeset import PathRules, classify, glob_problem, glob_spec
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


# --- bounded matching time -----------------------------------------------------------------

PATHOLOGICAL = "*a" * 11 + "b"  # Python's re: 19 s with 9 "*a" on 40 characters


def test_a_glob_with_many_stars_is_matched_in_bounded_time() -> None:
    # In a child process with a timeout, so a matcher that backtracks fails the test
    # instead of hanging the suite.
    script = (
        "from ci_deploy.changeset import PathRules\n"
        f"rules = PathRules('.', ({PATHOLOGICAL!r},), ('**',))\n"
        "names = ['a' * 40, 'a' * 4000, 'd/' + 'a' * 255 + '/x', 'a' * 40 + 'b']\n"
        "print([rules.kind(name) for name in names])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.split("\n")[0] == "['image', 'image', 'image', 'dag']"


def test_a_glob_with_many_stars_is_a_valid_input() -> None:
    assert glob_problem(PATHOLOGICAL) is None


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*a*b*c", "xaybzc", True),
        ("*a*b*c", "xaybzcd", False),
        ("*a*a*ab", "aaab", True),
        ("*a*a*ab", "aab", False),
        ("a*?*[bc]*d", "a1c2d", True),
        ("a*?*[bc]*d", "acd", False),
        ("*.py", "dags/x.py", True),
        ("dags/*_dag*.py", "dags/etl_dag_v2.py", True),
        ("dags/*_dag*.py", "dags/sub/etl_dag.py", False),
        ("\\**\\[*", "*x[y", True),
    ],
)
def test_stars_still_match_as_gitignore_globs(pattern: str, path: str, matches: bool) -> None:
    assert (rules(dag=(pattern,)).kind(path) == "dag") is matches


def test_the_same_files_match_as_with_pathspecs_plain_regexes() -> None:
    # Random globs and paths over a small alphabet, several globs at once (negations and
    # directory patterns decide by priority): RE2 gives every verdict Python's re gives.
    chance = random.Random(13)
    atoms = ["a", "b", "*", "?", "[ab]", "[b]", "**", "!"]

    def glob() -> str:
        segments = [
            "".join(chance.choice(atoms[:6]) for _ in range(chance.randint(1, 4)))
            for _ in range(chance.randint(1, 3))
        ]
        if chance.random() < 0.3:
            segments.insert(chance.randint(0, len(segments)), "**")
        text = "/".join(segments)
        text = (
            ("/" if chance.random() < 0.2 else "") + text + ("/" if chance.random() < 0.2 else "")
        )
        return ("!" if chance.random() < 0.25 else "") + text

    def path() -> str:
        return "/".join(
            "".join(chance.choice("ab") for _ in range(chance.randint(1, 4)))
            for _ in range(chance.randint(1, 4))
        )

    for _ in range(400):
        patterns = [glob() for _ in range(chance.randint(1, 3))]
        plain = GitIgnoreSpec.from_lines(patterns, backend="simple")
        ours = glob_spec(patterns)
        for name in [path() for _ in range(10)]:
            assert ours.match_file(name) == plain.match_file(name), (patterns, name)


def test_a_glob_may_be_at_most_1024_characters_long() -> None:
    assert glob_problem("d" * 1024) is None
    assert glob_problem("d" * 1025) == "is 1025 characters long; a glob may have at most 1024"
