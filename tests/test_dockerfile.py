"""ci_deploy.dockerfile: the Dockerfile read as Docker reads it, without a Docker engine."""

from __future__ import annotations

from pathlib import Path

import pytest

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
