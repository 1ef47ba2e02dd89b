"""What runs each compression level (the input's own rule is in test_inputs.py)."""

from __future__ import annotations

import gzip
import io
import os

import pytest

from ci_deploy.compression import LEVELS, Compression, GzipWriter, choose


def test_levels_1_to_3_run_on_isal_at_the_same_level() -> None:
    for level in (1, 2, 3):
        assert choose(level, isal=True) == Compression(level, "isal", level)


def test_stored_and_the_smaller_levels_run_on_zlib_as_does_everything_without_isal() -> None:
    for level in (0, 4, 5, 6, 7, 8, 9):
        assert choose(level, isal=True) == Compression(level, "zlib", level)
    for level in LEVELS:
        assert choose(level, isal=False) == Compression(level, "zlib", level)


def test_a_level_outside_0_to_9_is_refused() -> None:
    for level in (-1, 10):
        with pytest.raises(ValueError, match="0 to 9"):
            choose(level, isal=True)


def test_labels_name_the_level_and_what_ran_it() -> None:
    assert choose(3, isal=True).label == "level 3 (ISA-L level 3)"
    assert choose(9, isal=True).label == "level 9 (zlib level 9)"


@pytest.mark.parametrize("isal", [True, False])
def test_the_gzip_stream_depends_on_the_bytes_never_on_how_they_were_written(isal: bool) -> None:
    data = os.urandom(300_000) + bytes(3 * 1024 * 1024) + b"tail" * 100_000  # crosses chunks
    compression = choose(1, isal=isal)
    outputs = []
    for piece in (997, 4096, 1024 * 1024 - 1, len(data)):
        out = io.BytesIO()
        writer = GzipWriter(out, compression)
        for start in range(0, len(data), piece):
            writer.write(data[start : start + piece])
        writer.close()
        outputs.append(out.getvalue())
    assert len(set(outputs)) == 1
    with gzip.GzipFile(fileobj=io.BytesIO(outputs[0])) as gz:
        assert gz.read() == data
        assert gz.mtime == 0
    assert outputs[0][:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, no time


class _FullDisk:
    """A sink whose writes fail once the header is in, as a full disk's would."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        if self.writes > 1:
            raise OSError(28, "No space left on device")


def test_a_failed_write_on_the_compressing_thread_is_raised_to_the_writer() -> None:
    writer = GzipWriter(_FullDisk(), choose(0, isal=False))  # stored: every chunk is written
    with pytest.raises(OSError, match="No space left"), writer:
        for _ in range(8):
            writer.write(os.urandom(1024 * 1024))
        writer.close()
    assert not writer._thread.is_alive()


def test_the_compressing_thread_stops_when_the_writer_is_left_by_an_error() -> None:
    writer = GzipWriter(io.BytesIO(), choose(1, isal=True))
    with pytest.raises(RuntimeError, match="an unreadable file"), writer:
        writer.write(os.urandom(3 * 1024 * 1024))
        raise RuntimeError("an unreadable file")
    assert not writer._thread.is_alive()
