"""A local DigitalOcean App Platform API, for the tests and the demo.

:class:`AppPlatformEmulator` serves the App Platform calls of a deploy and a rollback (list,
get, create, update and delete apps; propose a spec; list, create, get and cancel
deployments; their log URLs and the files behind them; validate, roll back, commit and
revert a rollback) on ``127.0.0.1``, from memory, with deployments moving through their
phases on an injectable clock. It records every request and injects faults with the Astro
emulator's :class:`~ci_deploy_testkit.emulator.faults.Faults`.
"""

from ci_deploy_testkit.do_emulator.server import (
    DEMO_APP_ID,
    DEMO_APP_NAME,
    DEMO_REPO,
    DEMO_TOKEN,
    AppPlatformEmulator,
    demo_spec,
)
from ci_deploy_testkit.do_emulator.state import (
    SEED_COMMIT_SHA,
    Failure,
    RollbackValidation,
    Unhealthy,
)

__all__ = [
    "DEMO_APP_ID",
    "DEMO_APP_NAME",
    "DEMO_REPO",
    "DEMO_TOKEN",
    "SEED_COMMIT_SHA",
    "AppPlatformEmulator",
    "Failure",
    "RollbackValidation",
    "Unhealthy",
    "demo_spec",
]
