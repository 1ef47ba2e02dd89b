"""The TLS context the API clients share (``ci_deploy/tls.py``)."""

from __future__ import annotations

import ssl

import httpx

from ci_deploy import tls
from ci_deploy.astro.upload import _Uploader
from ci_deploy.http import bearer_client


def test_the_shared_context_verifies_servers_against_the_ca_bundle() -> None:
    context = tls.context()

    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    # the same bundle httpx's default loads
    default = httpx.create_ssl_context()
    assert context.cert_store_stats() == default.cert_store_stats()
    assert context.cert_store_stats()["x509_ca"] > 0


def test_every_client_shares_one_context_made_once() -> None:
    tls.prepare()
    tls.prepare()

    first = bearer_client("https://api.example.test/v1", "t0ken", timeout=5, headers={})
    second = bearer_client("https://api.example.test/v2", "t0ken", timeout=5, headers={})

    assert tls.context() is tls.context()
    for client in (first, second):
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert pool._ssl_context is tls.context()
        client.close()


def test_the_blob_upload_shares_it_too() -> None:
    uploader = _Uploader(
        "https://blob.example.test/c/b?sig=s3cret",
        timeout=5,
        max_attempts=1,
        sleep=lambda _: None,
        transport=None,
        on_retry=None,
        concurrency=2,
    )
    with uploader:
        pool = uploader.client._transport._pool  # type: ignore[attr-defined]
        assert pool._ssl_context is tls.context()
