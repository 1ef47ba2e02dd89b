"""Start-up time of a DAG-only run: from process start to the first API request.

    python scripts/bench_startup.py CHECKOUT [BASELINE_CHECKOUT] [--runs N]

Each checkout needs its own ``.venv`` (``make`` makes it). The run is started as the GitHub
runner starts the action (``entrypoint.py`` with ``INPUT_*`` variables and a push event, in a
git repository holding the example project with one DAG edited) against a socket on
127.0.0.1 that notes when the first request's bytes arrive; then the process is killed.
Runs alternate between the checkouts, so both see the same machine; the medians and their
ratio are printed side by side.
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


def once(checkout: Path, path: Path, event: Path, scratch: Path) -> float:
    """Seconds from starting the step to the first byte of its first API request."""
    server = socket.create_server(("127.0.0.1", 0))
    arrived: list[float] = []

    def accept() -> None:
        connection, _ = server.accept()
        connection.recv(1)
        arrived.append(time.perf_counter())
        connection.close()

    listener = threading.Thread(target=accept, daemon=True)
    listener.start()
    files = scratch / "runner-files"
    files.write_text("")
    prefixes = ("GITHUB_", "INPUT_", "RUNNER_", "ASTRO_")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
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
            "INPUT_API-URL": f"http://127.0.0.1:{server.getsockname()[1]}/v1",
            "INPUT_DEPLOYMENT-ID": "dep-bench",
        }
    )
    started = time.perf_counter()
    process = subprocess.Popen(
        [str(checkout / ".venv" / "bin" / "python"), str(checkout / "entrypoint.py")],
        cwd=path,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    listener.join(timeout=60)
    process.kill()
    process.wait()
    server.close()
    if not arrived:
        raise SystemExit(f"{checkout}: no API request within 60 s")
    return arrived[0] - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkouts", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    checkouts = [c.resolve() for c in args.checkouts]
    samples: dict[Path, list[float]] = {c: [] for c in checkouts}
    with tempfile.TemporaryDirectory(prefix="ci-deploy-bench-") as tmp:
        path, event = workspace(Path(tmp))
        for _ in range(args.runs):
            for checkout in checkouts:
                samples[checkout].append(once(checkout, path, event, Path(tmp)))
    first = statistics.median(samples[checkouts[0]])
    print(f"process start -> first API request, DAG-only run, median of {args.runs}:")
    for checkout in checkouts:
        median = statistics.median(samples[checkout])
        print(f"  {median * 1000:6.0f} ms  ({median / first:.2f}x)  {checkout}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
