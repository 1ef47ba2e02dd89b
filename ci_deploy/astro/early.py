"""The run's first API request, sent while the rest of the run's code loads.

A deploy's first request is the locate's read: GET the Deployment by id, or the first page
of the Deployments named ``deployment-name``. :func:`start`, called once the inputs are
valid and before the run's code (git, the platform, the API's models) is imported, makes
the run's :class:`~ci_deploy.astro.client_core.ApiSession` and sends that GET on a daemon
thread (:meth:`~ci_deploy.astro.client_core.ApiSession.read_early`), so the API's round trip
overlaps the imports. :func:`take`, called by
:func:`~ci_deploy.astro.platform.connect`, hands that session over when it was made for the
same settings; the locate then sends nothing for an answer it would not retry, and sends as
always otherwise. Only the deploy action on Astro starts one.

Like :mod:`ci_deploy.tls`, this is per process: the session waits here between the two.
Nothing here imports pydantic or the API's models.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ci_deploy.astro.client_core import (
    ApiSession,
    EarlyRead,
    deployment_path,
    deployments_path,
    deployments_query,
    page_params,
)

if TYPE_CHECKING:
    from ci_deploy.inputs import Inputs
    from ci_deploy.runner import Runner
    from ci_deploy.timing import Timing

__all__ = ["SessionSettings", "first_read", "session_settings", "start", "take"]


@dataclass(frozen=True)
class SessionSettings:
    """Everything an :class:`ApiSession` is made from: two equal settings make the same
    session."""

    api_url: str
    token: str
    organization_id: str
    timeout: float
    sleep: Callable[[float], None]
    client_identifier: str
    on_retry: Callable[[str], None]

    def __repr__(self) -> str:  # never the token
        return f"SessionSettings(api_url={self.api_url!r})"

    def session(self) -> ApiSession:
        """A new session with these settings."""
        return ApiSession(
            self.api_url,
            self.token,
            self.organization_id,
            timeout=self.timeout,
            sleep=self.sleep,
            client_identifier=self.client_identifier,
            on_retry=self.on_retry,
        )


def session_settings(inputs: Inputs, runner: Runner, timing: Timing) -> SessionSettings:
    """The settings of the run's API session."""
    return SessionSettings(
        api_url=inputs.api_url,
        token=inputs.api_token.get_secret_value(),
        organization_id=inputs.organization_id,
        timeout=timing.request_timeout,
        sleep=timing.sleep,
        client_identifier="github-action" if runner.in_github else "ci-deploy",
        on_retry=runner.info,
    )


def first_read(inputs: Inputs) -> EarlyRead:
    """The locate's first GET: the Deployment by id, else the first page of the Deployments
    named ``deployment-name`` (in ``workspace-id`` when set), as the client asks for them."""
    org = inputs.organization_id
    if inputs.deployment_id:
        return EarlyRead(deployment_path(org, inputs.deployment_id))
    query = deployments_query((inputs.deployment_name,), inputs.workspace_id or None)
    return EarlyRead(deployments_path(org), page_params(query, 0))


@dataclass(frozen=True)
class _Opening:
    """A session made ahead, its first read under way on a daemon thread."""

    settings: SessionSettings
    session: ApiSession


UNDER_WAY_WAIT = 1.0
"""At most how long :func:`start` waits for the first read to be under way, in seconds."""

SWITCH_INTERVAL = 0.0005
"""The GIL's switch interval while the read is under way, in seconds (Python's is 0.005)."""

_lock = threading.Lock()
_openings: list[_Opening] = []


def start(inputs: Inputs, runner: Runner, timing: Timing) -> None:
    """Make the run's session and send its first read (a deploy on Astro only).

    The read is sent on a daemon thread; this returns once its Python side is done (the
    connection is being made: the imports that follow do not hold it up by the GIL), at
    most after :data:`UNDER_WAY_WAIT`. Nothing is raised: a failure is met again, and
    reported, by the normal path.
    """
    if inputs.platform != "astro" or inputs.action != "deploy":
        return
    settings = session_settings(inputs, runner, timing)
    try:
        read = first_read(inputs)  # ValueError for an empty id: the locate says so
        session = settings.session()  # a bad token or TLS setup: connect() raises it
    except Exception:
        return
    with _lock:
        _openings.append(_Opening(settings, session))
    send = session.read_early(read)
    threading.Thread(
        target=_sending,
        args=(send,),
        name="ci-deploy-early-read",
        daemon=True,
    ).start()
    read.wait_under_way(UNDER_WAY_WAIT)


_USUAL_INTERVAL = sys.getswitchinterval()
"""The switch interval the process had when this module loaded, restored after a read (the
same value whichever read ends last, when two overlap)."""


def _sending(send: Callable[[], None]) -> None:
    """``send``, the GIL handed over more often meanwhile: each time the read comes back
    from the network (connected, written) it waits for the GIL the imports hold, a switch
    interval at most."""
    sys.setswitchinterval(SWITCH_INTERVAL)
    try:
        send()
    finally:
        sys.setswitchinterval(_USUAL_INTERVAL)


def take(settings: SessionSettings) -> ApiSession | None:
    """The session :func:`start` made for ``settings`` (its first read under way or done),
    or None. A session started for other settings is closed."""
    with _lock:
        openings = list(_openings)
        _openings.clear()
    taken = None
    for opening in openings:
        if taken is None and opening.settings == settings:
            taken = opening.session
        else:
            opening.session.close()
    return taken
