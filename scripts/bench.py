"""The benchmark of issue 11: ci-deploy against the recipe Astro's docs give, side by side.

    python scripts/bench.py [--baseline CHECKOUT] [--runs N] [--large] [--quick]

``make bench`` runs it (``BASELINE=<another checkout with its own .venv>`` compares,
``BENCH_LARGE=1`` adds the 1 GB folder, ``BENCH_RUNS``, ``BENCH_DIR`` as the options).

What it does, in one run:

1. Generates the reference folders, deterministically (seeded; the Python files are this
   interpreter's standard library sources, so a tree depends on the seed and the Python
   version), once: they are cached under ``BENCH_DIR`` (``.bench-cache/``). The DAG folder
   is ~3,000 files / ~63 MB (mostly Python, some SQL, CSV, JSON and a few incompressible
   binaries), committed to a git repository with a second commit editing one DAG; the
   large one is the same recipe at 16 times the size (~1 GB); the tiny one is 100,000
   files of about 120 bytes.
2. Starts the testkit's Astro emulator on 127.0.0.1 with ``keep_blobs=False`` (each
   upload leaves its size and sha256, not its bytes).
3. Runs, alternating, ``--runs`` times each: (a) every checkout's ``entrypoint.py`` as the
   GitHub runner starts it (``INPUT_*``, a push event whose change is a DAG file, DAG-only,
   ``wait: false``, ``syntax-check: false``, ``compare-to: event`` so that every run sees
   that change), checked to have made a DAG_ONLY deploy; (b) the
   recipe: ``tar -czf`` of the DAG folder then ``curl -T`` of the file to a deploy's
   ``dagsUploadUrl`` on the same emulator (the deploy is created before and finalized after
   the timed part). Measured: wall time; peak RSS, the ``ru_maxrss`` of the process tree
   as GNU time (or a small Python parent) reports it: the largest single process of the
   tree, processes running at once (like tar and gzip) not summed; bytes uploaded, the
   ``Content-Length`` sum of the run's blob requests at the emulator.
4. The 100,000 tiny files, bundle only: ``ci_deploy.bundle.build_dag_tarball`` timed inside
   each checkout's own interpreter against the ``tar -czf`` process.
5. The syntax check: ``ci_deploy.syntax.check_python_files`` over every ``.py`` file of the
   DAG folder, timed inside each checkout's own interpreter.
6. ``scripts/bench_startup.py`` (process start to the first API request, and what else it
   measures), whose lines become rows of the table.

It prints one markdown table: medians, and the ratios to the recipe and to the baseline.
Speed is checked here, never by timed asserts in the tests.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from ci_deploy_testkit.emulator import Emulator

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parent
EXAMPLE = CHECKOUT / "examples" / "astro-project"
SEED = 11
MIB = 1024 * 1024

_T = TypeVar("_T")


# -- the reference folders ------------------------------------------------------------


@dataclass(frozen=True)
class FolderSpec:
    """A generated folder: its name in the cache, and how many bytes it aims at."""

    name: str
    total_bytes: int
    tiny_files: int = 0
    """When set, the folder is this many tiny files instead (``total_bytes`` is ignored)."""


DAGS = FolderSpec("dags-63mb", 63_000_000)
LARGE = FolderSpec("dags-1gb", 16 * 63_000_000)
TINY = FolderSpec("tiny-100k", 0, tiny_files=100_000)
QUICK_DAGS = FolderSpec("quick-dags", 1_200_000)
QUICK_TINY = FolderSpec("quick-tiny", 0, tiny_files=300)

_SKIPPED_SOURCES = {"test", "tests", "idle_test", "lib2to3", "site-packages", "__pycache__"}
_TEAMS = 24
_WORDS = (
    *("orders", "customers", "events", "sessions", "revenue", "daily", "hourly", "staging"),
    *("raw", "clean", "dim", "fact", "snapshot", "ingest", "export", "report", "metrics"),
    *("users", "payments", "inventory", "shipments"),
)


@functools.cache
def stdlib_sources() -> tuple[bytes, ...]:
    """The standard library's ``.py`` files (no tests), sorted by path: real Python."""
    root = Path(sysconfig.get_paths()["stdlib"])
    paths = sorted(
        p
        for p in root.rglob("*.py")
        if not _SKIPPED_SOURCES & set(p.relative_to(root).parts) and p.is_file()
    )
    return tuple(p.read_bytes() for p in paths)


def _sql(rng: random.Random, size: int) -> bytes:
    lines: list[str] = []
    length = 0
    while length < size:
        table, column = rng.choice(_WORDS), rng.choice(_WORDS)
        line = (
            f"SELECT {column}_id, SUM({rng.choice(_WORDS)}_amount) AS total_{column}\n"
            f"FROM {table}_{rng.randrange(100)} WHERE {column}_date >= '2024-"
            f"{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}' GROUP BY 1;\n"
        )
        lines.append(line)
        length += len(line)
    return "".join(lines).encode()


def _csv(rng: random.Random, size: int) -> bytes:
    rows = ["id,name,amount,ratio,created"]
    length = 0
    while length < size:
        row = (
            f"{rng.getrandbits(32)},{rng.choice(_WORDS)},{rng.randrange(100000)},"
            f"{rng.random():.6f},2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
        )
        rows.append(row)
        length += len(row) + 1
    return ("\n".join(rows) + "\n").encode()


def _json(rng: random.Random, size: int) -> bytes:
    items: list[dict[str, object]] = []
    length = 0
    while length < size:
        item = {
            "name": f"{rng.choice(_WORDS)}_{rng.randrange(1000)}",
            "enabled": rng.random() < 0.8,
            "retries": rng.randrange(5),
            "tags": rng.sample(_WORDS, 3),
        }
        items.append(item)
        length += 90
    return json.dumps(items, indent=2, sort_keys=True).encode()


# (extension, share of the files, smallest and largest size); Python is a stdlib file.
_KINDS: tuple[tuple[str, float, int, int], ...] = (
    (".py", 0.85, 0, 0),
    (".sql", 0.06, 2_000, 20_000),
    (".json", 0.04, 1_000, 30_000),
    (".csv", 0.04, 10_000, 120_000),
    (".bin", 0.01, 20_000, 300_000),
)


def _dag_files(spec: FolderSpec, seed: int) -> Iterator[tuple[str, bytes]]:
    """``(relative path, content)`` of a DAG folder, until ``spec.total_bytes`` is reached."""
    rng = random.Random(seed)  # noqa: S311 (seeded test data, not secrets)
    sources = stdlib_sources()
    extensions = [kind[0] for kind in _KINDS]
    weights = [kind[1] for kind in _KINDS]
    sizes = {kind[0]: kind[2:] for kind in _KINDS}
    makers: dict[str, Callable[[random.Random, int], bytes]] = {
        ".sql": _sql,
        ".json": _json,
        ".csv": _csv,
        ".bin": lambda r, n: r.randbytes(n),
    }
    written = index = 0
    while written < spec.total_bytes:
        extension = rng.choices(extensions, weights)[0]
        team = f"team_{rng.randrange(_TEAMS):02d}"
        stem = f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}_{index:05d}"
        if extension == ".py":
            content = rng.choice(sources)
            path = f"{team}/{stem}.py"
        else:
            content = makers[extension](rng, rng.randint(*sizes[extension]))
            folder = {".sql": "sql", ".bin": "models"}.get(extension, "data")
            path = f"{team}/{folder}/{stem}{extension}"
        yield path, content
        written += len(content)
        index += 1


def _tiny_files(spec: FolderSpec, seed: int) -> Iterator[tuple[str, bytes]]:
    rng = random.Random(seed)  # noqa: S311 (seeded test data, not secrets)
    for index in range(spec.tiny_files):
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(1, 12)))
        content = f'VALUE_{index} = {rng.randrange(10**6)}  # {words}\n"""{words}"""\n'
        yield f"part_{index // 1000:03d}/tiny_{index:06d}.py", content.encode()


def generate_folder(folder: Path, spec: FolderSpec, seed: int) -> None:
    """Write the files of ``spec`` under ``folder`` (which must not exist yet)."""
    files = _tiny_files(spec, seed) if spec.tiny_files else _dag_files(spec, seed)
    folder.mkdir(parents=True)
    made: set[Path] = set()
    for relative, content in files:
        path = folder / relative
        if path.parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent)
        path.write_bytes(content)


def tree_hash(folder: Path) -> tuple[str, int, int]:
    """sha256 over the sorted (path, content sha256) of every file; and files, bytes."""
    digest = hashlib.sha256()
    files = size = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        relative = path.relative_to(folder).as_posix()
        digest.update(f"{relative}\0{hashlib.sha256(data).hexdigest()}\n".encode())
        files += 1
        size += len(data)
    return digest.hexdigest(), files, size


@dataclass(frozen=True)
class Workspace:
    """A cached reference folder: a git repository whose ``dags/`` folder is generated."""

    repo: Path
    event: Path
    after: str
    files: int
    size: int

    @property
    def dags(self) -> Path:
        return self.repo / "dags"


def _git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com"]
    done = subprocess.run(
        ["git", *identity, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def workspace(cache: Path, spec: FolderSpec, seed: int, *, repository: bool) -> Workspace:
    """The cached folder of ``spec``, generated (and committed) first when missing.

    A folder counts as present only when its ``complete.json`` exists, written last.
    """
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    home = cache / f"{spec.name}-s{seed}-{python}"
    marker = home / "complete.json"
    if not marker.is_file():
        shutil.rmtree(home, ignore_errors=True)
        repo = home / "repo"
        print(f"generating {home} (once; cached) ...", file=sys.stderr, flush=True)
        if repository:
            shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("dags"))
        generate_folder(repo / "dags", spec, seed)
        before = after = ""
        if repository:
            _git(repo, "init", "-q", "-b", "main")
            _git(repo, "add", "-A")
            _git(repo, "commit", "-qm", "Add the project")
            before = _git(repo, "rev-parse", "HEAD")
            dag = min((repo / "dags").rglob("*.py"))
            dag.write_bytes(dag.read_bytes() + b"\n# edited\n")
            _git(repo, "commit", "-qam", "Edit a DAG")
            after = _git(repo, "rev-parse", "HEAD")
        _, files, size = tree_hash(repo / "dags")
        event = {"ref": "refs/heads/main", "before": before, "after": after}
        (home / "event.json").write_text(json.dumps(event))
        marker.write_text(json.dumps({"after": after, "files": files, "bytes": size}))
    facts = json.loads(marker.read_text())
    return Workspace(
        home / "repo", home / "event.json", facts["after"], facts["files"], facts["bytes"]
    )


# -- measuring one process ------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    """One finished process: wall seconds, its tree's largest RSS, exit code and output."""

    seconds: float
    peak_rss: int
    """Bytes: the largest single process of the tree (see :func:`rss_command`)."""
    returncode: int
    output: str


class BenchError(Exception):
    """A measurement that failed: what ran, and the end of its output."""


_WRAPPER = """
import os, resource, sys
report, command = sys.argv[1], sys.argv[2:]
pid = os.posix_spawnp(command[0], command, os.environ)
status = os.waitpid(pid, 0)[1]
with open(report, "w") as file:
    file.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def _gnu_time() -> bool:
    try:
        done = subprocess.run(["/usr/bin/time", "--version"], capture_output=True, text=True)
    except OSError:
        return False
    return "GNU" in done.stdout + done.stderr


GNU_TIME = _gnu_time()


def rss_command(command: Sequence[str], report: Path) -> list[str]:
    """``command`` under a small parent that writes the peak RSS (KiB) of its tree to
    ``report``: GNU time, else a Python one (whose own ~8 MiB is then the floor).

    A parent is needed because ``ru_maxrss`` counts a process's size before its exec too:
    a child forked straight from this (large) process would report this process's RSS.
    """
    if GNU_TIME:
        return ["/usr/bin/time", "-f", "%M", "-o", str(report), *command]
    return [sys.executable, "-S", "-c", _WRAPPER, str(report), *command]


def measure(
    command: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float,
    what: str,
) -> Measured:
    """Run ``command`` to its end (its process group killed after ``timeout`` seconds)."""
    with tempfile.TemporaryDirectory(prefix="ci-deploy-measure-") as tmp:
        report, log_path = Path(tmp) / "rss", Path(tmp) / "log"
        with log_path.open("wb") as log:
            started = time.perf_counter()
            process = subprocess.Popen(
                rss_command(command, report),
                cwd=cwd,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            timer = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGKILL))
            timer.start()
            try:
                returncode = process.wait()
            finally:
                timer.cancel()
            seconds = time.perf_counter() - started
        output = log_path.read_text("utf-8", "replace")
        # GNU time puts "Command exited with non-zero status N" first when it did.
        lines = report.read_text().split() if report.is_file() else []
        peak = int(lines[-1]) if lines and lines[-1].isdigit() else 0
    if returncode == -signal.SIGKILL and seconds >= timeout:
        raise BenchError(f"{what}: no result within {timeout:g} s (killed)")
    return Measured(seconds, peak * 1024, returncode, output)


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _python(checkout: Path) -> str:
    return str(checkout / ".venv" / "bin" / "python")


# -- the deploy runs ------------------------------------------------------------------


@dataclass(frozen=True)
class RunSample:
    seconds: float
    peak_rss: int
    uploaded: int


class Bench:
    """The emulator and the measurements made against it."""

    def __init__(self, emulator: Emulator, scratch: Path, timeout: float) -> None:
        self.emulator = emulator
        self.scratch = scratch
        self.timeout = timeout

    def _uploaded_since(self, first: int) -> int:
        with self.emulator.lock:
            requests = self.emulator.requests[first:]
        return sum(
            int(r.headers.get("content-length", 0))
            for r in requests
            if r.path.startswith("/blob/") and r.method == "PUT"
        )

    def ci_deploy(self, checkout: Path, place: Workspace) -> RunSample:
        """One DAG-only run of ``checkout``'s entrypoint, as the runner starts it."""
        runner = self.scratch / "runner"
        shutil.rmtree(runner, ignore_errors=True)
        runner.mkdir()
        (runner / "output").write_text("")
        (runner / "summary.md").write_text("")
        prefixes = ("GITHUB_", "INPUT_", "RUNNER_", "ASTRO_", "ACTIONS_", "PYTHONPYCACHE")
        env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
        env.update(
            {
                "PYTHONDONTWRITEBYTECODE": "1",  # as in the image: its bytecode is read only
                "CI": "true",
                "GITHUB_ACTIONS": "true",
                "GITHUB_WORKSPACE": str(place.repo),
                "GITHUB_EVENT_NAME": "push",
                "GITHUB_EVENT_PATH": str(place.event),
                "GITHUB_REPOSITORY": "bench/project",
                "GITHUB_SHA": place.after,
                "GITHUB_REF": "refs/heads/main",
                "GITHUB_OUTPUT": str(runner / "output"),
                "GITHUB_STEP_SUMMARY": str(runner / "summary.md"),
                "RUNNER_TEMP": str(runner),
                "ASTRO_API_TOKEN": self.emulator.token,
                "INPUT_API-URL": self.emulator.api_url,
                "INPUT_DEPLOYMENT-ID": self.emulator.deployment_id,
                "INPUT_WAIT": "false",
                "INPUT_SYNTAX-CHECK": "false",
                # The push's own change every time, though the Deployment runs it already.
                "INPUT_COMPARE-TO": "event",
            }
        )
        deploys = len(self.emulator.deploys(self.emulator.deployment_id))
        first = len(self.emulator.requests)
        what = f"ci-deploy ({checkout}) on {place.dags}"
        done = measure(
            [_python(checkout), str(checkout / "entrypoint.py")],
            cwd=place.repo,
            env=env,
            timeout=self.timeout,
            what=what,
        )
        made = self.emulator.deploys(self.emulator.deployment_id)[deploys:]
        if done.returncode != 0 or [d["type"] for d in made] != ["DAG_ONLY"]:
            raise BenchError(
                f"{what}: exit code {done.returncode}, deploys made "
                f"{[d['type'] for d in made]} (one DAG_ONLY expected):\n{_tail(done.output)}"
            )
        return RunSample(done.seconds, done.peak_rss, self._uploaded_since(first))

    def recipe(self, place: Workspace) -> RunSample:
        """``tar -czf`` then ``curl -T`` to a fresh deploy's upload URL (only those timed)."""
        deploys = (
            f"{self.emulator.api_url}/organizations/{self.emulator.organization_id}"
            f"/deployments/{self.emulator.deployment_id}/deploys"
        )
        deploy = self._post(deploys, {"type": "DAG_ONLY"})
        tarball = self.scratch / "dags.tar.gz"
        script = (
            'tar -czf "$1" -C "$2" dags && '
            'curl -sS --fail -o /dev/null -T "$1" -H "x-ms-blob-type: BlockBlob" "$3"'
        )
        blobs = len(self.emulator.stored_blobs)
        first = len(self.emulator.requests)
        done = measure(
            ["sh", "-c", script, "sh", str(tarball), str(place.repo), deploy["dagsUploadUrl"]],
            cwd=self.scratch,
            timeout=self.timeout,
            what=f"the recipe on {place.dags}",
        )
        tarball.unlink(missing_ok=True)
        versions = list(self.emulator.stored_blobs)[blobs:]
        if done.returncode != 0 or len(versions) != 1:
            raise BenchError(f"the recipe: exit code {done.returncode}:\n{_tail(done.output)}")
        self._post(f"{deploys}/{deploy['id']}/finalize", {"dagTarballVersion": versions[0]})
        return RunSample(done.seconds, done.peak_rss, self._uploaded_since(first))

    def _post(self, url: str, body: dict[str, str]) -> dict[str, str]:
        request = urllib.request.Request(  # noqa: S310 (the emulator's http URL)
            url,
            data=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.emulator.token}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            answer: dict[str, str] = json.load(response)
            return answer


# -- timing a function inside a checkout's own interpreter ----------------------------

_SYNTAX_PROBE = """
import json, os, sys, time
from pathlib import Path
from ci_deploy.syntax import check_python_files
folder = Path(sys.argv[1]).resolve()
members = sorted(
    os.path.relpath(os.path.join(d, f), folder.parent).replace(os.sep, "/")
    for d, _, names in os.walk(folder) for f in names if f.endswith(".py")
)
started = time.perf_counter()
checked = check_python_files(folder, members, path_prefix="")
seconds = time.perf_counter() - started
problems = getattr(checked, "problems", checked)  # a SyntaxCheck after issue 11, else a list
print(json.dumps({"seconds": seconds, "files": len(members), "problems": len(problems)}))
"""

_BUNDLE_PROBE = """
import json, sys, time
from pathlib import Path
from ci_deploy.bundle import build_dag_tarball
started = time.perf_counter()
built = build_dag_tarball(Path(sys.argv[1]))
seconds = time.perf_counter() - started
getattr(built, "close", lambda: None)()  # a spooled tarball's file (after issue 11)
print(json.dumps({"seconds": seconds}))
"""


def probe(checkout: Path, code: str, folder: Path, timeout: float, what: str) -> dict[str, float]:
    """Run ``code`` with ``folder`` in ``checkout``'s interpreter; its last line's JSON."""
    done = measure(
        [_python(checkout), "-c", code, str(folder)], cwd=checkout, timeout=timeout, what=what
    )
    lines = done.output.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise BenchError(f"{what}: exit code {done.returncode}:\n{_tail(done.output)}")
    facts: dict[str, float] = json.loads(lines[-1])
    return facts


# -- the table ------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table: a median per checkout (by label), and the recipe's."""

    what: str
    values: dict[str, float] = field(default_factory=dict)
    recipe: float | None = None
    unit: str = "s"


def show(value: float | None, unit: str) -> str:
    """A median as the table shows it."""
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"
    if unit == "ms":
        return f"{value:.0f} ms"
    return f"{value / MIB:.1f} MiB"


def ratio(value: float | None, other: float | None) -> str:
    return "-" if value is None or not other else f"{value / other:.2f}x"


def table(rows: Sequence[Row], labels: Sequence[str]) -> list[str]:
    """The markdown table: medians per checkout and the recipe, then ratios.

    ``labels[0]`` is the checkout measured; with a second label (the baseline) each row
    also gets the baseline's ratio to the recipe and this checkout's ratio to the baseline.
    """
    head = ["what", *[f"ci-deploy ({label})" for label in labels], "recipe"]
    head += [f"{label} / recipe" for label in labels]
    if len(labels) > 1:
        head.append(f"{labels[0]} / {labels[1]}")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row.what, *[show(row.values.get(label), row.unit) for label in labels]]
        cells.append(show(row.recipe, row.unit))
        cells += [ratio(row.values.get(label), row.recipe) for label in labels]
        if len(labels) > 1:
            cells.append(ratio(row.values.get(labels[0]), row.values.get(labels[1])))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


_STARTUP_LINE = re.compile(
    r"^\s+(\d+(?:\.\d+)?) ms\s+\([\d.]+x\)(?:\s+CPU\s+\d+ ms\s+\([\d.]+x\))?\s+(\S+)"
)


def startup_rows(output: str, labels: dict[Path, str]) -> list[Row]:
    """Rows from bench_startup.py's output: a heading line ending in ``:``, then one
    ``<ms> ms (<ratio>x) [CPU <ms> ms (<ratio>x)] <checkout> [(bytecode ...)]`` line per
    checkout (the wall time is the row's)."""
    rows: list[Row] = []
    for line in output.splitlines():
        match = _STARTUP_LINE.match(line)
        if match is None and line.rstrip().endswith(":") and not line.startswith(" "):
            rows.append(Row(line.rstrip().rstrip(":"), unit="ms"))
        elif match is not None and rows:
            label = labels.get(Path(match[2]).resolve())
            if label is not None:
                rows[-1].values[label] = float(match[1])
    return [row for row in rows if row.values]


# -- the whole run --------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    checkouts: tuple[Path, ...]
    labels: tuple[str, ...]
    runs: int
    small_runs: int
    timeout: float
    quick: bool
    large: bool
    cache: Path

    @property
    def pairs(self) -> list[tuple[str, Path]]:
        """``(label, checkout)`` of every checkout measured."""
        return list(zip(self.labels, self.checkouts, strict=True))


def rotated(items: Sequence[_T], round_: int) -> list[_T]:
    """``items`` in the order of one round: each round starts one later, so that no one
    always runs first, or right after the same other."""
    shift = round_ % len(items)
    return [*items[shift:], *items[:shift]]


def deploy_rows(bench: Bench, place: Workspace, settings: Settings, runs: int) -> list[Row]:
    """Alternating runs (the order rotated each round) of every checkout and the recipe."""
    samples: dict[str, list[RunSample]] = {label: [] for label in [*settings.labels, "recipe"]}
    for round_ in range(runs):
        racers: list[tuple[str, Path | None]] = [*settings.pairs, ("recipe", None)]
        for label, checkout in rotated(racers, round_):
            if checkout is None:
                samples[label].append(bench.recipe(place))
            else:
                samples[label].append(bench.ci_deploy(checkout, place))
    size = f"{place.size / 1e6:.0f} MB, {place.files:,} files"
    rows = []
    measures: tuple[tuple[str, str, Callable[[RunSample], float]], ...] = (
        ("run time", "s", lambda s: s.seconds),
        ("peak RSS", "MiB", lambda s: s.peak_rss),
        ("bytes uploaded", "MiB", lambda s: s.uploaded),
    )
    for what, unit, pick in measures:
        row = Row(f"DAG-only run, {size}: {what}", unit=unit)
        for label in settings.labels:
            row.values[label] = statistics.median(pick(s) for s in samples[label])
        row.recipe = statistics.median(pick(s) for s in samples["recipe"])
        rows.append(row)
    return rows


def tiny_row(place: Workspace, settings: Settings, scratch: Path) -> Row:
    row = Row(f"bundle only, {place.files:,} tiny files: build_dag_tarball vs tar -czf")
    samples: dict[str, list[float]] = {label: [] for label in settings.labels}
    recipe: list[float] = []
    for round_ in range(settings.small_runs):
        for label, checkout in rotated(settings.pairs, round_):
            what = f"build_dag_tarball ({checkout}) on {place.dags}"
            facts = probe(checkout, _BUNDLE_PROBE, place.dags, settings.timeout, what)
            samples[label].append(facts["seconds"])
        tarball = scratch / "tiny.tar.gz"
        done = measure(
            ["tar", "-czf", str(tarball), "-C", str(place.repo), "dags"],
            cwd=scratch,
            timeout=settings.timeout,
            what="tar -czf of the tiny files",
        )
        tarball.unlink(missing_ok=True)
        if done.returncode != 0:
            raise BenchError(f"tar -czf of the tiny files failed:\n{_tail(done.output)}")
        recipe.append(done.seconds)
    row.values = {label: statistics.median(values) for label, values in samples.items()}
    row.recipe = statistics.median(recipe)
    return row


def syntax_row(place: Workspace, settings: Settings) -> Row:
    samples: dict[str, list[float]] = {label: [] for label in settings.labels}
    facts: dict[str, float] = {}
    for round_ in range(settings.small_runs):
        for label, checkout in rotated(settings.pairs, round_):
            what = f"check_python_files ({checkout}) on {place.dags}"
            facts = probe(checkout, _SYNTAX_PROBE, place.dags, settings.timeout, what)
            samples[label].append(facts["seconds"])
    python_bytes = sum(p.stat().st_size for p in place.dags.rglob("*.py"))
    what = (
        f"syntax check, {python_bytes / 1e6:.0f} MB of Python in {int(facts['files']):,} "
        f"files ({int(facts['problems'])} broken): check_python_files"
    )
    return Row(what, {label: statistics.median(v) for label, v in samples.items()})


def startup(settings: Settings) -> tuple[list[Row], str]:
    runs = 1 if settings.quick else 15
    command = [
        sys.executable,
        str(HERE / "bench_startup.py"),
        *map(str, settings.checkouts),
        "--runs",
        str(runs),
    ]
    done = measure(command, cwd=CHECKOUT, timeout=settings.timeout, what="bench_startup.py")
    if done.returncode != 0:
        raise BenchError(f"bench_startup.py: exit code {done.returncode}:\n{_tail(done.output)}")
    labels = dict(zip(settings.checkouts, settings.labels, strict=True))
    return startup_rows(done.output, labels), done.output


def compile_package(checkout: Path) -> None:
    """Write ``checkout``'s ci_deploy bytecode, as the action's image carries it: every run
    measured then reads it (``PYTHONDONTWRITEBYTECODE``, as in the image), and no side
    pays for compiling the code at each start."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE",)}
    env.pop("PYTHONPYCACHEPREFIX", None)
    subprocess.run(
        [_python(checkout), "-m", "compileall", "-q", str(checkout / "ci_deploy")],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def run(settings: Settings) -> list[str]:
    """Every measurement; the lines to print."""
    dags_spec, tiny_spec = (QUICK_DAGS, QUICK_TINY) if settings.quick else (DAGS, TINY)
    dags = workspace(settings.cache, dags_spec, SEED, repository=True)
    tiny = workspace(settings.cache, tiny_spec, SEED, repository=False)
    large = workspace(settings.cache, LARGE, SEED, repository=True) if settings.large else None
    for _, checkout in settings.pairs:
        compile_package(checkout)
    rows: list[Row] = []
    with (
        tempfile.TemporaryDirectory(prefix="ci-deploy-bench-") as tmp,
        Emulator(rollout_seconds=1.0, keep_blobs=False) as emulator,
    ):
        scratch = Path(tmp)
        bench = Bench(emulator, scratch, settings.timeout)
        rows += deploy_rows(bench, dags, settings, settings.runs)
        if large is not None:
            bench.timeout = settings.timeout * 4
            rows += deploy_rows(bench, large, settings, max(1, settings.small_runs))
        startup_found, startup_output = startup(settings)
        rows += startup_found
        rows.append(tiny_row(tiny, settings, scratch))
        rows.append(syntax_row(dags, settings))
    heading = (
        f"medians; runs: {settings.runs} (the 1 GB folder, the tiny files and the syntax "
        f"check: {settings.small_runs}; start-up: as its row says); "
        + ", ".join(f"{label} = {path} at {_label(path)}" for label, path in settings.pairs)
    )
    lines = [heading, "", *table(rows, settings.labels)]
    if not startup_found:
        lines += ["", "bench_startup.py said:", startup_output.rstrip()]
    return lines


def _label(checkout: Path) -> str:
    try:
        return _git(checkout, "rev-parse", "--short", "HEAD")
    except (subprocess.CalledProcessError, OSError):
        return "an unknown commit"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--baseline", type=Path, help="another checkout with its own .venv")
    parser.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "5")))
    parser.add_argument(
        "--large",
        action="store_true",
        default=os.environ.get("BENCH_LARGE", "") not in ("", "0"),
        help="add the 1 GB folder (its measurements get 4 times the timeout)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny folders, one run each")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per measurement")
    parser.add_argument(
        "--bench-dir",
        type=Path,
        default=Path(os.environ.get("BENCH_DIR", CHECKOUT / ".bench-cache")),
    )
    args = parser.parse_args(argv)
    checkouts = [CHECKOUT] + ([args.baseline.resolve()] if args.baseline else [])
    for checkout in checkouts:
        if not Path(_python(checkout)).is_file():
            parser.error(f"{checkout} has no .venv: run make .venv/.installed there first")
    labels = ["this", "baseline"][: len(checkouts)]
    runs = 1 if args.quick else args.runs
    settings = Settings(
        checkouts=tuple(checkouts),
        labels=tuple(labels),
        runs=runs,
        small_runs=1 if args.quick else max(1, min(3, runs)),
        timeout=args.timeout,
        quick=args.quick,
        large=args.large and not args.quick,
        cache=args.bench_dir.resolve(),
    )
    try:
        lines = run(settings)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
