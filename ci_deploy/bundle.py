"""The deterministic tarballs: the DAG tarball and the BUNDLE archive.

:func:`build_dag_tarball` packs the DAG folder with every member named
``<folder name>/<relative POSIX path>``; :func:`build_bundle_tarball` packs the project
folder's contents with no prefix (``<relative POSIX path>``), as Astro's BUNDLE deploys
(e.g. dbt) expect. Both are built by one walk and one writer:

- regular files only, sorted by name, with fixed metadata (mtime 0, owner 0/0 without names,
  mode 0o755 or 0o644) inside a gzip stream whose header has mtime 0 and no file name: the
  same tree always gives the same bytes, so the sha256 identifies the code;
- ``__pycache__`` and ``.git`` entries and ``*.pyc`` files are left out at any depth (and
  ``.venv`` entries too in the BUNDLE archive);
- symlinks that resolve inside the folder are stored as the content they point to; links that
  leave the folder, are broken or lead back to a parent folder are errors;
- a Git LFS pointer file (a checkout made without ``lfs: true``) is an error: the pointer,
  not the file it stands for, would be deployed;
- member names keep a file name's bytes even when they are not UTF-8 (on Linux a name is
  bytes; Python holds the undecodable ones as surrogates): :func:`shown` is such a name as
  text for logs and messages.

The archive is streamed: each file is read in chunks of at most 1 MiB, its header written
here (plain ustar where the name fits; PAX, as :mod:`tarfile` writes it, for a long or
non-UTF-8 name or a size of 8 GiB or more), compressed by :class:`~ci_deploy.compression.GzipWriter`
and written to a spool file (:class:`Packing` says where and how), hashed on the way. Memory
stays bounded whatever the folder's size; the :class:`Bundle` is the file's path and record,
and the caller deletes the file with :meth:`Bundle.close`. A failed build deletes it at once,
so a Git LFS pointer found at the end leaves nothing behind either.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import stat
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Self

from ci_deploy.compression import DEFAULT_LEVEL, Compression, GzipWriter, compression_for
from ci_deploy.errors import BundleError

_DAG_EXCLUDED_NAMES = frozenset({"__pycache__", ".git"})
_BUNDLE_EXCLUDED_NAMES = _DAG_EXCLUDED_NAMES | {".venv"}
_EXCLUDED_SUFFIXES = (".pyc",)

# A Git LFS pointer file: under 1024 bytes, starting with this line's key and value
# (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md).
_LFS_POINTER_START = b"version https://git-lfs.github.com/spec/v1"
_LFS_POINTER_MAX_SIZE = 1024

_READ_CHUNK = 1024 * 1024
"""Files are read this many bytes at a time: memory stays bounded whatever their size."""
_ZEROS = bytes(512)
_USTAR_NAME = 100
_USTAR_PREFIX = 155
_USTAR_MAX_SIZE = 8**11 - 1
"""The largest size a ustar header holds (11 octal digits): 8 GiB less a byte."""


def shown(name: str) -> str:
    """A file name as text that any UTF-8 log, output or annotation takes.

    Bytes of the name that are not UTF-8 (surrogates in a name read from the file system)
    become ``\\xNN``, as git's own output is decoded (:func:`ci_deploy.gitrepo.run_git`):
    ``dags/caf\\xe9.py``. A valid name is returned as is.
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Bundle:
    """A built tarball, spooled to the file at ``path`` until :meth:`close` deletes it.

    ``members`` are the member names in order and ``member_sizes`` their sizes; ``size`` and
    ``sha256`` are the gzip file's, ``compression`` what made it. Closing keeps the record
    (names, sizes, sha256) for the report; only the file goes.
    """

    path: Path
    size: int
    sha256: str
    members: tuple[str, ...]
    member_sizes: tuple[int, ...]
    compression: Compression

    @property
    def content_size(self) -> int:
        """The members' total size before compression."""
        return sum(self.member_sizes)

    def largest(self, count: int) -> list[tuple[str, int]]:
        """The ``count`` largest members and their sizes, largest first (by name on a tie)."""
        pairs = zip(self.members, self.member_sizes, strict=True)
        return heapq.nsmallest(count, pairs, key=lambda pair: (-pair[1], pair[0]))

    def close(self) -> None:
        """Delete the spool file (again is fine)."""
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)  # one per file: tens of thousands in a large folder
class _Entry:
    member: str  # name inside the archive
    source: str  # real path of the file to read
    display: str  # path relative to the packed folder, as the user sees it


@dataclass(frozen=True)
class _Walk:
    """What one archive packs, and how its messages name the folder."""

    root: str  # real path of the packed folder: symlinks must resolve inside it
    prefix: str  # put before every member's relative path: "dags/" or ""
    excluded_names: frozenset[str]  # file and folder names left out at any depth
    what: str  # "the DAG folder" or "the project folder"


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _collect(
    walk: _Walk,
    directory: str,
    rel_prefix: str,
    ancestors: frozenset[str],
    out: list[_Entry],
) -> None:
    """Append the files under ``directory`` (whose real path is in ``ancestors``) to ``out``."""
    what = walk.what
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise BundleError(f"cannot read {rel_prefix or '.'} in {what}: {exc}") from exc
    for entry in entries:
        if entry.name in walk.excluded_names:
            continue
        rel = f"{rel_prefix}{entry.name}"
        path = entry.path
        real, target = path, ""
        linked = entry.is_symlink()
        if linked:
            real = os.path.realpath(path)
            target = os.readlink(path)
            if not os.path.exists(real):
                raise BundleError(
                    f"symlink {rel!r} -> {target!r} in {what} is broken "
                    "(its target does not exist, or the links loop)"
                )
            if not _inside(real, walk.root):
                raise BundleError(
                    f"symlink {rel!r} -> {target!r} points outside {what} "
                    f"(to {real}); copy the file into the folder instead"
                )
        try:
            if linked:  # what the link points to
                mode = os.stat(real).st_mode
                is_dir, is_file = stat.S_ISDIR(mode), stat.S_ISREG(mode)
            else:  # the entry's own type, which the listing gave: no stat per file
                is_dir = entry.is_dir(follow_symlinks=False)
                is_file = entry.is_file(follow_symlinks=False)
        except OSError as exc:
            raise BundleError(f"cannot read {rel!r} in {what}: {exc}") from exc
        if is_dir:
            real_dir = os.path.realpath(real)
            if real_dir in ancestors:
                link = f"symlink {rel!r} -> {target!r}" if linked else repr(rel)
                raise BundleError(
                    f"{link} in {what} leads back to one of its own parent folders, "
                    "which would repeat the tree forever"
                )
            _collect(walk, path, f"{rel}/", ancestors | {real_dir}, out)
        elif is_file:
            if entry.name.endswith(_EXCLUDED_SUFFIXES):
                continue
            out.append(_Entry(member=f"{walk.prefix}{rel}", source=real, display=rel))
        else:
            raise BundleError(f"{rel!r} in {what} is not a regular file, a folder or a symlink")


def _tarinfo(name: str, size: int, executable: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.REGTYPE
    info.size = size
    info.mode = 0o755 if executable else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _split_ustar_name(name: bytes) -> tuple[bytes, bytes] | None:
    """``(prefix, name)`` as ustar stores ``name``, or None when it does not fit.

    A name of up to 100 bytes goes in the name field; a longer one is cut at the first
    ``/`` that leaves at most 155 bytes before it (the prefix field) and 100 after, as
    Python's tarfile cuts it.
    """
    if len(name) <= _USTAR_NAME:
        return b"", name
    parts = name.split(b"/")
    for i in range(1, len(parts)):
        prefix, rest = b"/".join(parts[:i]), b"/".join(parts[i:])
        if len(prefix) > _USTAR_PREFIX:
            return None
        if len(rest) <= _USTAR_NAME:
            return prefix, rest
    return None


# The ustar header's fields that are the same for every member, and what they add to its sum.
_OWNER = b"0000000\0" * 2  # uid, gid
_MTIME = b"00000000000\0"
_AFTER_CHECKSUM = (
    tarfile.REGTYPE + b"\0" * 100 + tarfile.POSIX_MAGIC + b"\0" * 80
)  # type, link name, magic and version, owner and group names, device numbers
_MODES = {True: b"0000755\0", False: b"0000644\0"}
_FIXED_SUM = sum(_OWNER) + sum(_MTIME) + sum(_AFTER_CHECKSUM) + 8 * ord(" ")
"""The checksum counts its own field as eight spaces."""


def _ustar_header(name: str, size: int, executable: bool) -> bytes | None:
    """The 512-byte ustar header of a regular file with the fixed metadata (mtime 0, owner
    0/0 without names), or None when ``name`` (not UTF-8, or too long) or ``size`` (8 GiB or
    more) needs a PAX header."""
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8, held as surrogates
        return None
    split = _split_ustar_name(encoded)
    if split is None or size > _USTAR_MAX_SIZE:
        return None
    prefix, short = split
    mode = _MODES[executable]
    size_field = b"%011o\0" % size
    checksum = _FIXED_SUM + sum(short) + sum(prefix) + sum(mode) + sum(size_field)
    return b"".join(
        (
            short.ljust(100, b"\0"),
            mode,
            _OWNER,
            size_field,
            _MTIME,
            b"%06o\0 " % checksum,
            _AFTER_CHECKSUM,
            prefix.ljust(155, b"\0"),
            b"\0" * 12,
        )
    )


def _header(name: str, size: int, executable: bool) -> bytes:
    """A member's header: plain ustar where it fits, else PAX (as ``tarfile`` writes it: a
    name that is not UTF-8 keeps its bytes, marked ``hdrcharset=BINARY``)."""
    header = _ustar_header(name, size, executable)
    if header is None:
        info = _tarinfo(name, size, executable)
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    return header


class _Spool:
    """The gzip file being written: its sha256 and size as it grows.

    A failed write (a full disk) is a BundleError that names the folder.
    """

    def __init__(self, file: BinaryIO, folder: str) -> None:
        self._file = file
        self._folder = folder
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        try:
            return self._file.write(data)
        except OSError as exc:
            raise BundleError(
                f"cannot write the tarball to {self._folder}: {exc}. Free space there, or set "
                "RUNNER_TEMP to a folder with room."
            ) from exc


def _require_folder(folder: Path, what: str) -> None:
    if not folder.exists():
        raise BundleError(f"{what} {folder} does not exist")
    if not folder.is_dir():
        raise BundleError(f"{what} {folder} is not a directory")


@dataclass(frozen=True)
class Packing:
    """How a tarball is written: its compression, and the folder its spool file goes in."""

    compression: Compression
    spool: str

    @classmethod
    def default(cls) -> Packing:
        """The default level (ISA-L when it imports), spooled in the system's temp folder."""
        return cls(compression_for(DEFAULT_LEVEL), tempfile.gettempdir())

    @classmethod
    def of_run(cls, level: int, environ: Mapping[str, str]) -> Packing:
        """A run's: ``compression-level`` ``level``, spooled where :func:`spool_folder` says."""
        return cls(compression_for(level), spool_folder(environ))


def spool_folder(environ: Mapping[str, str]) -> str:
    """Where tarballs are spooled: ``RUNNER_TEMP`` when it is a folder this process may
    write in (the runner empties it after the job), else the system's temporary folder. A
    container action may be given the host's ``RUNNER_TEMP`` (older runners pass it on
    untranslated), which does not exist inside the container."""
    folder = environ.get("RUNNER_TEMP", "")
    if folder and os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK):
        return folder
    return tempfile.gettempdir()


def _pack(
    folder: Path, packing: Packing, *, prefix: str, excluded: frozenset[str], what: str
) -> Bundle:
    """Walk ``folder`` and write the deterministic archive (see the module docstring).

    Every member is named ``prefix`` + its POSIX path relative to ``folder``. The archive is
    spooled to a new file in ``packing.spool``, deleted again when packing fails.
    """
    root = os.path.realpath(folder)
    walk = _Walk(root=root, prefix=prefix, excluded_names=excluded, what=what)
    entries: list[_Entry] = []
    _collect(walk, os.fspath(folder), "", frozenset({root}), entries)
    entries.sort(key=lambda e: e.member)

    try:
        fd, name = tempfile.mkstemp(prefix="ci-deploy-", suffix=".tar.gz", dir=packing.spool)
    except OSError as exc:
        raise BundleError(
            f"cannot create the tarball in {packing.spool}: {exc}. Set RUNNER_TEMP to a "
            "writable folder with room."
        ) from exc
    path = Path(name)
    try:
        with open(fd, "wb") as file:
            spool = _Spool(file, packing.spool)
            sizes, pointers = _write_archive(entries, spool, packing.compression, what)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if pointers:
        path.unlink(missing_ok=True)
        raise BundleError(
            f"{what[0].upper()}{what[1:]} holds Git LFS pointers, not the files they stand for: "
            f"{', '.join(pointers)}. The checkout did not download the Git LFS files, so "
            "nothing was deployed. Set lfs: true on actions/checkout (or run git lfs pull "
            "before this step).",
            title="Git LFS files not downloaded",
        )
    return Bundle(
        path=path,
        size=spool.size,
        sha256=spool.sha256.hexdigest(),
        members=tuple(e.member for e in entries),
        member_sizes=tuple(sizes),
        compression=packing.compression,
    )


def _write_archive(
    entries: list[_Entry], spool: _Spool, compression: Compression, what: str
) -> tuple[list[int], list[str]]:
    """Write ``entries`` as a gzip'd tar to ``spool``, a file at a time, in chunks.

    Returns the members' sizes and the members that are Git LFS pointers.
    """
    sizes: list[int] = []
    pointers: list[str] = []
    offset = 0  # the tar stream's length so far
    with GzipWriter(spool, compression) as gz:
        for item in entries:
            try:
                fd = os.open(item.source, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise BundleError(f"cannot read {item.display!r} in {what}: {exc}") from exc
            try:
                size, written = _write_member(fd, item, gz, what, pointers)
            finally:
                os.close(fd)
            offset += written
            sizes.append(size)
        # The end: two zero blocks, then zeros up to a whole record, as tarfile ends one.
        end = 2 * tarfile.BLOCKSIZE
        end += -(offset + end) % tarfile.RECORDSIZE
        gz.write(bytes(end))
        gz.close()
    return sizes, pointers


def _write_member(
    fd: int, item: _Entry, gz: GzipWriter, what: str, pointers: list[str]
) -> tuple[int, int]:
    """Write the file open as ``fd`` as a member: its header, content and padding (one write
    when it is small). Returns its size and the bytes it took in the tar stream; a Git LFS
    pointer's name is added to ``pointers``."""
    try:
        st = os.fstat(fd)
        size = st.st_size
        header = _header(item.member, size, bool(st.st_mode & stat.S_IXUSR))
        first = _read(fd, min(size, _READ_CHUNK), item, what)
        if size < _LFS_POINTER_MAX_SIZE and first.startswith(_LFS_POINTER_START):
            pointers.append(shown(item.member))
        padding = _ZEROS[: -size % tarfile.BLOCKSIZE]
        if size <= _READ_CHUNK:
            gz.write(header + first + padding)
        else:
            gz.write(header)
            gz.write(first)
            remaining = size - len(first)
            while remaining:
                chunk = _read(fd, min(remaining, _READ_CHUNK), item, what)
                gz.write(chunk)
                remaining -= len(chunk)
            gz.write(padding)
    except OSError as exc:
        raise BundleError(f"cannot read {item.display!r} in {what}: {exc}") from exc
    return size, len(header) + size + len(padding)


def _read(fd: int, count: int, item: _Entry, what: str) -> bytes:
    """``count`` bytes from ``fd``; a file that ends sooner changed while it was packed."""
    data = os.read(fd, count)
    while len(data) < count:
        more = os.read(fd, count - len(data))
        if not more:
            raise BundleError(
                f"{item.display!r} in {what} shrank while it was being packed; run the deploy "
                "again once nothing writes to the folder"
            )
        data += more
    return data


def build_dag_tarball(dags_dir: Path, packing: Packing | None = None) -> Bundle:
    """Pack ``dags_dir`` into a deterministic ``.tar.gz`` named ``<folder name>/...``.

    ``packing`` defaults to :meth:`Packing.default`; the caller closes the returned bundle.

    Raises BundleError when the folder is missing, a symlink is broken or leaves the
    folder, or a file cannot be read.
    """
    what = "the DAG folder"
    _require_folder(dags_dir, what)
    # abspath (not realpath) so "." and ".." give a name but a linked folder keeps its own.
    prefix = Path(os.path.abspath(dags_dir)).name
    if not prefix:
        raise BundleError(f"the DAG folder {dags_dir} has no name to use as the archive prefix")
    return _pack(
        dags_dir,
        packing or Packing.default(),
        prefix=f"{prefix}/",
        excluded=_DAG_EXCLUDED_NAMES,
        what=what,
    )


def build_bundle_tarball(root_dir: Path, packing: Packing | None = None) -> Bundle:
    """Pack the contents of the project folder ``root_dir`` for a BUNDLE deploy.

    Members are named by their POSIX path relative to ``root_dir``, with no prefix. Besides
    ``__pycache__``, ``.git`` and ``*.pyc``, ``.venv`` entries are left out at any depth.
    Raises BundleError like :func:`build_dag_tarball`.
    """
    what = "the project folder"
    _require_folder(root_dir, what)
    return _pack(
        root_dir,
        packing or Packing.default(),
        prefix="",
        excluded=_BUNDLE_EXCLUDED_NAMES,
        what=what,
    )


def member_prefix(root_folder: str, dags_folder: str) -> str:
    """What turns a DAG tarball member (``dags/x.py``) into its repository path.

    ``root_folder`` is repository-relative (``.`` for the root), ``dags_folder`` relative to
    it: with ``astro`` and ``pipelines/dags`` the member ``dags/x.py`` is
    ``astro/pipelines/dags/x.py``, so the prefix is ``astro/pipelines/``.
    """
    parent = "/".join(p for p in (root_folder, dags_folder) if p not in ("", "."))
    parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
    return parent + "/" if parent else ""
