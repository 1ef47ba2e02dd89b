"""The whole action in process with the real Astro platform, against the emulator over HTTP.

Every deploy type, Deployments by name, verified rollouts, automatic and requested
rollbacks, lost answers, hibernation: the real client, upload and image code talk to the
emulator on 127.0.0.1, and every API request must validate against the Astro spec (the
``astro`` fixture checks at teardown). Time is a fake clock the emulator shares, so a
rollout advances only while the run sleeps between polls and nothing really sleeps. Image
builds and pushes go through the Docker SDK to a fake Docker Engine API on 127.0.0.1 that
tells the emulator's registry what was pushed, so finalize can check it.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import docker as docker_sdk
import pytest

from ci_deploy.image import ImageBuilder
from ci_deploy.runner import Runner
from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import DAG, EXAMPLE, Step, api_posts, change
from tests.fake_docker import FakeDockerEngine
from tests.fakes import FakeClock
from tests.gitrepo import GitRepo
from tests.inprocess import run_action


@pytest.fixture
def emulator(astro: Emulator) -> Emulator:
    """The emulator on the fake clock the runs share."""
    return astro


@pytest.fixture
def docker(emulator: Emulator) -> Iterator[FakeDockerEngine]:
    with FakeDockerEngine(on_push=emulator.record_push) as engine:
        yield engine


def deploy(
    repo: GitRepo,
    emulator: Emulator,
    before: str,
    inputs: dict[str, str] | None = None,
    docker: FakeDockerEngine | None = None,
) -> Step:
    return run_action(
        repo,
        emulator,
        inputs,
        event=push_event(before, repo.head()),
        images=engine(docker.base_url if docker else "tcp://127.0.0.1:9"),
    )


def engine(base_url: str) -> Callable[[Runner], ImageBuilder]:
    """The real image code, talking to the Docker Engine API at ``base_url``."""

    def make(runner: Runner) -> ImageBuilder:
        return ImageBuilder(
            log=runner.info,
            group=runner.group,
            client_factory=lambda: docker_sdk.DockerClient(base_url=base_url),
        )

    return make


def deploys_of(emulator: Emulator, deployment: str | None = None) -> list[dict[str, object]]:
    return emulator.deploys(deployment or emulator.deployment_id)


# --- deploy types -------------------------------------------------------------------------


def test_image_and_dag_deploy_builds_pushes_uploads_and_verifies(
    repo: GitRepo, emulator: Emulator, docker: FakeDockerEngine
) -> None:
    before = change(repo, "requirements.txt", "pandas==2.2.3\n")

    step = deploy(repo, emulator, before, docker=docker)

    assert step.result.returncode == 0, step.log
    out = step.outputs
    assert (out["status"], out["deploy-type"]) == ("deployed", "IMAGE_AND_DAG")
    [build] = docker.builds
    assert docker.build_params["platform"] == "linux/amd64"
    assert "Dockerfile" in docker.build_context_files
    [push] = docker.pushes
    assert push.auth == {"username": "cli", "password": emulator.token}
    deploy_json = {d["id"]: d for d in deploys_of(emulator)}[out["deploy-id"]]
    deployment = emulator.deployment(emulator.deployment_id)
    assert deployment["imageTag"] == deploy_json["imageTag"]
    assert deployment["dagTarballVersion"] == out["dag-tarball-version"] != ""
    assert emulator.token not in step.log.replace(f"::add-mask ::{emulator.token}", "")
    assert "Building the image" in step.log
    del build


def test_image_only_deploy_finalizes_without_dags(
    repo: GitRepo, emulator: Emulator, docker: FakeDockerEngine
) -> None:
    before = change(repo, "packages.txt", "libpq-dev\n")

    step = deploy(repo, emulator, before, {"deploy-type": "image-only"}, docker=docker)

    assert step.result.returncode == 0, step.log
    assert step.outputs["deploy-type"] == "IMAGE_ONLY"
    assert step.outputs["dag-tarball-version"] == ""
    finalize = next(r for r in emulator.requests if r.path.endswith("/finalize"))
    assert finalize.json() == {"dagTarballVersion": ""}


def test_prebuilt_image_is_pushed_without_building(
    repo: GitRepo, emulator: Emulator, docker: FakeDockerEngine
) -> None:
    docker.add_image("my-airflow:abc123")
    before = change(repo, "requirements.txt", "pandas==2.2.3\n")

    step = deploy(repo, emulator, before, {"image-name": "my-airflow:abc123"}, docker=docker)

    assert step.result.returncode == 0, step.log
    assert docker.builds == []
    assert len(docker.pushes) == 1


def test_image_without_the_runtime_label_is_refused_before_any_deploy(
    repo: GitRepo, emulator: Emulator, docker: FakeDockerEngine
) -> None:
    docker.labels = {}
    before = change(repo, "requirements.txt", "pandas==2.2.3\n")

    step = deploy(repo, emulator, before, docker=docker)

    assert step.result.returncode == 1
    assert "io.astronomer.docker.runtime.version" in step.log
    assert api_posts(emulator) == []
    assert "Nothing was changed on the Deployment" in step.log


def test_bundle_deploy_uploads_the_project_without_a_prefix(
    repo: GitRepo, emulator: Emulator
) -> None:
    before = change(repo, "include/sql/daily_orders.sql", "-- more\n")

    step = deploy(
        repo,
        emulator,
        before,
        {
            "deploy-type": "bundle",
            "bundle-type": "dbt",
            "bundle-mount-path": "/usr/local/airflow/dbt/example",
        },
    )

    assert step.result.returncode == 0, step.log
    assert step.outputs["deploy-type"] == "BUNDLE"
    create = next(
        r for r in emulator.requests if r.method == "POST" and r.path.endswith("/deploys")
    )
    assert create.json()["bundleType"] == "dbt"
    finalize = next(r for r in emulator.requests if r.path.endswith("/finalize"))
    version = finalize.json()["bundleTarballVersion"]
    with tarfile.open(fileobj=io.BytesIO(emulator.blobs[version])) as tar:
        names = tar.getnames()
    assert "Dockerfile" in names and DAG in names
    assert not any(name.startswith("workspace/") for name in names)


def test_deployment_found_by_name(repo: GitRepo, emulator: Emulator) -> None:
    emulator.add_deployment("dep-by-name", name="analytics")
    before = change(repo)

    step = deploy(repo, emulator, before, {"deployment-id": "", "deployment-name": "analytics"})

    assert step.result.returncode == 0, step.log
    assert [d["type"] for d in deploys_of(emulator, "dep-by-name")] == ["DAG_ONLY"]


def test_ambiguous_deployment_name_lists_what_was_found(repo: GitRepo, emulator: Emulator) -> None:
    emulator.add_deployment("dep-a", name="analytics", workspaceId="ws-a")
    emulator.add_deployment("dep-b", name="analytics", workspaceId="ws-b")
    before = change(repo)

    step = deploy(repo, emulator, before, {"deployment-id": "", "deployment-name": "analytics"})

    assert step.result.returncode == 1
    assert "dep-a in workspace ws-a" in step.log and "dep-b in workspace ws-b" in step.log
    assert api_posts(emulator) == []


# --- before the deploy ----------------------------------------------------------------------


def test_syntax_error_is_annotated_on_the_file_and_nothing_is_deployed(
    repo: GitRepo, emulator: Emulator
) -> None:
    before = change(repo, "dags/broken.py", "def oops(:\n    pass\n")

    step = deploy(repo, emulator, before)

    assert step.result.returncode == 1
    [annotation] = [c for c in step.commands("error") if c.properties.get("file")]
    assert annotation.properties["file"] == "dags/broken.py"
    assert annotation.properties["line"] == "1"
    assert api_posts(emulator) == []


# --- verified rollout and automatic rollback ------------------------------------------------


def previous_version(emulator: Emulator) -> str:
    return str(emulator.deployment(emulator.deployment_id)["dagTarballVersion"])


def assert_rolled_back(step: Step, emulator: Emulator, version_before: str) -> None:
    assert step.result.returncode == 1
    out = step.outputs
    assert (out["status"], out["rolled-back"]) == ("rolled-back", "true")
    rollback_id = out["rollback-deploy-id"]
    rollback = {d["id"]: d for d in deploys_of(emulator)}[rollback_id]
    assert rollback["rollbackFromId"]
    assert f"after deploy {out['deploy-id']} failed" in str(rollback["description"])
    assert "/actions/runs/1" in str(rollback["description"]), "names the workflow run"
    assert previous_version(emulator) == version_before
    assert emulator.deployment(emulator.deployment_id)["status"] == "HEALTHY"
    [error] = [c for c in step.commands("error") if "rolled back" in c.message]
    assert "rolled back to deploy" in error.message
    assert "the rollback is healthy" in error.message
    assert "Rollback deploy" in step.result.summary


def test_unhealthy_rollout_is_rolled_back(repo: GitRepo, emulator: Emulator) -> None:
    emulator.unhealthy_after_finalize = True
    version_before = previous_version(emulator)
    before = change(repo)

    step = deploy(repo, emulator, before)

    assert_rolled_back(step, emulator, version_before)
    assert "became unhealthy" in step.log


def test_import_errors_are_annotated_and_rolled_back(repo: GitRepo, emulator: Emulator) -> None:
    emulator.airflow_api = False  # the logs are read when Airflow's API cannot be asked
    emulator.import_errors_after_finalize = [DAG]
    version_before = previous_version(emulator)
    before = change(repo)

    step = deploy(repo, emulator, before)

    assert_rolled_back(step, emulator, version_before)
    assert any(
        c.properties.get("file") == DAG and c.properties.get("title") == "DAG import error"
        for c in step.commands("error")
    )


def test_timeout_is_rolled_back(repo: GitRepo, emulator: Emulator, clock: FakeClock) -> None:
    emulator.rollout_seconds = 3600
    version_before = previous_version(emulator)
    before = change(repo)

    def speed_up_the_rollback(now: float) -> None:  # the rollback itself rolls out at once
        if any(r.path.endswith("/rollback") for r in emulator.requests):
            emulator.rollout_seconds = 0

    clock.on_sleep = speed_up_the_rollback
    step = deploy(repo, emulator, before, {"wait-timeout": "2m"})

    assert_rolled_back(step, emulator, version_before)
    assert "Timed out after 120s" in step.log
    assert sum(clock.sleeps) >= 120, "the wait lasted the whole timeout, on the fake clock"


def test_no_earlier_deploy_means_no_rollback_and_says_so(repo: GitRepo, emulator: Emulator) -> None:
    emulator.add_deployment("fresh")
    emulator.unhealthy_after_finalize = True
    before = change(repo)

    step = deploy(repo, emulator, before, {"deployment-id": "fresh", "deploy-type": "dags-only"})

    assert step.result.returncode == 1
    assert step.outputs["rolled-back"] == "false"
    assert "A rollback was impossible" in step.log


def test_failed_upload_is_not_rolled_back(repo: GitRepo, emulator: Emulator) -> None:
    emulator.faults.add("PUT", r"^/blob/", 403, count=10)
    before = change(repo)

    step = deploy(repo, emulator, before)

    assert step.result.returncode == 1
    assert step.outputs["rolled-back"] == "false"
    assert not any(path.endswith("/rollback") for path in api_posts(emulator))
    assert "still runs what it ran before" in step.log


def test_logs_endpoint_absent_is_a_notice(repo: GitRepo, emulator: Emulator) -> None:
    emulator.airflow_api = False  # the logs are read when Airflow's API cannot be asked
    emulator.logs_available = False
    before = change(repo)

    step = deploy(repo, emulator, before)

    assert step.result.returncode == 0, step.log
    assert "Import errors not checked" in step.titles("notice")


def test_rollback_on_demand_returns_to_the_previous_deploy(
    repo: GitRepo, emulator: Emulator
) -> None:
    version_before = previous_version(emulator)
    first = deploy(repo, emulator, change(repo))
    assert first.outputs["status"] == "deployed", first.log

    step = run_action(repo, emulator, {"action": "rollback"}, event_name="workflow_dispatch")

    assert step.result.returncode == 0, step.log
    assert (step.outputs["status"], step.outputs["rolled-back"]) == ("rolled-back", "true")
    assert previous_version(emulator) == version_before
    assert "Rolled back" in step.titles("notice")


# --- network faults -------------------------------------------------------------------------


def test_a_create_whose_answer_is_lost_leaves_exactly_one_deploy(
    repo: GitRepo, emulator: Emulator
) -> None:
    emulator.faults.add_drop("POST", r"/deploys$")
    count_before = len(deploys_of(emulator))
    before = change(repo)

    step = deploy(repo, emulator, before)

    assert step.result.returncode == 0, step.log
    assert len(deploys_of(emulator)) == count_before + 1
    assert "reading the Deployment's deploys to see whether it was done" in step.log


def test_a_create_processed_after_the_run_gave_up_on_it_is_named(
    repo: GitRepo, emulator: Emulator
) -> None:
    # case 5: the create is processed only after the run looked for it and created again
    emulator.faults.add_late("POST", r"/deploys$", until=("PUT", r"^/blob/"))
    known = {d["id"] for d in deploys_of(emulator)}
    before = change(repo)

    step = deploy(repo, emulator, before)

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "deployed"
    made = [d for d in deploys_of(emulator) if d["id"] not in known]
    assert len(made) == 2, "the late create made a second deploy"
    [late] = [d for d in made if d["status"] == "INITIALIZED"]
    [ours] = [d for d in made if d["status"] == "DEPLOYED"]
    assert step.outputs["deploy-id"] == ours["id"]
    marker = str(ours["description"]).rsplit(" ", 1)[-1]
    assert marker.startswith("[ci-deploy:") and str(late["description"]).endswith(marker)
    [warning] = [c for c in step.commands("warning") if late["id"] in c.message]
    assert warning.properties["title"] == "Unfinalized deploy left"
    assert f"| Left INITIALIZED | deploy `{late['id']}` (not finalized" in step.result.summary


def test_a_finalize_processed_but_unanswered_is_waited_for_and_rolled_back(
    repo: GitRepo, emulator: Emulator
) -> None:
    # case 3: the server finalized the deploy, the answer was lost, and the rollout fails
    emulator.faults.add_drop("POST", r"/finalize$")
    emulator.unhealthy_after_finalize = True
    version_before = previous_version(emulator)
    before = change(repo)

    step = deploy(repo, emulator, before)

    assert "The answer to finalizing deploy" in step.log
    assert "It was: deploy" in step.log
    assert_rolled_back(step, emulator, version_before)
    finalizes = [p for p in api_posts(emulator) if p.endswith("/finalize")]
    assert len(finalizes) == 1, "a finalize the server did is never sent again"


def test_a_finalize_the_server_did_not_process_is_read_back_and_retried(
    repo: GitRepo, emulator: Emulator
) -> None:
    # case 4: one 500 that the server did not process
    emulator.faults.add("POST", r"/finalize$", 500)
    before = change(repo)

    step = deploy(repo, emulator, before)

    assert step.result.returncode == 0, step.log
    assert "It was not; finalizing deploy" in step.log
    assert [d["status"] for d in deploys_of(emulator)].count("INITIALIZED") == 0
    running = emulator.deployment(emulator.deployment_id)["dagTarballVersion"]
    assert running == step.outputs["dag-tarball-version"]


def test_a_rollback_the_server_did_not_process_is_read_back_and_retried(
    repo: GitRepo, emulator: Emulator
) -> None:
    # case 6: the rollback POST answered 500 once, unprocessed
    emulator.unhealthy_after_finalize = True
    emulator.faults.add("POST", r"/rollback$", 500)
    version_before = previous_version(emulator)
    before = change(repo)

    step = deploy(repo, emulator, before)

    assert_rolled_back(step, emulator, version_before)
    assert sum(1 for d in deploys_of(emulator) if d.get("rollbackFromId")) == 1


def test_a_rollback_made_but_unanswered_is_adopted_not_made_twice(
    repo: GitRepo, emulator: Emulator
) -> None:
    # case 7: the rollback's answer is lost; the outputs still name the rollback deploy
    emulator.unhealthy_after_finalize = True
    emulator.faults.add_drop("POST", r"/rollback$")
    version_before = previous_version(emulator)
    before = change(repo)

    step = deploy(repo, emulator, before)

    assert_rolled_back(step, emulator, version_before)
    [rollback] = [d for d in deploys_of(emulator) if d.get("rollbackFromId")]
    assert step.outputs["rollback-deploy-id"] == rollback["id"]


def test_a_logs_endpoint_failing_after_a_verified_rollout_is_a_warning(
    repo: GitRepo, emulator: Emulator
) -> None:
    # case 8: the Deployment is HEALTHY on the new version; only the logs cannot be read
    emulator.airflow_api = False  # the logs are read when Airflow's API cannot be asked
    emulator.faults.add("GET", r"/logs$", 500, count=20)
    before = change(repo)

    step = deploy(repo, emulator, before)

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "deployed"
    [warning] = [
        c
        for c in step.commands("warning")
        if c.properties.get("title") == "Import errors not checked"
    ]
    assert "Reading the Deployment's logs failed" in warning.message
    assert "HTTP 500" in warning.message


# --- hibernation and cancellation -----------------------------------------------------------


def test_wake_on_deploy_wakes_and_restores(repo: GitRepo, emulator: Emulator) -> None:
    emulator.add_deployment("dev", isDevelopmentMode=True)
    emulator.update_deployment("dev", hibernating=True)
    before = change(repo)

    step = deploy(
        repo,
        emulator,
        before,
        {"deployment-id": "dev", "deploy-type": "dags-only", "wake-on-deploy": "true"},
    )

    assert step.result.returncode == 0, step.log
    overrides = [r for r in emulator.requests if r.path.endswith("/hibernation-override")]
    assert [r.method for r in overrides] == ["POST", "DELETE"]
    assert overrides[0].json() == {"isHibernating": False}
    assert emulator.hibernation_override("dev") is None


def test_rollback_to_a_named_deploy(repo: GitRepo, emulator: Emulator) -> None:
    seeded = deploys_of(emulator)[0]
    for marker in ("one", "two"):
        step = deploy(repo, emulator, change(repo, text=f"\n# {marker}\n"))
        assert step.outputs["status"] == "deployed", step.log

    step = run_action(
        repo,
        emulator,
        {"action": "rollback", "rollback-to": str(seeded["id"])},
        event_name="workflow_dispatch",
    )
    unknown = run_action(
        repo,
        emulator,
        {"action": "rollback", "rollback-to": "no-such-deploy"},
        event_name="workflow_dispatch",
    )

    assert step.result.returncode == 0, step.log
    assert previous_version(emulator) == seeded["dagTarballVersion"]
    assert unknown.result.returncode == 1
    assert unknown.titles("error") == ["Invalid input 'rollback-to'"]


def test_unknown_deployment_name_is_a_clear_error(repo: GitRepo, emulator: Emulator) -> None:
    before = change(repo)

    step = deploy(repo, emulator, before, {"deployment-id": "", "deployment-name": "nope"})

    assert step.result.returncode == 1
    assert step.titles("error") == ["Deployment not found"]
    assert "No Deployment is named 'nope'" in step.log
    assert api_posts(emulator) == []


def test_a_failing_rollback_is_reported_with_the_original_failure(
    repo: GitRepo, emulator: Emulator
) -> None:
    emulator.unhealthy_after_finalize = True
    emulator.faults.add("POST", r"/rollback$", 500, count=3)
    before = change(repo)

    step = deploy(repo, emulator, before)

    assert step.result.returncode == 1
    assert step.titles("error") == ["Rollout failed and the rollback failed"]
    [error] = step.commands("error")
    assert "became unhealthy" in error.message
    assert "The automatic rollback to deploy" in error.message
    assert "none of them shows in the Deployment's deploys" in error.message
    assert "No rollback was made; the Deployment still runs deploy" in error.message
    assert step.outputs["rolled-back"] == "false"
    assert step.outputs["rollback-deploy-id"] == ""
    assert sum(1 for d in deploys_of(emulator) if d.get("rollbackFromId")) == 0


def test_unhealthy_rollback_is_said_plainly(repo: GitRepo, emulator: Emulator) -> None:
    emulator.unhealthy_after_finalize = True
    emulator.unhealthy_after_rollback = True
    before = change(repo)

    step = deploy(repo, emulator, before)

    assert step.result.returncode == 1
    assert step.outputs["status"] == "rolled-back"
    assert "the rollback itself is not healthy" in step.log


def test_wake_on_deploy_restores_the_override_after_a_failed_rollout(
    repo: GitRepo, emulator: Emulator
) -> None:
    emulator.add_deployment("dev", isDevelopmentMode=True)
    emulator.update_deployment("dev", hibernating=True)
    emulator.unhealthy_after_finalize = True
    before = change(repo)

    step = deploy(
        repo,
        emulator,
        before,
        {"deployment-id": "dev", "deploy-type": "dags-only", "wake-on-deploy": "true"},
    )

    assert step.result.returncode == 1
    assert [r.method for r in emulator.requests if r.path.endswith("/hibernation-override")] == [
        "POST",
        "DELETE",
    ]
    assert emulator.hibernation_override("dev") is None


def test_syntax_error_annotation_names_the_file_in_a_nested_dags_folder(
    tmp_path: Path, emulator: Emulator
) -> None:
    nested = GitRepo(tmp_path / "nested")
    shutil.copytree(EXAMPLE, nested.path / "astro")
    (nested.path / "astro" / "pipelines").mkdir()
    (nested.path / "astro" / "dags").rename(nested.path / "astro" / "pipelines" / "dags")
    nested.commit("A project whose DAGs live in pipelines/dags")
    before = change(nested, "astro/pipelines/dags/broken.py", "def oops(:\n")

    step = deploy(
        nested, emulator, before, {"root-folder": "astro", "dags-folder": "pipelines/dags"}
    )

    assert step.result.returncode == 1
    files = [c.properties.get("file") for c in step.commands("error") if c.properties.get("file")]
    assert files == ["astro/pipelines/dags/broken.py"]
    assert api_posts(emulator) == []


# --- from the first milestone's end-to-end tests, now in process ---------------------------


def run_push(
    repo: GitRepo, emulator: Emulator, before: str, inputs: dict[str, str] | None = None
) -> Step:
    return deploy(repo, emulator, before, inputs)


def test_change_outside_root_folder_skips_without_creating_anything(
    tmp_path: Path, emulator: Emulator
) -> None:
    repo = GitRepo(tmp_path / "workspace")
    shutil.copytree(EXAMPLE, repo.path / "astro")
    repo.write("README.md", "# Our data platform\n")
    before = repo.commit("Add the project under astro/")
    repo.write("README.md", "# Our data platform\n\nNow with docs.\n")
    repo.commit("Document the platform")

    step = run_push(repo, emulator, before, {"root-folder": "astro"})

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "skipped"
    assert step.outputs["skipped"] == "true"
    assert step.outputs["deploy-type"] == ""
    assert "nothing to deploy" in step.outputs["skip-reason"]
    assert json.loads(step.outputs["changed-files"]) == ["README.md"]
    assert step.titles("notice") == ["Deploy skipped"]
    assert "Deploy skipped" in step.result.summary
    assert api_posts(emulator) == []


def test_dry_run_plans_and_creates_nothing(repo: GitRepo, emulator: Emulator) -> None:
    before = change(repo)

    step = run_push(repo, emulator, before, {"dry-run": "true"})

    assert step.result.returncode == 0, step.log
    assert step.outputs["status"] == "planned"
    assert step.outputs["deploy-type"] == "DAG_ONLY"
    assert step.outputs["deploy-id"] == ""
    assert "Deploy plan (dry run)" in step.result.summary
    assert api_posts(emulator) == []


def test_dag_deploy_refused_when_dag_deploys_are_disabled(
    repo: GitRepo, emulator: Emulator
) -> None:
    emulator.add_deployment("no-dag-deploys", isDagDeployEnabled=False)
    before = change(repo)

    step = run_push(
        repo, emulator, before, {"deployment-id": "no-dag-deploys", "deploy-type": "dags-only"}
    )

    assert step.result.returncode == 1
    assert step.titles("error") == ["DAG deploys are disabled"]
    assert api_posts(emulator) == []


def test_rollout_timeout_without_rollback_leaves_the_deploy(
    repo: GitRepo, emulator: Emulator
) -> None:
    emulator.rollout_seconds = 60
    before = change(repo)

    step = run_push(repo, emulator, before, {"wait-timeout": "1", "rollback-on-failure": "false"})

    assert step.result.returncode == 1
    assert "Timed out after 1s" in step.log
    assert "DEPLOYING" in step.log
    assert "rollback-on-failure is false" in step.log
    assert step.outputs["status"] == "failed"
    assert not any(path.endswith("/rollback") for path in api_posts(emulator))
    assert step.outputs["deploy-id"], "the deploy was created and finalized"
    assert "was left in place" in step.result.summary


def test_unhealthy_rollout_without_rollback_fails(repo: GitRepo, emulator: Emulator) -> None:
    emulator.unhealthy_after_finalize = True
    before = change(repo)

    step = run_push(repo, emulator, before, {"rollback-on-failure": "false"})

    assert step.result.returncode == 1
    assert "unhealthy" in step.log
    assert step.outputs["status"] == "failed"
    assert step.outputs["rolled-back"] == "false"


def test_rate_limited_create_is_retried_and_creates_one_deploy(
    repo: GitRepo, emulator: Emulator
) -> None:
    emulator.faults.add("POST", r"/deploys$", 429, retry_after="1")
    deploys_before = len(emulator.deploys(emulator.deployment_id))
    before = change(repo)

    step = run_push(repo, emulator, before)

    assert step.result.returncode == 0, step.log
    assert "HTTP 429" in step.log
    assert len(emulator.deploys(emulator.deployment_id)) == deploys_before + 1


def test_upload_failure_leaves_the_deployment_as_it_was(repo: GitRepo, emulator: Emulator) -> None:
    emulator.faults.add("PUT", r"^/blob/", 403, count=10)
    version_before = emulator.deployment(emulator.deployment_id)["dagTarballVersion"]
    before = change(repo)

    step = run_push(repo, emulator, before)

    assert step.result.returncode == 1
    assert "was created but not finalized" in step.log
    assert not any(path.endswith("/finalize") for path in api_posts(emulator))
    assert emulator.deployment(emulator.deployment_id)["dagTarballVersion"] == version_before
    assert "sig=" not in step.log
