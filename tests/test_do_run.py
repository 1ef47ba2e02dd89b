"""App Platform runs in process: the real AppsPlatform over an app in memory
(:class:`tests.fake_apps.FakeApps`), real git, a fake clock. Every path of a deploy and of
the validate -> rollback (pins) -> commit / revert rollback."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ci_deploy.image import BuiltImage
from ci_deploy_testkit.localrun import push_event
from tests.actionrun import Step, change
from tests.fake_apps import FakeApps
from tests.fakes import FakeImages
from tests.gitrepo import GitRepo
from tests.inprocess import run_in_process

DO_TOKEN = "dop_v1_" + "a" * 64
APP = {"platform": "digitalocean", "app-id": "app-1"}


@pytest.fixture
def apps(repo: GitRepo) -> FakeApps:
    """An app whose active deployment built the repository's first commit."""
    apps = FakeApps()
    apps.seed(repo.head())
    return apps


def run(
    repo: GitRepo,
    apps: FakeApps,
    inputs: dict[str, str] | None = None,
    *,
    before: str | None = None,
    images: FakeImages | None = None,
) -> Step:
    apps.commit = repo.head()
    return run_in_process(
        repo.path,
        {**APP, **(inputs or {})},
        factory=apps.factory(),
        event=push_event(before, repo.head()) if before else {},
        env={"DIGITALOCEAN_TOKEN": DO_TOKEN},
        images=(lambda runner: images) if images else None,
    )


def test_a_source_change_starts_a_new_deployment_that_becomes_active(
    repo: GitRepo, apps: FakeApps
) -> None:
    change(repo)
    step = run(repo, apps)
    assert step.result.returncode == 0, step.log
    assert "create_deployment(force_build=True)" in apps.calls
    assert apps.active() == apps.by_id("dep-2")
    assert step.outputs["deploy-id"] == "dep-2"
    assert step.outputs["deploy-type"] == "deployment"
    assert "## ✅ Deployed to App Platform" in step.result.summary
    assert "2/3 steps done" in step.log  # progress in the log
    shown = [line for line in step.log.splitlines() if not line.startswith("::add-mask ::")]
    assert "::add-mask ::" + DO_TOKEN in step.log  # masked before anything else
    assert not [line for line in shown if DO_TOKEN in line]


def test_nothing_changed_since_the_active_deployment_is_a_skip(
    repo: GitRepo, apps: FakeApps
) -> None:
    step = run(repo, apps)
    assert step.result.returncode == 0, step.log
    assert step.outputs["skipped"] == "true"
    assert not [c for c in apps.calls if c.startswith(("create", "update", "rollback"))]


def test_a_changed_app_spec_is_validated_and_updates_the_app_with_its_diff_in_the_log(
    repo: GitRepo, apps: FakeApps
) -> None:
    spec = {**apps.spec, "envs": [{"key": "MODE", "value": "fast"}]}
    repo.write(".do/app.yaml", yaml.safe_dump(spec))
    repo.commit("app spec")
    step = run(repo, apps)
    assert step.result.returncode == 0, step.log
    assert apps.calls.index("propose") < apps.calls.index("update_app")
    assert apps.spec["envs"] == [{"key": "MODE", "value": "fast"}]
    assert "+envs:" in step.log
    assert step.outputs["deploy-type"] == "spec-update"


def test_an_invalid_app_spec_is_refused_before_the_app_changes(
    repo: GitRepo, apps: FakeApps
) -> None:
    repo.write(".do/app.yaml", yaml.safe_dump({"services": []}))
    repo.commit("bad spec")
    step = run(repo, apps)
    assert step.result.returncode == 1
    assert "Invalid app spec" in step.titles("error")
    assert "update_app" not in apps.calls


class PushingImages(FakeImages):
    pushed: list[tuple[str, str, str]]

    def push(self, image: BuiltImage, repository: str, tag: str, *, token: str) -> str:
        self.pushed.append((repository, tag, token))
        return "sha256:" + "9" * 64


def test_an_image_component_is_built_pushed_to_docr_and_set_by_digest(
    repo: GitRepo, apps: FakeApps
) -> None:
    apps.spec = {
        "name": "web",
        "services": [
            {
                "name": "web",
                "image": {
                    "registry_type": "DOCR",
                    "repository": "web",
                    "tag": "old",
                },
            }
        ],
    }
    repo.write(".do/app.yaml", yaml.safe_dump(apps.spec))
    repo.commit("image app")
    apps.seed(repo.head())
    change(repo, "requirements.txt", "\nrequests\n")
    images = PushingImages()
    images.pushed = []
    refused = run(repo, apps, images=images)
    assert refused.result.returncode == 1
    assert refused.titles("error") == ["Invalid input 'docr-registry'"]
    assert images.pushed == [] and images.built == [] and "update_app" not in apps.calls
    step = run(repo, apps, {"docr-registry": "acme"}, images=images)
    assert step.result.returncode == 0, step.log
    assert images.pushed == [("registry.digitalocean.com/acme/web", repo.head()[:12], DO_TOKEN)]
    image = apps.spec["services"][0]["image"]
    assert image["digest"] == "sha256:" + "9" * 64 and "tag" not in image


def test_a_failed_rollout_is_validated_rolled_back_and_committed(
    repo: GitRepo, apps: FakeApps
) -> None:
    apps.outcomes = ["ERROR"]
    change(repo)
    step = run(repo, apps)
    assert step.result.returncode == 1
    assert [c for c in apps.calls if "rollback" in c] == [
        "validate_rollback",
        "rollback(skip_pin=False)",
        "commit_rollback",
    ]
    assert apps.pinned == ""
    assert apps.active() == apps.by_id("dep-3")  # the rollback, of the first commit
    assert step.outputs["rolled-back"] == "true"
    assert step.outputs["rollback-deploy-id"] == "dep-3"
    assert "step 'build' of component web failed: npm ERR! missing script" in step.log
    assert "the rollback was committed" in step.result.summary


def test_held_pin_is_left_for_a_person_then_committed(repo: GitRepo, apps: FakeApps) -> None:
    apps.outcomes = ["ERROR"]
    change(repo)
    step = run(repo, apps, {"rollback-pin": "hold"})
    assert step.result.returncode == 1
    assert apps.pinned == "dep-3"
    assert "action: rollback-commit" in step.result.summary
    assert "action: rollback-revert" in step.result.summary

    committed = run(repo, apps, {"action": "rollback-commit"})
    assert committed.result.returncode == 0, committed.log
    assert apps.pinned == ""
    assert "Rollback committed" in committed.titles("notice")
    assert committed.outputs["status"] == "committed"


def test_held_pin_reverted_deploys_the_spec_from_before_the_rollback(
    repo: GitRepo, apps: FakeApps
) -> None:
    apps.outcomes = ["ERROR"]
    change(repo)
    run(repo, apps, {"rollback-pin": "hold"})
    reverted = run(repo, apps, {"action": "rollback-revert"})
    assert reverted.result.returncode == 0, reverted.log
    assert apps.pinned == ""
    assert apps.active() == apps.by_id("dep-4")
    assert "Rollback reverted" in reverted.titles("notice")
    assert (reverted.outputs["status"], reverted.outputs["deploy-id"]) == ("reverted", "dep-4")


def test_a_pinned_app_refuses_a_deploy_naming_the_pin_and_the_ways_out(
    repo: GitRepo, apps: FakeApps
) -> None:
    apps.pinned = "dep-1"
    change(repo)
    step = run(repo, apps)
    assert step.result.returncode == 1
    error = step.commands("error")[0].message
    assert "dep-1" in error
    assert "action: rollback-commit" in error and "action: rollback-revert" in error
    assert not [c for c in apps.calls if c.startswith(("create", "update"))]


def test_an_invalid_rollback_is_the_reason_none_happened(repo: GitRepo, apps: FakeApps) -> None:
    apps.outcomes = ["ERROR"]
    apps.invalid = {"code": "exceeded_revision_limit", "message": "too old"}
    change(repo)
    step = run(repo, apps)
    assert step.result.returncode == 1
    assert "exceeded_revision_limit: too old" in step.log
    assert "No rollback happened" in step.result.summary
    assert not [c for c in apps.calls if c.startswith("rollback(")]
    assert step.outputs["rolled-back"] == "false"


def test_rollback_warnings_go_to_the_log_and_the_summary(repo: GitRepo, apps: FakeApps) -> None:
    apps.outcomes = ["ERROR"]
    apps.warnings = [{"code": "image_source_missing_digest", "message": "no digest"}]
    change(repo)
    step = run(repo, apps)
    assert "Rollback warning" in step.titles("warning")
    assert "image_source_missing_digest: no digest" in step.result.summary


def test_a_failed_rollback_is_reverted_and_both_failures_reported(
    repo: GitRepo, apps: FakeApps
) -> None:
    apps.outcomes = ["ERROR", "ERROR"]
    change(repo)
    step = run(repo, apps)
    assert step.result.returncode == 1
    assert "revert_rollback" in apps.calls and "commit_rollback" not in apps.calls
    assert apps.pinned == ""
    summary = step.result.summary
    assert "deployment dep-2" in summary and "failed too" in summary and "reverted" in summary


def test_no_rollback_over_a_deployment_started_after_ours(repo: GitRepo, apps: FakeApps) -> None:
    apps.outcomes = ["ERROR"]
    change(repo)
    newer = repo.head()

    def another_run(deployment: dict[str, object]) -> None:
        if deployment["id"] == "dep-2" and deployment["phase"] == "DEPLOYING":
            apps.other_run(newer)

    apps.on_read = another_run
    step = run(repo, apps)
    assert step.result.returncode == 1
    assert step.titles("error") == ["Rollout failed; a newer deployment took over"]
    assert not [c for c in apps.calls if "rollback" in c]
    assert step.outputs["rolled-back"] == "false"


def test_lost_answers_are_read_back_not_repeated(repo: GitRepo, apps: FakeApps) -> None:
    apps.outcomes = ["ERROR"]
    apps.lost = {"create_deployment", "rollback", "commit_rollback"}
    change(repo)
    step = run(repo, apps)
    assert apps.calls.count("create_deployment(force_build=True)") == 1
    assert apps.calls.count("rollback(skip_pin=False)") == 1
    assert apps.pinned == ""
    assert len(apps.deployments) == 3, step.log


def test_on_demand_rollback_goes_to_the_previous_active_deployment(
    repo: GitRepo, apps: FakeApps
) -> None:
    before = change(repo)
    assert run(repo, apps, before=before).result.returncode == 0
    step = run(repo, apps, {"action": "rollback"})
    assert step.result.returncode == 0, step.log
    assert apps.active()["services"][0]["source_commit_hash"] == before  # type: ignore[index]
    assert "commit_rollback" in apps.calls


def test_a_pin_action_on_an_app_not_pinned_changes_nothing(repo: GitRepo, apps: FakeApps) -> None:
    step = run(repo, apps, {"action": "rollback-revert"})
    assert step.result.returncode == 0, step.log
    assert "revert_rollback" not in apps.calls
    assert "Nothing to decide" in step.titles("notice")
    assert (step.outputs["status"], step.outputs["skipped"]) == ("skipped", "true")


@pytest.mark.parametrize(
    ("inputs", "name"),
    [
        ({"platform": "astro", "app-id": "app-1", "deployment-id": "dep-1"}, "app-id"),
        ({"deployment-id": "dep-1"}, "deployment-id"),
        ({"app-id": ""}, "app-id"),
        ({"action": "matrix"}, "action"),
    ],
)
def test_inputs_of_the_other_platform_are_rejected_before_any_call(
    repo: GitRepo, apps: FakeApps, inputs: dict[str, str], name: str
) -> None:
    step = run(repo, apps, inputs)
    assert step.result.returncode == 1
    assert f"Invalid input '{name}'" in step.titles("error"), step.log
    assert apps.calls == []


def test_the_token_is_required(repo: GitRepo, tmp_path: Path) -> None:
    apps = FakeApps()
    step = run_in_process(repo.path, APP, factory=apps.factory())
    assert step.result.returncode == 1
    assert "Invalid input 'digitalocean-token'" in step.titles("error")
    assert "DIGITALOCEAN_TOKEN" in step.log
