"""End to end: the real entrypoint, as a subprocess, against the emulator on 127.0.0.1.

Only what a real process shows is tested here: the runner's files and workflow commands as
the runner reads them, masking, exit codes, ``DOCKER_HOST``, and SIGTERM from a cancelled
workflow. Each test builds a real git repository holding the example Astro project, runs
``entrypoint.py`` with ``INPUT_*`` variables, an event file and runner files as the GitHub
runner does, and checks the exit code, the log, the outputs, the summary, and what the
emulator's Deployment received. Every other path runs in process (``test_run.py``,
``test_astro_run.py``, ``test_run_changes.py``).
"""

from __future__ import annotations

import io
import json
import re
import signal
import tarfile
import time
from collections.abc import Iterable

from ci_deploy_testkit.emulator import Emulator
from ci_deploy_testkit.ghfiles import parse_workflow_command
from ci_deploy_testkit.localrun import finish_step, push_event, start_step
from tests.actionrun import (
    Step,
    api_posts,
    assert_no_traceback,
    change,
    run_push,
    step_environment,
)
from tests.gitrepo import GitRepo


def test_dag_change_deploys_dag_only_and_waits_until_healthy(
    repo: GitRepo, emulator: Emulator
) -> None:
    before = change(repo)
    after = repo.head()

    step = run_push(repo, emulator, before)

    assert step.result.returncode == 0, step.log
    out = step.outputs
    assert out["status"] == "deployed"
    assert out["deploy-type"] == "DAG_ONLY"
    assert out["skipped"] == "false"
    assert out["skip-reason"] == ""
    assert out["rolled-back"] == "false"
    assert json.loads(out["changed-files"]) == ["dags/example_etl.py"]
    assert out["deployment-url"] == emulator.deployment(emulator.deployment_id)["uiUrl"]

    deployment = emulator.deployment(emulator.deployment_id)
    assert deployment["status"] == "HEALTHY"
    assert deployment["dagTarballVersion"] == out["dag-tarball-version"]

    deploys = {d["id"]: d for d in emulator.deploys(emulator.deployment_id)}
    deploy = deploys[out["deploy-id"]]
    assert deploy["type"] == "DAG_ONLY"
    assert deploy["status"] == "DEPLOYED"
    run_url = "https://github.com/example/astro-project/actions/runs/1"
    # the commit's subject, the run's page, and the run's marker (a lost answer is found by it)
    assert re.fullmatch(
        rf"Change dags/example_etl\.py \({re.escape(run_url)}\) \[ci-deploy:[0-9a-f]{{12}}\]",
        deploy["description"],
    )
    git = deploy["git"]
    assert git["provider"] == "GITHUB"
    assert (git["account"], git["repo"], git["branch"]) == ("example", "astro-project", "main")
    assert git["commitSha"] == after
    assert git["beforeCommitSha"] == before
    assert git["commitUrl"] == f"https://github.com/example/astro-project/commit/{after}"
    assert git["authorUsername"] == "mona"

    with tarfile.open(fileobj=io.BytesIO(emulator.blobs[out["dag-tarball-version"]])) as tar:
        names = tar.getnames()
    assert names == sorted(names)
    assert "dags/example_etl.py" in names
    assert "dags/utils/notify.py" in names
    assert not any(name.startswith(("include/", "Dockerfile")) for name in names)

    blob_requests = [r for r in emulator.requests if r.path.startswith("/blob/")]
    assert blob_requests, "the tarball was uploaded"
    assert all("authorization" not in r.headers for r in blob_requests)
    api_requests = [r for r in emulator.requests if r.path.startswith("/v1/")]
    assert all(r.headers["authorization"] == f"Bearer {emulator.token}" for r in api_requests)

    assert "## ✅ Deployed to Astro" in step.result.summary
    assert out["deploy-id"] in step.result.summary
    assert after[:12] in step.result.summary
    assert "DAG_ONLY" in step.result.summary
    # the tarball shipped was packed beside the run, by a fork made before any thread
    early = "The DAG tarball was packed early, beside the run: a fork of the run's process."
    assert any(
        line.startswith("::debug") and line.endswith(f"::{early}")
        for line in step.result.stdout.splitlines()
    )
    assert not list((repo.path.parent / f"runner-{repo.path.name}").glob("ci-deploy-*"))


def test_token_appears_only_in_the_mask_command(repo: GitRepo, emulator: Emulator) -> None:
    before = change(repo)

    step = run_push(repo, emulator, before)

    assert step.result.returncode == 0, step.log
    lines = step.log.splitlines()
    first = parse_workflow_command(lines[0])
    assert first is not None and first.command == "add-mask", "the mask comes before anything"
    assert first.message == emulator.token
    assert [line for line in lines if emulator.token in line] == [lines[0]]
    assert emulator.token not in step.result.summary
    assert emulator.token not in step.result.output_file
    sas_signatures = {
        part.split("=", 1)[1]
        for r in emulator.requests
        if r.path.startswith("/blob/")
        for part in r.query.split("&")
        if part.startswith("sig=")
    }
    assert sas_signatures
    masks = [c.message for c in step.commands("add-mask")]
    for signature in sas_signatures:
        assert signature in masks
        assert len([line for line in lines if signature in line]) == 1


def test_invalid_inputs_fail_cleanly_before_any_api_call(repo: GitRepo, emulator: Emulator) -> None:
    before = change(repo)

    step = run_push(repo, emulator, before, {"deploy-type": "dag", "wait": "yes"})

    assert step.result.returncode == 1
    assert step.titles("error") == ["Invalid input 'deploy-type'", "Invalid input 'wait'"]
    messages = [c.message for c in step.commands("error")]
    assert "infer, dags-only, image-and-dags, image-only, bundle" in messages[0]
    assert "true or false" in messages[1]
    assert step.outputs["status"] == "failed"
    assert step.outputs["deploy-id"] == ""
    assert "Deploy failed" in step.result.summary
    assert emulator.requests == []


def test_rejected_token_fails_cleanly(repo: GitRepo, emulator: Emulator) -> None:
    before = change(repo)
    bad_token = "not-a-valid-token-0123456789"

    step = run_push(
        repo, emulator, before, {"organization-id": emulator.organization_id}, token=bad_token
    )

    assert step.result.returncode == 1
    assert "rejected the token" in step.log
    assert len(step.commands("error")) == 1
    assert "Nothing was changed on the Deployment" in step.log
    assert step.outputs["status"] == "failed"
    assert step.commands("add-mask")[0].message == bad_token
    assert len([line for line in step.log.splitlines() if bad_token in line]) == 1
    assert api_posts(emulator) == []


def test_image_deploy_without_a_docker_engine_fails_before_any_deploy(
    repo: GitRepo, emulator: Emulator
) -> None:
    before = repo.head()
    repo.write("requirements.txt", "apache-airflow-providers-http==5.3.0\npandas==2.2.3\n")
    repo.commit("Add pandas")

    step = run_push(repo, emulator, before, env={"DOCKER_HOST": "tcp://127.0.0.1:9"})

    assert step.result.returncode == 1
    assert step.titles("error") == ["Docker engine not reachable"]
    assert "image-name" in step.log
    assert step.outputs["status"] == "failed"
    assert step.outputs["deploy-type"] == "IMAGE_AND_DAG"
    assert api_posts(emulator) == []
    assert "Nothing was changed on the Deployment" in step.log


def test_cancellation_mid_wait_restores_the_override_and_reports(
    repo: GitRepo, emulator: Emulator
) -> None:
    emulator.add_deployment("dev", isDevelopmentMode=True)
    emulator.update_deployment("dev", hibernating=True)
    emulator.rollout_seconds = 60
    before = change(repo)
    environ = step_environment(
        repo,
        emulator,
        {"deployment-id": "dev", "deploy-type": "dags-only", "wake-on-deploy": "true"},
        event=push_event(before, repo.head()),
    )

    process = start_step(environ)
    deadline = time.monotonic() + 60
    while not any(r.path.endswith("/finalize") for r in list(emulator.requests)):
        assert time.monotonic() < deadline, "the step never finalized"
        time.sleep(0.05)
    time.sleep(0.5)  # inside the wait
    process.send_signal(signal.SIGTERM)
    result = finish_step(process, environ, timeout=60)

    assert result.returncode != 0
    assert_no_traceback(result.stdout + result.stderr)
    assert "cancelled" in result.stdout
    assert result.outputs["status"] == "failed"
    assert result.outputs["deploy-id"]
    assert "was finalized" in result.summary
    assert emulator.hibernation_override("dev") is None
    assert [r.method for r in emulator.requests if r.path.endswith("/hibernation-override")] == [
        "POST",
        "DELETE",
    ]


def test_sigterms_in_a_burst_still_leave_the_outputs_and_summary(
    repo: GitRepo, emulator: Emulator
) -> None:
    # The runner may signal more than once; every signal after the first must not kill the
    # step while it reports.
    emulator.rollout_seconds = 60
    before = change(repo)
    environ = step_environment(repo, emulator, {}, event=push_event(before, repo.head()))

    process = start_step(environ)
    deadline = time.monotonic() + 60
    while not any(r.path.endswith("/finalize") for r in list(emulator.requests)):
        assert time.monotonic() < deadline, "the step never finalized"
        time.sleep(0.05)
    time.sleep(0.3)  # inside the wait
    while process.poll() is None and time.monotonic() < deadline:
        process.send_signal(signal.SIGTERM)
        time.sleep(0.002)
    result = finish_step(process, environ, timeout=60)

    assert result.returncode == 1, "exited by itself, not killed by a later SIGTERM"
    assert "::error title=Deploy cancelled::" in result.stdout
    assert result.outputs["status"] == "failed"
    assert result.outputs["deploy-id"]
    assert "## ❌ Deploy failed" in result.summary


def import_order(step: Step) -> list[str]:
    """Every module the step's interpreter imported, in the order their imports ended, read
    from its import log (``PYTHONPROFILEIMPORTTIME=1``, the same as ``python -X importtime``)."""
    return [
        line.rsplit("|", 1)[1].strip()
        for line in step.result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    ]


def imported_modules(step: Step) -> set[str]:
    """Every module the step's interpreter imported."""
    return set(import_order(step))


def loaded(modules: Iterable[str], *packages: str) -> list[str]:
    """The modules of ``packages`` (each a package or a module, with its submodules)."""
    return sorted(m for m in modules if any(m == p or m.startswith(f"{p}.") for p in packages))


def test_a_dag_only_run_never_imports_the_docker_sdk(repo: GitRepo, emulator: Emulator) -> None:
    before = change(repo)

    step = run_push(repo, emulator, before, env={"PYTHONPROFILEIMPORTTIME": "1"})

    assert step.result.returncode == 0, step.log
    assert step.outputs["deploy-type"] == "DAG_ONLY"
    imported = imported_modules(step)
    assert loaded(imported, "ci_deploy.run", "httpx", "git"), "the import log was read"
    assert loaded(imported, "docker", "requests") == []
    # nor the image code, App Platform, the config file's YAML (there is none), or the GitHub
    # client (a push with no environment tells GitHub nothing)
    assert loaded(imported, "ci_deploy.image", "ci_deploy.digitalocean", "yaml") == []
    assert loaded(imported, "ci_deploy.github_api") == []
    # pydantic (the API's models) and pathspec (the globs) load only once the inputs are
    # valid: after ci_deploy.tls, which the CLI imports then
    order = import_order(step)
    valid = order.index("ci_deploy.tls")
    after = set(order[valid:])
    assert loaded(after, "pydantic", "pathspec") == loaded(imported, "pydantic", "pathspec")
    assert loaded(imported, "pydantic") and loaded(imported, "pathspec")


def test_invalid_input_exits_before_the_run_code_is_loaded(
    repo: GitRepo, emulator: Emulator
) -> None:
    # A bad input costs only the inputs' validation: no git, HTTP, Docker, nor the API's
    # models are imported before the step says what is wrong.
    before = change(repo)

    step = run_push(
        repo, emulator, before, {"wait-timeout": "abc"}, env={"PYTHONPROFILEIMPORTTIME": "1"}
    )

    assert step.result.returncode == 1, step.log
    assert step.titles("error") == ["Invalid input 'wait-timeout'"]
    assert step.outputs["status"] == "failed"
    assert emulator.requests == []
    imported = imported_modules(step)
    assert loaded(imported, "ci_deploy.inputs"), "the import log was read"
    assert loaded(imported, "docker", "requests", "git", "httpx", "yaml") == []
    # nor pydantic (the inputs are a dataclass), nor pathspec (the default globs are known good)
    assert loaded(imported, "pydantic", "pydantic_core", "pathspec", "re2") == []
    # of Astro, only the number the inputs borrow
    assert loaded(imported, "ci_deploy.astro") == ["ci_deploy.astro", "ci_deploy.astro.limits"]
    assert loaded(imported, "ci_deploy.digitalocean") == []
    assert loaded(imported, "ci_deploy.run", "ci_deploy.stages", "ci_deploy.github_api") == []
