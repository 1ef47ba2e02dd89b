"""The TLS context the run's API clients and its blob upload share, made ahead on a thread.

Loading the CA bundle takes tens of milliseconds, in OpenSSL with the GIL released:
:func:`prepare`, called once the inputs are valid, starts it on a background thread, so it
overlaps the imports and the git work that come before the first API request;
:func:`context` waits for it. It is httpx's own default (``httpx.create_ssl_context()``:
certifi's bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), made once per process instead
of once per client. A failure to make it is raised by :func:`context`, where the client is
made, as httpx would raise it.
"""

from __future__ import annotations

import ssl
import threading

import httpx

_lock = threading.Lock()
_maker: list[threading.Thread] = []
_made: list[ssl.SSLContext] = []
_failed: list[Exception] = []


def prepare() -> None:
    """Start making the context on a background thread, unless it was started already."""
    with _lock:
        if not _maker:
            _maker.append(threading.Thread(target=_make, name="ci-deploy-tls", daemon=True))
            _maker[0].start()


def context() -> ssl.SSLContext:
    """The context, made by now (made here when :func:`prepare` was not called)."""
    prepare()
    _maker[0].join()
    if _failed:
        raise _failed[0]
    return _made[0]


def _make() -> None:
    try:
        _made.append(httpx.create_ssl_context())
    except Exception as exc:  # raised by context(), in the thread that makes a client
        _failed.append(exc)
