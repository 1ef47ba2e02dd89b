"""The syntax check of a large DAG folder: the baseline's serial check against this checkout's.

    python scripts/bench_syntax.py [--baseline REV] [--megabytes 63] [--runs 3] [--crossover]

The DAG folder is made of the standard library's own ``.py`` files (this Python's, sorted,
``site-packages`` left out), copied again with a ``# copy N`` first line until it holds
``--megabytes`` MiB: real Python, every file distinct (so no result comes from the cache),
the same tree on every run with the same Python. It is committed to a git repository in a
temporary folder; then three files are changed for the changed-only case.

Each measurement runs in a fresh process (the pool's start-up and the per-process cache
count) and times the check itself, the files already in the page cache:

- ``baseline``: ``ci_deploy/syntax.py`` of ``--baseline`` (a git revision of this
  repository, ``main`` by default), serial;
- ``all, N processes``: this checkout's check of every file, on every usable core;
- ``all, 1 process``: the same in one process;
- ``changed only``: the check of a deploy compared with the commit the Deployment runs
  (the git lookup of that commit's files included), 3 files changed.

Runs alternate between the variants, so all see the same machine; medians and the ratio to
the baseline are printed side by side. ``--crossover`` times, in one process, small amounts
of Python compiled here and by the pool, to place :data:`ci_deploy.syntax.BATCH_BYTES`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

_CHANGED = 3


def make_tree(folder: Path, size: int) -> int:
    """Fill ``folder/dags`` with ``size`` bytes of the standard library's Python; file count."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = sorted(
        p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts and p.is_file()
    )
    total = count = copy = 0
    while total < size:
        for source in sources:
            data = source.read_bytes()
            if copy:
                data = b"# copy %d\n" % copy + data
            target = folder / "dags" / f"c{copy}" / source.relative_to(stdlib)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            total, count = total + len(data), count + 1
            if total >= size:
                break
        copy += 1
    return count


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    done = subprocess.run(
        ["git", *identity, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def change_some(folder: Path) -> None:
    """Edit the first ``_CHANGED`` files of the tree (a comment appended)."""
    files = sorted((folder / "dags").rglob("*.py"))[:_CHANGED]
    for file in files:
        file.write_bytes(file.read_bytes() + b"\n# changed\n")


# --- one measurement, in its own process ---------------------------------------------------


def cpu_seconds() -> float:
    """User and system time of this process and its finished children (the pool's workers)."""
    usages = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return sum(u.ru_utime + u.ru_stime for u in usages)


def measure(variant: str, folder: Path, deployed_sha: str, baseline: str) -> dict[str, float]:
    dags = folder / "dags"
    members = sorted(
        "dags/" + p.relative_to(dags).as_posix() for p in dags.rglob("*") if p.is_file()
    )
    if variant == "baseline":
        module = types.ModuleType("baseline_syntax")
        sys.modules[module.__name__] = module  # dataclasses look their module up
        exec(compile(baseline, "baseline_syntax.py", "exec"), module.__dict__)  # noqa: S102
        start, cpu = time.perf_counter(), cpu_seconds()
        problems = module.check_python_files(dags, members, path_prefix="")
        elapsed = time.perf_counter() - start
        return {"seconds": elapsed, "cpu": cpu_seconds() - cpu, "problems": len(problems)}

    from ci_deploy import gitrepo
    from ci_deploy.syntax import check_python_files, usable_cores

    start, cpu = time.perf_counter(), cpu_seconds()
    deployed: dict[str, str] = {}
    if variant == "changed":
        repo = gitrepo.open_repo(dags)
        try:
            deployed = gitrepo.blob_ids(repo, deployed_sha, gitrepo.repo_relative(repo, dags))
        finally:
            repo.close()
    workers = 1 if variant == "serial" else usable_cores()
    found = check_python_files(dags, members, path_prefix="", deployed=deployed, workers=workers)
    elapsed = time.perf_counter() - start
    return {
        "seconds": elapsed,
        "cpu": cpu_seconds() - cpu,
        "problems": len(found.problems),
        "checked": found.checked,
        "processes": found.processes,
    }


def crossover(runs: int) -> None:
    """Compile growing amounts here and in the pool (batches of an eighth of the work, a fresh
    cache each time): the medians in milliseconds."""
    from ci_deploy.syntax import check_python_files, usable_cores

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_tree(folder, 4 * 1024 * 1024)
        dags = folder / "dags"
        files = sorted(dags.rglob("*.py"))
        print(f"{'KiB':>6} {'here (ms)':>10} {'pool (ms)':>10}   ({usable_cores()} cores)")
        for kib in (32, 64, 128, 256, 512, 1024, 2048):
            members, total = [], 0
            for file in files:
                if total >= kib * 1024:
                    break
                members.append("dags/" + file.relative_to(dags).as_posix())
                total += file.stat().st_size
            times: dict[str, list[float]] = {"here": [], "pool": []}
            for _ in range(runs):
                for how, workers, batch in (("here", 1, 1), ("pool", usable_cores(), total // 8)):
                    start = time.perf_counter()
                    check_python_files(
                        dags, members, path_prefix="", cache={}, workers=workers, batch_bytes=batch
                    )
                    times[how].append((time.perf_counter() - start) * 1000)
            here, pool = (statistics.median(times[k]) for k in ("here", "pool"))
            print(f"{kib:>6} {here:>10.0f} {pool:>10.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="main", help="git revision of the old check")
    parser.add_argument("--megabytes", type=float, default=63.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--crossover", action="store_true")
    parser.add_argument("--measure", nargs=3, metavar=("VARIANT", "FOLDER", "SHA"))
    args = parser.parse_args()
    if args.crossover:
        crossover(args.runs)
        return
    baseline = git(ROOT, "show", f"{args.baseline}:ci_deploy/syntax.py")
    if args.measure:
        variant, folder, sha = args.measure
        print(json.dumps(measure(variant, Path(folder), sha, baseline)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        count = make_tree(folder, int(args.megabytes * 1024 * 1024))
        git(folder, "init", "-q")
        git(folder, "add", "-A")
        git(folder, "commit", "-q", "-m", "deployed")
        deployed_sha = git(folder, "rev-parse", "HEAD")
        change_some(folder)
        size = sum(p.stat().st_size for p in (folder / "dags").rglob("*.py"))
        print(f"{count} files, {size / 2**20:.1f} MiB of Python; baseline {args.baseline}")
        variants = {
            "baseline": f"baseline ({args.baseline}), serial",
            "parallel": "all, every core",
            "serial": "all, 1 process",
            "changed": f"changed only ({_CHANGED} files)",
        }
        results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        load = os.getloadavg()[0]
        for _ in range(args.runs):
            for variant in variants:
                done = subprocess.run(
                    [sys.executable, __file__, "--baseline", args.baseline, "--measure",
                     variant, str(folder), deployed_sha],
                    check=True, stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
                results[variant].append(json.loads(done.stdout))
        print(f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")

        def median(variant: str, key: str) -> float:
            return statistics.median(r[key] for r in results[variant])

        wall, cpu = median("baseline", "seconds"), median("baseline", "cpu")
        print(f"{'':30} {'wall s':>7} {'ratio':>6} {'CPU s':>7} {'ratio':>6}  wall of each run (s)")
        for variant, label in variants.items():
            runs = " ".join(f"{r['seconds']:.2f}" for r in results[variant])
            last = results[variant][-1]
            detail = (
                f"  [{last['checked']:.0f} checked, {last['processes']:.0f} processes]"
                if "checked" in last
                else ""
            )
            w, c = median(variant, "seconds"), median(variant, "cpu")
            ratios = f"{w:>7.2f} {w / wall:>6.2f} {c:>7.2f} {c / cpu:>6.2f}"
            print(f"{label:30} {ratios}  {runs}{detail}")


if __name__ == "__main__":
    main()
