"""Start-up time: process start to the first API request, and invalid input to exit.

    python scripts/bench_startup.py CHECKOUT [BASELINE_CHECKOUT] [--runs N]

Each checkout needs its own ``.venv`` (``make`` makes it). The run is started as the GitHub
runner starts the action (``entrypoint.py`` with ``INPUT_*`` variables and a push event, in a
git repository holding the example project with one DAG edited) against a socket on
127.0.0.1 that notes when the first request's bytes arrive; then the process is killed.
The same run with an invalid input (``INPUT_WAIT-TIMEOUT=abc``) is timed from start to its
exit, which must be code 1 with no request sent.
Runs alternate between the checkouts, so both see the same machine; the medians and their
ratio are printed side by side, one line per checkout and measurement: wall time, then the
process's CPU time (user + system; for the first request, until it is killed just after),
which a busy machine disturbs less.

Bytecode (``--bytecode``): ``image`` (the default) runs each checkout as its action image
does: with ci_deploy's bytecode when its Dockerfile compiles it at build time, otherwise
compiling the sources at every start (each job's container is fresh and writes none).
``cached`` gives every checkout its bytecode, ``none`` none: the code alone compared. Bytecode
goes to a scratch ``PYTHONPYCACHEPREFIX`` (written by one unmeasured run), never into a
checkout.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "astro-project"


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    done = subprocess.run(
        ["git", *identity, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def workspace(root: Path) -> tuple[Path, Path]:
    """A repository with a DAG edit, and the push event for it."""
    path = root / "workspace"
    shutil.copytree(EXAMPLE, path)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "Add the project")
    before = git(path, "rev-parse", "HEAD")
    dag = path / "dags" / "example_etl.py"
    dag.write_text(dag.read_text() + "\n# edited\n")
    git(path, "commit", "-qam", "Edit a DAG")
    event = root / "event.json"
    event.write_text(json.dumps({"before": before, "after": git(path, "rev-parse", "HEAD")}))
    return path, event


def token() -> str:
    claims = json.dumps({"permissions": ["organizationId:org-bench"]}).encode()
    return f"e30.{base64.urlsafe_b64encode(claims).decode().rstrip('=')}.bench"


@dataclass(frozen=True)
class Target:
    """A checkout, and the bytecode its runs get (a ``PYTHONPYCACHEPREFIX``, or none)."""

    checkout: Path
    pycache: Path | None

    @property
    def shown(self) -> str:
        bytecode = "bytecode cached" if self.pycache else "compiled at every start"
        return f"{self.checkout}  ({bytecode})"


def image_compiles(checkout: Path) -> bool:
    """Whether the checkout's action image carries ci_deploy's bytecode."""
    dockerfile = checkout / "Dockerfile"
    return dockerfile.is_file() and "compileall" in dockerfile.read_text()


def step_environment(
    target: Target, path: Path, event: Path, scratch: Path, port: int
) -> dict[str, str]:
    """The variables the runner gives the step: a DAG-only push, the API on ``port``."""
    files = scratch / "runner-files"
    files.write_text("")
    prefixes = ("GITHUB_", "INPUT_", "RUNNER_", "ASTRO_", "PYTHONPYCACHEPREFIX")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if target.pycache is None:
        environ["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        environ["PYTHONPYCACHEPREFIX"] = str(target.pycache)
    environ.update(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_WORKSPACE": str(path),
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_REPOSITORY": "bench/project",
            "GITHUB_OUTPUT": str(files),
            "GITHUB_STEP_SUMMARY": str(files),
            "ASTRO_API_TOKEN": token(),
            "INPUT_API-URL": f"http://127.0.0.1:{port}/v1",
            "INPUT_DEPLOYMENT-ID": "dep-bench",
        }
    )
    return environ


def listen() -> tuple[socket.socket, list[float]]:
    """A socket on 127.0.0.1, and the times the first byte of its first request arrived."""
    server = socket.create_server(("127.0.0.1", 0))
    arrived: list[float] = []

    def accept() -> None:
        try:
            connection, _ = server.accept()
        except OSError:  # closed before anything connected
            return
        connection.recv(1)
        arrived.append(time.perf_counter())
        connection.close()

    threading.Thread(target=accept, daemon=True).start()
    return server, arrived


def start(target: Target, path: Path, environ: dict[str, str]) -> subprocess.Popen[bytes]:
    checkout = target.checkout
    return subprocess.Popen(
        [str(checkout / ".venv" / "bin" / "python"), str(checkout / "entrypoint.py")],
        cwd=path,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class Sample:
    """One run: wall seconds, and the CPU seconds the process used."""

    wall: float
    cpu: float


def reap(process: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Wait for ``process``: its exit code and the CPU seconds (user + system) it used."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime


def first_request(target: Target, path: Path, event: Path, scratch: Path) -> Sample:
    """From starting the step to the first byte of its first API request."""
    server, arrived = listen()
    environ = step_environment(target, path, event, scratch, server.getsockname()[1])
    started = time.perf_counter()
    process = start(target, path, environ)
    deadline = started + 60
    while not arrived and time.perf_counter() < deadline and process.poll() is None:
        time.sleep(0.001)
    process.kill()
    code, cpu = reap(process)
    server.close()
    if not arrived:
        raise SystemExit(f"{target.checkout}: no API request (exit code {code})")
    return Sample(arrived[0] - started, cpu)


def invalid_input_exit(target: Target, path: Path, event: Path, scratch: Path) -> Sample:
    """From starting the step with ``wait-timeout: abc`` to its exit (code 1)."""
    server, arrived = listen()
    environ = step_environment(target, path, event, scratch, server.getsockname()[1])
    environ["INPUT_WAIT-TIMEOUT"] = "abc"
    started = time.perf_counter()
    process = start(target, path, environ)
    code, cpu = reap(process)
    ended = time.perf_counter()
    server.close()
    if code != 1 or arrived:
        raise SystemExit(f"{target.checkout}: bad input: exit code {code}, {len(arrived)} requests")
    return Sample(ended - started, cpu)


MEASUREMENTS: dict[str, Callable[[Target, Path, Path, Path], Sample]] = {
    "process start -> first API request, DAG-only run": first_request,
    "invalid input (wait-timeout: abc) -> exit 1": invalid_input_exit,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--bytecode", choices=("image", "cached", "none"), default="image")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ci-deploy-bench-") as tmp:
        scratch = Path(tmp)
        targets = [
            Target(
                checkout,
                scratch / f"pycache-{n}"
                if args.bytecode == "cached"
                or (args.bytecode == "image" and image_compiles(checkout))
                else None,
            )
            for n, checkout in enumerate(c.resolve() for c in args.checkouts)
        ]
        path, event = workspace(scratch)
        samples = {(what, t): list[Sample]() for what in MEASUREMENTS for t in targets}
        for run in range(args.runs + 1):
            for what, measure in MEASUREMENTS.items():
                for target in targets:
                    taken = measure(target, path, event, scratch)
                    if run:  # the first writes the bytecode
                        samples[what, target].append(taken)
    for what in MEASUREMENTS:
        wall = {t: statistics.median(x.wall for x in samples[what, t]) for t in targets}
        cpu = {t: statistics.median(x.cpu for x in samples[what, t]) for t in targets}
        print(f"{what}, median of {args.runs}:")
        for t in targets:
            print(
                f"  {wall[t] * 1000:6.0f} ms  ({wall[t] / wall[targets[0]]:.2f}x)"
                f"  CPU {cpu[t] * 1000:4.0f} ms  ({cpu[t] / cpu[targets[0]]:.2f}x)  {t.shown}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
