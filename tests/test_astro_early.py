"""The run's first API request sent early (:mod:`ci_deploy.astro.early`).

In process against the emulator on 127.0.0.1 (fake clock: retries do not sleep): a locate
whose read went out early sends nothing more for an answer it would not retry, and behaves
exactly as without the early read otherwise (same errors, same retries). Through the real
entrypoint: the first request goes out before the API's models are imported.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ci_deploy.astro import early
from ci_deploy.astro.platform import connect
from ci_deploy.errors import ApiError
from ci_deploy.inputs import Inputs, load_inputs, raw_inputs
from ci_deploy.platform import Environment
from ci_deploy.runner import Runner
from ci_deploy.timing import Timing
from ci_deploy_testkit.emulator import Emulator, make_token
from ci_deploy_testkit.localrun import ENTRYPOINT, push_event
from tests.actionrun import assert_requests_match_spec, change, step_environment
from tests.fakes import FakeClock, FakeImages
from tests.gitrepo import GitRepo

WIRE = "ci_deploy.astro.wire"
ONE = r"/deployments/[^/]+$"
"""A GetDeployment."""


def astro_inputs(emulator: Emulator, tmp_path: Path, token: str = "", **inputs: str) -> Inputs:
    target = inputs or {"deployment-id": emulator.deployment_id}
    raw = raw_inputs({}, {"api-url": emulator.api_url, **target})
    environ = {"ASTRO_API_TOKEN": token or emulator.token, "GITHUB_WORKSPACE": str(tmp_path)}
    return load_inputs(raw, environ)


@contextmanager
def located(inputs: Inputs, timing: Timing, *, ahead: bool) -> Iterator[Environment]:
    """The platform's locate, its first read started early when ``ahead``."""
    runner = Runner({}, io.StringIO())
    if ahead:
        early.start(inputs, runner, timing)
    with connect(inputs, runner, FakeImages, timing) as platform:
        yield platform.locate()


def api_gets(emulator: Emulator) -> list[str]:
    return [r.path for r in emulator.requests if r.method == "GET"]


def said(error: ApiError) -> str:
    """The error's message, without the request id the emulator makes up for each answer."""
    return re.sub(r"requestId: [^)]*", "requestId: ...", str(error))


def locate_error(inputs: Inputs, timing: Timing, *, ahead: bool) -> ApiError:
    with pytest.raises(ApiError) as raised, located(inputs, timing, ahead=ahead):
        pass
    return raised.value


def test_a_deployment_read_early_is_read_once(
    astro: Emulator, clock: FakeClock, tmp_path: Path
) -> None:
    inputs = astro_inputs(astro, tmp_path)

    with located(inputs, clock.timing(), ahead=True) as environment:
        assert environment.id == astro.deployment_id

    deployment = f"/v1/organizations/{astro.organization_id}/deployments/{astro.deployment_id}"
    assert api_gets(astro) == [deployment]
    assert clock.sleeps == []


def test_a_deployment_named_is_listed_once(
    astro: Emulator, clock: FakeClock, tmp_path: Path
) -> None:
    astro.add_deployment("dep-2", name="staging")
    inputs = astro_inputs(astro, tmp_path, **{"deployment-name": "staging"})

    with located(inputs, clock.timing(), ahead=True) as environment:
        assert environment.id == "dep-2"

    deployments = f"/v1/organizations/{astro.organization_id}/deployments"
    assert api_gets(astro) == [deployments, f"{deployments}/dep-2"]
    assert "names=staging" in astro.requests[0].query


def test_a_busy_early_answer_is_the_first_attempt_and_its_retry_after_is_honoured(
    astro: Emulator, clock: FakeClock, tmp_path: Path
) -> None:
    astro.faults.add("GET", ONE, 503, retry_after="7")
    inputs = astro_inputs(astro, tmp_path)

    with located(inputs, clock.timing(), ahead=True) as environment:
        assert environment.id == astro.deployment_id

    assert len(api_gets(astro)) == 2  # the early GET answered 503, the locate's retry: 200
    assert clock.sleeps == [7.0]  # as a first attempt's 503: Retry-After waited for


def test_a_locate_sends_again_after_an_early_read_that_got_no_answer(
    astro: Emulator, clock: FakeClock, tmp_path: Path
) -> None:
    astro.faults.add_drop("GET", ONE, processed=False)
    inputs = astro_inputs(astro, tmp_path)

    with located(inputs, clock.timing(), ahead=True) as environment:
        assert environment.id == astro.deployment_id

    assert len(api_gets(astro)) == 2
    assert clock.sleeps == []


def test_a_persistent_503_is_retried_and_reported_as_without_the_early_read(
    astro: Emulator, clock: FakeClock, tmp_path: Path
) -> None:
    inputs = astro_inputs(astro, tmp_path)
    astro.faults.add("GET", ONE, 503, count=4)
    plain = locate_error(inputs, clock.timing(), ahead=False)
    astro.faults.add("GET", ONE, 503, count=5)

    ahead = locate_error(inputs, clock.timing(), ahead=True)

    assert (type(ahead), said(ahead)) == (type(plain), said(plain))
    assert "Tried 4 times" in str(ahead)
    assert len(api_gets(astro)) == 4 + 4  # the early GET is the first of the 4 attempts


@pytest.mark.parametrize(
    ("token", "inputs"),
    [
        (make_token("unknown-org"), {}),  # 401
        ("", {"deployment-id": "gone"}),  # 404
        ("", {"deployment-name": "nobody"}),  # listed: none has the name
    ],
)
def test_a_final_early_answer_fails_the_locate_as_without_the_early_read(
    astro: Emulator, clock: FakeClock, tmp_path: Path, token: str, inputs: dict[str, str]
) -> None:
    given = astro_inputs(astro, tmp_path, token, **inputs)
    plain = locate_error(given, clock.timing(), ahead=False)
    sent = len(astro.requests)

    ahead = locate_error(given, clock.timing(), ahead=True)

    assert (type(ahead), said(ahead), ahead.title) == (type(plain), said(plain), plain.title)
    assert len(astro.requests) == 2 * sent  # the early answer was the locate's: no more
    assert not token or token not in str(ahead)


def test_a_session_started_for_other_settings_is_not_taken(
    astro: Emulator, clock: FakeClock, tmp_path: Path
) -> None:
    inputs = astro_inputs(astro, tmp_path)
    runner = Runner({}, io.StringIO())
    early.start(inputs, runner, clock.timing(request_timeout=3))

    assert early.take(early.session_settings(inputs, runner, clock.timing())) is None


def test_only_a_deploy_reads_early(astro: Emulator, clock: FakeClock, tmp_path: Path) -> None:
    target = {"action": "rollback", "deployment-id": astro.deployment_id}
    inputs = astro_inputs(astro, tmp_path, **target)
    runner = Runner({}, io.StringIO())

    early.start(inputs, runner, clock.timing())

    assert early.take(early.session_settings(inputs, runner, clock.timing())) is None
    assert astro.requests == []


def test_the_first_request_goes_out_before_the_models_are_imported(
    repo: GitRepo, tmp_path: Path
) -> None:
    # The real entrypoint with its import log in a file: when the emulator answers the
    # first request, the log so far must not show the API's models (nor pydantic's core
    # of the client: the run's code is still loading).
    stderr = tmp_path / "stderr"
    seen: list[str] = []

    def note(line: str) -> None:
        if not seen:
            seen.append(stderr.read_text())

    with Emulator(rollout_seconds=0, log=note) as emulator:
        before = change(repo)
        environ = step_environment(
            repo,
            emulator,
            event=push_event(before, repo.head()),
            env={"PYTHONPROFILEIMPORTTIME": "1"},
        )
        with stderr.open("w") as err:
            done = subprocess.run(
                [sys.executable, str(ENTRYPOINT)],
                cwd=environ["GITHUB_WORKSPACE"],
                env=environ,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                timeout=120,
                check=False,
            )
    assert_requests_match_spec(emulator)

    assert done.returncode == 0, done.stdout + stderr.read_text()
    assert emulator.requests[0].path.endswith(f"/deployments/{emulator.deployment_id}")
    imported = modules(seen[0])
    assert "ci_deploy.astro.early" in imported, "the import log was read"
    assert WIRE not in imported
    assert WIRE in modules(stderr.read_text())  # imported later, by the run


def modules(log: str) -> set[str]:
    return {
        line.rsplit("|", 1)[1].strip()
        for line in log.splitlines()
        if line.startswith("import time:") and "|" in line
    }
