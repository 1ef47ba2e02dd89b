"""What a prebuilt image saves a user: job start to the action's first API request.

    make bench-image [RUNS=3]
    (= python scripts/services.py run --only docker,registry -- python scripts/bench_image.py)

Two ways the runner can start the action, both from nothing on the engine (every image
removed first, as on a fresh hosted runner), each timed from its first docker command to the
first request the Astro emulator (on 127.0.0.1) receives:

- ``image: Dockerfile``: pull the base, ``docker build --no-cache`` of the action's
  Dockerfile, then ``docker run``. The base is the debootstrap one (``scripts/imagekit.py``)
  pulled from the local registry, standing in for ``python:3.12-slim``; pip downloads the
  wheels from the package index, as on a runner.
- prebuilt: ``docker pull`` of the same image, pushed to the local registry beforehand, then
  ``docker run``.

Runs alternate; the medians (and each run) are printed. Also the image's size built from the
Dockerfile before issue 12 (``--old REV``, its text at that commit, FROM on the same base)
and from the current one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from imagekit import (
    ROOT,
    Docker,
    ImageKitError,
    base_image,
    build,
    container_step,
    docker_session,
    megabytes,
    old_dockerfile_on,
    say,
)

from ci_deploy_testkit.emulator import Emulator

#: The last commit before issue 12 changed the Dockerfile.
OLD_DOCKERFILE_REV = "bd4d30a"


class FirstRequest:
    """The emulator's log: notes when the first request is seen."""

    def __init__(self) -> None:
        self.at: float | None = None
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            if self.at is None:
                self.at = time.monotonic()


def start_and_time(docker: Docker, image: str, prepare: Callable[[], None]) -> float:
    """Seconds from ``prepare``'s start (pull or build) to the action's first API request."""
    first = FirstRequest()
    with (
        tempfile.TemporaryDirectory(prefix="ci-deploy-bench-image-") as tmp,
        Emulator(rollout_seconds=0.5, log=first) as emulator,
    ):
        step = container_step(docker, image, Path(tmp), emulator)
        started = time.monotonic()
        prepare()
        done = step.run(capture=True)
        if done.returncode != 0 or first.at is None:
            raise ImageKitError(f"the action failed (exit {done.returncode}):\n{done.stdout}")
        return first.at - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--old", default=OLD_DOCKERFILE_REV, help="the Dockerfile before")
    options = parser.parse_args()
    try:
        with docker_session(os.environ) as docker:
            return bench(docker, options.runs, options.old)
    except ImageKitError as error:
        say(f"bench-image: FAILED: {error}")
        return 1


def bench(docker: Docker, runs: int, old_rev: str) -> int:
    base = base_image(docker)
    image = f"{docker.registry.host}/ci-deploy:bench"
    old_text = subprocess.run(
        ["git", "show", f"{old_rev}:Dockerfile"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    build(docker, f"{image}-old", base, dockerfile=old_dockerfile_on(base, old_text))
    build(docker, image, base)
    sizes = {"before": docker.size(f"{image}-old"), "after": docker.size(image)}
    docker.run("push", image)
    docker.remove(f"{image}-old")

    def from_dockerfile() -> None:
        docker.run("pull", base)
        build(docker, image, base, no_cache=True)

    def prebuilt() -> None:
        docker.run("pull", image)

    timings: dict[str, list[float]] = {"image: Dockerfile": [], "prebuilt image": []}
    for run in range(runs):
        for name, prepare in (("image: Dockerfile", from_dockerfile), ("prebuilt image", prebuilt)):
            docker.remove(image, base)
            seconds = start_and_time(docker, image, prepare)
            timings[name].append(seconds)
            say(f"run {run + 1}: {name}: {seconds:.1f} s to the first API request")

    say(f"\nJob start to first API request, median of {runs} (base: debootstrap {base}):")
    for name, values in timings.items():
        each = ", ".join(f"{value:.1f}" for value in values)
        say(f"  {name:<18} {statistics.median(values):6.1f} s   ({each})")
    say(
        f"Image size on that base: before {megabytes(sizes['before'])} (Dockerfile at "
        f"{old_rev}), after {megabytes(sizes['after'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
