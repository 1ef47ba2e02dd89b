"""Which compression level packs a DAG folder fastest, upload included.

Makes a deterministic DAG-like folder (real Python source, the standard library's twice, and
some incompressible binary files: about 69 MB in 3,700 files), packs it with ci-deploy's bundle
at each ``compression-level`` on ISA-L and on zlib, and prints medians of the packing time,
the tarball's size, and the time to get it to the blob store at two upload bandwidths
(time = packing + size / bandwidth: 200 MB/s, a GitHub-hosted runner to Azure, and a
throttled 20 MB/s). Also: ``tar -czf`` of the same folder, and with ``--baseline DIR`` (a
checkout of an older ci-deploy) the old bundle code side by side; ``--tiny N`` packs N tiny
files (headers dominate) with both.

    .venv/bin/python scripts/bench_compression.py [--runs 3] [--baseline /work/main] \
        [--tiny 100000] [--levels 1,2,3] [--copies 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ci_deploy.bundle import Packing, build_dag_tarball
from ci_deploy.compression import DEFAULT_LEVEL, LEVELS, choose

BANDWIDTHS = {"200 MB/s": 200e6, "20 MB/s": 20e6}


def make_dag_folder(root: Path, *, copies: int = 2, binary_files: int = 150) -> Path:
    """A deterministic DAG-like folder at ``root/dags``: real Python source (this Python's
    standard library, its ``.py`` files ``copies`` times: about 63 MB in 3,600 files for
    3.11) and ``binary_files`` files of 40 KB of random bytes (models, parquet), seeded."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    sources = sorted(
        p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts and p.is_file()
    )
    dags = root / "dags"
    for copy in range(copies):
        for source in sources:
            target = dags / f"team_{copy}" / source.relative_to(stdlib)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    rng = random.Random(11)  # noqa: S311  (deterministic data, not a secret)
    for i in range(binary_files):
        folder = dags / "models" / f"m{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"model_{i}.bin").write_bytes(rng.randbytes(40_000))
    return dags


def make_tiny_folder(root: Path, count: int) -> Path:
    """``count`` files of 20 to 200 bytes in 100 folders: the tar headers dominate."""
    rng = random.Random(7)  # noqa: S311  (deterministic data, not a secret)
    dags = root / "dags"
    for i in range(count):
        folder = dags / f"d{i % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.py").write_bytes(b"x = %d\n" % i * rng.randint(3, 25))
    return dags


def _median(runs: int, job: Callable[[], int]) -> tuple[float, int]:
    """The median time of ``runs`` runs of ``job``, and the size it returned."""
    times, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        size = job()
        times.append(time.perf_counter() - start)
    return statistics.median(times), size


def _load_baseline(checkout: Path) -> ModuleType:
    """The bundle module of another checkout, loaded beside ours."""
    spec = importlib.util.spec_from_file_location(
        "baseline_bundle", checkout / "ci_deploy" / "bundle.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _ours(dags: Path, spool: str, level: int, isal: bool) -> Callable[[], int]:
    def job() -> int:
        with build_dag_tarball(dags, Packing(choose(level, isal=isal), spool)) as bundle:
            return bundle.size

    return job


def _tar_czf(dags: Path, spool: str) -> Callable[[], int]:
    def job() -> int:
        out = Path(spool) / "recipe.tar.gz"
        subprocess.run(["tar", "-czf", str(out), "-C", str(dags.parent), dags.name], check=True)
        size = out.stat().st_size
        out.unlink()
        return size

    return job


_RSS_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
if sys.argv[3] == "baseline":
    from ci_deploy.bundle import build_dag_tarball
    build_dag_tarball(Path(sys.argv[2]))
else:
    from ci_deploy.bundle import Packing, build_dag_tarball
    from ci_deploy.compression import compression_for
    packing = Packing(compression_for(int(sys.argv[3])), sys.argv[4])
    build_dag_tarball(Path(sys.argv[2]), packing).close()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
status = Path("/proc/self/status").read_text()
print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
"""


def peak_rss(checkout: Path, dags: Path, level: str, spool: str) -> int:
    """The peak RSS, in KiB, of a fresh process of ``checkout`` packing ``dags``."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_CHILD, str(checkout), str(dags), level, spool],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return int(out.split()[-1])


def _row(label: str, seconds: float, size: int, content: int) -> str:
    uploads = "  ".join(f"{seconds + size / bw:7.2f} s" for bw in BANDWIDTHS.values())
    ratio = size / content
    return f"{label:<34} {seconds:7.2f} s {size / 1e6:8.1f} MB {ratio:6.3f}  {uploads}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="a checkout of an older ci-deploy")
    parser.add_argument("--tiny", type=int, default=0, help="also pack this many tiny files")
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument("--copies", type=int, default=2, help="copies of the standard library")
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-compression-"))
    try:
        dags = make_dag_folder(work / "big", copies=args.copies)
        content = sum(p.stat().st_size for p in dags.rglob("*") if p.is_file())
        spool = str(work)
        print(f"DAG folder: {content / 1e6:.1f} MB; medians of {args.runs} runs")
        bws = "  ".join(f"{name:>9}" for name in BANDWIDTHS)
        print(f"{'what':<34} {'pack':>9} {'size':>11} {'ratio':>6}  {bws}")
        seconds, size = _median(args.runs, _tar_czf(dags, spool))
        print(_row("tar -czf (gzip -6)", seconds, size, content))
        if args.baseline:
            old = _load_baseline(args.baseline)
            seconds, size = _median(1, lambda: len(old.build_dag_tarball(dags).data))
            print(_row("baseline (GzipFile level 9), 1 run", seconds, size, content))
        for isal in (True, False):
            for level in levels:
                compression = choose(level, isal=isal)
                if not isal and compression.level in (7, 8, 9) and args.runs > 1:
                    runs = 1  # zlib's slowest levels: one run is enough to rule them out
                else:
                    runs = args.runs
                if isal and compression.backend == "zlib":
                    continue  # the same as the zlib row
                seconds, size = _median(runs, _ours(dags, spool, level, isal))
                print(_row(compression.label, seconds, size, content))
        ours = Path(__file__).resolve().parent.parent
        rss = peak_rss(ours, dags, str(DEFAULT_LEVEL), spool)
        print(f"\npeak RSS packing in a fresh process: ours {rss / 1024:.0f} MiB", end="")
        if args.baseline:
            rss = peak_rss(args.baseline, dags, "baseline", spool)
            print(f", baseline {rss / 1024:.0f} MiB", end="")
        print()
        if args.tiny:
            tiny = make_tiny_folder(work / "tiny", args.tiny)
            print(f"\n{args.tiny} tiny files, medians of {args.runs} runs")
            seconds, size = _median(args.runs, _tar_czf(tiny, spool))
            print(f"{'tar -czf':<34} {seconds:7.2f} s")
            if args.baseline:
                old = _load_baseline(args.baseline)
                seconds, size = _median(args.runs, lambda: len(old.build_dag_tarball(tiny).data))
                print(f"{'baseline (PAX via tarfile, level 9)':<34} {seconds:7.2f} s")
            default = choose(DEFAULT_LEVEL, isal=True)
            seconds, size = _median(args.runs, _ours(tiny, spool, DEFAULT_LEVEL, True))
            print(f"{'ours, ' + default.label:<34} {seconds:7.2f} s")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
