"""Which commit changes are measured from: candidates and the choice among them."""

from __future__ import annotations

from typing import Any

import pytest

from ci_deploy.astro.rules import history_of
from ci_deploy.astro.wire import Deploy, DeployGit
from ci_deploy.basecommit import (
    DEPLOYED_OUT_OF_REACH,
    NO_BASE,
    Candidate,
    Probed,
    choose_base,
    deployed_candidate,
    event_candidate,
)
from ci_deploy.errors import GitError
from ci_deploy.platform import Artifact

NULL_SHA = "0" * 40

A, B, C, D = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)


def deploy(
    id_: str,
    created: str,
    sha: str | None,
    *,
    status: str = "DEPLOYED",
    version: str = "",
    rollback_from: str | None = None,
) -> Deploy:
    git = DeployGit(provider="GITHUB", commitSha=sha) if sha else None
    return Deploy(
        id=id_,
        createdAt=created,
        status=status,
        git=git,
        dagTarballVersion=version or None,
        rollbackFromId=rollback_from,
    )


def test_newest_deployed_deploy_wins_whatever_the_listing_order() -> None:
    deploys = [
        deploy("d2", "2026-01-02T00:00:00Z", B),
        deploy("d3", "2026-01-03T00:00:00Z", C, status="FAILED"),
        deploy("d1", "2026-01-01T00:00:00Z", A),
        deploy("d4", "2026-01-04T00:00:00Z", D, status="INITIALIZED"),
    ]
    candidate, _ = deployed_candidate(history_of(deploys))
    assert candidate is not None
    assert (candidate.source, candidate.rev) == ("deployed", B)
    assert candidate.label == "deploy d2 (2026-01-02T00:00:00Z)"


def test_a_running_deploy_without_a_commit_gives_no_deployed_commit() -> None:
    # what runs came from no known commit: an older deploy's commit would misstate it
    deploys = [deploy("d1", "2026-01-01T00:00:00Z", A), deploy("d2", "2026-01-02T00:00:00Z", None)]
    candidate, why = deployed_candidate(history_of(deploys))
    assert candidate is None
    assert why == "deploy d2, which the Deployment runs, carries no git commit"


def test_the_deployed_commit_is_the_one_whose_versions_the_deployment_runs() -> None:
    # d2 was created after d1 but d1 was finalized last: the Deployment runs d1's DAG version
    deploys = [
        deploy("d1", "2026-01-01T00:00:00Z", A, version="v1"),
        deploy("d2", "2026-01-02T00:00:00Z", B, version="v2"),
    ]
    candidate, _ = deployed_candidate(history_of(deploys), {Artifact.DAGS: "v1"})
    assert candidate is not None and candidate.rev == A

    candidate, why = deployed_candidate(history_of(deploys), {Artifact.DAGS: "v9"})
    assert candidate is None
    assert why == (
        "no DEPLOYED deploy in the history shipped what the Deployment runs (DAG version v9)"
    )


def test_a_rollback_counts_as_the_commit_it_restored() -> None:
    deploys = [
        deploy("d1", "2026-01-01T00:00:00Z", A, version="v1"),
        deploy("d2", "2026-01-02T00:00:00Z", B, version="v2"),
        # the API may carry the failed deploy's commit on the rollback: the version decides
        deploy("r1", "2026-01-03T00:00:00Z", B, version="v1", rollback_from="d2"),
    ]
    candidate, _ = deployed_candidate(history_of(deploys))
    assert candidate is not None
    assert candidate.rev == A
    assert "rollback to deploy d1" in candidate.label


def test_no_history_and_no_commit_are_explained() -> None:
    assert deployed_candidate(history_of([])) == (None, "the Deployment has no deploy history")
    candidate, why = deployed_candidate(history_of([deploy("d1", "2026-01-01T00:00:00Z", None)]))
    assert candidate is None and "carries no git commit" in why


@pytest.mark.parametrize(
    ("event_name", "event", "rev", "merge_base"),
    [
        ("push", {"before": A}, A, False),
        ("pull_request", {"pull_request": {"base": {"sha": B}}}, B, True),
        ("pull_request_target", {"pull_request": {"base": {"sha": B}}}, B, True),
        ("merge_group", {"merge_group": {"base_sha": C}}, C, False),
    ],
)
def test_event_bases(event_name: str, event: dict[str, Any], rev: str, merge_base: bool) -> None:
    candidate, _ = event_candidate(event_name, event)
    assert candidate is not None
    assert (candidate.rev, candidate.merge_base, candidate.source) == (rev, merge_base, "event")


@pytest.mark.parametrize(
    ("event_name", "event", "why"),
    [
        ("push", {"before": NULL_SHA}, "created the branch"),
        ("workflow_dispatch", {}, "a workflow_dispatch event has no base commit"),
        ("schedule", {}, "a schedule event has no base commit"),
        ("release", {}, "a release event has no base commit"),
        ("pull_request", {}, "no pull_request.base.sha"),
        ("", {}, "not run by a GitHub event"),
    ],
)
def test_events_without_a_base(event_name: str, event: dict[str, Any], why: str) -> None:
    candidate, reason = event_candidate(event_name, event)
    assert candidate is None
    assert why in reason


class FakeProbe:
    """Answers for each rev: a sha, or a rejection; records what was asked."""

    def __init__(self, answers: dict[str, tuple[str | None, str] | Probed]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, bool]] = []

    def __call__(self, candidate: Candidate, needs_ancestor: bool) -> Probed:
        self.asked.append((candidate.rev, needs_ancestor))
        answer = self.answers[candidate.rev]
        return answer if isinstance(answer, Probed) else Probed(*answer)


DEPLOYED = (Candidate("deployed", A, "deploy d1"), "")
EVENT = (Candidate("event", B, "the push's previous commit"), "")


def test_auto_prefers_the_deployed_commit_and_requires_it_be_an_ancestor() -> None:
    probe = FakeProbe({A: (A, "present"), B: (B, "present")})
    choice = choose_base("auto", DEPLOYED, EVENT, probe)
    assert (choice.sha, choice.source) == (A, "deployed")
    assert probe.asked == [(A, True)]


def test_auto_falls_back_to_the_event_and_says_why() -> None:
    probe = FakeProbe({A: (None, "it is not an ancestor of HEAD"), B: (B, "fetched")})
    choice = choose_base("auto", DEPLOYED, EVENT, probe)
    assert (choice.sha, choice.source) == (B, "event")
    assert choice.rejected == ("deploy d1: it is not an ancestor of HEAD",)
    assert probe.asked == [(A, True), (B, False)]


def test_a_deployed_commit_out_of_reach_means_no_base_never_the_event() -> None:
    """The push's ``before`` may be newer than what runs: changes in between would be lost."""
    out_of_reach = Probed(None, "no history linking it to HEAD could be fetched", uncertain=True)
    probe = FakeProbe({A: out_of_reach, B: (B, "fetched")})

    choice = choose_base("auto", DEPLOYED, EVENT, probe)

    assert (choice.sha, choice.source) == (None, "none")
    assert choice.reason == DEPLOYED_OUT_OF_REACH
    assert choice.rejected == ("deploy d1: no history linking it to HEAD could be fetched",)
    assert probe.asked == [(A, True)], "the event's base is not even looked at"
    alone = choose_base("deployed", DEPLOYED, EVENT, FakeProbe({A: out_of_reach}))
    assert (alone.sha, alone.reason) == (None, DEPLOYED_OUT_OF_REACH)


def test_an_event_base_out_of_reach_is_only_a_rejection() -> None:
    out_of_reach = Probed(None, "fetch from origin failed", uncertain=True)
    probe = FakeProbe({B: out_of_reach})
    choice = choose_base("auto", (None, "the Deployment has no deploy history"), EVENT, probe)
    assert (choice.sha, choice.reason) == (None, NO_BASE)


def test_auto_with_nothing_usable_is_none_with_every_reason() -> None:
    probe = FakeProbe({B: (None, "not on origin")})
    choice = choose_base("auto", (None, "the Deployment has no deploy history"), EVENT, probe)
    assert (choice.sha, choice.source) == (None, "none")
    assert choice.rejected == (
        "the Deployment has no deploy history",
        "the push's previous commit: not on origin",
    )


def test_deployed_and_event_use_only_their_candidate() -> None:
    probe = FakeProbe({A: (A, ""), B: (B, "")})
    assert choose_base("deployed", DEPLOYED, EVENT, probe).source == "deployed"
    assert choose_base("event", DEPLOYED, EVENT, probe).source == "event"
    assert (A, False) in probe.asked, "explicit deployed needs no ancestry"
    none = choose_base("deployed", (None, "no history"), EVENT, FakeProbe({}))
    assert none.source == "none" and none.rejected == ("no history",)


def test_pull_request_base_is_diffed_from_the_merge_base() -> None:
    pr = (Candidate("event", B, "the pull request's base", merge_base=True), "")
    choice = choose_base("event", (None, ""), pr, FakeProbe({B: (B, "")}))
    assert choice.merge_base


def test_named_rev_resolves_or_is_a_clear_error() -> None:
    choice = choose_base("v1.2.0", DEPLOYED, EVENT, FakeProbe({"v1.2.0": (C, "fetched")}))
    assert (choice.sha, choice.source) == (C, "input")
    with pytest.raises(GitError) as raised:
        choose_base("nope", DEPLOYED, EVENT, FakeProbe({"nope": (None, "not on origin")}))
    assert "compare-to 'nope'" in raised.value.message
    assert raised.value.title == "Invalid input 'compare-to'"


def test_pull_request_candidate_carries_its_head() -> None:
    event = {"pull_request": {"base": {"sha": B}, "head": {"sha": C}}}
    candidate, _ = event_candidate("pull_request", event)
    assert candidate is not None and candidate.head == C
    choice = choose_base("event", (None, ""), (candidate, ""), FakeProbe({B: (B, "")}))
    assert (choice.head, choice.merge_base) == (C, True)
