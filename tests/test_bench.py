"""``scripts/bench.py``, the benchmark behind ``make bench``: its reference folders are
deterministic, it measures a process tree's peak RSS without counting itself, its table
reads what bench_startup.py prints, and a ``--quick`` run goes end to end.

Nothing here times anything for speed: the benchmark is the place for that."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from scripts import bench

ROOT = Path(__file__).resolve().parent.parent


def test_the_same_seed_makes_the_same_tree_and_another_seed_another(tmp_path: Path) -> None:
    spec = bench.FolderSpec("small", 400_000)
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        bench.generate_folder(tmp_path / name, spec, seed)
    first, files, size = bench.tree_hash(tmp_path / "a")
    assert bench.tree_hash(tmp_path / "b") == (first, files, size)
    assert bench.tree_hash(tmp_path / "c")[0] != first
    assert 400_000 <= size < 400_000 + 800_000  # stops once the target is reached
    names = [p.name for p in (tmp_path / "a").rglob("*") if p.is_file()]
    assert sum(name.endswith(".py") for name in names) > len(names) / 2


def test_dag_folder_python_files_are_real_python(tmp_path: Path) -> None:
    bench.generate_folder(tmp_path / "dags", bench.FolderSpec("small", 300_000), 3)
    sources = list((tmp_path / "dags").rglob("*.py"))
    assert sources
    for source in sources:
        compile(source.read_bytes(), str(source), "exec", dont_inherit=True)


def test_tiny_folder_has_exactly_the_files_asked_for(tmp_path: Path) -> None:
    bench.generate_folder(tmp_path / "tiny", bench.FolderSpec("tiny", 0, tiny_files=1100), 5)
    _, files, size = bench.tree_hash(tmp_path / "tiny")
    assert files == 1100
    assert size < 1100 * 200
    assert len({p.parent for p in (tmp_path / "tiny").rglob("*.py")}) == 2  # 1000 a folder


def test_peak_rss_is_the_childs_not_the_benchmarks_own(tmp_path: Path) -> None:
    grow = "b = bytearray(120 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"
    big = bench.measure([sys.executable, "-c", grow], cwd=tmp_path, timeout=60, what="grow")
    small = bench.measure(["sh", "-c", "exit 3"], cwd=tmp_path, timeout=60, what="exit")
    assert big.returncode == 0
    assert big.peak_rss >= 120 * bench.MIB
    assert small.returncode == 3
    assert 0 < small.peak_rss < 20 * bench.MIB  # this test's process is far larger


def test_a_measurement_past_its_timeout_is_killed_and_reported(tmp_path: Path) -> None:
    with pytest.raises(bench.BenchError, match=r"^a sleep: no result within 0.5 s \(killed\)$"):
        bench.measure(["sleep", "30"], cwd=tmp_path, timeout=0.5, what="a sleep")


def test_startup_rows_read_bench_startup_output() -> None:
    output = (
        "process start -> first API request, DAG-only run, median of 15:\n"
        "     212 ms  (1.00x)  CPU  150 ms  (1.00x)  /w/this  (bytecode cached)\n"
        "     431 ms  (2.03x)  CPU  300 ms  (2.00x)  /w/base  (bytecode cached)\n"
        "invalid input -> exit, median of 15:\n"
        "     150 ms  (1.00x)  /w/this\n"
        "     600 ms  (4.00x)  /w/base\n"
    )
    rows = bench.startup_rows(output, {Path("/w/this"): "this", Path("/w/base"): "baseline"})
    assert [(row.what, row.values) for row in rows] == [
        (
            "process start -> first API request, DAG-only run, median of 15",
            {"this": 212.0, "baseline": 431.0},
        ),
        ("invalid input -> exit, median of 15", {"this": 150.0, "baseline": 600.0}),
    ]


def test_table_gives_medians_and_ratios_to_the_recipe_and_the_baseline() -> None:
    rows = [
        bench.Row("run time", {"this": 1.0, "baseline": 4.0}, recipe=2.0),
        bench.Row("peak RSS", {"this": 80 * bench.MIB, "baseline": 400 * bench.MIB}, unit="MiB"),
    ]
    assert bench.table(rows, ["this", "baseline"]) == [
        "| what | ci-deploy (this) | ci-deploy (baseline) | recipe | this / recipe "
        "| baseline / recipe | this / baseline |",
        "|---|---|---|---|---|---|---|",
        "| run time | 1.00 s | 4.00 s | 2.00 s | 0.50x | 2.00x | 0.25x |",
        "| peak RSS | 80.0 MiB | 400.0 MiB | - | - | - | 0.20x |",
    ]


def test_quick_bench_runs_end_to_end_and_prints_the_table(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "scripts/bench.py", "--quick", "--bench-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    lines = done.stdout.splitlines()
    assert "| what | ci-deploy (this) | recipe | this / recipe |" in lines
    cells = {
        row[0]: row[1:] for row in (line.strip("| ").split(" | ") for line in lines[3:]) if row
    }
    run = r"DAG-only run, \d+ MB, [\d,]+ files: "
    time, rss, uploaded = (
        next(v for k, v in cells.items() if re.fullmatch(run + what, k))
        for what in ("run time", "peak RSS", "bytes uploaded")
    )
    assert re.fullmatch(r"[\d.]+ s", time[0]) and re.fullmatch(r"[\d.]+ s", time[1])
    assert re.fullmatch(r"[\d.]+x", time[2])
    assert all(re.fullmatch(r"[\d.]+ MiB", cell) for cell in rss[:2] + uploaded[:2])
    assert uploaded[0] != "0.0 MiB" and uploaded[1] != "0.0 MiB"
    startup = next(v for k, v in cells.items() if k.startswith("process start -> first API"))
    assert re.fullmatch(r"\d+ ms", startup[0])
    assert any(k.startswith("bundle only, 300 tiny files") for k in cells)
    syntax = next(k for k in cells if k.startswith("syntax check"))
    assert "(0 broken)" in syntax  # the generated Python compiles
