"""The process that packs a DAG tarball early (see :mod:`ci_deploy.stages.prebuild`).

:func:`start` starts it: a fork of the run's process when that process has no other thread
(nothing to import again, and a fork is safe then), else a new interpreter,
``python -m ci_deploy.bundle_worker DAGS_FOLDER SPOOL_FOLDER LEVEL``, which imports nothing
but the bundle's modules. Either packs the folder as
:func:`ci_deploy.bundle.build_dag_tarball` does and writes the
:class:`~ci_deploy.bundle.Bundle` to a pipe as one JSON line (:func:`to_json`); it runs
beside the run, on another core. Any failure exits non-zero with nothing written: the run
then packs the folder itself, and reports what goes wrong as it always does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import BinaryIO, cast

from ci_deploy.bundle import Bundle, Packing, build_dag_tarball
from ci_deploy.cancel import leave_signals_to_the_run
from ci_deploy.compression import Compression, compression_for


def to_json(tarball: Bundle) -> str:
    """``tarball`` as one JSON line (file names that are not UTF-8 survive: surrogates)."""
    compression = tarball.compression
    return json.dumps(
        {
            "path": str(tarball.path),
            "size": tarball.size,
            "sha256": tarball.sha256,
            "members": tarball.members,
            "member_sizes": tarball.member_sizes,
            "compression": [compression.level, compression.backend, compression.backend_level],
        }
    )


def from_json(line: str | bytes) -> Bundle:
    """The :class:`~ci_deploy.bundle.Bundle` :func:`to_json` wrote."""
    data = json.loads(line)
    level, backend, backend_level = data["compression"]
    return Bundle(
        path=Path(data["path"]),
        size=int(data["size"]),
        sha256=str(data["sha256"]),
        members=tuple(data["members"]),
        member_sizes=tuple(data["member_sizes"]),
        compression=Compression(int(level), backend, int(backend_level)),
    )


class Worker:
    """A packing process: its id and the pipe it answers on."""

    def __init__(self, pid: int, answer: BinaryIO, spawned: subprocess.Popen[bytes] | None) -> None:
        self._pid, self._answer, self._spawned = pid, answer, spawned
        self._done = False

    @property
    def how(self) -> str:
        """How the process was started, for the debug log."""
        return "a fork of the run's process" if self._spawned is None else "a new interpreter"

    def answer(self) -> bytes | None:
        """What the process wrote, once it has exited; None when it failed."""
        with self._answer as pipe:
            output = pipe.read()
        return output if self._wait() == 0 else None

    def stop(self) -> None:
        """Kill the process (when it still runs) and reap it."""
        if self._done:
            return
        with contextlib.suppress(ProcessLookupError):  # gone already (SIGCHLD ignored)
            os.kill(self._pid, signal.SIGKILL)
        self._answer.close()
        self._wait()

    def _wait(self) -> int:
        """The exit code; -1 when it cannot be known (the process was reaped already: a run
        started with SIGCHLD ignored), which counts as a failure: the run packs itself."""
        self._done = True
        if self._spawned is not None:
            return self._spawned.wait()
        try:
            return os.waitstatus_to_exitcode(os.waitpid(self._pid, 0)[1])
        except ChildProcessError:
            return -1


def start(dags: Path, packing: Packing, *, fork: bool | None = None) -> Worker:
    """A process packing ``dags`` as ``packing`` does (see the module docstring): a fork when
    ``fork`` says so (by default, when this process has one thread), else a new interpreter."""
    if fork is None:
        fork = threading.active_count() == 1
    if fork:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the run
            code = 1
            try:
                leave_signals_to_the_run()
                _leave_output_to_the_run()
                os.close(read)
                with open(write, "wb") as pipe:
                    pipe.write(to_json(build_dag_tarball(dags, packing)).encode() + b"\n")
                code = 0
            finally:
                os._exit(code)  # no teardown: the run's files and buffers are the run's
        os.close(write)
        return Worker(pid, open(read, "rb"), None)
    package_parent = Path(__file__).resolve().parent.parent
    spawned = subprocess.Popen(
        [sys.executable, "-m", __name__, str(dags), packing.spool, str(packing.compression.level)],
        cwd=package_parent,  # python -m finds this ci_deploy first
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    return Worker(spawned.pid, cast(BinaryIO, spawned.stdout), spawned)


def _leave_output_to_the_run() -> None:
    """Nothing of the step's input and output stays open here (as for a new interpreter):
    were the run killed, the step's output would not wait for this process to end."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def main(argv: list[str]) -> int:
    """Pack ``argv``'s folder; print the tarball (see the module docstring)."""
    dags, spool, level = argv
    packing = Packing(compression_for(int(level)), spool)
    tarball = build_dag_tarball(Path(dags), packing)
    sys.stdout.write(to_json(tarball) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    leave_signals_to_the_run()
    try:
        code = main(sys.argv[1:])
    except BaseException:  # the run packs the folder itself and says what is wrong
        code = 1
    raise SystemExit(code)
