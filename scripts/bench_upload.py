"""Upload speed and memory: the old sequential upload against the parallel one.

Usage: ``.venv/bin/python scripts/bench_upload.py [--sizes 64,512] [--runs 3]
[--old-ref 4f785ac] [--latency 0] [--settings 8:4,4:4]``

For each size (MiB) a deterministic file is uploaded to the emulator's blob endpoint on
127.0.0.1, each run against a fresh emulator (it keeps what it receives in memory), each
upload in a fresh process so its peak RSS is its own. ``old`` is ``upload_blob`` as of
``--old-ref`` (git; by default the last sequential one), given the file's bytes as the old
pipeline did; ``new`` is this checkout's, given the file's path, once per
``block MiB:concurrency`` setting.
``--latency`` answers each blob PUT that many seconds late (the emulator's slow fault),
like a far blob store. Prints medians and the ratio to ``old``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from ci_deploy_testkit.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
SEQUENTIAL = "4f785ac"
"""The last commit whose upload sent its blocks one after another, from bytes."""
MIB = 1024 * 1024

_CHILD = r"""
import json, sys, time, importlib.util
from pathlib import Path
module_path, url, file, mode, block, concurrency = sys.argv[1:7]
spec = importlib.util.spec_from_file_location("upload_under_test", module_path)
module = importlib.util.module_from_spec(spec)
sys.modules["upload_under_test"] = module
spec.loader.exec_module(module)
started = time.perf_counter()
if mode == "old":
    version = module.upload_blob(url, Path(file).read_bytes())
else:
    version = module.upload_blob(
        url, Path(file), block_size=int(block), concurrency=int(concurrency)
    )
elapsed = time.perf_counter() - started
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent across exec.
status = Path("/proc/self/status").read_text()
rss = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) / 1024
print(json.dumps({"seconds": elapsed, "rss_mib": rss, "version": version}))
"""


def make_file(directory: Path, size_mib: int) -> Path:
    path = directory / f"bundle-{size_mib}.bin"
    with path.open("wb") as out:
        for counter in range(size_mib * 16):  # 64 KiB pieces, incompressible-looking
            out.write(hashlib.sha512(f"{counter}".encode()).digest() * 1024)
    return path


def one_run(module: Path, file: Path, mode: str, block: int, conc: int, latency: float) -> dict:
    with Emulator(rollout_seconds=0) as emu:
        if latency:
            emu.faults.add_slow("PUT", r"^/blob/", latency, count=1_000_000)
        url = emu.upload_url()
        args = [str(module), url, str(file), mode, str(block * MIB), str(conc)]
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, check=True
        )
        result = json.loads(out.stdout)
        assert len(emu.blobs[result["version"]]) == file.stat().st_size
        return dict(result)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,512")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--old-ref", default=SEQUENTIAL)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--settings", default="8:4")
    options = parser.parse_args()
    settings = [tuple(int(x) for x in s.split(":")) for s in options.settings.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        old = directory / "old_upload.py"
        old.write_text(
            subprocess.run(
                ["git", "show", f"{options.old_ref}:ci_deploy/astro/upload.py"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        new = ROOT / "ci_deploy" / "astro" / "upload.py"
        print(f"latency per blob PUT: {options.latency} s; median of {options.runs} runs")
        print(f"{'size':>8} {'code':<22} {'seconds':>8} {'ratio':>6} {'peak RSS MiB':>13}")
        for size in (int(s) for s in options.sizes.split(",")):
            file = make_file(directory, size)
            cases = [("old (sequential)", old, "old", 8, 1)]
            cases += [(f"new {b} MiB x {c}", new, "new", b, c) for b, c in settings]
            base = None
            for name, module, mode, block, conc in cases:
                runs = [
                    one_run(module, file, mode, block, conc, options.latency)
                    for _ in range(options.runs)
                ]
                seconds = statistics.median(r["seconds"] for r in runs)
                rss = statistics.median(r["rss_mib"] for r in runs)
                base = base or seconds
                print(
                    f"{size:>5} MiB {name:<22} {seconds:>8.2f} {seconds / base:>6.2f} {rss:>13.0f}",
                    flush=True,
                )
            file.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
