"""The syntax check of the DAG bundle: every ``.py`` file must compile.

Only the syntax is checked: each file is decoded and passed to :func:`compile`. Nothing is
imported or executed, so no Airflow (and none of the DAGs' dependencies) is needed, and a
file's top-level code never runs here.

Paths, with the tarball of ``build_dag_tarball(base_dir)`` as the example:

- a *member* is a tarball member name, relative to ``base_dir``'s parent: ``dags/x.py`` for
  ``base_dir=/w/repo/astro/dags``;
- the file read is ``abspath(base_dir).parent / member``: ``/w/repo/astro/dags/x.py``;
- the problem's ``path``, for an annotation's ``file=``, is ``path_prefix`` joined with the
  member and normalised: with ``path_prefix="astro/"`` (root-folder ``astro``),
  ``astro/dags/x.py``; with ``path_prefix=""`` or ``"."``, ``dags/x.py``. The prefix is the
  repository-relative folder that holds ``base_dir``. A name that is not UTF-8 is given as
  :func:`ci_deploy.bundle.shown` writes it (``dags/caf\\xe9.py``), so it can be printed.

What is compiled, and how:

- a file whose bytes are those the environment already runs at the same path
  (``deployed``: path to git blob id) is not compiled again: this deploy does not change it;
- a file's result depends on its bytes only, so results are kept by the sha256 of the bytes
  (``cache``; by default one per process, i.e. per run): identical files, and a second check
  of the same tree in one process (a matrix, a preview), compile once;
- the rest is read by this process and compiled in batches of about :data:`BATCH_BYTES` by a
  pool of worker processes, one per usable core, started only once three batches are waiting
  (below that, compiling here is quicker than starting the pool). The workers are forked
  when this process has one thread (the cheapest start, a run's case), and otherwise come
  from a fork server preloading this module (forking a process with other threads may
  deadlock the child; each such worker imports the main module again, as ``spawn`` does, so
  this start is slower). At most two batches per worker are in flight, so memory stays
  bounded at any tree size.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import threading
import warnings
from collections.abc import Collection, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from importlib.util import decode_source
from pathlib import Path
from typing import TYPE_CHECKING

from ci_deploy.bundle import shown
from ci_deploy.cancel import leave_signals_to_the_run
from ci_deploy.errors import SyntaxCheckError

if TYPE_CHECKING:  # imported when a pool starts: a run without one does not pay for them
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing.context import BaseContext

__all__ = [
    "BATCH_BYTES",
    "Outcome",
    "SyntaxCheck",
    "SyntaxProblem",
    "check_python_files",
    "git_blob_id",
    "syntax_summary",
    "usable_cores",
]

_SAVE_AS = "save it as UTF-8, or declare its encoding in a coding comment (PEP 263)"

BATCH_BYTES = 256 * 1024
"""The source bytes of one batch of work for a worker process."""

_POOL_FROM_BATCHES = 3
"""The pool starts once this many batches are waiting; less work is compiled in this process.
Measured with ``scripts/bench_syntax.py --crossover`` on 2 cores: the pool is quicker from
about 512 KiB of Python on when the machine is idle, from about 1 MiB when it is busy."""

Outcome = tuple[int, int, str] | None
"""What compiling some bytes gives, whatever the file's name: None when they compile, else the
1-based line and column and the message of the problem."""

_CACHE: dict[bytes, Outcome] = {}
"""The results of this process (one run), by the sha256 of the bytes compiled."""


@dataclass(frozen=True)
class SyntaxProblem:
    """A Python file that does not compile."""

    path: str
    """The file, repository-relative and POSIX, for an annotation's ``file=``."""
    line: int
    """1-based."""
    column: int
    """1-based; 1 when Python gives no column."""
    message: str
    """Python's own message, e.g. ``'(' was never closed``, or ours for unreadable files."""


@dataclass(frozen=True)
class SyntaxCheck:
    """What a check found: the broken files, and how many ``.py`` files were looked at."""

    problems: tuple[SyntaxProblem, ...] = ()
    """One per broken file, sorted by path."""
    checked: int = 0
    """The ``.py`` files checked (compiled, or found in the cache)."""
    unchanged: int = 0
    """The ``.py`` files not checked: the environment already runs them as they are."""
    compiled: int = field(default=0, compare=False)
    """The distinct contents compiled by this check (the rest came from the cache)."""
    processes: int = field(default=1, compare=False)
    """The processes that compiled them: 1 when all was done in this one."""


def syntax_summary(check: SyntaxCheck, unchanged_since: str | None) -> str:
    """The log line of a check that found no problem: what was checked, and what was not.

    ``unchanged_since`` is the commit the environment runs when only files changed since it
    were checked (see :attr:`ci_deploy.plan.ReleasePlan.unchanged_since`).
    """
    n, same = check.checked, check.unchanged
    files, verb = ("Python file", "compiles") if n == 1 else ("Python files", "compile")
    if unchanged_since is None:
        if n == 0:
            return "Syntax check: the DAG bundle has no Python files."
        return f"Syntax check: {'the' if n == 1 else 'all'} {n:,} {files} in the DAG bundle {verb}."
    return (
        f"Syntax check: {n:,} changed {files} {verb}; {same:,} {'is' if same == 1 else 'are'} "
        f"as in the deployed commit {unchanged_since[:12]} and not checked again."
    )


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity, e.g. a container's cpuset)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def git_blob_id(data: bytes) -> str:
    """The id git gives a file holding ``data`` (``git hash-object``)."""
    blob = hashlib.sha1(b"blob %d\x00" % len(data), usedforsecurity=False)
    blob.update(data)
    return blob.hexdigest()


def check_python_files(
    base_dir: Path,
    members: Iterable[str],
    *,
    path_prefix: str,
    deployed: Mapping[str, str] | None = None,
    cache: MutableMapping[bytes, Outcome] | None = None,
    workers: int | None = None,
    batch_bytes: int = BATCH_BYTES,
) -> SyntaxCheck:
    """Compile the ``.py`` members and return one problem per broken file, sorted by path.

    ``members`` are tarball member names relative to ``base_dir``'s parent; ``path_prefix``
    turns a member into the repository-relative path of the problem (see the module
    docstring). Other members are ignored. A member that is absolute or leaves the folder
    with ``..`` raises ValueError: members come from our own tarball, never from users.

    ``deployed`` maps the repository paths the environment runs to their git blob ids: a
    file with those bytes at that path is not checked again. ``cache`` (default: this
    process's) keeps results by content; ``workers`` (default: :func:`usable_cores`) and
    ``batch_bytes`` set the parallel compile (one worker, or less than one batch of work:
    all in this process).
    """
    parent = Path(os.path.abspath(base_dir)).parent
    files: list[tuple[str, Path]] = []
    for member in members:
        if not member.endswith(".py"):
            continue
        parts = member.split("/")
        if member.startswith("/") or ".." in parts or "\\" in member:
            raise ValueError(f"not a tarball member name: {member!r}")
        path = shown(posixpath.normpath(posixpath.join(path_prefix, member)))
        files.append((path, parent.joinpath(*parts)))

    results = _CACHE if cache is None else cache
    problems: list[SyntaxProblem] = []
    waiting: dict[bytes, list[str]] = {}  # content not compiled yet -> the paths holding it
    unchanged = unreadable = 0
    with _Compiler(workers or usable_cores(), batch_bytes) as compiler:
        for path, file in files:
            try:
                data = file.read_bytes()
            except OSError as exc:
                problems.append(SyntaxProblem(path, 1, 1, f"cannot be read: {exc.strerror or exc}"))
                unreadable += 1
                continue
            known = deployed.get(path) if deployed else None
            if known is not None and known == git_blob_id(data):
                unchanged += 1
                continue
            digest = hashlib.sha256(data).digest()
            if digest in results:
                problems.extend(_problems(results[digest], [path]))
            elif digest in waiting:
                waiting[digest].append(path)
            else:
                waiting[digest] = [path]
                compiler.add(digest, data)
        for digest, outcome in compiler.finish():
            results[digest] = outcome
            problems.extend(_problems(outcome, waiting[digest]))
    problems.sort(key=lambda p: p.path)
    checked = len(files) - unchanged - unreadable
    return SyntaxCheck(tuple(problems), checked, unchanged, len(waiting), compiler.processes)


def _problems(outcome: Outcome, paths: Iterable[str]) -> list[SyntaxProblem]:
    if outcome is None:
        return []
    line, column, message = outcome
    return [SyntaxProblem(path, line, column, message) for path in paths]


class _Compiler:
    """Compiles the contents added to it, in batches: here, or in worker processes once a
    whole batch is waiting; :meth:`finish` gives every ``(digest, outcome)``."""

    def __init__(self, workers: int, batch_bytes: int) -> None:
        self._workers, self._batch_bytes = workers, batch_bytes
        self._batch: list[tuple[bytes, bytes]] = []
        self._size = 0
        self._pool: ProcessPoolExecutor | None = None
        self._running: dict[Future[list[tuple[bytes, Outcome]]], list[tuple[bytes, bytes]]] = {}
        """The batches sent to the pool and not collected yet."""
        self._done: list[tuple[bytes, Outcome]] = []

    def __enter__(self) -> _Compiler:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    @property
    def processes(self) -> int:
        """The processes compiling: the workers once the pool started, else this one."""
        return 1 if self._pool is None else self._workers

    def add(self, digest: bytes, data: bytes) -> None:
        self._batch.append((digest, data))
        self._size += len(data)
        if self._pool is not None:
            if self._size >= self._batch_bytes:
                self._submit(self._take())
        elif self._workers == 1:
            if self._size >= self._batch_bytes:
                self._done.extend(_compile_batch(self._take()))
        elif self._size >= _POOL_FROM_BATCHES * self._batch_bytes and self._start_pool():
            batch: list[tuple[bytes, bytes]] = []
            size = 0
            for item in self._take():  # the work waiting, cut into batches
                batch.append(item)
                size += len(item[1])
                if size >= self._batch_bytes:
                    self._submit(batch)
                    batch, size = [], 0
            self._submit(batch)

    def finish(self) -> list[tuple[bytes, Outcome]]:
        if self._pool is not None and self._batch:
            self._submit(self._take())
        if self._pool is None:
            self._done.extend(_compile_batch(self._take()))
        self._collect(wait_all=True)
        return self._done

    def _take(self) -> list[tuple[bytes, bytes]]:
        batch, self._batch, self._size = self._batch, [], 0
        return batch

    def _start_pool(self) -> bool:
        from concurrent.futures import ProcessPoolExecutor

        try:
            self._pool = ProcessPoolExecutor(
                self._workers, mp_context=_start_method(), initializer=leave_signals_to_the_run
            )
        except (OSError, ImportError, ValueError):  # no processes here (no /dev/shm...)
            self._workers = 1  # compiled here, a batch at a time
            self._done.extend(_compile_batch(self._take()))
            return False
        return True

    def _submit(self, batch: list[tuple[bytes, bytes]]) -> None:
        from concurrent.futures.process import BrokenProcessPool

        if not batch or self._pool is None:
            return
        while len(self._running) >= 2 * self._workers:  # bounded memory: wait for one
            self._collect(wait_all=False)
        try:  # the pool starts its worker processes here, as work comes
            self._running[self._pool.submit(_compile_batch, batch)] = batch
        except (OSError, BrokenProcessPool):  # a process could not start (a pids limit...)
            self._compile_here_instead(batch)

    def _compile_here_instead(self, batch: list[tuple[bytes, bytes]]) -> None:
        """Stop the pool, its processes killed (none is left waiting for work that never
        comes, which would hold the run at exit), and compile here what it had and
        ``batch``."""
        pool, self._pool, self._workers = self._pool, None, 1
        waiting = [*self._running.values(), batch]
        self._running.clear()
        if pool is not None:
            processes = getattr(pool, "_processes", None) or {}  # no public way before 3.14
            for process in list(processes.values()):
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)
        for work in waiting:
            self._done.extend(_compile_batch(work))

    def _collect(self, *, wait_all: bool) -> None:
        from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        until = ALL_COMPLETED if wait_all else FIRST_COMPLETED
        done, _ = wait(self._running, return_when=until)
        for future in done:
            self._running.pop(future)
            try:
                self._done.extend(future.result())
            except BrokenProcessPool as exc:
                raise SyntaxCheckError(
                    "A worker process of the syntax check died (out of memory?), so the DAG "
                    "files could not all be checked; nothing was deployed. Run again, or set "
                    "syntax-check: false to deploy without the check.",
                    title="Syntax check failed",
                ) from exc


def _start_method() -> BaseContext:
    """Fork when this process has one thread; otherwise a fork server preloading this module."""
    import multiprocessing

    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _compile_batch(batch: Collection[tuple[bytes, bytes]]) -> list[tuple[bytes, Outcome]]:
    """``(digest, outcome)`` for each ``(digest, bytes)``: a worker's task."""
    return [(digest, _compile(data)) for digest, data in batch]


def _compile(data: bytes) -> Outcome:
    """Decode and compile ``data``; what went wrong, whatever the file is called."""
    null = data.find(b"\x00")
    if null >= 0:
        line, column = _position(data, null)
        return (
            line,
            column,
            "contains a null byte, which Python source cannot hold (is it a binary file"
            " saved as .py?)",
        )

    try:
        # Honours a PEP 263 coding cookie and a UTF-8 BOM; UTF-8 otherwise.
        source = decode_source(data)
    except SyntaxError as exc:  # a bad or unknown coding cookie, or undecodable first lines
        return 1, 1, f"cannot be decoded: {exc.msg}; {_SAVE_AS}"
    except UnicodeDecodeError as exc:
        line, column = _position(data, exc.start)
        return (
            1,
            1,
            f"cannot be decoded as {exc.encoding}: byte 0x{data[exc.start]:02x} at line {line},"
            f" column {column}; {_SAVE_AS}",
        )

    try:
        with warnings.catch_warnings():
            # SyntaxWarnings (e.g. an invalid escape) are not errors, even under -W error.
            warnings.simplefilter("ignore")
            compile(source, "<dag>", "exec", dont_inherit=True)
    except SyntaxError as exc:  # IndentationError and TabError too
        return exc.lineno or 1, exc.offset or 1, exc.msg
    except (ValueError, RecursionError, MemoryError) as exc:
        return 1, 1, f"cannot be compiled: {exc}"
    return None


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """The 1-based line and column of byte ``offset`` in ``data``, counting UTF-8 characters."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", "replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column
