"""ci_deploy.dockerfile: the Dockerfile read as Docker reads it, without a Docker engine; and
the action's own Dockerfile: its base pinned by digest, its dependencies from requirements.txt
(exact, hashed, exactly what pyproject's runtime dependencies need)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ci_deploy.dockerfile import (
    RUNTIME_IMAGE_REPOSITORIES,
    buildkit_only_flags,
    refuse_buildkit_only,
    runtime_base_images_only,
)
from ci_deploy.errors import ImageError
from tests.fake_docker import sdk_loaded_after

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "astro-project"
RUNTIME_2 = "quay.io/astronomer/astro-runtime:12.6.0"
RUNTIME_3 = "astrocrpublic.azurecr.io/runtime:3.0-1"


# --- the base images ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        (f"FROM {RUNTIME_2}\n", True),
        (f"FROM {RUNTIME_3}\n", True),
        ("FROM images.astronomer.cloud/baseimages/astro-runtime:12.0.0-python-3.11\n", True),
        ("FROM quay.io/astronomer/astro-runtime@sha256:" + "a" * 64 + "\n", True),
        ("FROM quay.io/astronomer/astro-runtime\n", True),
        (f"from {RUNTIME_3}\nRUN echo hi\n", True),
        (f"FROM --platform=linux/amd64 {RUNTIME_3} AS base\nRUN true\n", True),
        (f"FROM --platform=$BUILDPLATFORM {RUNTIME_3} AS base\n", True),
        (f"FROM {RUNTIME_3} AS build\nRUN make\nFROM build\n", True),
        (f"FROM {RUNTIME_3} AS Build\nFROM BUILD AS final\nFROM final\n", True),
        (f"FROM {RUNTIME_3} AS build\nFROM {RUNTIME_2}\nCOPY --from=build /a /a\n", True),
        (f"FROM {RUNTIME_3} AS build\nFROM python:3.12-slim\n", False),
        (f"FROM python:3.12-slim AS build\nFROM {RUNTIME_3}\n", False),
        ("FROM python:3.12-slim\n", False),
        ("FROM scratch\n", False),
        ("FROM build\n", False),  # no earlier stage of that name
        ("FROM quay.io/astronomer/astro-runtime-dev:12.0.0\n", False),
        ("FROM quay.io/astronomer/astro-runtime.example.com/x:1\n", False),
        ("FROM example.com/quay.io/astronomer/astro-runtime:12.0.0\n", False),
        ("FROM astrocrpublic.azurecr.io/runtime-evil:3.0-1\n", False),
        ("FROM docker.io/astronomer/astro-runtime:12.0.0\n", False),
        # ARGs before the first FROM, with and without defaults.
        (f"ARG BASE={RUNTIME_3}\nFROM $BASE\n", True),
        (f'ARG BASE="{RUNTIME_3}"\nFROM ${{BASE}}\n', True),
        ("ARG TAG=3.0-1\nFROM astrocrpublic.azurecr.io/runtime:${TAG}\n", True),
        ("ARG TAG=3.0-1 REPO=quay.io/astronomer/astro-runtime\nFROM ${REPO}:${TAG}\n", True),
        ("FROM astrocrpublic.azurecr.io/runtime:${TAG:-3.0-1}\n", True),
        ("ARG TAG\nFROM astrocrpublic.azurecr.io/runtime:${TAG:-3.0-1}\n", True),
        ("ARG BASE\nFROM $BASE\n", False),
        ("FROM ${BASE}\n", False),
        ("ARG TAG=3.0-1\nFROM astrocrpublic.azurecr.io/runtime:${TAG%-1}\n", False),
        ("ARG BASE=python:3.12\nFROM $BASE\n", False),
        (f"FROM {RUNTIME_3}\nARG BASE={RUNTIME_3}\nFROM $BASE\n", False),  # ARG after FROM
        # Line continuations, comments, directives, heredocs.
        (f"FROM \\\n    {RUNTIME_3} \\\n    AS base\n", True),
        (f"# FROM python:3.12\nFROM {RUNTIME_3}\n# FROM python:3.12\n", True),
        (f"# syntax=docker/dockerfile:1\nFROM {RUNTIME_3}\n", True),
        (f"# escape=`\nFROM `\n  {RUNTIME_3}\nRUN echo `\n  hi\n", True),
        (f"FROM {RUNTIME_3}\nRUN <<EOF\nfrom airflow import DAG\nEOF\n", True),
        (f"FROM {RUNTIME_3}\nRUN <<-'PY'\n\tfrom os import path\n\tPY\n", True),
        (f"FROM {RUNTIME_3}\nRUN pip install \\\n# a comment\n    pandas\n", True),
        ("", False),
        ("# nothing\n\n", False),
    ],
)
def test_runtime_base_images_only(dockerfile: str, expected: bool) -> None:
    assert runtime_base_images_only(dockerfile) is expected


def test_the_example_project_builds_from_a_runtime_image() -> None:
    assert runtime_base_images_only((EXAMPLE / "Dockerfile").read_text())


def test_buildkit_only_flags() -> None:
    dockerfile = (
        f"FROM {RUNTIME_3}\n"
        "RUN --mount=type=secret,id=pip \\\n    --network=none pip install -r requirements.txt\n"
        "RUN echo --mount=type=cache\n"
        "COPY --chown=astro:astro . .\n"
    )
    assert buildkit_only_flags(dockerfile) == ["--mount=type=secret,id=pip", "--network=none"]
    assert buildkit_only_flags(f"FROM {RUNTIME_3}\nRUN pip install x\n") == []


def test_every_runtime_repository_counts_as_a_runtime_image() -> None:
    for repository in RUNTIME_IMAGE_REPOSITORIES:
        assert runtime_base_images_only(f"FROM {repository}:1.0\n")


# --- what only BuildKit understands -------------------------------------------------------


def test_a_classic_dockerfile_is_not_refused() -> None:
    refuse_buildkit_only(f"FROM {RUNTIME_3}\nRUN pip install x\n", Path("Dockerfile"))


def test_build_secrets_are_refused_with_their_own_title() -> None:
    dockerfile = Path("project/Dockerfile")
    text = f"FROM {RUNTIME_3}\nRUN --network=none --mount=id=pip,type=secret pip install x\n"
    with pytest.raises(ImageError) as caught:
        refuse_buildkit_only(text, dockerfile)
    assert caught.value.title == "Build secrets not supported"
    assert caught.value.message.startswith(f"{dockerfile} uses build secrets")
    assert "docker/build-push-action" in caught.value.message
    assert "'image-name'" in caught.value.message


def test_other_buildkit_flags_are_named_once_each() -> None:
    text = (
        f"FROM {RUNTIME_3}\n"
        "RUN --mount=type=cache,target=/root/.cache --network=none pip install x\n"
        "RUN --mount=type=bind,source=a,target=/a true\n"
    )
    with pytest.raises(ImageError) as caught:
        refuse_buildkit_only(text, Path("Dockerfile"))
    assert caught.value.title == "BuildKit feature not supported"
    assert caught.value.message.startswith(
        "Dockerfile uses RUN --mount, --network, which need BuildKit; "
    )
    assert "'image-name'" in caught.value.message


# --- plain text, no Docker SDK ------------------------------------------------------------


def test_the_dockerfile_helpers_work_without_the_docker_sdk() -> None:
    script = (
        "from ci_deploy.dockerfile import buildkit_only_flags, runtime_base_images_only\n"
        "from ci_deploy.image import RUNTIME_LABEL\n"
        "assert runtime_base_images_only('FROM astrocrpublic.azurecr.io/runtime:3.0-1')\n"
        "assert buildkit_only_flags('FROM x\\nRUN --mount=type=cache,target=/c pip') == "
        "['--mount=type=cache,target=/c']\n"
        "assert RUNTIME_LABEL\n"
    )
    assert sdk_loaded_after(script) == []


# --- the action's own image: reproducible -------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.txt"
PYPROJECT = "ci-deploy (pyproject.toml)"


@dataclass(frozen=True)
class Locked:
    """One requirement of requirements.txt: ``name==version``, its marker, hashes and the
    requirements it is there for (uv's ``# via`` annotation)."""

    name: str
    version: str
    marker: str
    hashes: tuple[str, ...]
    via: tuple[str, ...]


def read_lock(text: str) -> list[Locked]:
    """The requirements of a lock written by ``uv pip compile --generate-hashes``."""
    entries: list[Locked] = []
    logical = re.sub(r"\\\n", " ", text)
    lines = logical.splitlines()
    for number, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        requirement, _, marker = line.split("--hash", 1)[0].partition(";")
        name, equals, version = requirement.strip().partition("==")
        assert equals, f"not pinned with ==: {line!r}"
        via: list[str] = []
        for comment in lines[number + 1 :]:
            if not comment.lstrip().startswith("#"):
                break
            words = comment.strip().lstrip("#").strip()
            via.append(words.removeprefix("via").strip())
        entries.append(
            Locked(
                canonicalize_name(name),
                version.strip(),
                marker.strip(),
                tuple(re.findall(r"--hash=(\S+)", line)),
                tuple(canonicalize_name(v) if "(" not in v else v for v in via if v),
            )
        )
    return entries


def runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def test_every_locked_requirement_is_pinned_with_sha256_hashes() -> None:
    entries = read_lock(LOCK.read_text())
    assert entries
    for entry in entries:
        assert entry.hashes, f"{entry.name} has no --hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", digest) for digest in entry.hashes)
        assert len(set(entry.hashes)) == len(entry.hashes)


def test_the_lock_pins_every_runtime_dependency_within_its_range() -> None:
    locked = {entry.name: entry for entry in read_lock(LOCK.read_text())}
    for requirement in runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is missing from requirements.txt: run `make lock`"
        assert requirement.specifier.contains(locked[name].version, prereleases=True), (
            f"requirements.txt pins {name}=={locked[name].version}, outside pyproject's "
            f"{requirement.specifier}: run `make lock`"
        )
        assert PYPROJECT in locked[name].via


def test_the_lock_holds_only_what_the_runtime_dependencies_need() -> None:
    """No development dependency (pytest, ruff...) reaches the image: every locked package is
    a runtime dependency or needed by one, as uv's annotations trace it."""
    entries = {entry.name: entry for entry in read_lock(LOCK.read_text())}
    direct = {canonicalize_name(requirement.name) for requirement in runtime_requirements()}
    needed, frontier = set(direct), set(direct)
    while frontier:
        frontier = {
            entry.name
            for entry in entries.values()
            if entry.name not in needed and any(via in needed for via in entry.via)
        }
        needed |= frontier
    assert set(entries) == needed
    assert {name for name, entry in entries.items() if PYPROJECT in entry.via} == direct


def test_read_lock_understands_markers_and_annotations() -> None:
    text = (
        "# header\n"
        "pywin32==312 ; sys_platform == 'win32' \\\n"
        "    --hash=sha256:" + "a" * 64 + "\n"
        "    # via docker\n"
        "PyYAML==6.0.4 \\\n"
        "    --hash=sha256:" + "b" * 64 + " \\\n"
        "    --hash=sha256:" + "c" * 64 + "\n"
        "    # via\n"
        "    #   ci-deploy (pyproject.toml)\n"
        "    #   Docker\n"
    )
    pywin32, pyyaml = read_lock(text)
    assert (pywin32.name, pywin32.version, pywin32.marker) == (
        "pywin32",
        "312",
        "sys_platform == 'win32'",
    )
    assert pywin32.via == ("docker",)
    assert pyyaml.name == "pyyaml" and len(pyyaml.hashes) == 2
    assert pyyaml.via == (PYPROJECT, "docker")


def dockerfile_base(path: Path) -> str:
    """The image reference of the first ``ARG BASE=`` or, failing that, ``FROM`` line."""
    for line in path.read_text().splitlines():
        found = re.match(r"(?:ARG BASE=|FROM )(\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError(f"no base image in {path}")


def test_the_base_image_is_pinned_by_digest_where_dependabot_can_bump_it() -> None:
    base = dockerfile_base(ROOT / "Dockerfile")
    assert re.fullmatch(r"python:3\.\d+-slim@sha256:[0-9a-f]{64}", base)
    assert dockerfile_base(ROOT / ".github" / "base-image" / "Dockerfile") == base, (
        "Dependabot bumped .github/base-image/Dockerfile: copy its digest into the "
        "Dockerfile's ARG BASE="
    )
    assert "FROM ${BASE}" in (ROOT / "Dockerfile").read_text().splitlines()


def test_the_image_installs_the_lock_alone_by_hash() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert len(installs) == 1
    for flag in (
        "--no-deps",
        "--require-hashes",
        "--only-binary :all:",
        "-r /tmp/requirements.txt",
    ):
        assert flag in installs[0]
    assert "COPY requirements.txt /tmp/requirements.txt" in dockerfile
    assert "rm -rf /var/lib/apt/lists/*" in dockerfile
