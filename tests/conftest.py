"""Fixtures shared by the tests that run the action."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from ci_deploy_testkit.do_emulator import AppPlatformEmulator
from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.github import FakeGitHub
from tests.actionrun import (
    assert_github_requests_match_spec,
    assert_requests_match_spec,
    example_repo,
)
from tests.fakes import FakeClock
from tests.gitrepo import GitRepo
from tests.realservices import RealRegistry, service_variable
from tests.spec import assert_do_requests_match_spec


@pytest.fixture(autouse=True)
def _temp_files_in_the_tests_own_folder(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the code under test writes to the system temp (spool files of tarballs it was not
    asked to delete) goes to pytest's folder, which pytest prunes: nothing left in /tmp."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path_factory.mktemp("systemp")))


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """The emulator on the real clock, for runs in a subprocess; after each test, every API
    request the action sent must match the spec."""
    with Emulator(rollout_seconds=0) as emu:
        yield emu
    assert_requests_match_spec(emu)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """The fake GitHub API on 127.0.0.1; after each test, every request it received must
    match the GitHub REST API subset."""
    with FakeGitHub() as fake:
        yield fake
    assert_github_requests_match_spec(fake)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def astro(clock: FakeClock) -> Iterator[Emulator]:
    """The emulator on a fake clock, for runs in process (:mod:`tests.inprocess`): a rollout
    takes 20 s of that clock, which passes only while the run sleeps between polls. After
    each test, every API request the action sent must match the spec."""
    with Emulator(rollout_seconds=20, clock=clock) as emu:
        yield emu
    assert_requests_match_spec(emu)


@pytest.fixture
def do_api(clock: FakeClock) -> Iterator[AppPlatformEmulator]:
    """The App Platform emulator on a fake clock, for runs in process: each phase of a
    deployment takes 5 s of that clock (a build 20 s, a rollback 10 s), which pass only while
    the run sleeps. After each test, every API request it received must match the App
    Platform spec."""
    with AppPlatformEmulator(phase_seconds=5, clock=clock) as emu:
        yield emu
    assert_do_requests_match_spec(emu.requests)


@pytest.fixture
def do_emulator() -> Iterator[AppPlatformEmulator]:
    """The App Platform emulator on the real clock, for runs in a subprocess: deployments
    end at once (set ``phase_seconds`` to watch phases). After each test, every API request
    it received must match the App Platform spec."""
    with AppPlatformEmulator(phase_seconds=0) as emu:
        yield emu
    assert_do_requests_match_spec(emu.requests)


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """The example project at the root of a repository, committed once."""
    return example_repo(tmp_path / "workspace")


# --- the real components `make test` starts (scripts/services.py) -------------------------


@pytest.fixture(scope="session")
def docker_host() -> str:
    """The real Docker engine's ``DOCKER_HOST`` (``unix:///…/docker.sock``)."""
    return service_variable("DOCKER_HOST")


@pytest.fixture(scope="session")
def real_registry() -> RealRegistry:
    """The real registry on 127.0.0.1 (user ``cli``, a token as password)."""
    return RealRegistry(
        host=service_variable("CI_DEPLOY_TEST_REGISTRY"),
        user=service_variable("CI_DEPLOY_TEST_REGISTRY_USER"),
        token=service_variable("CI_DEPLOY_TEST_REGISTRY_TOKEN"),
    )


# The real Azure blob service's fixture (Azurite, which `make test` starts), kept with its
# helpers in tests/azurite.py.
from tests.azurite import azurite  # noqa: E402, F401
