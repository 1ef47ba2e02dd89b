"""The gzip stream of the tarballs: which deflate, at which level, written deterministically.

``compression-level`` is gzip's familiar scale: 0 stores without compressing, 1 is the
fastest, 9 the smallest. When the ``isal`` package (python-isal, Intel's ISA-L) can be
imported, levels 1 to 3 run on it at the same level: its output is about zlib's size at that
level (within 2 % on ``scripts/bench_compression.py``'s DAG folder), made 3 to 6 times
faster. Level 0 and levels 4 to 9 (ISA-L has nothing smaller than its level 3) use the
standard library's zlib, and so does every level when ``isal`` is missing. :func:`choose` is
that rule, pure.

The stream is the same bytes for the same input, compressor and level: the gzip header has
mtime 0, no file name and OS 255 (unknown), and the deflate stream is fed in chunks of a
fixed size whatever the callers' writes were. The sha256 of a tarball therefore depends on
the compressor and the level as well as on the files.
"""

from __future__ import annotations

import queue
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "DEFAULT_LEVEL",
    "ISAL_LEVEL",
    "LEVELS",
    "Compression",
    "GzipWriter",
    "Sink",
    "choose",
    "compression_for",
]

LEVELS = range(10)
"""The levels of the ``compression-level`` input: gzip's 0 (stored) to 9 (smallest)."""

DEFAULT_LEVEL = 1
"""The ``compression-level`` default, chosen by ``scripts/bench_compression.py`` (see README)."""

ISAL_LEVEL: dict[int, int] = {1: 1, 2: 2, 3: 3}
"""The ISA-L level run for a ``compression-level``: the one whose output size is closest to
zlib's at that level, on the benchmark's DAG folder."""

_CHUNK = 1024 * 1024
"""The deflate stream is fed exactly this many bytes at a time (the last chunk excepted)."""

_QUEUED = 2
"""How many chunks may wait for the compressing thread."""

# The gzip member header (RFC 1952): magic, deflate, no flags, mtime 0, no extra flags, OS 255.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


@dataclass(frozen=True)
class Compression:
    """A ``compression-level`` and what runs it: ``backend`` at its own ``backend_level``."""

    level: int
    backend: Literal["isal", "zlib"]
    backend_level: int

    @property
    def label(self) -> str:
        """How logs name it: ``level 3 (ISA-L level 1)``."""
        name = "ISA-L" if self.backend == "isal" else "zlib"
        return f"level {self.level} ({name} level {self.backend_level})"


def choose(level: int, *, isal: bool) -> Compression:
    """What runs ``compression-level`` ``level`` (0-9), ``isal`` telling whether ISA-L can."""
    if level not in LEVELS:
        raise ValueError(f"compression level must be 0 to 9, not {level}")
    if isal and level in ISAL_LEVEL:
        return Compression(level, "isal", ISAL_LEVEL[level])
    return Compression(level, "zlib", level)


def _isal_importable() -> bool:
    try:
        import isal.isal_zlib  # noqa: F401  (imported here only: it is needed when bundling)
    except ImportError:
        return False
    return True


def compression_for(level: int) -> Compression:
    """:func:`choose` for this machine: ISA-L when the ``isal`` package imports."""
    return choose(level, isal=_isal_importable())


class Sink(Protocol):
    """Where a :class:`GzipWriter` writes: a binary file, or anything with its ``write``."""

    def write(self, data: bytes, /) -> object: ...


class _Deflater(Protocol):
    def compress(self, data: bytes | memoryview, /) -> bytes: ...

    def flush(self, mode: int = ..., /) -> bytes: ...


_Crc32 = Callable[[bytes | memoryview, int], int]


def _deflate(compression: Compression) -> tuple[_Deflater, _Crc32]:
    """A raw deflate compressor for ``compression``, and the CRC-32 function to use with it."""
    if compression.backend == "isal":
        from isal import isal_zlib

        deflater: _Deflater = isal_zlib.compressobj(
            compression.backend_level, isal_zlib.DEFLATED, -zlib.MAX_WBITS
        )
        return deflater, isal_zlib.crc32
    return zlib.compressobj(compression.backend_level, zlib.DEFLATED, -zlib.MAX_WBITS), zlib.crc32


class GzipWriter:
    """One gzip member written to ``out`` as bytes come: :meth:`write`, then :meth:`close`;
    used as a context manager, which stops its thread whatever happens.

    ``out`` gets the header at once, the compressed stream as it is made, and the trailer
    (CRC-32 and size) at :meth:`close`. The chunks are compressed and written to ``out`` on a
    thread of their own, in order: ISA-L, zlib, hashing and file writes release the GIL, so
    compressing overlaps the caller's reading of files and making of headers. At most
    ``_QUEUED`` chunks wait, so memory stays bounded. A failure on the thread (a write
    to a full disk) is raised by the next :meth:`write` or by :meth:`close`.
    """

    def __init__(self, out: Sink, compression: Compression) -> None:
        self._out = out
        self._deflater, self._crc32 = _deflate(compression)
        self._pending = bytearray()
        self._crc = 0
        self._size = 0
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUED)
        self._failure: BaseException | None = None
        out.write(_GZIP_HEADER)
        self._thread = threading.Thread(target=self._compress, name="gzip", daemon=True)
        self._thread.start()

    def __enter__(self) -> GzipWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def write(self, data: bytes | memoryview) -> None:
        """Compress ``data`` after what was written before."""
        pending = self._pending
        pending += data
        if len(pending) < _CHUNK:
            return
        view = memoryview(pending)
        done = 0
        while len(pending) - done >= _CHUNK:
            self._feed(bytes(view[done : done + _CHUNK]))
            done += _CHUNK
        view.release()
        del pending[:done]

    def close(self) -> None:
        """Compress what is left and write the trailer; ``out`` stays open."""
        if self._pending:
            self._feed(bytes(self._pending))
            self._pending = bytearray()
        self._stop()
        self._out.write(self._deflater.flush(zlib.Z_FINISH))
        self._out.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))

    def _feed(self, chunk: bytes) -> None:
        if self._failure is not None:
            self._stop()
        self._chunks.put(chunk)

    def _stop(self) -> None:
        """End the thread once the chunks queued are done; raise its failure, if any."""
        if self._thread.is_alive():
            self._chunks.put(None)
            self._thread.join()
        if self._failure is not None:
            raise self._failure

    def _compress(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            if self._failure is not None:
                continue  # drained, never written after a failure
            try:
                self._crc = self._crc32(chunk, self._crc)
                self._size += len(chunk)
                compressed = self._deflater.compress(chunk)
                if compressed:
                    self._out.write(compressed)
            except BaseException as exc:  # raised on the caller's thread
                self._failure = exc
