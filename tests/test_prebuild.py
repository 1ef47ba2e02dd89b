"""The DAG tarball packed early (``stages/prebuild.py``): when a run starts it, that the
build takes it when the plan wants that tarball, and that nothing is left on any other path.

The packing runs in a real ``ci_deploy.bundle_worker`` process; the runs are in process
against the in-memory platform (see ``tests/test_run.py``).
"""

from __future__ import annotations

import functools
import io
import shutil
import signal
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_deploy import bundle_worker
from ci_deploy.bundle import Packing, build_dag_tarball
from ci_deploy.compression import compression_for
from ci_deploy.errors import UploadError
from ci_deploy.inputs import load_inputs
from ci_deploy.stages import prebuild as prebuilding
from ci_deploy.stages.prebuild import Prebuild, worth_prebuilding
from tests.actionrun import DAG, change
from tests.fakes import FakePlatform
from tests.gitrepo import GitRepo
from tests.inprocess import TOKEN
from tests.test_overlap import at
from tests.test_plan import inputs
from tests.test_run import _cancel, deploy, error

LFS_POINTER = (
    "version https://git-lfs.github.com/spec/v1\n"
    "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    "size 12345\n"
)


@pytest.fixture
def platform(repo: GitRepo) -> FakePlatform:
    """A Deployment whose last deploy is the repository's first commit."""
    platform = FakePlatform()
    platform.seed(repo.head())
    return platform


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Prebuild]]:
    """The prebuilds the runs start (each still a real one)."""
    made: list[Prebuild] = []

    class Recorded(Prebuild):
        def __init__(self, dags_path: Path, packing: Packing) -> None:
            super().__init__(dags_path, packing)
            made.append(self)

    monkeypatch.setattr(prebuilding, "Prebuild", Recorded)
    yield made


def _noting(cls: type[Prebuild], order: list[str]) -> type[Prebuild]:
    """``cls``, noting in ``order`` when one starts."""

    class Noted(cls):  # type: ignore[valid-type, misc]
        def __init__(self, dags_path: Path, packing: Packing) -> None:
            order.append("packing started")
            super().__init__(dags_path, packing)

    return Noted


def _runner_temp(repo: GitRepo) -> Path:
    return repo.path.parent / f"runner-{repo.path.name}"


def _left_in_runner_temp(repo: GitRepo) -> list[Path]:
    return list(_runner_temp(repo).glob("ci-deploy-*"))


# --- when a run packs early: a pure decision -----------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, True),
        ({"deploy_type": "dags-only"}, True),
        ({"deploy_type": "image-and-dags"}, True),
        ({"action": "preview"}, True),
        ({"dry_run": "true"}, False),
        ({"deploy_type": "image-only"}, False),
        (
            {"deploy_type": "bundle", "bundle_type": "dbt", "bundle_mount_path": "/usr/local/x"},
            False,
        ),
        ({"action": "rollback"}, False),
        ({"action": "preview-delete"}, False),
    ],
)
def test_only_a_deploy_that_may_ship_dags_packs_them_early(
    tmp_path: Path, values: dict[str, str], expected: bool
) -> None:
    assert worth_prebuilding(inputs(tmp_path, **values)) is expected


def test_app_platform_runs_never_pack_dags_early(tmp_path: Path) -> None:
    raw = {"platform": "digitalocean", "app-id": "3d9c4a6e-0000-4000-8000-000000000001"}
    environ = {"GITHUB_WORKSPACE": str(tmp_path), "DIGITALOCEAN_TOKEN": TOKEN}
    assert not worth_prebuilding(load_inputs(raw, environ))


# --- the prebuild itself -------------------------------------------------------------------------


def _dags(tmp_path: Path) -> Path:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "etl.py").write_text("X = 1\n")
    (dags / "data.csv").write_text("a,b\n1,2\n" * 100)
    return dags


def _packing(tmp_path: Path, level: int = 1) -> Packing:
    spool = tmp_path / "spool"
    spool.mkdir(exist_ok=True)
    return Packing(compression_for(level), str(spool))


@pytest.fixture(params=["forked", "spawned"])
def how(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the packing process starts: a fork (a run's process with one thread) or a new
    interpreter (another thread runs); chosen here, whatever threads earlier tests left."""
    forked = request.param == "forked"
    monkeypatch.setattr(prebuilding, "start", functools.partial(bundle_worker.start, fork=forked))
    return str(request.param)


def test_the_default_start_forks_only_a_process_with_one_thread(tmp_path: Path) -> None:
    dags, packing = _dags(tmp_path), _packing(tmp_path)
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        worker = bundle_worker.start(dags, packing)
    finally:
        stop.set()
        other.join()
    assert worker.how == "a new interpreter"
    worker.stop()


def test_the_tarball_taken_is_the_one_the_build_would_make(tmp_path: Path, how: str) -> None:
    dags, packing = _dags(tmp_path), _packing(tmp_path)
    prebuild = Prebuild(dags, packing)

    taken = prebuild.take(dags, packing)

    assert taken is not None
    assert (
        prebuild.how
        == {"forked": "a fork of the run's process", "spawned": "a new interpreter"}[how]
    )
    with build_dag_tarball(dags, packing) as direct:
        assert (taken.sha256, taken.size) == (direct.sha256, direct.size)
        assert (taken.members, taken.member_sizes) == (direct.members, direct.member_sizes)
        assert taken.compression == direct.compression
    assert taken.path.read_bytes()[:2] == b"\x1f\x8b"
    prebuild.discard()
    assert not taken.path.exists()
    assert list(Path(packing.spool).iterdir()) == []


def test_another_packing_is_not_taken_and_nothing_is_left(tmp_path: Path) -> None:
    dags, packing = _dags(tmp_path), _packing(tmp_path)
    prebuild = Prebuild(dags, packing)

    assert prebuild.take(dags, _packing(tmp_path, level=6)) is None
    assert prebuild.take(tmp_path, packing) is None  # another folder
    prebuild.discard()
    assert list(Path(packing.spool).iterdir()) == []


def test_a_prebuild_discarded_while_packing_stops_and_leaves_nothing(
    tmp_path: Path, how: str
) -> None:
    dags, packing = _dags(tmp_path), _packing(tmp_path)
    for index in range(200):
        (dags / f"file_{index}.bin").write_bytes(bytes(range(256)) * 400)
    prebuild = Prebuild(dags, packing)

    prebuild.discard()  # as a cancelled run does, at once

    assert list(Path(packing.spool).iterdir()) == []
    assert prebuild.take(dags, packing) is None


def test_a_failed_prebuild_is_not_taken(tmp_path: Path, how: str) -> None:
    dags, packing = _dags(tmp_path), _packing(tmp_path)
    (dags / "big.bin").write_text(LFS_POINTER)
    prebuild = Prebuild(dags, packing)

    assert prebuild.take(dags, packing) is None  # the build packs it and says what is wrong
    prebuild.discard()
    assert list(Path(packing.spool).iterdir()) == []


# --- in a run ------------------------------------------------------------------------------------


def test_a_dag_deploy_ships_the_tarball_packed_early(
    repo: GitRepo, platform: FakePlatform, started: list[Prebuild]
) -> None:
    before = change(repo)

    step = deploy(repo, platform, before=before)

    assert step.result.returncode == 0, step.log
    assert len(started) == 1
    [spooled] = platform.spooled
    assert spooled.parent.name.startswith("ci-deploy-prebuild-"), "the early one was used"
    with tarfile.open(fileobj=io.BytesIO(platform.uploads["dags-new-1"])) as tar:
        assert DAG in tar.getnames()
    assert _left_in_runner_temp(repo) == []


def test_a_skipped_run_discards_it(
    repo: GitRepo, platform: FakePlatform, started: list[Prebuild]
) -> None:
    before = change(repo, "README.md", "docs only\n")

    step = deploy(repo, platform, before=before)

    assert step.result.returncode == 0, step.log
    assert step.titles("notice") == ["Deploy skipped"]
    assert len(started) == 1
    assert _left_in_runner_temp(repo) == []


def test_a_dry_run_does_not_pack_early(
    repo: GitRepo, platform: FakePlatform, started: list[Prebuild]
) -> None:
    before = change(repo)

    step = deploy(repo, platform, {"dry-run": "true"}, before=before)

    assert step.result.returncode == 0, step.log
    assert started == []
    assert _left_in_runner_temp(repo) == []


def test_a_failed_upload_or_a_superseded_run_leaves_nothing(
    repo: GitRepo, platform: FakePlatform, started: list[Prebuild]
) -> None:
    platform.faults["upload"] = UploadError("Put Blob failed: HTTP 403.")
    before = change(repo)
    assert deploy(repo, platform, before=before).outputs["status"] == "failed"
    assert _left_in_runner_temp(repo) == []

    at(platform, "upload", lambda: platform.other_run("f" * 40, finalized=True))
    step = deploy(repo, platform, before=before)
    assert step.outputs["status"] == "superseded", step.log
    assert len(started) == 2
    assert _left_in_runner_temp(repo) == []


def test_a_failure_packing_early_is_reported_as_the_build_reports_it(
    repo: GitRepo, platform: FakePlatform, started: list[Prebuild]
) -> None:
    before = repo.head()
    (repo.path / "dags" / "model.bin").write_text(LFS_POINTER)
    repo.git("add", "-A")
    repo.git("commit", "-qm", "A model, as a Git LFS pointer")

    step = deploy(repo, platform, before=before)

    assert step.result.returncode == 1
    assert step.titles("error") == ["Git LFS files not downloaded"]
    assert "The DAG folder holds Git LFS pointers" in error(step)
    assert "create" not in platform.names()
    assert len(started) == 1
    assert _left_in_runner_temp(repo) == []


def test_a_run_cancelled_while_packing_early_stops_the_process_and_leaves_nothing(
    repo: GitRepo, platform: FakePlatform, started: list[Prebuild]
) -> None:
    platform.on_call["history"] = _cancel
    before = change(repo)

    step = deploy(repo, platform, before=before)

    assert step.result.returncode == 1
    assert step.titles("error") == ["Deploy cancelled"]
    assert len(started) == 1
    assert "create" not in platform.names()
    assert _left_in_runner_temp(repo) == []


def test_a_prebuild_that_cannot_start_leaves_the_build_to_pack_as_before(
    repo: GitRepo, platform: FakePlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_process(dags: Path, packing: Packing) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(prebuilding, "start", no_process)
    before = change(repo)

    step = deploy(repo, platform, before=before)

    assert step.result.returncode == 0, step.log
    [spooled] = platform.spooled
    assert spooled.parent == _runner_temp(repo), "packed by the build"
    assert _left_in_runner_temp(repo) == []


# --- started by the CLI --------------------------------------------------------------------------


def test_the_cli_starts_packing_before_any_thread_and_the_run_ships_that_tarball(
    tmp_path: Path,
    started: list[Prebuild],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ci_deploy import cli, tls
    from ci_deploy_testkit.emulator import Emulator
    from tests.test_cli import EXAMPLE, local_environment

    order: list[str] = []
    prepare = tls.prepare
    monkeypatch.setattr(tls, "prepare", lambda: (order.append("tls thread"), prepare())[1])
    monkeypatch.setattr(prebuilding, "Prebuild", _noting(prebuilding.Prebuild, order), raising=True)
    repo = GitRepo(tmp_path / "project")
    shutil.copytree(EXAMPLE, repo.path, dirs_exist_ok=True)
    repo.commit("Add the project")
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()

    with Emulator(rollout_seconds=0.1) as emulator:
        environ = local_environment(
            ASTRO_API_TOKEN=emulator.token, RUNNER_TEMP=str(runner_temp), RUNNER_DEBUG="1"
        )
        monkeypatch.chdir(repo.path)
        code = cli.main(
            [
                "deploy",
                "--api-url",
                emulator.api_url,
                "--deployment-id",
                emulator.deployment_id,
                "--deploy-type",
                "dags-only",
                "--wait",
                "false",
            ],
            environ,
        )
        made = emulator.deploys(emulator.deployment_id)[-1]

    assert code == 0
    assert made["type"] == "DAG_ONLY"
    assert order[:2] == ["packing started", "tls thread"], "the fork comes before any thread"
    assert order.count("packing started") == 1
    assert len(started) == 1, "the run took the CLI's, it started none of its own"
    assert "Debug: The DAG tarball was packed early, beside the run: " in capsys.readouterr().out
    assert list(runner_temp.iterdir()) == [], "its folder and tarball are gone"


def test_a_prebuild_for_another_folder_is_stopped_at_once(tmp_path: Path) -> None:
    dags = _dags(tmp_path)
    packing = _packing(tmp_path)
    prebuild = Prebuild(dags, packing)

    assert prebuild.take(tmp_path, packing) is None  # the config file chose another folder

    assert list(Path(packing.spool).iterdir()) == [], "its process stopped, its folder gone"
    assert prebuild.take(dags, packing) is None


def test_a_run_started_with_sigchld_ignored_packs_itself_and_never_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A parent that ignores SIGCHLD passes that on: the kernel reaps the fork itself."""
    monkeypatch.setattr(prebuilding, "start", functools.partial(bundle_worker.start, fork=True))
    dags = _dags(tmp_path)
    packing = _packing(tmp_path)
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        finished = Prebuild(dags, packing)
        assert finished.take(dags, packing) is None  # no exit code to trust: packed again
        finished.discard()
        running = Prebuild(dags, packing)
        running.discard()  # killed, or gone already: no error either way
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert list(Path(packing.spool).iterdir()) == []
