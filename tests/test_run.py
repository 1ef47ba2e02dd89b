"""The orchestration of a run, in process, against the in-memory platform: every path.

A real git repository holds the example project; the action runs through ``cli.deploy``
with the runner's environment and files; the platform is a :class:`~tests.fakes.FakePlatform`
and time a :class:`~tests.fakes.FakeClock`, so a ten-minute wait takes no time at all.
"""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from ci_deploy.compression import DEFAULT_LEVEL, compression_for
from ci_deploy.errors import ApiError, CancelledError, UploadError
from ci_deploy.platform import Artifact, Environment
from ci_deploy_testkit.localrun import pull_request_event, push_event
from tests.actionrun import DAG, Step, change
from tests.fakes import FakeClock, FakeImages, FakePlatform, Rollout
from tests.gitrepo import GitRepo
from tests.inprocess import run_in_process


@pytest.fixture
def platform(repo: GitRepo) -> FakePlatform:
    """A Deployment whose last deploy is the repository's first commit."""
    platform = FakePlatform()
    platform.seed(repo.head())
    return platform


def deploy(
    repo: GitRepo,
    platform: FakePlatform,
    inputs: dict[str, str] | None = None,
    *,
    before: str | None = None,
    clock: FakeClock | None = None,
    images: FakeImages | None = None,
) -> Step:
    event = push_event(before, repo.head()) if before else {}
    return run_in_process(
        repo.path,
        inputs,
        platform=platform,
        clock=clock,
        images=(lambda runner: images) if images else None,
        event_name="push" if before else "workflow_dispatch",
        event=event,
    )


def error(step: Step) -> str:
    [message] = [c.message for c in step.commands("error") if not c.properties.get("file")]
    return message


# --- deploy types ------------------------------------------------------------------------------


def test_a_dag_change_is_a_dag_only_deploy_verified_on_its_dag_version(
    repo: GitRepo, platform: FakePlatform
) -> None:
    before = change(repo)

    step = deploy(repo, platform, before=before)

    assert step.result.returncode == 0, step.log
    out = step.outputs
    assert (out["status"], out["deploy-type"], out["skipped"]) == ("deployed", "DAG_ONLY", "false")
    [new] = platform.deploys()
    assert out["deploy-id"] == new.id
    assert out["dag-tarball-version"] == "dags-new-1" == new.versions[Artifact.DAGS]
    assert (out["base-sha"], out["base-source"]) == (before, "deployed")
    names = platform.names()
    assert names[:9] == [
        "locate",
        "history",
        "create",
        "upload",
        "locate",
        "history",
        "finalize",
        "observe",
        "import_errors",
    ]
    # the settle window (60 s by default) looks at the Deployment on the poll schedule
    assert names[9:] == ["observe"] * 15
    run_url = "https://github.com/example/astro-project/actions/runs/1"
    assert platform.calls[2] == ("create", "DAG_ONLY", f"Change {DAG} ({run_url})")
    assert platform.sources[new.id].commit.sha == repo.head()
    assert "## ✅ Deployed to Astro" in step.result.summary
    assert "Waiting for the Deployment to run DAG version dags-new-1" in step.log


def test_an_image_change_builds_pushes_and_waits_for_both_versions(
    repo: GitRepo, platform: FakePlatform
) -> None:
    images = FakeImages()
    before = change(repo, "requirements.txt", "pandas==2.2.3\n")

    step = deploy(repo, platform, before=before, images=images)

    assert step.result.returncode == 0, step.log
    assert step.outputs["deploy-type"] == "IMAGE_AND_DAG"
    [(context_dir, tag)] = images.built
    assert context_dir == repo.path.resolve()
    assert tag == f"ci-deploy/dep-1:{repo.head()[:12]}"
    finalize = next(c for c in platform.calls if c[0] == "finalize")
    assert set(finalize[2]) == {Artifact.DAGS, Artifact.IMAGE}
    [new] = platform.deploys()
    assert set(new.versions) == {Artifact.DAGS, Artifact.IMAGE}
    assert images.closed == 1, "the run's one image builder is closed at the end"
    assert "registry.example/dep-1:tag-new-1" in step.result.summary


def test_image_deploys_ship_the_dags_in_the_image_when_dag_deploys_are_off(
    repo: GitRepo, platform: FakePlatform
) -> None:
    platform.environment = Environment("dep-1", "a", "", "HEALTHY", "a", dag_deploys=False)
    before = change(repo)

    step = deploy(repo, platform, before=before)

    assert step.result.returncode == 0, step.log
    assert step.outputs["deploy-type"] == "IMAGE_AND_DAG"
    assert "upload" not in platform.names()
    assert set(platform.deploys()[0].versions) == {Artifact.IMAGE}
    assert step.outputs["dag-tarball-version"] == ""


def test_image_only_ships_no_dags(repo: GitRepo, platform: FakePlatform) -> None:
    before = change(repo, "packages.txt", "libpq-dev\n")

    step = deploy(repo, platform, {"deploy-type": "image-only"}, before=before)

    assert step.outputs["deploy-type"] == "IMAGE_ONLY"
    finalize = next(c for c in platform.calls if c[0] == "finalize")
    assert set(finalize[2]) == {Artifact.IMAGE}


def test_a_prebuilt_image_is_used_without_building(repo: GitRepo, platform: FakePlatform) -> None:
    images = FakeImages(known={"my-airflow:abc"})
    before = change(repo, "requirements.txt", "x\n")

    step = deploy(repo, platform, {"image-name": "my-airflow:abc"}, before=before, images=images)

    assert step.result.returncode == 0, step.log
    assert images.built == []
    assert ("push", "new-1", "my-airflow:abc") in platform.calls


def test_an_image_without_the_runtime_label_is_refused_before_any_deploy(
    repo: GitRepo, platform: FakePlatform
) -> None:
    before = change(repo, "requirements.txt", "x\n")

    step = deploy(repo, platform, before=before, images=FakeImages(runtime_version=""))

    assert step.result.returncode == 1
    assert "create" not in platform.names()
    assert "Nothing was changed on the Deployment" in error(step)


def _spooled_in(repo: GitRepo) -> list[Path]:
    """The tarballs left in the run's RUNNER_TEMP (tests/inprocess.py's folder)."""
    return list((repo.path.parent / f"runner-{repo.path.name}").glob("ci-deploy-*"))


def test_the_tarball_is_spooled_in_runner_temp_and_deleted_after_the_run(
    repo: GitRepo, platform: FakePlatform
) -> None:
    before = change(repo)

    step = deploy(repo, platform, before=before)

    assert step.result.returncode == 0, step.log
    [spooled] = platform.spooled
    assert spooled.is_relative_to(repo.path.parent / f"runner-{repo.path.name}")
    assert not spooled.exists()
    assert _spooled_in(repo) == []  # the prebuild's folder too
    with tarfile.open(fileobj=io.BytesIO(platform.uploads["dags-new-1"])) as tar:
        assert DAG in tar.getnames()
    assert f"gzip {compression_for(DEFAULT_LEVEL).label} to " in step.log


def test_the_tarball_is_deleted_after_a_failed_build_or_upload(
    repo: GitRepo, platform: FakePlatform
) -> None:
    broken = change(repo, "dags/broken.py", "def oops(:\n")
    assert deploy(repo, platform, before=broken).result.returncode == 1  # the syntax check
    assert _spooled_in(repo) == []

    platform.faults["upload"] = UploadError("Put Blob failed: HTTP 403.")
    fixed = change(repo, "dags/broken.py", "X = 1\n")
    assert deploy(repo, platform, before=fixed).outputs["status"] == "failed"
    assert _spooled_in(repo) == []


def test_a_bundle_deploy_uploads_the_project_folder(repo: GitRepo, platform: FakePlatform) -> None:
    before = change(repo, "include/sql/daily.sql", "-- more\n")

    step = deploy(
        repo,
        platform,
        {"deploy-type": "bundle", "bundle-type": "dbt", "bundle-mount-path": "/usr/local/dbt"},
        before=before,
    )

    assert step.result.returncode == 0, step.log
    assert step.outputs["deploy-type"] == "BUNDLE"
    assert ("upload", "new-1", Artifact.BUNDLE) in platform.calls
    assert platform.deploys()[0].versions == {}, "healthy is all a bundle rollout shows"


# --- no deploy -----------------------------------------------------------------------------------


def test_a_change_outside_the_project_skips_with_a_notice(
    repo: GitRepo, platform: FakePlatform
) -> None:
    before = change(repo, "README.md", "more\n")

    step = deploy(repo, platform, before=before)

    assert step.result.returncode == 0
    out = step.outputs
    assert (out["status"], out["skipped"], out["deploy-type"]) == ("skipped", "true", "")
    assert "nothing to deploy" in out["skip-reason"]
    assert "Deploy skipped" in step.titles("notice")
    assert platform.names() == ["locate", "history"]


def test_a_dry_run_prints_the_whole_plan_and_creates_nothing(
    repo: GitRepo, platform: FakePlatform
) -> None:
    before = change(repo)

    step = deploy(repo, platform, {"dry-run": "true"}, before=before)

    assert step.result.returncode == 0
    assert (step.outputs["status"], step.outputs["deploy-type"]) == ("planned", "DAG_ONLY")
    assert platform.names() == ["locate", "history"]
    for line in (
        f"Base: deploy r1 (2026-01-01T00:00:00Z) ({before[:12]}) [deployed]",
        "Files: 1 DAG, 0 image, 0 not relevant",
        "Action: deploy DAG_ONLY",
        "Ships: the DAG tarball",
        "Wait: up to 600s until the Deployment is healthy on the new deploy, showing the DAG "
        "version",
        f"If the rollout fails: roll back to deploy r1 (commit {before[:12]})",
    ):
        assert line in step.log
    assert "Deploy planned" in step.titles("notice")
    assert "- Ships: the DAG tarball" in step.result.summary
    assert "- If the rollout fails: roll back to deploy r1" in step.result.summary


def test_dag_only_to_a_deployment_without_dag_deploys_is_refused(
    repo: GitRepo, platform: FakePlatform
) -> None:
    platform.environment = Environment("dep-1", "a", "", "HEALTHY", "a", dag_deploys=False)
    before = change(repo)

    step = deploy(repo, platform, {"deploy-type": "dags-only"}, before=before)

    assert step.result.returncode == 1
    assert step.titles("error") == ["DAG deploys are disabled"]
    assert "create" not in platform.names()
    assert _spooled_in(repo) == []  # the DAG tarball packed early too


def test_a_syntax_error_is_annotated_and_nothing_is_created(
    repo: GitRepo, platform: FakePlatform
) -> None:
    before = change(repo, "dags/broken.py", "def oops(:\n")

    step = deploy(repo, platform, before=before)

    assert step.result.returncode == 1
    [annotation] = [c for c in step.commands("error") if c.properties.get("file")]
    assert (annotation.properties["file"], annotation.properties["line"]) == ("dags/broken.py", "1")
    assert "create" not in platform.names()


def test_wait_false_finalizes_and_does_not_look(repo: GitRepo, platform: FakePlatform) -> None:
    before = change(repo)

    step = deploy(repo, platform, {"wait": "false"}, before=before)

    assert step.result.returncode == 0
    assert "observe" not in platform.names()
    assert "not awaited (wait: false)" in step.result.summary


# --- the rollout ------------------------------------------------------------------------------


def test_the_wait_polls_on_the_schedule_until_the_rollout_is_done(
    repo: GitRepo, platform: FakePlatform, clock: FakeClock
) -> None:
    platform.rollout = Rollout(polls=4)
    before = change(repo)

    step = deploy(repo, platform, {"verify-window": "0"}, before=before, clock=clock)

    assert step.result.returncode == 0
    assert clock.sleeps == [1.0, 2.0, 3.0]
    assert "The Deployment runs deploy new-1 after 6s." in step.log


def test_a_timeout_is_rolled_back_to_what_ran_before(repo: GitRepo, platform: FakePlatform) -> None:
    platform.rollout = Rollout(outcome="stuck")
    before = change(repo)

    step = deploy(repo, platform, {"wait-timeout": "2m"}, before=before)

    assert step.result.returncode == 1
    out = step.outputs
    assert (out["status"], out["rolled-back"]) == ("rolled-back", "true")
    assert out["rollback-deploy-id"].startswith("rollback-")
    rollback = next(c for c in platform.calls if c[0] == "roll_back")
    assert rollback[1] == "r1"
    assert "automatic rollback after deploy new-1 failed" in rollback[2]
    assert "/actions/runs/1" in rollback[2], "the description names the workflow run"
    message = error(step)
    assert message.startswith("Timed out after 120s (wait-timeout)")
    assert "rolled back to deploy r1" in message and "the rollback is healthy" in message
    assert step.titles("error") == ["Rollout failed and was rolled back"]


def test_an_unhealthy_rollout_is_rolled_back(repo: GitRepo, platform: FakePlatform) -> None:
    platform.rollout = Rollout(outcome="unhealthy")
    before = change(repo)

    step = deploy(repo, platform, before=before)

    assert step.outputs["status"] == "rolled-back"
    assert "became unhealthy after deploy new-1" in error(step)
    assert "Rollback deploy" in step.result.summary


def test_import_errors_of_shipped_files_are_annotated_and_rolled_back(
    repo: GitRepo, platform: FakePlatform
) -> None:
    platform.import_problems = {DAG: "Broken DAG: [/usr/local/airflow/dags/example_etl.py] x"}
    before = change(repo)

    step = deploy(repo, platform, before=before)

    assert step.outputs["status"] == "rolled-back"
    [annotation] = [c for c in step.commands("error") if c.properties.get("file")]
    assert annotation.properties == {"title": "DAG import error", "file": DAG}
    assert "could not import 1 deployed DAG file(s): dags/example_etl.py" in error(step)


def test_unreadable_import_errors_are_a_notice(repo: GitRepo, platform: FakePlatform) -> None:
    platform.logs_readable = False
    before = change(repo)

    step = deploy(repo, platform, before=before)

    assert step.result.returncode == 0
    assert "Import errors not checked" in step.titles("notice")


def test_check_import_errors_false_does_not_read_them(
    repo: GitRepo, platform: FakePlatform
) -> None:
    before = change(repo)

    deploy(repo, platform, {"check-import-errors": "false"}, before=before)

    assert "import_errors" not in platform.names()


def test_no_earlier_deploy_means_no_rollback_and_says_so(repo: GitRepo) -> None:
    platform = FakePlatform(rollout=Rollout(outcome="unhealthy"))

    step = deploy(repo, platform, {"deploy-type": "dags-only"})

    assert step.result.returncode == 1
    assert step.outputs["rolled-back"] == "false"
    assert "A rollback was impossible: the Deployment has no earlier DEPLOYED deploy" in error(step)
    assert "roll_back" not in platform.names()


def test_rollback_on_failure_false_leaves_the_deploy(repo: GitRepo, platform: FakePlatform) -> None:
    platform.rollout = Rollout(outcome="unhealthy")
    before = change(repo)

    step = deploy(repo, platform, {"rollback-on-failure": "false"}, before=before)

    assert step.outputs["status"] == "failed"
    assert "rollback-on-failure is false, so deploy new-1 was left in place" in error(step)
    assert "rollback-on-failure is false, so deploy new-1 was left in place" in error(step)


def test_a_failing_rollback_keeps_the_original_failure(
    repo: GitRepo, platform: FakePlatform
) -> None:
    platform.rollout = Rollout(outcome="unhealthy")
    platform.faults["roll_back"] = ApiError("Roll back failed: HTTP 500.")
    before = change(repo)

    step = deploy(repo, platform, before=before)

    assert step.titles("error") == ["Rollout failed and the rollback failed"]
    message = error(step)
    assert "became unhealthy" in message and "HTTP 500" in message
    assert step.outputs["rolled-back"] == "false"


def test_an_unhealthy_rollback_is_said_plainly(repo: GitRepo, platform: FakePlatform) -> None:
    platform.rollout = Rollout(outcome="unhealthy")
    platform.rollback_rollout = Rollout(outcome="unhealthy")
    before = change(repo)

    step = deploy(repo, platform, before=before)

    assert step.outputs["status"] == "rolled-back"
    assert "the rollback itself is not healthy" in error(step)


def test_a_failed_upload_changes_nothing_and_is_not_rolled_back(
    repo: GitRepo, platform: FakePlatform
) -> None:
    platform.faults["upload"] = UploadError("Put Blob failed: HTTP 403.")
    before = change(repo)

    step = deploy(repo, platform, before=before)

    assert step.outputs["status"] == "failed"
    assert step.outputs["deploy-id"] == "new-1"
    assert "roll_back" not in platform.names() and "finalize" not in platform.names()
    assert (
        "Deploy new-1 was created but not finalized (it stays INITIALIZED): the Deployment "
        "still runs what it ran before." in error(step)
    )


# --- rollback on demand --------------------------------------------------------------------------


def test_rollback_returns_to_the_deploy_before_the_one_running(repo: GitRepo) -> None:
    platform = FakePlatform()
    first, _second = platform.seed("a" * 40, dags="v1"), platform.seed("b" * 40, dags="v2")

    step = deploy(repo, platform, {"action": "rollback"})

    assert step.result.returncode == 0, step.log
    out = step.outputs
    assert (out["status"], out["rolled-back"], out["deploy-type"]) == (
        "rolled-back",
        "true",
        "DAG_ONLY",
    )
    assert platform.calls[2][:2] == ("roll_back", first.id)
    assert "Rolled back" in step.titles("notice")
    assert "## ↩️ Rolled back" in step.result.summary


def test_rollback_to_a_named_deploy_and_to_an_unknown_one(repo: GitRepo) -> None:
    platform = FakePlatform()
    first = platform.seed("a" * 40)
    platform.seed("b" * 40)
    platform.seed("c" * 40)

    named = deploy(repo, platform, {"action": "rollback", "rollback-to": first.id})
    unknown = deploy(repo, platform, {"action": "rollback", "rollback-to": "nope"})

    assert named.result.returncode == 0
    assert ("roll_back", first.id) == platform.calls[2][:2]
    assert unknown.result.returncode == 1
    assert unknown.titles("error") == ["Invalid input 'rollback-to'"]


def test_a_dry_run_rollback_says_where_it_would_go(repo: GitRepo) -> None:
    platform = FakePlatform()
    first = platform.seed("a" * 40)
    platform.seed("b" * 40)

    step = deploy(repo, platform, {"action": "rollback", "dry-run": "true"})

    assert step.outputs["status"] == "planned"
    assert "roll_back" not in platform.names()
    assert f"Dry run: would roll back to deploy {first.id}" in step.log


def test_rollback_with_nothing_before_is_a_clear_error(repo: GitRepo) -> None:
    platform = FakePlatform()
    platform.seed("a" * 40)

    step = deploy(repo, platform, {"action": "rollback"})

    assert step.result.returncode == 1
    assert step.titles("error") == ["Nothing to roll back to"]


# --- hibernation and cancellation -----------------------------------------------------------------


def test_wake_on_deploy_wraps_the_deploy_and_is_undone_after_a_failure(
    repo: GitRepo, platform: FakePlatform
) -> None:
    platform.rollout = Rollout(outcome="unhealthy")
    before = change(repo)

    deploy(repo, platform, {"wake-on-deploy": "true"}, before=before)

    assert platform.awake_calls == ["wake True", "restore True"]


def test_cancellation_mid_wait_restores_reports_and_fails(
    repo: GitRepo, platform: FakePlatform
) -> None:
    platform.rollout = Rollout(outcome="stuck")
    platform.on_call["observe"] = _cancel
    before = change(repo)

    step = deploy(repo, platform, {"wake-on-deploy": "true"}, before=before)

    assert step.result.returncode == 1
    assert step.titles("error") == ["Deploy cancelled"]
    assert (step.outputs["status"], step.outputs["deploy-id"]) == ("failed", "new-1")
    assert "was finalized" in step.result.summary
    assert platform.awake_calls == ["wake True", "restore True"]
    assert "roll_back" not in platform.names()


def _cancel() -> None:
    raise CancelledError("The run was cancelled (SIGTERM) and stopped where it was.")


def test_a_bug_after_finalize_still_reports_the_deploy(
    repo: GitRepo, platform: FakePlatform
) -> None:
    platform.faults["observe"] = KeyError("versions")
    before = change(repo)

    step = deploy(repo, platform, before=before)

    assert step.result.returncode == 1
    assert step.titles("error") == ["Unexpected error"]
    assert (step.outputs["status"], step.outputs["deploy-id"]) == ("failed", "new-1")
    assert "This is a bug" in error(step) and "was finalized" in error(step)


# --- the checkout comes first ---------------------------------------------------------------


def test_no_checkout_is_said_before_anything_is_written(repo: GitRepo) -> None:
    shutil.rmtree(repo.path / ".git")  # a job that forgot actions/checkout
    platform = FakePlatform()
    platform.seed("c" * 40)
    step = run_in_process(repo.path, {}, platform=platform, clock=FakeClock())
    assert step.result.returncode == 1
    assert "actions/checkout" in step.log
    assert platform.names() == ["locate"]  # a read, which went out before git loaded


def test_no_checkout_creates_no_preview(repo: GitRepo) -> None:
    shutil.rmtree(repo.path / ".git")
    platform = FakePlatform()
    step = run_in_process(
        repo.path,
        {"action": "preview", "pr-comment": "false"},
        platform=platform,
        clock=FakeClock(),
        event_name="pull_request",
        event=pull_request_event(12, "a" * 40, "b" * 40),
    )
    assert step.result.returncode == 1
    assert "actions/checkout" in step.log
    assert platform.previews == {}
    assert "create_environment" not in platform.names()


def test_the_report_names_the_commit_when_the_environment_cannot_be_found(
    repo: GitRepo,
) -> None:
    platform = FakePlatform()
    platform.seed(repo.head())
    platform.faults["locate"] = ApiError("Deployment not found (HTTP 404).", status_code=404)
    step = run_in_process(repo.path, {}, platform=platform, clock=FakeClock())
    assert step.result.returncode == 1
    assert repo.head()[:12] in step.result.summary


def test_a_runner_temp_the_container_does_not_have_spools_in_the_systems_temp(
    repo: GitRepo, tmp_path: Path
) -> None:
    platform = FakePlatform()
    platform.seed(repo.head())
    before = change(repo)
    step = run_in_process(
        repo.path,
        {},
        platform=platform,
        clock=FakeClock(),
        event_name="push",
        event=push_event(before, repo.head()),
        env={"RUNNER_TEMP": str(tmp_path / "host" / "_temp")},  # the host's, not mounted
    )
    assert step.result.returncode == 0, step.log
    assert step.outputs["deploy-type"] == "DAG_ONLY"
