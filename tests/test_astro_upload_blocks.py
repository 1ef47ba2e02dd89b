"""upload_blob's parallel Put Blocks over real HTTP, against the emulator's blob host.

A tarball file goes up in blocks read by offset, several in flight at once, possibly
arriving out of order; the committed blob is read back from the emulator and compared
byte for byte. Concurrency is proven by behaviour (requests held in the transport until
``concurrency`` of them are in flight at once), never by timing. Also: retries of one
block alone, a block failing for good, a cancelled run, memory, the pure block-size and
progress rules.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import signal
import threading
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, quote

import httpx
import pytest

from ci_deploy.astro.client import AstroClient
from ci_deploy.astro.platform import AstroPlatform, AstroSettings
from ci_deploy.astro.upload import (
    MAX_BLOCK_SIZE,
    MAX_BLOCKS,
    MIB,
    UploadProgress,
    block_size_for,
    progress_line,
    upload_blob,
)
from ci_deploy.bundle import Bundle
from ci_deploy.cancel import cancellable
from ci_deploy.compression import Compression
from ci_deploy.errors import CancelledError, UploadError
from ci_deploy.platform import Artifact
from ci_deploy.runner import Runner
from ci_deploy.source import CommitInfo, Source
from ci_deploy_testkit.emulator import Emulator

KIB = 1024


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(rollout_seconds=0) as emulator:
        yield emulator


@pytest.fixture
def sas(emu: Emulator) -> str:
    """A fresh DAG_ONLY deploy's upload URL (the signature is in its query)."""
    return emu.upload_url()


def signature(url: str) -> str:
    return parse_qs(url.partition("?")[2])["sig"][0]


def assert_no_signature(url: str, *texts: object) -> None:
    sig = signature(url)
    for text in texts:
        for form in (sig, quote(sig, safe="")):
            assert form not in str(text)


def tarball(tmp_path: Path, size: int, seed: int = 7) -> Path:
    """A file of ``size`` deterministic, incompressible-looking bytes."""
    path = tmp_path / "dags.tar.gz"
    with path.open("wb") as out:
        counter = 0
        while out.tell() < size:
            block = hashlib.sha512(f"{seed}:{counter}".encode()).digest() * 512  # 32 KiB
            out.write(block[: size - out.tell()])
            counter += 1
    return path


def block_of(request: httpx.Request | bytes) -> int | None:
    """The block number a Put Block request carries (None for other requests)."""
    query = request.url.query.decode() if isinstance(request, httpx.Request) else request.decode()
    ids = parse_qs(query).get("blockid")
    return int(base64.b64decode(ids[0]).decode().removeprefix("block-")) if ids else None


def recorded_blocks(emu: Emulator) -> list[int]:
    """The block numbers of the Put Blocks the emulator received, in arrival order."""
    blocks = (block_of(request.query.encode()) for request in emu.requests)
    return [block for block in blocks if block is not None]


def block_lists(emu: Emulator) -> int:
    return sum("comp=blocklist" in request.query for request in emu.requests)


class Held(httpx.BaseTransport):
    """Real HTTP to the emulator, with hooks before each request is sent and after its
    answer came: it counts the requests in flight (the most at once in :attr:`most`) and
    lets a test hold some back."""

    def __init__(
        self,
        before: Callable[[httpx.Request], None] | None = None,
        after: Callable[[httpx.Request], None] | None = None,
    ) -> None:
        self._inner = httpx.HTTPTransport()
        self._before, self._after = before, after
        self._lock = threading.Lock()
        self.in_flight = 0
        self.most = 0
        self.started: list[int | None] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            self.started.append(block_of(request))
        try:
            if self._before is not None:
                self._before(request)
            response = self._inner.handle_request(request)
            response.read()
            if self._after is not None:
                self._after(request)
            return response
        finally:
            with self._lock:
                self.in_flight -= 1

    def close(self) -> None:
        self._inner.close()


def upload_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("ci-deploy-upload-")]


def join_upload_threads() -> None:
    for thread in upload_threads():
        assert thread.daemon  # an abandoned block cannot keep the process alive
        thread.join(timeout=30)
        assert not thread.is_alive()


# -- the bytes arrive whole -------------------------------------------------------------


def test_blocks_arriving_out_of_order_commit_the_file_byte_for_byte(
    emu: Emulator, sas: str, tmp_path: Path
) -> None:
    path = tarball(tmp_path, 3 * MIB + 12345)
    block_3_answered = threading.Event()

    def before(request: httpx.Request) -> None:
        if block_of(request) == 0:  # the first block is sent only once block 3 is in
            assert block_3_answered.wait(timeout=30)

    def after(request: httpx.Request) -> None:
        if block_of(request) == 3:
            block_3_answered.set()

    transport = Held(before, after)
    version = upload_blob(
        sas, path, transport=transport, block_size=256 * KIB, single_put_limit=0, concurrency=4
    )
    arrived = recorded_blocks(emu)
    assert sorted(arrived) == list(range(13))  # 3 MiB + a bit in 256 KiB blocks, each once
    assert arrived.index(3) < arrived.index(0)
    assert block_lists(emu) == 1
    assert emu.blobs[version] == path.read_bytes()


def test_a_path_source_really_overlaps_its_blocks(emu: Emulator, sas: str, tmp_path: Path) -> None:
    # The first four requests wait for each other: a sequential upload would never get
    # past the first (the barrier breaks and the upload fails).
    path = tarball(tmp_path, 24 * MIB)
    first_four = threading.Barrier(4)
    held = iter(range(4))
    lock = threading.Lock()

    def before(request: httpx.Request) -> None:
        with lock:
            wait = next(held, None) is not None
        if wait:
            first_four.wait(timeout=30)

    transport = Held(before)
    progress: list[tuple[int, int]] = []
    version = upload_blob(
        sas,
        path,
        transport=transport,
        block_size=1 * MIB,
        single_put_limit=1 * MIB,
        concurrency=4,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert transport.most == 4  # four in flight at once, never more
    assert emu.blobs[version] == path.read_bytes()
    assert sorted(recorded_blocks(emu)) == list(range(24))
    assert [done for done, _ in progress] == [n * MIB for n in range(1, 25)]
    assert {total for _, total in progress} == {24 * MIB}
    join_upload_threads()


def test_a_small_path_is_one_put_blob(emu: Emulator, sas: str, tmp_path: Path) -> None:
    path = tarball(tmp_path, 100 * KIB)
    progress: list[tuple[int, int]] = []
    version = upload_blob(sas, path, on_progress=lambda *args: progress.append(args))
    blob_puts = [r for r in emu.requests if r.path.startswith("/blob/")]
    assert len(blob_puts) == 1
    assert blob_puts[0].headers["x-ms-blob-type"] == "BlockBlob"
    assert emu.blobs[version] == path.read_bytes()
    assert progress == [(100 * KIB, 100 * KIB)]


def test_bytes_go_up_in_parallel_blocks_too(emu: Emulator, sas: str) -> None:
    data = os.urandom(MIB + 1)
    version = upload_blob(sas, data, block_size=64 * KIB, single_put_limit=0, concurrency=3)
    assert emu.blobs[version] == data
    assert len(recorded_blocks(emu)) == 17


# -- failures -----------------------------------------------------------------------------


def test_a_block_answered_503_is_retried_alone(emu: Emulator, sas: str, tmp_path: Path) -> None:
    path = tarball(tmp_path, 2 * MIB)
    emu.faults.add("PUT", r"^/blob/", 503, retry_after="2")  # whichever block comes first
    sleeps: list[float] = []
    retries: list[tuple[str, threading.Thread]] = []
    version = upload_blob(
        sas,
        path,
        block_size=128 * KIB,
        single_put_limit=0,
        concurrency=4,
        sleep=sleeps.append,
        on_retry=lambda message: retries.append((message, threading.current_thread())),
    )
    arrived = recorded_blocks(emu)
    assert len(arrived) == 17  # 16 blocks, one of them twice
    (again,) = [block for block in set(arrived) if arrived.count(block) == 2]
    assert sleeps == [2.0]  # the Retry-After, for that block only
    ((message, thread),) = retries
    assert message.startswith(f"Put Block {again + 1} of 16 to ")
    assert "HTTP 503, retrying in 2.0 s (attempt 2 of 4)" in message
    assert thread is threading.main_thread()  # callbacks run on the caller's thread
    assert_no_signature(sas, message)
    assert emu.blobs[version] == path.read_bytes()


def test_a_block_failing_for_good_stops_the_upload_without_a_block_list(
    emu: Emulator, sas: str, tmp_path: Path
) -> None:
    path = tarball(tmp_path, 8 * MIB)
    sig = signature(sas)

    class Failing(Held):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if block_of(request) != 2:
                return super().handle_request(request)
            with self._lock:
                self.started.append(2)
            body = (
                "<?xml version='1.0'?><Error><Code>InternalError</Code>"
                f"<Message>Failed for sig={sig} and {quote(sig, safe='')}</Message></Error>"
            )
            return httpx.Response(500, text=body, headers={"x-ms-error-code": "InternalError"})

    transport = Failing()
    retries: list[str] = []
    with pytest.raises(UploadError) as caught:
        upload_blob(
            sas,
            path,
            transport=transport,
            block_size=64 * KIB,
            single_put_limit=0,
            concurrency=4,
            sleep=lambda seconds: None,
            on_retry=retries.append,
        )
    join_upload_threads()
    message = caught.value.message
    assert message.startswith("Put Block 3 of 128 to http://127.0.0.1:")
    assert "?<redacted> failed: HTTP 500 Internal Server Error: InternalError: Failed for" in (
        message
    )
    assert "Tried 4 times" in message
    assert_no_signature(sas, message, repr(caught.value), *retries)
    assert transport.started.count(2) == 4
    assert block_lists(emu) == 0
    assert not emu.blobs
    # The others stop: far fewer than the 128 blocks were ever started.
    assert len(set(transport.started)) < 128


def test_a_cancelled_run_stops_the_blocks_in_flight_and_starts_no_more(
    emu: Emulator, sas: str, tmp_path: Path
) -> None:
    path = tarball(tmp_path, 4 * MIB)
    release = threading.Event()
    four_in_flight = threading.Semaphore(0)

    def before(request: httpx.Request) -> None:
        four_in_flight.release()
        assert release.wait(timeout=30)

    def cancel_when_four_are_in_flight() -> None:
        for _ in range(4):
            assert four_in_flight.acquire(timeout=30)
        os.kill(os.getpid(), signal.SIGTERM)

    transport = Held(before)
    canceller = threading.Thread(target=cancel_when_four_are_in_flight)
    canceller.start()
    try:
        with pytest.raises(CancelledError), cancellable():
            upload_blob(sas, path, transport=transport, block_size=256 * KIB, single_put_limit=0)
    finally:
        canceller.join()
        release.set()
    join_upload_threads()
    assert transport.most == 4
    assert len(transport.started) == 4  # the ones in flight finished; none started after
    assert block_lists(emu) == 0


def test_a_file_cut_short_while_uploading_fails_clearly(sas: str, tmp_path: Path) -> None:
    path = tarball(tmp_path, 1 * MIB)

    def before(request: httpx.Request) -> None:
        os.truncate(path, 300 * KIB)

    with pytest.raises(UploadError) as caught:
        upload_blob(
            sas,
            path,
            transport=Held(before),
            block_size=256 * KIB,
            single_put_limit=0,
            concurrency=1,
        )
    assert caught.value.message == (
        f"The tarball {path} changed while it was uploaded: it ends at {300 * KIB} bytes, "
        f"not {MIB}. Run the job again."
    )


# -- memory -------------------------------------------------------------------------------


def test_a_64_mib_file_is_never_held_in_memory(tmp_path: Path) -> None:
    # An in-process blob host that keeps only a hash of each block, so the traced peak is
    # the uploader's own: at most `concurrency` blocks, not the file.
    path = tarball(tmp_path, 64 * MIB)
    digests: dict[int, str] = {}

    class BlobHost(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            block = block_of(request)
            if block is None:
                return httpx.Response(201, headers={"x-ms-version-id": "v1"})
            digest = hashlib.sha256()
            for chunk in request.stream:  # type: ignore[union-attr]
                digest.update(chunk)
            digests[block] = digest.hexdigest()
            return httpx.Response(201)

    tracemalloc.start()
    try:
        upload_blob(
            "https://acct.blob.core.windows.net/dags/d.tar.gz?sig=abc",
            path,
            transport=BlobHost(),
            block_size=1 * MIB,
            single_put_limit=1 * MIB,
            concurrency=4,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB  # a quarter of the file; four blocks in flight are 4 MiB
    with path.open("rb") as file:
        expected = [hashlib.sha256(file.read(MIB)).hexdigest() for _ in range(64)]
    assert [digests[n] for n in range(64)] == expected


# -- the pure rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "preferred", "expected"),
    [
        (0, 8 * MIB, 8 * MIB),
        (MAX_BLOCKS * 8 * MIB, 8 * MIB, 8 * MIB),  # exactly 50,000 blocks
        (MAX_BLOCKS * 8 * MIB + 1, 8 * MIB, 9 * MIB),  # one more byte: grown to whole MiB
        (1024**4, 8 * MIB, 21 * MIB),  # 1 TiB
        (MAX_BLOCKS * MAX_BLOCK_SIZE, 8 * MIB, MAX_BLOCK_SIZE),  # the largest blob
        (10, 5000 * MIB, MAX_BLOCK_SIZE),  # never above Azure's block limit
    ],
)
def test_block_size_grows_so_the_block_count_limit_is_never_hit(
    size: int, preferred: int, expected: int
) -> None:
    chosen = block_size_for(size, preferred)
    assert chosen == expected
    assert -(-size // chosen) <= MAX_BLOCKS


def test_a_blob_beyond_azure_limits_is_refused() -> None:
    with pytest.raises(UploadError, match="more than a block blob holds"):
        block_size_for(MAX_BLOCKS * MAX_BLOCK_SIZE + 1, 8 * MIB)
    with pytest.raises(ValueError, match="block_size must be positive"):
        block_size_for(1, 0)


def test_progress_line() -> None:
    assert progress_line(120 * MIB, 640 * MIB) == "Uploaded 120 of 640 MiB (18%)"
    assert progress_line(MIB // 2, 2 * MIB) == "Uploaded 0.5 of 2.0 MiB (25%)"
    assert progress_line(0, 0) == "Uploaded 0.0 of 0.0 MiB (100%)"


def test_upload_progress_says_a_line_every_few_seconds_and_tenth() -> None:
    now = [0.0]
    said: list[str] = []
    progress = UploadProgress(said.append, lambda: now[0], interval=5.0, step=0.1)
    total = 100 * MIB
    for second, done in [(1, 5), (6, 8), (7, 30), (8, 35), (13, 39), (14, 45), (30, 100)]:
        now[0] = second
        progress(done * MIB, total)
    assert said == [
        "Uploaded 30 of 100 MiB (30%)",
        "Uploaded 45 of 100 MiB (45%)",
    ]


# -- the platform -------------------------------------------------------------------------


def test_the_platform_uploads_a_spool_file_and_logs_progress_not_blocks(
    emu: Emulator, tmp_path: Path
) -> None:
    path = tarball(tmp_path, 20 * MIB)  # three 8 MiB blocks
    log = io.StringIO()
    ticks = iter(range(0, 1000, 10))  # ten seconds pass between looks at the clock
    with AstroClient(emu.api_url, emu.token, emu.organization_id, timeout=10) as client:
        platform = AstroPlatform(
            client,
            AstroSettings(deployment_id=emu.deployment_id),
            Runner(environ={}, stream=log),
            registry_password=emu.token,
            images=lambda: pytest.fail("no image in a DAG-only deploy"),
            clock=lambda: float(next(ticks)),
        )
        platform.locate()
        commit = CommitInfo("0" * 40, "subject", "A. Author", "a@example.com")
        release = platform.create("DAG_ONLY", "bench", Source(commit), "[ci-deploy:test]")
        spooled = Bundle(
            path=path,
            size=20 * MIB,
            sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            members=("dags/big.bin",),
            member_sizes=(20 * MIB,),
            compression=Compression(level=0, backend="zlib", backend_level=0),
        )
        version = platform.upload(release, Artifact.DAGS, spooled)
    assert emu.blobs[version] == path.read_bytes()
    lines = log.getvalue().splitlines()
    uploading = [line for line in lines if line.startswith("Upload")]
    assert uploading[0].startswith(f"Uploading {20 * MIB} bytes to http://127.0.0.1:")
    assert uploading[0].endswith("?<redacted>")
    # A line after each block but the last (blocks end in any order; the last one is 4 MiB).
    progress = [
        re.fullmatch(r"Uploaded (\d+) of 20 MiB \((\d+)%\)", line) for line in uploading[1:]
    ]
    assert len(progress) == 2 and all(progress)
    done = [int(match[1]) for match in progress if match]
    assert done in ([8, 16], [8, 12], [4, 12])
