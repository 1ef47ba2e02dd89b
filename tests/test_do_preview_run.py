"""App Platform previews in process: the real client and ``AppsPlatform`` against the App
Platform emulator (``do_api``: a fake clock shared with the run, every request checked against
the DO spec). One app per pull request, named to fit 32 characters, carrying its marker in
``CI_DEPLOY_PREVIEW``; found, deleted and cleaned up by that marker only."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from ci_deploy.digitalocean.platform import connect
from ci_deploy.digitalocean.preview import APP_NAME_MAX, preview_app_name, preview_spec
from ci_deploy.digitalocean.rules import MARKER_ENV
from ci_deploy.preview import PullRequest
from ci_deploy_testkit.do_emulator import DEMO_REPO, AppPlatformEmulator
from ci_deploy_testkit.localrun import pull_request_event
from tests.actionrun import Step, change
from tests.fakes import FakeClock
from tests.gitrepo import GitRepo
from tests.inprocess import run_in_process

REPO = "example/astro-project"
BRANCH = "fix/x"
SECRET = "preview-db-secret-value"
NAME_RULE = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")


def pr_run(
    repo: GitRepo,
    emu: AppPlatformEmulator,
    clock: FakeClock,
    action: str,
    *,
    number: int = 5,
    repository: str = REPO,
    inputs: dict[str, str] | None = None,
    app_id: str = "",
) -> Step:
    """The action for a ``pull_request`` event of ``repository``'s PR ``number``, the
    template being ``app_id`` (the emulator's app when "")."""
    emu.set_branch_head(DEMO_REPO, BRANCH, repo.head())  # what a build of the branch records
    event = pull_request_event(
        number, repo.head(), repo.first, action=action, branch=BRANCH, repository=repository
    )
    step_inputs = {
        "platform": "digitalocean",
        "api-url": emu.api_url,
        "app-id": app_id or emu.app_id,
        "action": "preview-delete" if action == "closed" else "preview",
        **({} if action == "closed" else {"preview-env": f"DB_PASSWORD={SECRET}"}),
        **(inputs or {}),
    }
    return run_in_process(
        repo.path,
        step_inputs,
        factory=connect,
        clock=clock,
        event_name="pull_request",
        event=event,
        ref=f"refs/pull/{number}/merge",
        env={
            "DIGITALOCEAN_TOKEN": emu.token,
            "GITHUB_REPOSITORY": repository,
            "GITHUB_HEAD_REF": BRANCH,
        },
        request_timeout=5,
    )


def open_preview(repo: GitRepo, emu: AppPlatformEmulator, clock: FakeClock) -> str:
    """Open the pull request; the id of the preview app made."""
    opened = pr_run(repo, emu, clock, "opened")
    assert opened.result.returncode == 0, opened.log
    return opened.outputs["preview-deployment-id"]


def previews(emu: AppPlatformEmulator) -> list[dict[str, Any]]:
    return [a for a in emu.apps() if a["id"] != emu.app_id]


def envs(app: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["key"]: e for e in app["spec"].get("envs", [])}


@pytest.fixture
def pr_repo(repo: GitRepo) -> GitRepo:
    repo.first = repo.head()  # type: ignore[attr-defined]
    change(repo)
    return repo


@pytest.fixture
def template(do_api: AppPlatformEmulator) -> dict[str, Any]:
    """A template app with a domain, alerts and a secret variable (the repository has no
    app spec, so the preview copies this one)."""
    spec = do_api.app()["spec"] | {
        "name": "airflow-template",
        "domains": [{"domain": "airflow.example.com", "type": "PRIMARY"}],
        "alerts": [{"rule": "DEPLOYMENT_FAILED"}],
        "envs": [
            {"key": "PLAIN", "value": "1", "type": "GENERAL"},
            {"key": "DB_PASSWORD", "value": "EV[1:abc]", "type": "SECRET"},
        ],
    }
    return do_api.app(do_api.add_app(spec))


# -- the name and the spec, pure -------------------------------------------------------------


def test_a_preview_app_name_fits_app_platform_and_is_unique_per_repository_pr_and_template() -> (
    None
):
    name = preview_app_name(PullRequest("Example/Astro_Project.v2", 12, template="t1"))
    assert NAME_RULE.fullmatch(name) and len(name) <= APP_NAME_MAX
    assert name.startswith("example-astro-projec-12-")
    long = preview_app_name(PullRequest("a-very-long-owner/" + "x" * 80, 123456, template="t1"))
    assert NAME_RULE.fullmatch(long) and len(long) == APP_NAME_MAX
    assert NAME_RULE.fullmatch(preview_app_name(PullRequest("9lives/repo", 1)))
    others = {
        preview_app_name(PullRequest("Example/Astro_Project.v2", 12, template="t2")),
        preview_app_name(PullRequest("Example/Astro_Project.v2", 13, template="t1")),
        preview_app_name(PullRequest("example/astro-project-v2", 12, template="t1")),
    }
    assert name not in others and len(others) == 3


def test_a_preview_spec_drops_domains_and_alerts_and_builds_the_head_branch() -> None:
    spec = {
        "name": "airflow",
        "domains": [{"domain": "a.example.com"}],
        "alerts": [{"rule": "DEPLOYMENT_FAILED"}],
        "envs": [
            {"key": "DB_PASSWORD", "value": "EV[1:x]", "type": "SECRET"},
            {"key": "API_KEY", "value": "EV[1:y]", "type": "SECRET"},
            {"key": "PLAIN", "value": "1"},
        ],
        "services": [
            {"name": "web", "github": {"repo": "o/r", "branch": "main", "deploy_on_push": True}},
        ],
        "workers": [{"name": "w", "git": {"repo_clone_url": "https://x/r.git", "branch": "main"}}],
        "jobs": [{"name": "j", "image": {"registry_type": "DOCR", "repository": "r"}}],
    }
    made = preview_spec(spec, "o-r-5-12345678", "[m]", "fix/x", {"DB_PASSWORD": "s"})
    assert made["name"] == "o-r-5-12345678"
    assert "domains" not in made and "alerts" not in made
    assert made["services"][0]["github"] == {
        "repo": "o/r",
        "branch": "fix/x",
        "deploy_on_push": False,
    }
    assert made["workers"][0]["git"] == {"repo_clone_url": "https://x/r.git", "branch": "fix/x"}
    assert made["jobs"][0]["image"] == {"registry_type": "DOCR", "repository": "r"}
    assert [(e["key"], e["value"], e.get("type")) for e in made["envs"]] == [
        ("PLAIN", "1", None),
        ("DB_PASSWORD", "s", "SECRET"),
        (MARKER_ENV, "[m]", "GENERAL"),
    ], "the source's secrets, encrypted for its own app, are not copied"
    assert spec["services"][0]["github"]["branch"] == "main", "the source is not changed"


# -- the runs -------------------------------------------------------------------------------


def test_opening_a_pull_request_makes_one_app_from_the_template_and_waits_for_it(
    pr_repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock, template: dict[str, Any]
) -> None:
    step = pr_run(pr_repo, do_api, clock, "opened", app_id=template["id"])

    assert step.result.returncode == 0, step.log
    assert "The preview is BUILDING, not made yet" in step.log
    [preview] = [a for a in previews(do_api) if a["id"] != template["id"]]
    pr = PullRequest(REPO, 5, template=template["id"])
    spec = preview["spec"]
    assert spec["name"] == preview_app_name(pr) and NAME_RULE.fullmatch(spec["name"])
    assert "domains" not in spec and "alerts" not in spec
    assert spec["services"][0]["github"]["branch"] == BRANCH
    assert spec["services"][0]["github"]["deploy_on_push"] is False
    variables = envs(preview)
    assert variables[MARKER_ENV]["value"] == pr.tag
    assert variables["DB_PASSWORD"]["type"] == "SECRET"
    assert variables["PLAIN"]["value"] == "1"
    assert SECRET not in step.log.replace(f"::add-mask ::{SECRET}", "")
    assert "not made yet" in step.log
    active = preview["active_deployment"]
    assert active["services"][0]["source_commit_hash"] == pr_repo.head()
    assert (step.outputs["status"], step.outputs["deploy-id"]) == ("deployed", active["id"])
    assert step.outputs["preview-deployment-id"] == preview["id"]
    assert step.outputs["preview-name"] == spec["name"]
    assert do_api.app(template["id"])["spec"] == template["spec"], "the template is unchanged"
    assert len(do_api.deployments(template["id"])) == 1, "the template got no deployment"


def test_the_repositorys_app_spec_is_the_previews_when_it_has_one(
    pr_repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    spec = do_api.app()["spec"] | {"domains": [{"domain": "prod.example.com"}]}
    spec["services"][0]["instance_count"] = 2
    pr_repo.write(".do/app.yaml", yaml.safe_dump(spec))
    pr_repo.commit("app spec")

    step = pr_run(pr_repo, do_api, clock, "opened")

    assert step.result.returncode == 0, step.log
    [preview] = previews(do_api)
    assert preview["spec"]["services"][0]["instance_count"] == 2
    assert "domains" not in preview["spec"], "the production domain is not claimed twice"


def test_a_push_deploys_the_head_to_the_same_preview_and_close_deletes_it(
    pr_repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    preview_id = open_preview(pr_repo, do_api, clock)

    change(pr_repo)
    pushed = pr_run(pr_repo, do_api, clock, "synchronize")

    assert pushed.result.returncode == 0, pushed.log
    assert pushed.outputs["preview-deployment-id"] == preview_id
    assert (pushed.outputs["status"], pushed.outputs["base-source"]) == ("deployed", "deployed")
    active = do_api.app(preview_id)["active_deployment"]
    assert active["services"][0]["source_commit_hash"] == pr_repo.head()
    assert pushed.outputs["deploy-id"] == active["id"]
    assert len(do_api.apps()) == 2, "no second preview"

    closed = pr_run(pr_repo, do_api, clock, "closed")

    assert closed.result.returncode == 0, closed.log
    assert closed.outputs["status"] == "deleted"
    assert closed.outputs["preview-deployment-id"] == preview_id
    assert previews(do_api) == []
    assert do_api.app()["active_deployment"], "the template is untouched"


def test_a_spec_change_on_a_preview_keeps_it_a_preview(
    pr_repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    preview_id = open_preview(pr_repo, do_api, clock)
    made = do_api.app(preview_id)["spec"]

    spec = do_api.app()["spec"] | {"envs": [{"key": "MODE", "value": "fast"}]}
    pr_repo.write(".do/app.yaml", yaml.safe_dump(spec))
    pr_repo.commit("app spec")
    pushed = pr_run(pr_repo, do_api, clock, "synchronize")

    assert pushed.result.returncode == 0, pushed.log
    after = do_api.app(preview_id)["spec"]
    assert after["name"] == made["name"]
    assert after["services"][0]["github"]["branch"] == BRANCH
    keys = {e["key"]: e for e in after["envs"]}
    assert keys["MODE"]["value"] == "fast"
    assert keys[MARKER_ENV] == envs({"spec": made})[MARKER_ENV]
    assert keys["DB_PASSWORD"]["type"] == "SECRET", "the preview's secret is kept"
    assert do_api.app()["spec"].get("envs") is None, "the template is not updated"


def test_closing_deletes_only_the_app_carrying_the_marker_never_a_look_alike(
    pr_repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    pr = PullRequest(REPO, 5, template=do_api.app_id)
    look_alike = do_api.add_app(do_api.app()["spec"] | {"name": preview_app_name(pr)})

    closed = pr_run(pr_repo, do_api, clock, "closed")

    assert closed.result.returncode == 0, closed.log
    assert closed.titles("notice") == ["No preview"]
    assert closed.outputs["status"] == "skipped"
    assert look_alike in [a["id"] for a in previews(do_api)]
    assert not [r for r in do_api.requests if r.method == "DELETE"]


def test_a_cleanup_deletes_the_previews_of_closed_pull_requests_only(
    pr_repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    for number in (5, 6):
        made = pr_run(pr_repo, do_api, clock, "opened", number=number)
        assert made.result.returncode == 0, made.log
    theirs = pr_run(pr_repo, do_api, clock, "opened", repository="other/astro-project")
    assert theirs.result.returncode == 0, theirs.log

    def cleanup(dry_run: str) -> Step:
        return run_in_process(
            pr_repo.path,
            {
                "platform": "digitalocean",
                "api-url": do_api.api_url,
                "app-id": do_api.app_id,
                "action": "preview-cleanup",
                "open-pull-requests": "6",
                "dry-run": dry_run,
            },
            factory=connect,
            clock=clock,
            event_name="schedule",
            env={"DIGITALOCEAN_TOKEN": do_api.token, "GITHUB_REPOSITORY": REPO},
            request_timeout=5,
        )

    planned = cleanup("true")
    assert planned.result.returncode == 0, planned.log
    assert planned.titles("notice") == ["Preview delete planned"]
    assert len(previews(do_api)) == 3

    step = cleanup("false")

    assert step.result.returncode == 0, step.log
    left = {envs(a)[MARKER_ENV]["value"] for a in previews(do_api)}
    assert left == {
        PullRequest(REPO, 6, template=do_api.app_id).tag,
        PullRequest("other/astro-project", 5, template=do_api.app_id).tag,
    }
    assert step.outputs["status"] == "deleted"


def test_a_lost_create_answer_is_read_back_and_makes_one_app(
    pr_repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    do_api.faults.add_drop("POST", r"^/v2/apps$")

    step = pr_run(pr_repo, do_api, clock, "opened")

    assert step.result.returncode == 0, step.log
    assert "was lost" in step.log
    assert len(previews(do_api)) == 1
    creates = [r for r in do_api.requests if r.method == "POST" and r.path == "/v2/apps"]
    assert len(creates) == 1


def test_a_dry_run_creates_no_preview_and_names_the_one_it_would(
    pr_repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    step = pr_run(pr_repo, do_api, clock, "opened", inputs={"dry-run": "true"})

    assert step.result.returncode == 0, step.log
    name = preview_app_name(PullRequest(REPO, 5, template=do_api.app_id))
    assert f"would create the preview '{name}'" in step.log
    assert previews(do_api) == []


def test_a_lost_delete_answer_is_read_back(
    pr_repo: GitRepo, do_api: AppPlatformEmulator, clock: FakeClock
) -> None:
    preview_id = open_preview(pr_repo, do_api, clock)
    do_api.faults.add_drop("DELETE", r"^/v2/apps/[^/]+$")

    closed = pr_run(pr_repo, do_api, clock, "closed")

    assert closed.result.returncode == 0, closed.log
    assert (closed.outputs["status"], closed.outputs["preview-deployment-id"]) == (
        "deleted",
        preview_id,
    )
    assert previews(do_api) == []
    assert len([r for r in do_api.requests if r.method == "DELETE"]) == 1
