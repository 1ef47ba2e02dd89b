"""The orchestration of one run: detect, decide, create, upload, finalize, wait.

Each step's I/O is here; what the facts mean is decided in :mod:`decide`. A run always
ends in a :class:`RunResult`, also when it fails, so the outputs and the summary can say
what happened and in which state the Deployment was left.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from git import Repo

from . import bundle as bundling
from . import changes as git_changes
from .astro import AstroClient
from .base import (
    BaseChoice,
    Candidate,
    Probe,
    choose_base,
    deployed_candidate,
    event_candidate,
)
from .changes import ChangeSet
from .decide import (
    IMAGE_TYPES,
    Decision,
    choose_deploy_type,
    count_files,
    cut_description,
    poll_delays,
    rollout_state,
)
from .errors import (
    CiDeployError,
    DeployRejectedError,
    NotSupportedError,
    RolloutError,
)
from .github import GitHubContext, git_info
from .inputs import Inputs
from .models import CreateDeployRequest, Deploy, Deployment, FinalizeDeployRequest
from .paths import PathRules, classify
from .runner import Runner
from .upload import redact_url, upload_blob

ClientFactory = Callable[[Inputs], AstroClient]


@dataclass
class RunResult:
    """Everything a run learned, for the outputs and the job summary."""

    status: str = "failed"  # deployed, skipped, planned, failed, rolled-back
    skipped: bool = False
    deploy_id: str = ""
    deploy_type: str = ""
    reason: str = ""
    skip_reason: str = ""
    dag_tarball_version: str = ""
    deployment_id: str = ""
    deployment_name: str = ""
    deployment_url: str = ""
    rolled_back: bool = False
    head_sha: str = ""
    head_subject: str = ""
    base_sha: str = ""
    base_source: str = ""
    base_label: str = ""
    base_rejected: list[str] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    dag_files: list[str] = field(default_factory=list)
    image_files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    bundle_files: int = 0
    bundle_bytes: int = 0
    finalized: bool = False
    duration_seconds: float = 0.0
    error: CiDeployError | None = None
    deployment_state: str = ""


class Deployer:
    """Runs one deploy for validated inputs, reporting progress through a :class:`Runner`."""

    def __init__(
        self,
        inputs: Inputs,
        context: GitHubContext,
        runner: Runner,
        *,
        client_factory: ClientFactory,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inputs = inputs
        self.context = context
        self.runner = runner
        self.client_factory = client_factory
        self.clock = clock
        self.sleep = sleep
        self.result = RunResult(deployment_id=inputs.deployment_id)

    def run(self) -> RunResult:
        """Run the deploy; never raises a :class:`CiDeployError`, it lands in the result."""
        started = self.clock()
        try:
            self._run()
        except CiDeployError as exc:
            self.result.status = "failed"
            self.result.error = exc
        finally:
            self.result.duration_seconds = self.clock() - started
        return self.result

    def _run(self) -> None:
        inputs, result = self.inputs, self.result
        repo = git_changes.open_repo(inputs.root_path)
        rules = PathRules(
            git_changes.repo_relative(repo, inputs.root_path),
            inputs.dag_paths,
            inputs.image_paths,
            inputs.ignore_paths,
        )
        head = git_changes.head_commit(repo)
        result.head_sha, result.head_subject = head.sha, head.subject

        with self.client_factory(inputs) as client:
            deployment = client.get_deployment(inputs.deployment_id)
            self.runner.info(
                f"Deployment '{deployment.name}' ({deployment.id}): status {deployment.status}, "
                f"DAG deploys {'enabled' if deployment.isDagDeployEnabled else 'disabled'}, "
                f"runtime {deployment.runtimeVersion or 'unknown'}."
            )
            result.deployment_name = deployment.name
            result.deployment_url = deployment.uiUrl

            choice = self._choose_base(client, repo, head.sha)
            change_set = self._detect_changes(repo, choice, head.sha, rules)
            decision = choose_deploy_type(
                inputs.deploy_type,
                change_set,
                dag_deploy_enabled=deployment.isDagDeployEnabled,
                no_base_reason="; ".join(choice.rejected),
                force=inputs.force,
            )
            for warning in decision.warnings:
                self.runner.warning(warning, title="Not deployed")
            if decision.skipped:
                self._skip(decision)
            else:
                result.deploy_type, result.reason = decision.deploy_type or "", decision.reason
                self.runner.info(f"Decision: {decision.deploy_type}. {decision.reason}")
            if inputs.dry_run:
                self._plan(decision)
                return
            if decision.skipped:
                return
            self._check_possible(decision, deployment)
            self._deploy(client, deployment, decision, head, rules.root_folder, repo)

    # -- change detection ---------------------------------------------------------------

    def _choose_base(self, client: AstroClient, repo: Repo, head_sha: str) -> BaseChoice:
        """Pick the commit to compare with, and say how and why in the log and result."""
        inputs, context, runner = self.inputs, self.context, self.runner
        deployed: tuple[Candidate | None, str] = (None, f"compare-to is {inputs.compare_to}")
        if inputs.compare_to in ("auto", "deployed"):
            deployed = deployed_candidate(client.list_deploys(inputs.deployment_id))
        event = event_candidate(context.event_name, context.event)
        choice = choose_base(inputs.compare_to, deployed, event, self._probe(repo, head_sha))

        result = self.result
        result.base_sha, result.base_source = choice.sha or "", choice.source
        result.base_label, result.base_rejected = choice.label, list(choice.rejected)
        for rejected in choice.rejected:
            runner.info(f"Not compared with: {rejected}.")
        if choice.sha is None:
            runner.notice(
                f"Deploying everything: no usable base commit ({'; '.join(choice.rejected)}).",
                title="No base commit",
            )
        else:
            runner.info(f"Comparing with {choice.label} [{choice.source}]: {choice.sha}.")
        return choice

    def _probe(self, repo: Repo, head_sha: str) -> Probe:
        def probe(candidate: Candidate, needs_ancestor: bool) -> tuple[str | None, str]:
            resolved = git_changes.ensure_commit(repo, candidate.rev, log=self.runner.info)
            if resolved.sha is None:
                return None, resolved.detail
            if needs_ancestor or candidate.merge_base:
                merge_base = git_changes.connect_history(
                    repo, resolved.sha, head_sha, log=self.runner.info
                )
                if merge_base is None:
                    return None, "it shares no history with HEAD that could be fetched"
                if needs_ancestor and not git_changes.is_ancestor(repo, resolved.sha, head_sha):
                    return None, "it is not an ancestor of HEAD (deployed from another branch?)"
            return resolved.sha, resolved.detail

        return probe

    def _detect_changes(
        self, repo: Repo, choice: BaseChoice, head_sha: str, rules: PathRules
    ) -> ChangeSet | None:
        """The classified changes since the chosen base; None when there is no base."""
        if choice.sha is None:
            return None
        base, head = choice.sha, head_sha
        if choice.head:  # a pull request: its own head, not the test merge commit
            head = git_changes.ensure_commit(repo, choice.head, log=self.runner.info).sha or head
        if choice.merge_base:
            base = git_changes.connect_history(repo, choice.sha, head) or choice.sha
        files = git_changes.changed_files(repo, base, head)
        change_set = classify(files, rules)
        result = self.result
        result.changed_files = list(change_set.files)
        result.dag_files = list(change_set.dag_files)
        result.image_files = list(change_set.image_files)
        result.ignored_files = list(change_set.ignored_files)
        how = "..." if choice.merge_base else ".."
        with self.runner.group(
            f"Changes {base[:12]}{how}{head[:12]}: {count_files(len(change_set.files))}"
        ):
            for title, names in (
                ("DAG files", change_set.dag_files),
                ("Image files", change_set.image_files),
                ("Not relevant", change_set.ignored_files),
            ):
                self.runner.info(f"{title} ({len(names)}):")
                for name in names:
                    self.runner.info(f"  {name}")
        return change_set

    # -- outcomes without a deploy ------------------------------------------------------

    def _skip(self, decision: Decision) -> None:
        self.result.status = "skipped"
        self.result.skipped = True
        self.result.skip_reason = decision.reason
        if not self.inputs.dry_run:
            self.runner.notice(decision.reason, title="Deploy skipped")

    def _plan(self, decision: Decision) -> None:
        """Report the plan of a dry run; nothing is created."""
        result, runner = self.result, self.runner
        result.status = "planned"
        base = f"{result.base_label} ({result.base_sha[:12]})" if result.base_sha else "none"
        action = f"deploy {decision.deploy_type}" if decision.deploy_type else "skip"
        with runner.group("Plan"):
            runner.info(f"Base: {base} [{result.base_source}]")
            runner.info(
                f"Files: {len(result.dag_files)} DAG, {len(result.image_files)} image, "
                f"{len(result.ignored_files)} not relevant"
            )
            runner.info(f"Action: {action}")
            runner.info(f"Reason: {decision.reason}")
        runner.notice(
            f"Dry run: would {action}. {decision.reason} Nothing was created.",
            title="Deploy planned",
        )
        if decision.deploy_type not in (None, "DAG_ONLY"):
            runner.warning(
                f"This version of ci-deploy cannot run {decision.deploy_type} deploys yet; "
                "a real run would fail.",
                title="Not supported yet",
            )

    def _check_possible(self, decision: Decision, deployment: Deployment) -> None:
        deploy_type = decision.deploy_type
        if deploy_type in IMAGE_TYPES or deploy_type == "BUNDLE":
            raise NotSupportedError(
                f"{decision.reason} This version of ci-deploy deploys DAGs only: "
                f"{deploy_type} deploys (image build and push, bundles) come in a later "
                "release. To ship only the DAGs, set deploy-type: dags-only; to deploy the "
                "image, use the Astro CLI for now.",
                title=f"{deploy_type} deploys are not supported yet",
            )
        if deploy_type == "DAG_ONLY" and not deployment.isDagDeployEnabled:
            raise DeployRejectedError(
                f"DAG deploys are disabled on Deployment '{deployment.name or deployment.id}', "
                "so a DAG-only deploy is not possible. Enable DAG deploys in the Deployment's "
                "settings, or deploy the image.",
                title="DAG deploys are disabled",
            )

    # -- the deploy ---------------------------------------------------------------------

    def _deploy(
        self,
        client: AstroClient,
        deployment: Deployment,
        decision: Decision,
        head: git_changes.CommitInfo,
        root_in_repo: str,
        repo: Repo,
    ) -> None:
        inputs, result, runner = self.inputs, self.result, self.runner
        assert decision.deploy_type is not None
        with runner.group(f"Bundling {inputs.dags_folder}/"):
            tarball = bundling.build_dag_tarball(inputs.dags_path)
            result.bundle_files, result.bundle_bytes = len(tarball.members), tarball.size
            for member in tarball.members:
                runner.info(f"  {member}")
            runner.info(
                f"{len(tarball.members)} files, {tarball.size} bytes, sha256 {tarball.sha256}"
            )

        git = git_info(self.context, head, root_in_repo, git_changes.remote_url(repo))
        description = inputs.description or cut_description(head.subject)
        deploy = client.create_deploy(
            inputs.deployment_id,
            CreateDeployRequest(
                type=decision.deploy_type, description=description or None, git=git
            ),
        )
        result.deploy_id = deploy.id
        runner.info(f"Created deploy {deploy.id} ({deploy.type}) for commit {head.sha[:12]}.")

        version = self._upload(deploy, tarball.data)
        result.dag_tarball_version = version
        finalized = client.finalize_deploy(
            inputs.deployment_id, deploy.id, FinalizeDeployRequest(dagTarballVersion=version)
        )
        result.finalized = True
        runner.info(f"Finalized deploy {finalized.id}: status {finalized.status}.")

        if inputs.wait:
            self._wait(client, version)
        else:
            result.deployment_state = "not awaited (wait: false)"
        result.status = "deployed"

    def _upload(self, deploy: Deploy, data: bytes) -> str:
        url = deploy.dagsUploadUrl
        if not url:
            raise DeployRejectedError(
                f"The API created deploy {deploy.id} without a DAG upload URL, so the DAGs "
                "cannot be uploaded."
            )
        for signature in parse_qs(urlsplit(url).query).get("sig", []):
            self.runner.mask(signature)
        self.runner.info(f"Uploading {len(data)} bytes to {redact_url(url)}")
        return upload_blob(url, data, sleep=self.sleep, on_retry=self.runner.info)

    def _wait(self, client: AstroClient, version: str) -> None:
        inputs, runner = self.inputs, self.runner
        started = self.clock()
        deadline = started + inputs.wait_timeout
        delays = poll_delays()
        with runner.group(f"Waiting for the Deployment to run DAG version {version}"):
            while True:
                deployment = client.get_deployment(inputs.deployment_id)
                state = rollout_state(deployment, version)
                elapsed = self.clock() - started
                runner.info(f"[{elapsed:5.0f}s] {state.summary}")
                self.result.deployment_state = state.summary
                if state.done:
                    runner.info(f"The Deployment runs the new version after {elapsed:.0f}s.")
                    return
                if state.failed:
                    raise RolloutError(
                        f"The Deployment became unhealthy after deploy {self.result.deploy_id} "
                        f"was finalized: {state.summary}. Automatic rollback is not available "
                        "in this version: check the Deployment in the Astro UI."
                    )
                remaining = deadline - self.clock()
                if remaining <= 0:
                    raise RolloutError(
                        f"Timed out after {inputs.wait_timeout:.0f}s (wait-timeout) waiting for "
                        f"the Deployment to run DAG version {version}; last seen: {state.summary}. "
                        f"Deploy {self.result.deploy_id} is finalized and may still roll out: "
                        "check the Deployment in the Astro UI, or raise wait-timeout."
                    )
                self.sleep(min(next(delays), remaining))
