"""App Platform's pure rules: what a change needs, deployments as releases, phases judged."""

from __future__ import annotations

from ci_deploy.changeset import ChangeSet
from ci_deploy.digitalocean import rules
from ci_deploy.digitalocean.rules import AppsRules
from ci_deploy.platform import Artifact, Observation, ReleaseState

APP = {
    "id": "app-1",
    "spec": {"name": "web"},
    "active_deployment": {"id": "d1", "phase": "ACTIVE"},
}


def changes(*files: str, ignored: tuple[str, ...] = ()) -> ChangeSet:
    return ChangeSet(dag_files=(), image_files=tuple(files), ignored_files=ignored)


def decide(rule: AppsRules, change: ChangeSet | None, *, force: bool = False) -> str | None:
    environment = rules.environment_of(APP)
    return rule.decide("infer", change, environment, force=force, no_base_reason="").kind


def test_a_changed_spec_updates_the_app_and_other_changes_start_a_deployment() -> None:
    rule = AppsRules()
    assert decide(rule, changes(".do/app.yaml")) == rules.SPEC
    assert decide(rule, changes("app.py")) == rules.DEPLOYMENT
    assert decide(rule, changes(".do/app.yaml", "app.py")) == rules.SPEC
    assert decide(rule, None) == rules.DEPLOYMENT
    assert decide(rule, changes(ignored=("README.md",))) is None
    assert decide(rule, changes(ignored=("README.md",)), force=True) == rules.DEPLOYMENT


def test_an_image_app_builds_and_pushes_for_source_changes() -> None:
    rule = AppsRules(image=True, registry="acme")
    assert decide(rule, changes("app.py")) == rules.IMAGE
    assert decide(rule, changes(".do/app.yaml", "app.py")) == rules.IMAGE
    assert decide(rule, changes(".do/app.yaml")) == rules.SPEC
    environment = rules.environment_of(APP)
    assert rule.artifacts(rules.IMAGE, environment) == {Artifact.IMAGE}
    assert rule.artifacts(rules.DEPLOYMENT, environment) == frozenset()
    assert rule.refusal(rules.IMAGE, environment) is None
    refusal = AppsRules(image=True).refusal(rules.IMAGE, environment)
    assert refusal is not None and "docr-registry" in refusal.message


def test_a_pinned_app_is_refused_with_both_ways_out() -> None:
    pinned = rules.environment_of({**APP, "pinned_deployment": {"id": "d9"}})
    refusal = AppsRules().refusal(rules.DEPLOYMENT, pinned)
    assert refusal is not None
    assert "d9" in refusal.message
    assert "action: rollback-commit" in refusal.message
    assert "action: rollback-revert" in refusal.message
    assert AppsRules().refusal(rules.DEPLOYMENT, rules.environment_of(APP)) is None


def test_the_image_is_set_by_digest_else_by_tag() -> None:
    spec = {
        "name": "web",
        "workers": [
            {"name": "w", "image": {"registry_type": "DOCR", "repository": "r", "tag": "1"}}
        ],
        "services": [{"name": "s", "github": {"repo": "o/r"}}],
    }
    assert rules.image_repository(spec, "acme") == "registry.digitalocean.com/acme/r"
    by_digest = rules.with_image(spec, "abc", "sha256:9")
    assert by_digest["workers"][0]["image"] == {
        "registry_type": "DOCR",
        "repository": "r",
        "digest": "sha256:9",
    }
    assert rules.with_image(spec, "abc", "")["workers"][0]["image"]["tag"] == "abc"
    assert spec["workers"][0]["image"]["tag"] == "1"  # not changed in place


def test_deployments_read_as_releases_oldest_first() -> None:
    history = rules.history_of(
        [
            {"id": "d2", "phase": "ERROR", "created_at": "2026-01-02T00:00:00Z"},
            {
                "id": "d1",
                "phase": "SUPERSEDED",
                "created_at": "2026-01-01T00:00:00Z",
                "progress": {"success_steps": 4, "total_steps": 4},
                "services": [{"name": "web", "source_commit_hash": "abc"}],
            },
            {
                "id": "d3",
                "phase": "BUILDING",
                "created_at": "2026-01-03T00:00:00Z",
                "cause": "manual rollback",
            },
        ]
    )
    assert [(r.id, r.state, r.commit, r.is_rollback) for r in history] == [
        ("d1", ReleaseState.LIVE, "abc", False),
        ("d2", ReleaseState.FAILED, "", False),
        ("d3", ReleaseState.PENDING, "", True),
    ]


def test_phases_are_judged_with_progress_and_the_failing_step() -> None:
    building = {"id": "d", "phase": "BUILDING", "progress": {"success_steps": 2, "total_steps": 5}}
    seen = rules.observation_of(building)
    assert (seen.done, seen.failed) == (False, False)
    assert "2/5 steps done" in seen.summary
    assert rules.observation_of({"id": "d", "phase": "ACTIVE"}).done
    failed = {
        "id": "d",
        "phase": "ERROR",
        "progress": {
            "steps": [
                {
                    "name": "build",
                    "status": "ERROR",
                    "steps": [
                        {
                            "name": "compile",
                            "status": "ERROR",
                            "component_name": "api",
                            "reason": {"message": "exit 1"},
                        }
                    ],
                }
            ]
        },
    }
    assert "step 'compile' of component api failed: exit 1" in rules.observation_of(failed).summary
    superseded = rules.observation_of({"id": "d", "phase": "SUPERSEDED"}, "d7")
    assert superseded.failed and "by deployment d7" in superseded.summary
    assert rules.observation_of({"id": "d", "phase": "CANCELED"}).failed


def test_a_rollback_validation_reads_as_a_check() -> None:
    check = rules.rollback_check(
        {
            "valid": False,
            "error": {"code": "incompatible_phase", "message": "not yet"},
            "warnings": [{"code": "static_site_requires_rebuild", "message": "rebuild"}],
        }
    )
    assert (check.valid, check.code, check.reason) == (False, "incompatible_phase", "not yet")
    assert check.warnings == ("static_site_requires_rebuild: rebuild",)
    assert rules.rollback_check({"valid": True}).valid


def test_the_spec_diff_shows_what_changes() -> None:
    diff = rules.spec_diff({"name": "web"}, {"name": "web", "region": "ams"})
    assert "+region: ams" in diff


def test_a_settled_deployment_fails_only_when_it_leaves_active_or_is_rolled_back() -> None:
    assert rules.settled_observation({"id": "d", "phase": "ACTIVE"}) == Observation(
        done=True, failed=False, summary="deployment d is ACTIVE"
    )
    unhealthy = rules.settled_observation(
        {
            "id": "d",
            "phase": "ERROR",
            "phase_last_updated_at": "2026-01-01T00:01:20Z",
            "progress": {
                "steps": [
                    {"name": "deploy", "status": "SUCCESS"},
                    {
                        "name": "run",
                        "status": "ERROR",
                        "component_name": "web",
                        "reason": {"message": "0/1 instances ready"},
                    },
                ]
            },
        }
    )
    assert unhealthy.failed and not unhealthy.done
    assert unhealthy.summary == (
        "deployment d went from ACTIVE to ERROR at 2026-01-01T00:01:20Z; "
        "step 'run' of component web failed: 0/1 instances ready"
    )
    assert rules.settled_observation({"id": "d", "phase": "CANCELED"}).failed
    rolled_back = rules.settled_observation(
        {"id": "d", "phase": "SUPERSEDED"},
        {"id": "r", "cloned_from": "c", "cause": "automatic rollback"},
    )
    assert rolled_back.failed
    assert rolled_back.summary == (
        "deployment d was rolled back to deployment c by deployment r (automatic rollback)"
    )
    replaced = rules.settled_observation(
        {"id": "d", "phase": "SUPERSEDED"}, {"id": "n", "cause": "commit pushed"}
    )
    assert (replaced.done, replaced.failed) == (True, False)
    assert replaced.summary == "deployment d ran and was then replaced by deployment n"
    odd = rules.settled_observation({"id": "d", "phase": "DEPLOYING"})
    assert (odd.done, odd.failed) == (False, False)
