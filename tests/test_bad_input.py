"""Bad input and odd trees, through the whole action in process.

Huge values and control characters in inputs, against the emulator: each is a named input
problem, exit code 1, before any request to the API, and no traceback anywhere in the log (a
``::debug::`` line included). More changed files than one output may hold, and a failure in
terminal colours, against the in-memory platform.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_deploy.errors import ImageError
from ci_deploy.image import BuiltImage
from ci_deploy.report import changed_files
from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import DAG, Step, change
from tests.fakes import FakeImages, FakePlatform
from tests.gitrepo import GitRepo
from tests.inprocess import run_in_process
from tests.test_inputs import make_jwt

HUGE = "a" * 120_000


def refused(repo: GitRepo, emulator: Emulator, inputs: dict[str, str], name: str) -> str:
    """Run with ``inputs``; assert it failed on input ``name`` alone; return that message."""
    step: Step = run_in_process(repo.path, inputs, emulator=emulator)
    assert step.result.returncode == 1, step.log
    errors = step.commands("error")
    assert [e.properties.get("title") for e in errors] == [f"Invalid input '{name}'"], step.log
    assert emulator.requests == [], "no request may reach the API"
    assert "Traceback" not in step.log
    assert step.outputs["status"] == "failed"
    return errors[0].message


@pytest.mark.parametrize(
    ("name", "inputs"),
    [
        ("deployment-id", {"deployment-id": HUGE}),
        ("organization-id", {"organization-id": HUGE}),
        ("workspace-id", {"workspace-id": HUGE, "deployment-id": "", "deployment-name": "x"}),
        ("rollback-to", {"rollback-to": HUGE, "action": "rollback"}),
    ],
)
def test_a_huge_id_is_an_input_error_before_any_request(
    repo: GitRepo, astro: Emulator, name: str, inputs: dict[str, str]
) -> None:
    message = refused(repo, astro, inputs, name)
    assert "of at most 64 characters (Astro's IDs have 25); got 120000 characters" in message
    assert len(message) < 300


@pytest.mark.parametrize("name", ["root-folder", "dags-folder"])
def test_a_huge_folder_is_an_input_error_before_any_request(
    repo: GitRepo, astro: Emulator, name: str
) -> None:
    message = refused(repo, astro, {name: HUGE}, name)
    assert message.startswith("must be a folder path of at most 1024 characters; got 120000")
    assert len(message) < 300


@pytest.mark.parametrize("name", ["root-folder", "dags-folder"])
def test_a_folder_name_longer_than_linux_allows_is_an_input_error(
    repo: GitRepo, astro: Emulator, name: str
) -> None:
    message = refused(repo, astro, {name: "d" * 300}, name)
    assert "folder names have at most 255 characters" in message


@pytest.mark.parametrize("name", ["root-folder", "dags-folder"])
@pytest.mark.parametrize("folder", ["dags\nother", "da\x1b[31mgs", "da\tgs", "da\rgs"])
def test_a_folder_with_control_characters_is_an_input_error(
    repo: GitRepo, astro: Emulator, name: str, folder: str
) -> None:
    (repo.path / folder).mkdir(exist_ok=True)  # it exists: still refused
    message = refused(repo, astro, {name: folder}, name)
    assert message.startswith("must be a folder path without control characters")
    assert repr(folder) in message, "shown with its control characters escaped"
    assert "\x1b" not in message


def test_an_organization_id_too_long_in_the_token_is_not_used(
    repo: GitRepo, astro: Emulator
) -> None:
    token = make_jwt({"permissions": [f"organizationId:{'o' * 65}"]})
    step = run_in_process(repo.path, {}, emulator=astro, token=token)
    assert step.result.returncode == 1
    assert step.titles("error") == ["Invalid input 'organization-id'"]
    assert astro.requests == []


# --- odd trees: more changed files than one output may hold --------------------------------

NOTE = "docs/" + "n" * 200 + "{:05d}.md"  # 2600 such paths make 560 kB of JSON


def test_a_huge_change_set_is_listed_in_part_and_counted_in_full(repo: GitRepo) -> None:
    platform = FakePlatform()
    platform.seed(repo.head())
    before = repo.head()
    for number in range(2600):
        repo.write(NOTE.format(number), "x")
    repo.commit("Add many notes")

    step = run_in_process(repo.path, {}, platform=platform, event=push_event(before, repo.head()))

    assert step.result.returncode == 0, step.log
    assert step.outputs["changed-files-count"] == "2600"
    listed = json.loads(step.outputs["changed-files"])
    every = sorted(NOTE.format(number) for number in range(2600))
    assert listed == every[: len(listed)], "whole paths, in order, from the first"
    assert 2000 < len(listed) < 2600
    assert len(step.outputs["changed-files"].encode()) <= 512 * 1024
    [warning] = [
        c for c in step.commands("warning") if c.properties["title"] == "changed-files cut"
    ]
    assert warning.message == (
        f"The changed-files output lists {len(listed)} of the 2600 changed files (the first by"
        f" path) and leaves out {2600 - len(listed)}: GitHub takes at most 1 MB an output, and"
        " this one is kept under 512 KiB. changed-files-count counts them all."
    )


def test_a_change_set_that_fits_is_listed_whole_without_a_warning(repo: GitRepo) -> None:
    platform = FakePlatform()
    platform.seed(repo.head())
    before = change(repo)
    step = run_in_process(repo.path, {}, platform=platform, event=push_event(before, repo.head()))
    assert json.loads(step.outputs["changed-files"]) == [DAG]
    assert step.outputs["changed-files-count"] == "1"
    assert "changed-files cut" not in step.titles("warning")


@pytest.mark.parametrize("limit", [2, 3, 40, 41, 42, 43, 100])
def test_changed_files_keeps_whole_paths_within_the_limit(limit: int) -> None:
    files = ('a "q".py', "dags/ünï\n.py", "z\\x.py")  # escapes and UTF-8 count as written
    text, left_out = changed_files(files, limit)
    listed = json.loads(text)
    assert listed == list(files[: len(listed)])
    assert left_out == len(files) - len(listed)
    assert len(text.encode()) <= limit
    if left_out:  # the next path would not have fitted
        longer = json.dumps(list(files[: len(listed) + 1]), ensure_ascii=False)
        assert len(longer.encode()) > limit


# --- terminal escapes never reach an annotation -------------------------------------------


class ColourfulFailure(FakeImages):
    """A builder whose build fails as Docker's does: the RUN step's output in colour codes."""

    def build(self, context_dir: Path, *, tag: str) -> BuiltImage:
        raise ImageError(
            "The image build failed at RUN pip install -r requirements.txt:\n"
            "\x1b[91mERROR: No matching distribution found for nope\x1b[0m\r\n",
            title="Image build \x1b[1mfailed",
        )


def test_a_failure_in_colour_is_annotated_without_terminal_escapes(repo: GitRepo) -> None:
    platform = FakePlatform()
    platform.seed(repo.head())
    before = change(repo, "requirements.txt", "nope\n")
    step = run_in_process(
        repo.path,
        {},
        platform=platform,
        event=push_event(before, repo.head()),
        images=lambda runner: ColourfulFailure(),
    )
    assert step.result.returncode == 1
    [error] = step.commands("error")
    assert error.properties["title"] == "Image build failed"
    assert error.message.startswith(
        "The image build failed at RUN pip install -r requirements.txt:\n"
        "ERROR: No matching distribution found for nope\n"
    )
    assert "\x1b" not in step.result.stdout.split("::error")[1]
