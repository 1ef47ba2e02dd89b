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

_DAG_EXCLUDED_NAMES = frozenset({"__pycache__", ".git"})
_BUNDLE_EXCLUDED_NAMES = _DAG_EXCLUDED_NAMES | {".venv"}
_EXCLUDED_SUFFIXES = (".pyc",)

# A Git LFS pointer file: under 1024 bytes, starting with this line's key and value
# (https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md).
_LFS_POINTER_START = b"version https://git-lfs.github.com/spec/v1"
_LFS_POINTER_MAX_SIZE = 1024


def shown(name: str) -> str:
    """A file name as text that any UTF-8 log, output or annotation takes.

    Bytes of the name that are not UTF-8 (surrogates in a name read from the file system)
    become ``\\xNN``, as git's own output is decoded (:func:`ci_deploy.gitrepo.run_git`):
    ``dags/caf\\xe9.py``. A valid name is returned as is.
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Bundle:
    """A built tarball: the gzip bytes, its member names in order, and their sha256."""

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
        path = os.path.join(directory, entry.name)
        real, target = path, ""
        if entry.is_symlink():
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
            st = os.stat(real)
        except OSError as exc:
            raise BundleError(f"cannot read {rel!r} in {what}: {exc}") from exc
        if stat.S_ISDIR(st.st_mode):
            real_dir = os.path.realpath(real)
            if real_dir in ancestors:
                link = f"symlink {rel!r} -> {target!r}" if entry.is_symlink() else repr(rel)
                raise BundleError(
                    f"{link} in {what} leads back to one of its own parent folders, "
                    "which would repeat the tree forever"
                )
            _collect(walk, path, f"{rel}/", ancestors | {real_dir}, out)
        elif stat.S_ISREG(st.st_mode):
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


def _require_folder(folder: Path, what: str) -> None:
    if not folder.exists():
        raise BundleError(f"{what} {folder} does not exist")
    if not folder.is_dir():
        raise BundleError(f"{what} {folder} is not a directory")


def _pack(folder: Path, *, prefix: str, excluded_names: frozenset[str], what: str) -> Bundle:
    """Walk ``folder`` and write the deterministic archive (see the module docstring).

    Every member is named ``prefix`` + its POSIX path relative to ``folder``.
    """
    root = os.path.realpath(folder)
    walk = _Walk(root=root, prefix=prefix, excluded_names=excluded_names, what=what)
    entries: list[_Entry] = []
    _collect(walk, os.fspath(folder), "", frozenset({root}), entries)
    entries.sort(key=lambda e: e.member)

    buffer = io.BytesIO()
    pointers: list[str] = []
    # GzipFile with mtime=0 and filename="" keeps the gzip header free of time and name.
    # A member name that is not UTF-8 goes into a PAX header as its bytes (hdrcharset=BINARY).
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar,
    ):
        for item in entries:
            try:
                with open(item.source, "rb") as fh:
                    st = os.fstat(fh.fileno())
                    if st.st_size < _LFS_POINTER_MAX_SIZE:
                        if fh.read(len(_LFS_POINTER_START)) == _LFS_POINTER_START:
                            pointers.append(shown(item.member))
                        fh.seek(0)
                    info = _tarinfo(item.member, st.st_size, bool(st.st_mode & stat.S_IXUSR))
                    tar.addfile(info, fh)
            except OSError as exc:
                raise BundleError(f"cannot read {item.display!r} in {what}: {exc}") from exc
    if pointers:
        raise BundleError(
            f"{what[0].upper()}{what[1:]} holds Git LFS pointers, not the files they stand for: "
            f"{', '.join(pointers)}. The checkout did not download the Git LFS files, so "
            "nothing was deployed. Set lfs: true on actions/checkout (or run git lfs pull "
            "before this step).",
            title="Git LFS files not downloaded",
        )
    data = buffer.getvalue()
    return Bundle(
        data=data,
        members=tuple(e.member for e in entries),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def build_dag_tarball(dags_dir: Path) -> Bundle:
    """Pack ``dags_dir`` into a deterministic ``.tar.gz`` named ``<folder name>/...``.

    Raises BundleError when the folder is missing, a symlink is broken or leaves the
    folder, or a file cannot be read.
    """
    what = "the DAG folder"
    _require_folder(dags_dir, what)
    # abspath (not realpath) so "." and ".." give a name but a linked folder keeps its own.
    prefix = Path(os.path.abspath(dags_dir)).name
    if not prefix:
        raise BundleError(f"the DAG folder {dags_dir} has no name to use as the archive prefix")
    return _pack(dags_dir, prefix=f"{prefix}/", excluded_names=_DAG_EXCLUDED_NAMES, what=what)


def build_bundle_tarball(root_dir: Path) -> Bundle:
    """Pack the contents of the project folder ``root_dir`` for a BUNDLE deploy.

    Members are named by their POSIX path relative to ``root_dir``, with no prefix. Besides
    ``__pycache__``, ``.git`` and ``*.pyc``, ``.venv`` entries are left out at any depth.
    Raises BundleError like :func:`build_dag_tarball`.
    """
    what = "the project folder"
    _require_folder(root_dir, what)
    return _pack(root_dir, prefix="", excluded_names=_BUNDLE_EXCLUDED_NAMES, what=what)


def member_prefix(root_folder: str, dags_folder: str) -> str:
    """What turns a DAG tarball member (``dags/x.py``) into its repository path.

    ``root_folder`` is repository-relative (``.`` for the root), ``dags_folder`` relative to
    it: with ``astro`` and ``pipelines/dags`` the member ``dags/x.py`` is
    ``astro/pipelines/dags/x.py``, so the prefix is ``astro/pipelines/``.
    """
    parent = "/".join(p for p in (root_folder, dags_folder) if p not in ("", "."))
    parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
    return parent + "/" if parent else ""
