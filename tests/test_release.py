""".github/workflows/release.yml: its scripts run with bash on a real git repository.

The release job's script is taken from the workflow as it is, and run in a clone of a
repository tagged ``v1.2.3`` whose ``origin`` is a bare repository on disk; ``gh`` is a stand-in
that records its arguments. What it must leave: a commit on top of the tagged one whose
``action.yml`` runs the image by digest, ``v1.2.3`` and ``v1`` moved to it on ``origin``, and the
release published with the CHANGELOG's section; or, on bad input, nothing pushed.
"""

from __future__ import annotations

import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
IMAGE = "ghcr.io/octo-org/ci-deploy"
DIGEST = "sha256:" + "0123456789abcdef" * 4
CHANGELOG = """# Changelog

## [Unreleased]

## [1.2.3] - 2026-12-02

### Fixed
- The thing that was broken.

## [1.2.2] - 2026-11-01

### Added
- An older thing.
"""


def workflow() -> dict[str, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def script(job: str, step_id_or_name: str) -> str:
    for step in workflow()["jobs"][job]["steps"]:
        if step_id_or_name in (step.get("id"), step.get("name")):
            return str(step["run"])
    raise AssertionError(f"no step {step_id_or_name!r} in job {job!r}")


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=Mona", "-c", "user.email=mona@example.com"]
    done = subprocess.run(
        ["git", *identity, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@dataclass
class Release:
    checkout: Path
    origin: Path
    tagged: str
    gh_log: Path
    temp: Path

    def run(self, **env: str) -> subprocess.CompletedProcess[str]:
        summary = self.temp / "summary.md"
        environ = {
            "PATH": f"{self.gh_log.parent}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(self.temp),
            "GIT_CONFIG_NOSYSTEM": "1",
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_STEP_SUMMARY": str(summary),
            "TAG": "v1.2.3",
            "IMAGE": IMAGE,
            "DIGEST": DIGEST,
            "GH_TOKEN": "ghs_not-a-real-token",
            **env,
        }
        body = script("release", "Commit action.yml pointing at the image by digest, move the tags")
        return subprocess.run(
            ["bash", "-e", "-c", body],
            cwd=self.checkout,
            env=environ,
            capture_output=True,
            text=True,
            check=False,
        )

    def origin_tag(self, name: str) -> str:
        return git(self.origin, "rev-parse", f"refs/tags/{name}^{{commit}}")

    def gh_calls(self) -> list[str]:
        return self.gh_log.read_text().splitlines() if self.gh_log.exists() else []


@pytest.fixture
def release(tmp_path: Path) -> Release:
    source = tmp_path / "source"
    source.mkdir()
    (source / "action.yml").write_bytes((ROOT / "action.yml").read_bytes())
    (source / "CHANGELOG.md").write_text(CHANGELOG)
    git(source, "init", "-q", "-b", "main")
    git(source, "add", "-A")
    git(source, "commit", "-qm", "The release's code")
    git(source, "tag", "v1.2.3")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(source), str(origin))
    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "-q", str(origin), str(checkout))
    git(checkout, "checkout", "-q", "--detach", "v1.2.3")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh_log = bin_dir / "gh.log"
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\necho "$*" >> "{gh_log}"\n')
    gh.chmod(gh.stat().st_mode | stat.S_IXUSR)
    temp = tmp_path / "runner_temp"
    temp.mkdir()
    return Release(checkout, origin, git(checkout, "rev-parse", "HEAD"), gh_log, temp)


def test_the_release_commit_runs_the_image_by_digest_and_both_tags_move_to_it(
    release: Release,
) -> None:
    done = release.run()
    assert done.returncode == 0, done.stdout + done.stderr

    commit = release.origin_tag("v1.2.3")
    assert commit != release.tagged
    assert release.origin_tag("v1") == commit
    assert git(release.origin, "rev-parse", f"{commit}^") == release.tagged
    action = git(release.origin, "show", f"{commit}:action.yml")
    expected = (
        (ROOT / "action.yml")
        .read_text()
        .replace("  image: Dockerfile\n", f"  image: docker://{IMAGE}@{DIGEST}\n")
    )
    assert action + "\n" == expected
    changed = git(release.origin, "diff", "--name-only", release.tagged, commit)
    assert changed == "action.yml"

    calls = release.gh_calls()
    assert calls[0] == "auth setup-git"
    notes = release.temp / "notes.md"
    assert calls[1] == f"release create v1.2.3 --verify-tag --title v1.2.3 --notes-file {notes}"
    assert "The thing that was broken." in notes.read_text()
    assert "older thing" not in notes.read_text() and "## [" not in notes.read_text()
    assert commit in (release.temp / "summary.md").read_text()


@pytest.mark.parametrize("digest", ["", "sha256:abc", "latest", f"{DIGEST}\nimage: evil"])
def test_without_a_digest_nothing_is_pushed(release: Release, digest: str) -> None:
    done = release.run(DIGEST=digest)
    assert done.returncode == 1
    assert "::error::The image job returned no digest" in done.stdout
    assert release.origin_tag("v1.2.3") == release.tagged
    assert release.gh_calls() == []


def test_without_the_versions_changelog_section_nothing_is_pushed(release: Release) -> None:
    done = release.run(TAG="v1.2.4")
    assert done.returncode == 1
    assert "CHANGELOG.md has no section '## [1.2.4]'" in done.stdout
    assert release.origin_tag("v1.2.3") == release.tagged
    assert release.gh_calls() == []


def test_the_release_commit_is_made_only_from_a_commit_that_builds_the_dockerfile(
    release: Release,
) -> None:
    action = release.checkout / "action.yml"
    action.write_text(action.read_text().replace("image: Dockerfile", f"image: docker://{IMAGE}"))
    done = release.run()
    assert done.returncode == 1
    assert "does not run 'image: Dockerfile'" in done.stdout
    assert release.gh_calls() == []


def run_tag_check(
    tag: str, owner: str, tmp_path: Path, *, version: str = "1.2.3", changelog: str = CHANGELOG
) -> tuple[int, str, str]:
    """The preflight job's check, in a checkout holding ``version`` and ``changelog``."""
    checkout = tmp_path / "checkout"
    (checkout / "ci_deploy").mkdir(parents=True)
    (checkout / "ci_deploy" / "__init__.py").write_text(
        f'"""ci-deploy."""\n\n__version__ = "{version}"\n'
    )
    (checkout / "CHANGELOG.md").write_text(changelog)
    (checkout / "action.yml").write_bytes((ROOT / "action.yml").read_bytes())
    output = tmp_path / "github_output"
    output.write_text("")
    done = subprocess.run(
        ["bash", "-e", "-c", script("preflight", "names")],
        cwd=checkout,
        env={"PATH": os.environ["PATH"], "TAG": tag, "OWNER": owner, "GITHUB_OUTPUT": str(output)},
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout, output.read_text()


def test_the_preflight_stops_a_tag_the_code_or_the_changelog_does_not_match(
    tmp_path: Path,
) -> None:
    code, stdout, output = run_tag_check("v1.2.3", "octo-org", tmp_path / "a", version="1.2.2")
    assert (code, output) == (1, "")
    assert "ci_deploy/__init__.py says version '1.2.2', the tag v1.2.3" in stdout
    code, stdout, output = run_tag_check("v1.2.4", "octo-org", tmp_path / "b", version="1.2.4")
    assert (code, output) == (1, "")
    assert "CHANGELOG.md has no section '## [1.2.4]'" in stdout


def test_nothing_is_built_before_the_preflight_passed() -> None:
    jobs = workflow()["jobs"]
    assert jobs["image"]["needs"] == "preflight"
    assert "preflight" in str(jobs["release"]["needs"]) or jobs["release"]["needs"] == "image"


def test_a_backport_release_does_not_move_the_major_tag_back(release: Release) -> None:
    newer = git(release.origin, "rev-parse", "refs/tags/v1.2.3^{commit}")
    git(release.origin, "tag", "v1.3.0", newer)
    git(release.origin, "tag", "v1", newer)

    done = release.run()

    assert done.returncode == 0, done.stdout + done.stderr
    assert release.origin_tag("v1.2.3") != release.tagged, "the release itself is made"
    assert release.origin_tag("v1") == newer, "v1 stays on v1.3.0"
    assert "v1 stays on v1.3.0" in (release.temp / "summary.md").read_text()


def test_the_image_is_named_in_lower_case_for_ghcr(tmp_path: Path) -> None:
    assert run_tag_check("v1.2.3", "Octo-Org", tmp_path) == (0, "", f"image={IMAGE}\n")


@pytest.mark.parametrize("tag", ["v1", "v1.2", "v1.2.3-rc1", "1.2.3", "v1.2.3;id"])
def test_a_tag_that_is_not_a_version_stops_the_release(tmp_path: Path, tag: str) -> None:
    code, stdout, output = run_tag_check(tag, "octo-org", tmp_path)
    assert code == 1 and output == ""
    assert f"'{tag}' is not one" in stdout


def test_the_release_jobs_hold_only_the_permissions_they_use() -> None:
    loaded = workflow()
    assert loaded["permissions"] == {}
    assert loaded["jobs"]["image"]["permissions"] == {
        "contents": "read",
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }
    assert loaded["jobs"]["release"]["permissions"] == {"contents": "write"}
    # "on" is read by YAML 1.1 as True.
    assert loaded[True] == {"push": {"tags": ["v*"]}}
