"""A local Astro API and Azure-like blob host, for the demo and the tests.

:class:`Emulator` serves the deploy calls of the Astro API v1 (list and get Deployments;
list, create, get, finalize and roll back deploys; set and delete hibernation overrides;
read Deployment logs) and the blob uploads to the deploys' SAS URLs, on ``127.0.0.1``,
from memory. It records every request, can inject faults, checks image deploys against
a fake registry, and plays a Deployment's rollout after each finalize. :func:`serve` runs
one until stopped, for ``ci-deploy emulator``.
"""

from ci_deploy_testkit.emulator.faults import Fault, Faults
from ci_deploy_testkit.emulator.server import (
    DEMO_DEPLOYMENT_ID,
    DEMO_ORGANIZATION_ID,
    Emulator,
    make_token,
    serve,
)
from ci_deploy_testkit.emulator.state import StoredBlob
from ci_deploy_testkit.emulator.wire import RecordedRequest

__all__ = [
    "DEMO_DEPLOYMENT_ID",
    "DEMO_ORGANIZATION_ID",
    "Emulator",
    "Fault",
    "Faults",
    "RecordedRequest",
    "StoredBlob",
    "make_token",
    "serve",
]
