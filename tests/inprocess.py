"""Running the whole action in process: ``cli.deploy`` with the runner's environment and files.

The same :class:`~tests.actionrun.Step` as a subprocess run gives (exit code, log, outputs
read with the runner's grammar, summary), without starting a process: the platform is a
:class:`~tests.fakes.FakePlatform`, or the real Astro platform against the emulator, and
time is a :class:`~tests.fakes.FakeClock` (the emulator can share it), so nothing sleeps.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ci_deploy import cli
from ci_deploy.platform import Platform
from ci_deploy.report import OUTPUT_NAMES
from ci_deploy.run import Dependencies, PlatformFactory
from ci_deploy.runner import Runner
from ci_deploy_testkit.emulator import Emulator, make_token
from ci_deploy_testkit.localrun import StepResult, runner_environment
from tests.actionrun import Step, assert_no_traceback
from tests.fakes import FakeClock, FakeImages, platform_factory
from tests.gitrepo import GitRepo

TOKEN = make_token("org-1")
"""An API token in Astro's shape, whose organization is ``org-1``."""


def run_in_process(
    workspace: Path,
    inputs: Mapping[str, str] | None = None,
    *,
    platform: Platform | None = None,
    emulator: Emulator | None = None,
    factory: PlatformFactory | None = None,
    clock: FakeClock | None = None,
    images: Callable[[Runner], Any] | None = None,
    event_name: str = "push",
    event: Mapping[str, Any] | None = None,
    ref: str = "refs/heads/main",
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    request_timeout: float | None = None,
    log: io.StringIO | None = None,
) -> Step:
    """Run the action in ``workspace`` against ``platform``, ``emulator`` or the platform
    ``factory`` makes (one of them; with ``factory`` the inputs name the target).

    ``request_timeout`` is the run's HTTP request timeout in real seconds (the run's own
    default when None).
    """
    if [platform, emulator, factory].count(None) != 2:
        raise ValueError("give a platform, an emulator or a factory")
    if clock is None:  # share the emulator's fake clock: its rollouts advance as the run sleeps
        shared = emulator.clock if emulator is not None else None
        clock = shared if isinstance(shared, FakeClock) else FakeClock()
    if emulator is not None:
        target = {"api-url": emulator.api_url, "deployment-id": emulator.deployment_id}
        token = emulator.token if token is None else token
        dependencies = Dependencies(
            images=images or (lambda runner: FakeImages()), timing=clock.timing(request_timeout)
        )
    else:
        target = {} if factory else {"api-url": "http://127.0.0.1:9/v1", "deployment-id": "dep-1"}
        token = TOKEN if token is None else token
        if factory is None:
            assert platform is not None
            factory = platform_factory(platform)
        dependencies = Dependencies(
            platform=factory,
            images=images or (lambda runner: FakeImages()),
            timing=clock.timing(request_timeout),
        )
    environ = runner_environment(
        workspace,
        workspace.parent / f"runner-{workspace.name}",
        {**target, **(inputs or {})},
        event_name=event_name,
        event=event or {},
        sha="",
        ref=ref,
        env={"ASTRO_API_TOKEN": token, **(env or {})},
    )
    log = log or io.StringIO()
    code = cli.deploy(environ, {}, dependencies=dependencies, stream=log)
    result = StepResult(
        returncode=code,
        stdout=log.getvalue(),
        stderr="",
        output_file=Path(environ["GITHUB_OUTPUT"]).read_text(encoding="utf-8"),
        summary=Path(environ["GITHUB_STEP_SUMMARY"]).read_text(encoding="utf-8"),
    )
    outputs = result.outputs
    assert set(outputs) == set(OUTPUT_NAMES), "every output is written on every run"
    assert_no_traceback(result.stdout)
    return Step(result, outputs)


def run_action(
    repo: GitRepo,
    emulator: Emulator,
    inputs: Mapping[str, str] | None = None,
    *,
    event_name: str = "push",
    event: Mapping[str, Any] | None = None,
    token: str | None = None,
    ref: str = "refs/heads/main",
    env: Mapping[str, str] | None = None,
    images: Callable[[Runner], Any] | None = None,
    request_timeout: float | None = None,
) -> Step:
    """:func:`tests.actionrun.run_action`, in process: the same arguments, the same Step
    (and ``request_timeout``, the run's HTTP request timeout in real seconds)."""
    return run_in_process(
        repo.path,
        inputs,
        emulator=emulator,
        images=images,
        event_name=event_name,
        event=event,
        token=token,
        ref=ref,
        env=env,
        request_timeout=request_timeout,
    )
