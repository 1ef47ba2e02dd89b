"""What the build stage logs of a tarball: a summary, and its files only when they are few."""

from __future__ import annotations

import io
from pathlib import Path

from ci_deploy.bundle import Packing, build_dag_tarball
from ci_deploy.compression import choose
from ci_deploy.runner import Runner
from ci_deploy.stages import build as stage


def _log(folder: Path, tmp_path: Path) -> list[str]:
    out = io.StringIO()
    runner = Runner({"GITHUB_ACTIONS": "true"}, out)
    with build_dag_tarball(folder, Packing(choose(3, isal=True), str(tmp_path))) as bundle:
        stage._describe(bundle, "dags/", runner)
        sha = bundle.sha256
    return [line.replace(sha, "<sha>") for line in out.getvalue().splitlines()]


def test_a_small_tarball_lists_its_files_in_a_group_then_the_summary(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "a.py").write_bytes(b"a" * 10)
    (dags / "big.csv").write_bytes(b"b" * 5000)
    (dags / "mid.py").write_bytes(b"m" * 2048)

    log = _log(dags, tmp_path)

    size = next(line for line in log if line.startswith("Bundled dags/: 3 files, 6.9 KiB"))
    assert log == [
        "::group ::Bundled dags/: 3 files",  # the library writes it so
        "  dags/a.py (10 B)",
        "  dags/big.csv (4.9 KiB)",
        "  dags/mid.py (2.0 KiB)",
        "::endgroup::",
        size,
        "Largest: dags/big.csv (4.9 KiB), dags/mid.py (2.0 KiB), dags/a.py (10 B)",
    ]
    assert size.startswith("Bundled dags/: 3 files, 6.9 KiB, gzip level 3 (ISA-L level 3) to ")
    assert size.endswith(", sha256 <sha>")


def test_a_large_tarball_is_only_summarised(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    count = stage.LISTED_MEMBERS + 1
    for i in range(count):
        (dags / f"f{i:03d}.py").write_bytes(b"x" * i)

    log = _log(dags, tmp_path)

    assert len(log) == 2, log
    assert log[0].startswith(f"Bundled dags/: {count} files, ")
    largest = [f"dags/f{i:03d}.py ({i} B)" for i in range(count - 1, count - 6, -1)]
    assert log[1] == "Largest: " + ", ".join(largest)
