"""The demo, run by the action's own image: build it here, start it as the runner would.

    make image-demo
    (= python scripts/services.py run --only docker,registry -- python scripts/image_demo.py)

Builds the action's Dockerfile on a base made here without pulling (``scripts/imagekit.py``:
debootstrap, cached in ``.image-cache/``), prints the image's size, then runs a DAG deploy of
the example project (a throwaway git repository, as ``make demo`` makes it, owned by uid
1001 like the runner's checkout) with the image's entrypoint in a container started as the
GitHub runner starts a container action, against the Astro emulator on 127.0.0.1. Passes
when the step exits 0 and the emulator's Deployment is HEALTHY on the DAG tarball version
the step uploaded; the last line says which, and the exit code is 0 or 1.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from imagekit import (
    BASE_TARBALL,
    Docker,
    ImageKitError,
    base_image,
    build,
    container_step,
    docker_session,
    megabytes,
    say,
)

from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.ghfiles import parse_output_text


def run_in_image(docker: Docker, image: str, root: Path, emulator: Emulator) -> str:
    """One DAG deploy by the image; the problem found, or ``""`` when it is HEALTHY."""
    step = container_step(docker, image, root, emulator, as_runner_user=True)
    say(f"Running {image} as the GitHub runner would (docker run --rm --network host ...)")
    done = step.run(capture=False)
    outputs = parse_output_text(step.output_file.read_text(encoding="utf-8"))
    deployment = emulator.deployment(emulator.deployment_id)
    say(
        f"Step exit code {done.returncode}; outputs status={outputs.get('status')!r} "
        f"dag-tarball-version={outputs.get('dag-tarball-version')!r}; the Deployment: "
        f"status={deployment.get('status')!r} dagTarballVersion="
        f"{deployment.get('dagTarballVersion')!r}"
    )
    if done.returncode != 0:
        return f"the action exited {done.returncode}"
    version = outputs.get("dag-tarball-version", "")
    if not version:
        return "the action reported no dag-tarball-version"
    if deployment.get("status") != "HEALTHY":
        return f"the Deployment is {deployment.get('status')}, not HEALTHY"
    if deployment.get("dagTarballVersion") != version:
        return f"the Deployment runs {deployment.get('dagTarballVersion')}, not {version}"
    return ""


def main() -> int:
    started = time.monotonic()
    try:
        with docker_session(os.environ) as docker:
            cached = "(from .image-cache/)" if BASE_TARBALL.is_file() else "(debootstrap)"
            mark = time.monotonic()
            base = base_image(docker)
            say(f"Base {base} ready in {time.monotonic() - mark:.1f} s {cached}")
            image = f"{docker.registry.host}/ci-deploy:demo"
            seconds = build(docker, image, base)
            size = docker.size(image)
            say(f"Built {image} on {base} in {seconds:.1f} s; image size {megabytes(size)}")
            with (
                tempfile.TemporaryDirectory(prefix="ci-deploy-image-demo-") as tmp,
                Emulator(rollout_seconds=3.0) as emulator,
            ):
                problem = run_in_image(docker, image, Path(tmp), emulator)
    except ImageKitError as error:
        say(f"image-demo: FAILED: {error}")
        return 1
    total = time.monotonic() - started
    if problem:
        say(f"image-demo: FAILED after {total:.0f} s: {problem}")
        return 1
    say(
        f"image-demo: OK in {total:.0f} s: the image ({megabytes(size)}) deployed the example "
        "project and the Deployment is HEALTHY on the uploaded DAG tarball version"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
