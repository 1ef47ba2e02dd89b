"""Checkouts that are not the plain case, through the whole action: never a silent wrong deploy.

- a deployed commit further back than a shallow clone is deepened: everything is deployed,
  never skipped on the push's own ``before`` (which would hide a change in between);
- a submodule under the DAGs folder that the checkout did not fetch: a warning naming it
  and the actions/checkout option;
- a DAG file whose name is not UTF-8: deployed under its real bytes, shown escaped;
- a Git LFS pointer in the DAGs folder: the run fails before anything is created.

Real git throughout, cloned over ``file://`` the way actions/checkout clones; the action
runs in process against the in-memory platform (:mod:`tests.inprocess`), except the
non-UTF-8 name, which needs a real process writing to a real UTF-8 stdout.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_deploy import gitfetch
from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import DAG, Step, change, example_repo, run_push
from tests.fakes import FakePlatform
from tests.gitrepo import GitRepo, time_limit
from tests.inprocess import run_in_process

TEST_TIME_LIMIT_SECONDS = 90
NOTES = "docs/changelog.md"  # ignored by default (**/*.md): never a reason to deploy


@pytest.fixture(autouse=True)
def _bounded() -> Iterator[None]:
    """Every test ends within its time limit, whatever git or the run does."""
    with time_limit(TEST_TIME_LIMIT_SECONDS):
        yield


def push_run(workspace: GitRepo, platform: FakePlatform, before: str) -> Step:
    """Run the action in ``workspace`` for a push of ``before..HEAD``."""
    event = push_event(before, workspace.head())
    return run_in_process(workspace.path, platform=platform, event=event)


def tarball_names(data: bytes) -> list[bytes]:
    """The member names of a ``.tar.gz``, as the bytes an extracting tool writes to disk."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz", errors="surrogateescape") as tar:
        return [os.fsencode(name) for name in tar.getnames()]


# --- a deployed commit beyond the deepening bound ------------------------------------------


def deploy_far_behind(tmp_path: Path, *, depth: int | None) -> tuple[Step, FakePlatform, str]:
    """Deployed: the first commit. Then a DAG change, never deployed, and more than
    MAX_DEPTH commits that only touch notes; the push being run touches notes too."""
    dev = example_repo(tmp_path / "dev")
    deployed = dev.head()
    change(dev)
    before = dev.commit_many(gitfetch.MAX_DEPTH + 8, NOTES, message="Add a note")
    dev.write(NOTES, "the last note\n")
    dev.commit("Add the last note")
    workspace = GitRepo.clone(dev.add_origin(), tmp_path / "workspace", depth=depth)
    platform = FakePlatform()
    platform.seed(deployed)
    return push_run(workspace, platform, before), platform, deployed


def test_a_deployed_commit_beyond_the_deepening_bound_deploys_everything(
    tmp_path: Path,
) -> None:
    step, platform, _ = deploy_far_behind(tmp_path, depth=1)

    assert step.result.returncode == 0, step.log
    out = step.outputs
    assert (out["status"], out["skipped"]) == ("deployed", "false"), "never a skip"
    assert out["deploy-type"] == "IMAGE_AND_DAG"
    assert (out["base-source"], out["base-sha"]) == ("none", "")
    assert [r.kind for r in platform.deploys()] == ["IMAGE_AND_DAG"]
    assert f"within {gitfetch.MAX_DEPTH} commits" in step.log
    [notice] = [c for c in step.commands("notice") if c.properties["title"] == "No base commit"]
    assert notice.message.startswith(
        "Deploying everything: the commit the Deployment runs could not be reached"
    )
    assert "deploy r1 (" in notice.message
    assert "fetch-depth: 0" in notice.message
    assert "the push's previous commit" not in step.log, "the event's base is not used"


def test_with_the_whole_history_the_deployed_commit_is_compared(tmp_path: Path) -> None:
    step, platform, deployed = deploy_far_behind(tmp_path, depth=None)

    assert step.result.returncode == 0, step.log
    out = step.outputs
    assert (out["base-source"], out["base-sha"]) == ("deployed", deployed)
    assert out["deploy-type"] == "DAG_ONLY"
    assert json.loads(out["changed-files"]) == [DAG, NOTES]
    assert [r.kind for r in platform.deploys()] == ["DAG_ONLY"]


# --- a submodule the checkout did not fetch ------------------------------------------------


def with_submodule(tmp_path: Path) -> tuple[GitRepo, str]:
    """Origin's main has a submodule at dags/vendor, then a DAG change; returns a clone one
    commit deep made without submodules (actions/checkout's default), and the commit that
    added the submodule (deployed before)."""
    vendor = GitRepo(tmp_path / "vendor")
    vendor.write("shared.py", "SHARED = 1\n")
    vendor.commit("Shared code")
    dev = example_repo(tmp_path / "dev")
    url = vendor.path.resolve().as_uri()
    dev.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", url, "dags/vendor")
    before = dev.commit("Add the shared code as a submodule")
    change(dev)
    workspace = GitRepo.clone(dev.add_origin(), tmp_path / "workspace", depth=1)
    assert (workspace.path / "dags" / "vendor").is_dir()
    assert not any((workspace.path / "dags" / "vendor").iterdir())
    return workspace, before


def test_a_submodule_the_checkout_did_not_fetch_is_warned_of(tmp_path: Path) -> None:
    workspace, before = with_submodule(tmp_path)
    platform = FakePlatform()
    platform.seed(before)

    step = push_run(workspace, platform, before)

    assert step.result.returncode == 0, step.log
    assert step.outputs["deploy-type"] == "DAG_ONLY"
    [warning] = [
        c
        for c in step.commands("warning")
        if c.properties.get("title") == "Submodule not checked out"
    ]
    assert "Submodule dags/vendor is not checked out" in warning.message
    assert "submodules: true" in warning.message and "actions/checkout" in warning.message
    [data] = platform.uploads.values()
    assert not any(name.startswith(b"dags/vendor/") for name in tarball_names(data))


def test_a_fetched_submodule_ships_without_a_warning(tmp_path: Path) -> None:
    workspace, before = with_submodule(tmp_path)
    workspace.git("-c", "protocol.file.allow=always", "submodule", "update", "-q", "--init")
    platform = FakePlatform()
    platform.seed(before)

    step = push_run(workspace, platform, before)

    assert step.result.returncode == 0, step.log
    assert "Submodule not checked out" not in step.titles("warning")
    [data] = platform.uploads.values()
    assert b"dags/vendor/shared.py" in tarball_names(data)


# --- a file name that is not UTF-8 ---------------------------------------------------------

ODD_NAME = b"dags/caf\xe9.py"  # Latin-1, as an old editor or archive may have written it
ODD_SHOWN = "dags/caf\\xe9.py"


def test_a_dag_file_name_that_is_not_utf8_is_deployed_and_shown_escaped(
    repo: GitRepo, emulator: Emulator
) -> None:
    before = repo.head()
    (repo.path / "dags").mkdir(exist_ok=True)
    Path(os.fsdecode(os.path.join(os.fsencode(repo.path), ODD_NAME))).write_bytes(b"X = 1\n")
    repo.commit("Add a DAG saved with a Latin-1 name")

    # A strict UTF-8 stdout, as a runner whose encoding is UTF-8 gives; the test reads the
    # log as UTF-8 too, so a raw byte in it fails the run here.
    step = run_push(repo, emulator, before, env={"PYTHONIOENCODING": "utf-8"})

    assert step.result.returncode == 0, step.log
    out = step.outputs
    assert (out["status"], out["deploy-type"]) == ("deployed", "DAG_ONLY")
    assert json.loads(out["changed-files"]) == [ODD_SHOWN]
    assert f"  {ODD_SHOWN} (6 B)" in step.log.splitlines(), "listed in the bundle, escaped"
    names = tarball_names(emulator.blobs[out["dag-tarball-version"]])
    assert ODD_NAME in names, "the member keeps the file's real name"


# --- a Git LFS pointer ---------------------------------------------------------------------

POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 12345\n"
)


def test_a_git_lfs_pointer_in_the_dags_folder_fails_before_anything_is_created(
    repo: GitRepo,
) -> None:
    platform = FakePlatform()
    platform.seed(repo.head())
    before = repo.head()
    repo.write("dags/models/churn.pkl", POINTER)
    repo.write("dags/generated_dag.py", POINTER)
    repo.commit("Add files tracked by Git LFS, checked out without lfs: true")

    step = push_run(repo, platform, before)

    assert step.result.returncode == 1
    assert step.outputs["status"] == "failed"
    assert platform.names() == ["locate", "history"], "nothing was created"
    [error] = [c for c in step.commands("error") if not c.properties.get("file")]
    assert error.properties["title"] == "Git LFS files not downloaded"
    assert "dags/generated_dag.py, dags/models/churn.pkl" in error.message
    assert "lfs: true on actions/checkout" in error.message
    assert "invalid syntax" not in step.log
