"""What a release history says (pure): what runs, what ran before, and overlapping runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ci_deploy import history
from ci_deploy.platform import Artifact, Release, ReleaseState

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MARK = "ci-deploy:0123456789ab"


def release(
    rid: str,
    minute: int,
    *,
    commit: str = "",
    state: ReleaseState = ReleaseState.LIVE,
    dags: str = "",
    description: str = "",
    rollback_of: str = "",
) -> Release:
    return Release(
        id=rid,
        kind="DAG_ONLY",
        state=state,
        created_at=T0 + timedelta(minutes=minute),
        commit=commit,
        description=description,
        is_rollback=bool(rollback_of),
        restores=rollback_of,
        versions={Artifact.DAGS: dags} if dags else {},
    )


def test_what_runs_is_the_release_whose_versions_the_environment_shows() -> None:
    a, b = release("a", 1, dags="v1"), release("b", 2, dags="v2")
    assert history.running([a, b]) == b, "without what it shows: the newest live one"
    assert history.running([a, b], {Artifact.DAGS: "v1"}) == a
    assert history.running([a, b], {Artifact.DAGS: "v9"}) is None
    image_only = Release(
        "c",
        "IMAGE_ONLY",
        ReleaseState.LIVE,
        T0 + timedelta(minutes=3),
        versions={Artifact.IMAGE: "t3"},
    )
    shows = {Artifact.DAGS: "v2", Artifact.IMAGE: "t3"}
    assert history.running([a, b, image_only], shows) == image_only


def test_the_release_before_counts_from_what_runs() -> None:
    a, b, c = release("a", 1, dags="v1"), release("b", 2, dags="v2"), release("c", 3, dags="v3")
    assert history.previous([a, b, c], {Artifact.DAGS: "v2"}) == a
    assert history.previous([a, b, c]) == b


def test_a_later_release_of_a_commit_containing_ours_supersedes_it() -> None:
    ours = release("ours", 1, commit="c2", state=ReleaseState.PENDING, description=f"x [{MARK}]")
    newer = release("b", 2, commit="c3", state=ReleaseState.PENDING)
    older = release("c", 3, commit="c1")
    contains = {("c3", "c2"): True, ("c1", "c2"): False}

    def ask(descendant: str, ancestor: str) -> bool | None:
        return contains.get((descendant, ancestor))

    assert history.superseding(ours, [ours, newer], ask, marker=MARK) == newer
    assert history.superseding(ours, [ours, older], ask, marker=MARK) is None
    assert history.superseding(newer, [newer, ours], ask, marker=MARK) is None, "ours came later"
    unknown = release("d", 4, commit="c9")
    assert history.superseding(ours, [ours, unknown], ask, marker=MARK) == unknown
    failed = release("e", 5, commit="c3", state=ReleaseState.FAILED)
    own = release("f", 6, commit="c3", state=ReleaseState.PENDING, description=f"[{MARK}]")
    assert history.superseding(ours, [ours, failed, own], ask, marker=MARK) is None
    # a rollback counts by the commit it restored: back to an older one, ours still goes out
    rollback = release("g", 7, commit="c1", rollback_of="c")
    assert history.superseding(ours, [ours, rollback], ask, marker=MARK) is None


def test_a_newer_commits_release_made_before_ours_supersedes_it_while_current() -> None:
    # a run that started later created (and maybe finalized) its release before ours
    ours = release("ours", 5, commit="c2", state=ReleaseState.PENDING, description=f"[{MARK}]")
    contains = {("c3", "c2"): True, ("c2", "c3"): False, ("c1", "c2"): False}

    def ask(descendant: str, ancestor: str) -> bool | None:
        return contains.get((descendant, ancestor))

    pending = release("b", 3, commit="c3", state=ReleaseState.PENDING)
    assert history.superseding(ours, [pending, ours], ask, marker=MARK) == pending
    live = release("b", 3, commit="c3", dags="v3")
    shows = {Artifact.DAGS: "v3"}
    assert history.superseding(ours, [live, ours], ask, marker=MARK, shows=shows) == live
    # no longer running (replaced since): an old release of a newer commit is history
    older = release("a", 1, commit="c1", dags="v1")
    after = {Artifact.DAGS: "v1"}
    assert history.superseding(ours, [live, older, ours], ask, marker=MARK, shows=after) is None


def test_a_release_finalized_after_ours_took_over() -> None:
    seeded, ours = release("a", 1), release("ours", 2, description=f"[{MARK}]")
    live_before = frozenset({"a"})
    assert history.taken_over([seeded, ours], live_before, marker=MARK) is None
    meanwhile = release("b", 3)
    assert history.taken_over([seeded, ours, meanwhile], live_before, marker=MARK) == meanwhile
    assert history.taken_over([seeded, ours, meanwhile], live_before | {"b"}, marker=MARK) is None


def test_releases_in_flight_are_recent_unfinalized_ones_of_other_runs() -> None:
    old = release("a", 0, state=ReleaseState.PENDING)
    recent = release("b", 50, state=ReleaseState.PENDING)
    mine = release("c", 55, state=ReleaseState.PENDING, description=f"[{MARK}]")
    done = release("d", 56)
    now = T0 + timedelta(minutes=60)
    found = history.in_flight([old, recent, mine, done], now, 20 * 60, marker=MARK)
    assert found == [recent]


def test_left_pending_are_this_runs_unfinalized_releases_but_the_kept_one() -> None:
    a = release("a", 1, state=ReleaseState.PENDING, description=f"[{MARK}]")
    b = release("b", 2, state=ReleaseState.PENDING, description=f"[{MARK}]")
    c = release("c", 3, state=ReleaseState.PENDING)
    assert history.left_pending([a, b, c], MARK, keep="b") == [a]


def test_the_run_of_a_release_is_read_from_its_description() -> None:
    url = "https://github.com/o/r/actions/runs/42"
    assert history.run_url_of(release("a", 1, description=f"Fix ({url}) [{MARK}]")) == url
    assert history.run_url_of(release("a", 1, description="by hand")) == ""
