"""One run, as a readable sequence of stages: detect, plan, build, ship, verify, recover.

:func:`run` takes its collaborators as :class:`Dependencies` (the platform, the image
engine, time), so the whole sequence runs in process against a fake platform. It never
raises (a bug included): the error lands in the
:class:`~ci_deploy.result.RunResult`, assembled once at the end from what the stages
recorded, so the outputs and the summary say how far the run got on every path (failure
and cancellation included), and the hibernation override is restored on every path.
"""

from __future__ import annotations

import secrets
import traceback
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ci_deploy import history as releases
from ci_deploy.bundle import member_prefix
from ci_deploy.cancel import cancellable
from ci_deploy.errors import (
    CiDeployError,
    DeployRejectedError,
    GitError,
    RolloutError,
    unexpected_error,
)
from ci_deploy.github import GitHubContext
from ci_deploy.inputs import PIN_ACTIONS, Inputs
from ci_deploy.plan import (
    Detection,
    Operation,
    Plan,
    ReleasePlan,
    describe,
    make_plan,
    plan_rollback,
)
from ci_deploy.platform import Artifact, Environment, PinningPlatform, Platform, Release, Words
from ci_deploy.result import (
    Built,
    Created,
    Finalized,
    Journal,
    RunResult,
    Seen,
    Shipped,
    Subject,
    Superseded,
    assemble,
)
from ci_deploy.runner import Runner
from ci_deploy.stages import Scope
from ci_deploy.stages.build import build, discard
from ci_deploy.stages.detect import Checkout, open_checkout
from ci_deploy.stages.gates import Delivered, Gates, GateSettings
from ci_deploy.stages.prebuild import Prebuild, prebuilding
from ci_deploy.stages.preview import TIDY_ACTIONS, Previews, preview_deploy_inputs
from ci_deploy.stages.recover import Recovery
from ci_deploy.stages.ship import ship
from ci_deploy.stages.verify import check_imports, wait_for
from ci_deploy.text import capitalized
from ci_deploy.timing import Timing

if TYPE_CHECKING:
    from ci_deploy.github_side import GitHubSide
    from ci_deploy.image import ImageBuilder

#: Makes the platform for a run: (inputs, runner, the run's image builder, the run's timing).
PlatformFactory = Callable[
    [Inputs, Runner, Callable[[], "ImageBuilder"], Timing],
    AbstractContextManager[Platform],
]


def _astro(
    inputs: Inputs,
    runner: Runner,
    images: Callable[[], ImageBuilder],
    timing: Timing,
) -> AbstractContextManager[Platform]:
    """The platform ``inputs.platform`` names: Astro, or App Platform."""
    if inputs.platform == "digitalocean":
        from ci_deploy.digitalocean.platform import connect as connect_apps

        return connect_apps(inputs, runner, images, timing)
    from ci_deploy.astro.platform import connect

    return connect(inputs, runner, images, timing)


#: Makes the GitHub side of a run (PR comment, GitHub Deployment): (inputs, context, runner,
#: the run's timing).
GitHubFactory = Callable[[Inputs, GitHubContext, Runner, Timing], "GitHubSide"]


def _github(inputs: Inputs, context: GitHubContext, runner: Runner, timing: Timing) -> GitHubSide:
    from ci_deploy.github_side import connect

    return connect(inputs, context, runner, timing)


#: The repository's open pull requests, asked of GitHub (``preview-cleanup`` without
#: ``open-pull-requests``): (inputs, context, runner, the run's timing).
OpenPullsFactory = Callable[[Inputs, GitHubContext, Runner, Timing], tuple[int, ...]]


def _open_pulls(
    inputs: Inputs, context: GitHubContext, runner: Runner, timing: Timing
) -> tuple[int, ...]:
    from ci_deploy.github_side import open_pull_requests

    return open_pull_requests(inputs, context, runner, timing)


def _engine(runner: Runner) -> ImageBuilder:
    from ci_deploy.image import ImageBuilder

    return ImageBuilder(log=runner.info, group=runner.group)


def new_marker() -> str:
    """A marker unique to one run: the releases it makes carry it in their description."""
    return f"ci-deploy:{secrets.token_hex(6)}"


@dataclass(frozen=True)
class Dependencies:
    """What a run talks to: the platform, the Docker engine (made on first use), time, and
    GitHub (the PR comment, GitHub Deployments)."""

    platform: PlatformFactory = _astro
    images: Callable[[Runner], ImageBuilder] = _engine
    timing: Timing = field(default_factory=Timing)
    marker: Callable[[], str] = new_marker
    github: GitHubFactory = _github
    open_pulls: OpenPullsFactory = _open_pulls


def run(
    inputs: Inputs,
    context: GitHubContext,
    runner: Runner,
    dependencies: Dependencies,
    *,
    github: GitHubSide | None = None,
    prebuild: Prebuild | None = None,
) -> RunResult:
    """Run the action for ``inputs``; the result says what happened, errors included.

    ``github`` is the run's GitHub side when the caller tells GitHub the end itself (after
    writing the outputs, so a slow GitHub never delays the report); otherwise it is made
    from ``dependencies`` and told here. ``prebuild`` is the DAG tarball the caller started
    packing (see :mod:`ci_deploy.stages.prebuild`); the run starts one otherwise, when it
    may pay, and discards either at its end."""
    journal = Journal()
    journal.add(Subject(inputs.deployment_id))
    timing = dependencies.timing
    started = timing.clock()
    images = _OneBuilder(lambda: dependencies.images(runner))
    told_here = github is None
    github = github or dependencies.github(inputs, context, runner, timing)
    error: CiDeployError | None = None
    marker = dependencies.marker()

    def scope_of(platform: Platform) -> Scope:
        return Scope(platform, runner, journal, timing, marker, context.run_url)

    try:
        with cancellable():
            if inputs.action in TIDY_ACTIONS:  # previews deleted: no checkout needed
                with dependencies.platform(inputs, runner, images.get, timing) as platform:
                    open_pulls = dependencies.open_pulls
                    Previews(
                        inputs,
                        context,
                        scope_of(platform),
                        open_pulls=lambda: open_pulls(inputs, context, runner, timing),
                    ).tidy()
            else:
                if inputs.action == "preview":
                    inputs = preview_deploy_inputs(inputs)
                with (
                    open_checkout(inputs, context, runner) as checkout,
                    dependencies.platform(inputs, runner, images.get, timing) as platform,
                    prebuilding(inputs, runner, prebuild) as prebuild,  # packed meanwhile
                ):
                    deploy: tuple[Inputs, Scope] | None = (inputs, scope_of(platform))
                    if inputs.action == "preview":  # the deploy goes to the preview
                        checkout.head  # noqa: B018 - no checkout: GitError before it is made
                        deploy = Previews(inputs, context, scope_of(platform)).prepare()
                    if deploy is not None:
                        _Stages(
                            deploy[0], context, deploy[1], checkout, images, github, prebuild
                        ).run()
    except CiDeployError as exc:
        error = exc
    except Exception as exc:  # a bug: the result still says how far the run got
        runner.debug(traceback.format_exc())
        error = unexpected_error(exc)
    finally:
        images.close()
    result = assemble(journal, error, timing.clock() - started)
    if told_here:
        github.finished(result)  # never raises: GitHub's errors are warnings
    return result


class _Stages:
    """The stages of one run, with what they share."""

    def __init__(
        self,
        inputs: Inputs,
        context: GitHubContext,
        scope: Scope,
        checkout: Checkout,
        images: _OneBuilder,
        github: GitHubSide,
        prebuild: Prebuild | None = None,
    ) -> None:
        self.inputs, self.context, self.scope = inputs, context, scope
        self.checkout, self.images, self.github = checkout, images, github
        self.platform, self.runner, self.journal = scope.platform, scope.runner, scope.journal
        self.prebuild = prebuild  # the DAG tarball, being packed since the platform was made

    def run(self) -> None:
        inputs, journal, platform = self.inputs, self.journal, self.platform
        try:  # first: the request goes out without waiting for git to load
            environment = platform.locate()
        except CiDeployError:
            self._note_head()
            raise
        journal.add(Subject(environment.id, environment))
        journal.add(Detection(self.checkout.head))  # no checkout: GitError, nothing written
        self.scope = replace(self.scope, words=environment.words)
        self.runner.info(environment.summary)
        if inputs.action in PIN_ACTIONS:
            if not isinstance(platform, PinningPlatform):
                raise DeployRejectedError(f"{inputs.action} needs platform: digitalocean.")
            self._recovery().decide_pin(platform, inputs.action, environment.pinned)
            return
        history = platform.history()
        self._say_in_flight(history)
        if inputs.action == "rollback":
            plan = plan_rollback(inputs, history, environment)
            journal.add(plan)
            self._announce(plan)
            if not plan.dry_run:
                self._recovery().on_demand(plan)
            return

        detection = self.checkout.detect(history, environment.running, environment.words)
        journal.add(detection)
        plan = make_plan(inputs, detection, environment, history, platform.rules)
        journal.add(plan)
        self._announce(plan)
        if plan.dry_run or plan.release is None:
            return
        refusal = plan.release.refusal
        if refusal is not None:
            raise DeployRejectedError(refusal.message, title=refusal.title)
        self._deploy(plan, plan.release, environment)

    def _deploy(self, plan: Plan, release_plan: ReleasePlan, environment: Environment) -> None:
        inputs, runner, checkout = self.inputs, self.runner, self.checkout
        built = build(
            release_plan,
            inputs,
            runner,
            self.images.get,
            root_folder=checkout.root_folder,
            image_tag=f"ci-deploy/{environment.id.lower()}:{checkout.head.sha[:12]}",
            prebuilt=self.prebuild,
        )
        self.journal.add(built)
        try:
            self._ship_and_wait(plan, release_plan, environment, built)
        finally:
            discard(built)  # the tarballs' spool files

    def _ship_and_wait(
        self, plan: Plan, release_plan: ReleasePlan, environment: Environment, built: Built
    ) -> None:
        inputs, checkout = self.inputs, self.checkout
        self.github.deploy_started(checkout.head.sha, environment)
        with self.platform.awake(inputs.wake_on_deploy):
            shipped = ship(self.scope, release_plan, built, checkout.source(), checkout.contains)
            if isinstance(shipped, Superseded):
                self._say_superseded(shipped.by)
                return
            if plan.wait_timeout is None:
                self.journal.add(Seen("not awaited (wait: false)"))
                return
            release = shipped.release
            timeout = plan.wait_timeout
            gates = self._gates(shipped, built)
            try:
                what = f"{self.scope.words.release} {release.id}"
                gates.rollout(lambda: wait_for(self.scope, release, what, timeout))
                gates.verify()
            except RolloutError as failure:
                self._recovery().after_failure(plan, failure, shipped)

    def _gates(self, finalized: Finalized, built: Built) -> Gates:
        """The verification gates of the release ``finalized``, as the inputs ask."""
        inputs, checkout = self.inputs, self.checkout
        prefix = member_prefix(checkout.root_folder, inputs.dags_folder)
        members = tuple(built.dags.members) if built.dags is not None else ()
        detection = self.journal.last(Detection)
        changes = detection.changes if detection is not None else None
        changed = None
        if changes is not None:
            files = set(changes.files)
            changed = frozenset(m for m in members if prefix + m in files)
        shipment = self.journal.last(Shipped)
        versions = shipment.shipment.versions if shipment is not None else {}
        release = finalized.release
        shipped = Delivered(
            release,
            finalized.at,
            members,
            changed,
            prefix,
            bundle_version=versions.get(Artifact.DAGS, "") or release.id,
        )
        settings = GateSettings(
            check_imports=inputs.check_import_errors,
            window=inputs.verify_window,
            smoke=inputs.smoke_dags,
            smoke_timeout=inputs.smoke_timeout,
            smoke_unpause=inputs.smoke_unpause,
        )
        return Gates(
            self.scope,
            settings,
            shipped,
            logs_check=lambda: check_imports(
                self.scope, since=finalized.at, members=members, prefix=prefix
            ),
        )

    def _note_head(self) -> None:
        """The commit, for the report of a run that stopped before reading it, when it can
        be read."""
        with suppress(GitError):
            self.journal.add(Detection(self.checkout.head))

    def _say_in_flight(self, history: Sequence[Release]) -> None:
        """A notice when another run's deploy is in progress on the environment."""
        others = releases.in_flight(
            history, self.scope.timing.now(), self.inputs.wait_timeout, marker=self.scope.marker
        )
        words = self.scope.words
        for other in others:
            run = releases.run_url_of(other)
            self.runner.notice(
                f"Another {words.release} is in progress on this {words.environment}: "
                f"{words.release} {other.id} ({other.commit_label()}, created "
                f"{other.created_at:%H:%M:%S} UTC{f', by {run}' if run else ''}) is not "
                "finalized yet. Runs that overlap race each other; ci-deploy keeps the newest "
                f"commit, but a concurrency group per {words.environment} in the workflow "
                "avoids the race (see the README).",
                title=f"Another {words.release} in progress",
            )

    def _say_superseded(self, newer: Release) -> None:
        """The notice of a run whose release a newer one made unnecessary."""
        created = self.journal.last(Created)
        ours = created.release.id if created is not None else "?"
        run = releases.run_url_of(newer)
        noun = self.scope.words.release
        self.runner.notice(
            f"{capitalized(noun)} {newer.id} ({newer.commit_label()}"
            f"{f', by {run}' if run else ''}) is another run's {noun} of newer code than this "
            f"run's {noun} {ours} (or of code whose history could not be told apart), so {noun} "
            f"{ours} was not finalized: putting it in place would go back. Nothing else to do.",
            title=f"Superseded by a newer {noun}",
        )

    def _announce(self, plan: Plan) -> None:
        """Say what the plan is: the decision, a skip, or (dry run) the whole plan."""
        runner = self.runner
        for warning in plan.warnings:
            runner.warning(warning, title="Not deployed")
        if plan.dry_run:
            with runner.group("Plan"):
                detected = _detected(self.journal.last(Detection), self.scope.words)
                for line in detected + describe(plan):
                    runner.info(line)
            title, notice = _dry_run_notice(plan)
            runner.notice(notice, title=title)
        elif plan.operation is Operation.SKIP:
            runner.notice(plan.reason, title="Deploy skipped")
        elif plan.operation is Operation.DEPLOY:
            runner.info(f"Decision: {plan.kind}. {plan.reason}")

    def _recovery(self) -> Recovery:
        inputs = self.inputs
        return Recovery(
            self.scope, timeout=inputs.wait_timeout, pin=inputs.rollback_pin, wait=inputs.wait
        )


def _detected(detection: Detection | None, words: Words) -> list[str]:
    """The base and the files of a dry run's plan."""
    if detection is None or detection.base is None:
        return []
    base = detection.base
    lines = [f"Base: {f'{base.label} ({base.sha[:12]})' if base.sha else 'none'} [{base.source}]"]
    if detection.changes is not None:
        lines.append(f"Files: {words.counted(detection.changes)}")
    return lines


def _dry_run_notice(plan: Plan) -> tuple[str, str]:
    """The title and text of a dry run's notice."""
    if plan.operation is Operation.ROLLBACK and plan.rollback_to is not None:
        target = plan.rollback_to
        return "Rollback planned", (
            f"Dry run: would roll back to {plan.words.release} {target.id} "
            f"({target.commit_label()})."
        )
    action = f"deploy {plan.kind}" if plan.release is not None else "skip"
    return "Deploy planned", f"Dry run: would {action}. {plan.reason} Nothing was created."


class _OneBuilder:
    """The run's one image builder (one Docker client), made on first use, closed at the end."""

    def __init__(self, make: Callable[[], ImageBuilder]) -> None:
        self._make = make
        self._builder: ImageBuilder | None = None

    def get(self) -> ImageBuilder:
        if self._builder is None:
            self._builder = self._make()
        return self._builder

    def close(self) -> None:
        builder, self._builder = self._builder, None
        if builder is not None:
            builder.close()
