"""The wait of a DAG-only run: how late a finished rollout is seen, at what cost in requests
and log lines.

    python scripts/bench_wait.py CHECKOUT [BASELINE_CHECKOUT]

For rollouts of several lengths, each checkout's code runs the action in process against the
Astro emulator on a fake clock (the run's sleeps move it; nothing really sleeps), so the
figures are exact and the same on every machine: when the run saw the rollout done (``late``:
how long after it finished), the GETs of the Deployment from finalize on, and the lines of the
wait's log group. A checkout is put first on ``PYTHONPATH`` (its ``ci_deploy`` and ``tests``);
the interpreter running this script must have the dev dependencies (``.venv``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROLLOUTS = (12, 61, 304, 601, 1801)
"""Rollout lengths in seconds, mostly between two looks of a 5 s schedule."""

_MEASURE = r"""
import json, re, sys, tempfile
from pathlib import Path
from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import change, example_repo
from tests.fakes import FakeClock
from tests.inprocess import run_action

rows = []
for rollout in json.loads(sys.argv[1]):
    with tempfile.TemporaryDirectory() as tmp:
        clock = FakeClock()
        repo = example_repo(Path(tmp) / "workspace")
        with Emulator(rollout_seconds=rollout, clock=clock) as emu:
            before = change(repo)
            inputs = {"wait-timeout": "1h"}
            step = run_action(repo, emu, inputs, event=push_event(before, repo.head()))
            if step.result.returncode != 0:
                sys.exit(step.log)
            lines = step.log.splitlines()
            start = next(i for i, l in enumerate(lines) if re.match(r"::group ?::Waiting", l))
            end = next(i for i in range(start, len(lines)) if re.match(r"::endgroup", lines[i]))
            done = next(i for i, r in enumerate(emu.requests) if r.path.endswith("/finalize"))
            gets = sum(
                1 for r in emu.requests[done:]
                if r.method == "GET" and re.search(r"/deployments/[^/]+$", r.path)
            )
            rows.append([rollout, clock.now, gets, end - start - 1])
print(json.dumps(rows))
"""


def measure(checkout: Path) -> list[list[float]]:
    """[rollout, seen at, GETs, log lines] per rollout, with ``checkout``'s code."""
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve())}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps(ROLLOUTS)],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: {done.stderr or done.stdout}")
    rows: list[list[float]] = json.loads(done.stdout.splitlines()[-1])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", type=Path)
    parser.add_argument("baseline", type=Path, nargs="?")
    args = parser.parse_args()
    checkouts = [args.checkout] + ([args.baseline] if args.baseline else [])
    results = {checkout: measure(checkout) for checkout in checkouts}
    header = f"{'rollout':>8} | " + " | ".join(
        f"{'seen at':>8} {'late':>5} {'GETs':>5} {'lines':>5}" for _ in checkouts
    )
    print(" " * 11 + " | ".join(f"{c!s:<26}" for c in checkouts))
    print(header)
    for index, rollout in enumerate(ROLLOUTS):
        cells = []
        for checkout in checkouts:
            _, seen, gets, lines = results[checkout][index]
            cells.append(f"{seen:>7.1f}s {seen - rollout:>4.1f}s {gets:>5.0f} {lines:>5.0f}")
        print(f"{rollout:>7}s | " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
