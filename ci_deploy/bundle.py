"""The deterministic DAG tarball.

The archive holds every file of the DAG folder as ``<folder name>/<relative POSIX path>``,
regular files only, sorted by name, with fixed metadata (mtime 0, owner 0/0 without names,
mode 0o755 or 0o644) inside a gzip stream whose header has mtime 0 and no file name: the
same tree always gives the same bytes, so the sha256 identifies the DAG code.
``__pycache__`` and ``.git`` entries and ``*.pyc`` files are left out at any depth.
Symlinks that resolve inside the folder are stored as the content they point to; links that
leave the folder or are broken are errors.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from ci_deploy.errors import BundleError

_EXCLUDED_NAMES = frozenset({"__pycache__", ".git"})
_EXCLUDED_SUFFIXES = (".pyc",)


@dataclass(frozen=True)
class Bundle:
    """A built DAG tarball: the gzip bytes, its member names in order, and their sha256."""

    data: bytes = field(repr=False)
    members: tuple[str, ...]
    sha256: str

    @property
    def size(self) -> int:
        """The tarball's size in bytes."""
        return len(self.data)


@dataclass(frozen=True)
class _Entry:
    member: str  # name inside the archive
    source: str  # real path of the file to read
    display: str  # path relative to the DAG folder, as the user sees it


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _collect(
    directory: str,
    rel_prefix: str,
    root: str,
    ancestors: frozenset[str],
    out: list[_Entry],
    prefix: str,
) -> None:
    """Append the files under ``directory`` (whose real path is in ``ancestors``) to ``out``."""
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        raise BundleError(f"cannot read {rel_prefix or '.'} in the DAG folder: {exc}") from exc
    for entry in entries:
        if entry.name in _EXCLUDED_NAMES:
            continue
        rel = f"{rel_prefix}{entry.name}"
        path = os.path.join(directory, entry.name)
        real, target = path, ""
        if entry.is_symlink():
            real = os.path.realpath(path)
            target = os.readlink(path)
            if not os.path.exists(real):
                raise BundleError(
                    f"symlink {rel!r} -> {target!r} in the DAG folder is broken "
                    "(its target does not exist, or the links loop)"
                )
            if not _inside(real, root):
                raise BundleError(
                    f"symlink {rel!r} -> {target!r} points outside the DAG folder "
                    f"(to {real}); copy the file into the folder instead"
                )
        try:
            st = os.stat(real)
        except OSError as exc:
            raise BundleError(f"cannot read {rel!r} in the DAG folder: {exc}") from exc
        if stat.S_ISDIR(st.st_mode):
            real_dir = os.path.realpath(real)
            if real_dir in ancestors:
                link = f"symlink {rel!r} -> {target!r}" if entry.is_symlink() else repr(rel)
                raise BundleError(
                    f"{link} in the DAG folder leads back to one of its own parent folders, "
                    "which would repeat the tree forever"
                )
            _collect(path, f"{rel}/", root, ancestors | {real_dir}, out, prefix)
        elif stat.S_ISREG(st.st_mode):
            if entry.name.endswith(_EXCLUDED_SUFFIXES):
                continue
            out.append(_Entry(member=f"{prefix}/{rel}", source=real, display=rel))
        else:
            raise BundleError(
                f"{rel!r} in the DAG folder is not a regular file, a folder or a symlink"
            )


def _tarinfo(name: str, size: int, executable: bool) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.REGTYPE
    info.size = size
    info.mode = 0o755 if executable else 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def build_dag_tarball(dags_dir: Path) -> Bundle:
    """Pack ``dags_dir`` into a deterministic ``.tar.gz`` (see the module docstring).

    Raises BundleError when the folder is missing, a symlink is broken or leaves the
    folder, or a file cannot be read.
    """
    if not dags_dir.exists():
        raise BundleError(f"the DAG folder {dags_dir} does not exist")
    if not dags_dir.is_dir():
        raise BundleError(f"the DAG folder {dags_dir} is not a directory")
    # abspath (not realpath) so "." and ".." give a name but a linked folder keeps its own.
    prefix = Path(os.path.abspath(dags_dir)).name
    if not prefix:
        raise BundleError(f"the DAG folder {dags_dir} has no name to use as the archive prefix")
    root = os.path.realpath(dags_dir)

    entries: list[_Entry] = []
    _collect(os.fspath(dags_dir), "", root, frozenset({root}), entries, prefix)
    entries.sort(key=lambda e: e.member)

    buffer = io.BytesIO()
    # GzipFile with mtime=0 and filename="" keeps the gzip header free of time and name.
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar,
    ):
        for item in entries:
            try:
                with open(item.source, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    info = _tarinfo(item.member, st.st_size, bool(st.st_mode & stat.S_IXUSR))
                    tar.addfile(info, fh)
            except OSError as exc:
                raise BundleError(f"cannot read {item.display!r} in the DAG folder: {exc}") from exc
    data = buffer.getvalue()
    return Bundle(
        data=data,
        members=tuple(e.member for e in entries),
        sha256=hashlib.sha256(data).hexdigest(),
    )
