"""The orchestration of one run: detect, decide, build, create, upload, finalize, verify.

Each step's I/O is here; what the facts mean is decided in :mod:`decide` and :mod:`base`,
and what happens after finalize lives in :mod:`rollout`. Everything that can fail without
touching the Deployment (bundling, the syntax check, the image build) runs before the
deploy is created. A run always ends in a :class:`RunResult`, also when it fails, so the
outputs and the summary can say what happened and in which state the Deployment was left.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from urllib.parse import parse_qs, urlsplit

from git import Repo

from . import bundle as bundling
from . import gitrepo as git_changes
from .astro.client import AstroClient
from .astro.hibernation import awake
from .astro.upload import redact_url, upload_blob
from .astro.wire import CreateDeployRequest, Deploy, Deployment, FinalizeDeployRequest
from .basecommit import (
    BaseChoice,
    Candidate,
    Probe,
    choose_base,
    deployed_candidate,
    event_candidate,
)
from .bundle import Bundle
from .changeset import ChangeSet, PathRules, classify
from .decide import (
    IMAGE_TYPES,
    Decision,
    Target,
    choose_deploy_type,
    count_files,
    cut_description,
    latest_deployed,
    previous_deploy,
)
from .errors import (
    ApiAmbiguousError,
    CancelledError,
    CiDeployError,
    DeployRejectedError,
    NotFoundError,
    RolloutError,
    SyntaxCheckError,
)
from .github import GitHubContext, git_info
from .image import BuiltImage, ImageBuilder
from .inputs import Inputs
from .rollout import Rollout, commit_of
from .runner import Runner
from .source import CommitInfo
from .syntax import check_python_files

ClientFactory = Callable[[Inputs], AstroClient]
ImageBuilderFactory = Callable[[Runner], ImageBuilder]

CREATE_ATTEMPTS = 3


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
    image: str = ""
    deployment_id: str = ""
    deployment_name: str = ""
    deployment_url: str = ""
    rolled_back: bool = False
    rollback_deploy_id: str = ""
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


@dataclass
class Artifacts:
    """What a deploy ships, made before the deploy is created."""

    dags: Bundle | None = None
    bundle: Bundle | None = None
    image: BuiltImage | None = None


class Deployer:
    """Runs one deploy (or a requested rollback) for validated inputs."""

    def __init__(
        self,
        inputs: Inputs,
        context: GitHubContext,
        runner: Runner,
        *,
        client_factory: ClientFactory,
        image_builder_factory: ImageBuilderFactory | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inputs = inputs
        self.context = context
        self.runner = runner
        self.client_factory = client_factory
        self.image_builder_factory = image_builder_factory or _default_image_builder
        self.clock = clock
        self.sleep = sleep
        self.deployment_id = inputs.deployment_id
        self.result = RunResult(deployment_id=inputs.deployment_id)
        self._builder: ImageBuilder | None = None

    def run(self) -> RunResult:
        """Run; never raises a :class:`CiDeployError`, it lands in the result."""
        started = self.clock()
        try:
            with _cancellable():
                self._run()
        except CiDeployError as exc:
            self.result.status = "failed"
            self.result.error = exc
        finally:
            if self._builder is not None:
                self._builder.close()
            self.result.duration_seconds = self.clock() - started
        return self.result

    def _image_builder(self) -> ImageBuilder:
        """The run's one image builder (one Docker client for build, check and push)."""
        if self._builder is None:
            self._builder = self.image_builder_factory(self.runner)
        return self._builder

    def _rollout(self, client: AstroClient) -> Rollout:
        return Rollout(
            client,
            self.deployment_id,
            self.runner,
            timeout=self.inputs.wait_timeout,
            clock=self.clock,
            sleep=self.sleep,
        )

    def _with_run_url(self, text: str) -> str:
        """``text`` followed by the workflow run's URL, when there is one."""
        return f"{text} ({self.context.run_url})" if self.context.run_url else text

    def _run(self) -> None:
        inputs, result, runner = self.inputs, self.result, self.runner
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
            deployment = self._deployment(client)
            history = client.list_deploys(self.deployment_id)
            if inputs.action == "rollback":
                self._rollback_on_demand(client, history)
                return

            choice = self._choose_base(history, repo, head.sha)
            change_set = self._detect_changes(repo, choice, head.sha, rules)
            decision = choose_deploy_type(
                inputs.deploy_type,
                change_set,
                dag_deploy_enabled=deployment.isDagDeployEnabled,
                no_base_reason="; ".join(choice.rejected),
                force=inputs.force,
            )
            for warning in decision.warnings:
                runner.warning(warning, title="Not deployed")
            if decision.skipped:
                self._skip(decision)
            else:
                result.deploy_type, result.reason = decision.deploy_type or "", decision.reason
                runner.info(f"Decision: {decision.deploy_type}. {decision.reason}")
            if inputs.dry_run:
                self._plan(decision)
                return
            if decision.skipped:
                return
            self._check_possible(decision, deployment)
            artifacts = self._prepare(decision, deployment, rules.root_folder)
            with awake(client, deployment, runner, enabled=inputs.wake_on_deploy):
                self._deploy(client, deployment, decision, artifacts, head, rules, repo, history)

    def _deployment(self, client: AstroClient) -> Deployment:
        """The target Deployment, looked up by name when no ID was given."""
        if not self.deployment_id:
            self.deployment_id = self._find_by_name(client)
            self.result.deployment_id = self.deployment_id
        deployment = client.get_deployment(self.deployment_id)
        self.runner.info(
            f"Deployment '{deployment.name}' ({deployment.id}): status {deployment.status}, "
            f"DAG deploys {'enabled' if deployment.isDagDeployEnabled else 'disabled'}, "
            f"runtime {deployment.runtimeVersion or 'unknown'}."
        )
        self.result.deployment_name = deployment.name
        self.result.deployment_url = deployment.uiUrl
        return deployment

    def _find_by_name(self, client: AstroClient) -> str:
        name, workspace = self.inputs.deployment_name, self.inputs.workspace_id
        found = [
            d
            for d in client.list_deployments(names=[name], workspace_id=workspace or None)
            if d.name == name
        ]
        where = f" in workspace {workspace}" if workspace else ""
        if len(found) == 1:
            self.runner.info(f"Deployment '{name}'{where} is {found[0].id}.")
            return found[0].id
        if not found:
            raise NotFoundError(
                f"No Deployment is named '{name}'{where}. Check deployment-name (names are "
                "case-sensitive), or set deployment-id.",
                title="Deployment not found",
            )
        listed = "; ".join(f"{d.id} in workspace {d.workspaceId}" for d in found)
        raise DeployRejectedError(
            f"{len(found)} Deployments are named '{name}'{where}: {listed}. Set workspace-id "
            "to the right workspace, or set deployment-id.",
            title="Deployment name is ambiguous",
        )

    def _choose_base(self, history: Sequence[Deploy], repo: Repo, head_sha: str) -> BaseChoice:
        """Pick the commit to compare with, and say how and why in the log and result."""
        inputs, context, runner = self.inputs, self.context, self.runner
        deployed: tuple[Candidate | None, str] = (None, f"compare-to is {inputs.compare_to}")
        if inputs.compare_to in ("auto", "deployed"):
            deployed = deployed_candidate(history)
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

    def _check_possible(self, decision: Decision, deployment: Deployment) -> None:
        if decision.deploy_type == "DAG_ONLY" and not deployment.isDagDeployEnabled:
            raise DeployRejectedError(
                f"DAG deploys are disabled on Deployment '{deployment.name or deployment.id}', "
                "so a DAG-only deploy is not possible. Enable DAG deploys in the Deployment's "
                "settings, or deploy the image.",
                title="DAG deploys are disabled",
            )
        if decision.deploy_type == "BUNDLE" and not deployment.isDagDeployEnabled:
            raise DeployRejectedError(
                "Bundle deploys need DAG deploys enabled on the Deployment.",
                title="DAG deploys are disabled",
            )

    # -- before the deploy: everything that can fail without touching the Deployment -----

    def _prepare(self, decision: Decision, deployment: Deployment, root_folder: str) -> Artifacts:
        inputs, runner = self.inputs, self.runner
        artifacts = Artifacts()
        deploy_type = decision.deploy_type
        if deploy_type == "BUNDLE":
            with runner.group(f"Bundling {inputs.root_folder}/ ({inputs.bundle_type})"):
                artifacts.bundle = bundling.build_bundle_tarball(inputs.root_path)
                self._describe(artifacts.bundle)
            return artifacts
        if deploy_type == "DAG_ONLY" or (
            deploy_type == "IMAGE_AND_DAG" and deployment.isDagDeployEnabled
        ):
            with runner.group(f"Bundling {inputs.dags_folder}/"):
                artifacts.dags = bundling.build_dag_tarball(inputs.dags_path)
                self._describe(artifacts.dags)
            if inputs.syntax_check:
                self._syntax_check(artifacts.dags, root_folder)
        if deploy_type in IMAGE_TYPES:
            artifacts.image = self._image()
            self.result.image = artifacts.image.reference
        return artifacts

    def _describe(self, tarball: Bundle) -> None:
        self.result.bundle_files, self.result.bundle_bytes = len(tarball.members), tarball.size
        for member in tarball.members:
            self.runner.info(f"  {member}")
        self.runner.info(
            f"{len(tarball.members)} files, {tarball.size} bytes, sha256 {tarball.sha256}"
        )

    def _syntax_check(self, tarball: Bundle, root_folder: str) -> None:
        prefix = _dags_prefix(root_folder, self.inputs.dags_folder)
        problems = check_python_files(self.inputs.dags_path, tarball.members, path_prefix=prefix)
        for problem in problems:
            self.runner.error(
                problem.message, title="Python syntax error", file=problem.path, line=problem.line
            )
        if problems:
            files = ", ".join(f"{p.path}:{p.line}" for p in problems)
            raise SyntaxCheckError(
                f"{count_files(len(problems))} in the DAG bundle do not compile ({files}); "
                "nothing was deployed. Fix them, or set syntax-check: false to skip this check."
            )
        self.runner.info("Syntax check: every Python file in the DAG bundle compiles.")

    def _image(self) -> BuiltImage:
        inputs = self.inputs
        builder = self._image_builder()
        if inputs.image_name:
            image = builder.existing(inputs.image_name)
            self.runner.info(f"Using the image {inputs.image_name} built earlier in the workflow.")
        else:
            tag = f"ci-deploy/{self.deployment_id.lower()}:{(self.result.head_sha or 'local')[:12]}"
            image = builder.build(inputs.root_path, tag=tag)
        version = builder.check_runtime(image)
        self.runner.info(f"Image {image.reference}: Astro Runtime {version}.")
        return image

    # -- the deploy ---------------------------------------------------------------------

    def _deploy(
        self,
        client: AstroClient,
        deployment: Deployment,
        decision: Decision,
        artifacts: Artifacts,
        head: CommitInfo,
        rules: PathRules,
        repo: Repo,
        history: Sequence[Deploy],
    ) -> None:
        inputs, result, runner = self.inputs, self.result, self.runner
        rollback_target = latest_deployed(history)
        assert decision.deploy_type is not None
        git = git_info(self.context, head, rules.root_folder, git_changes.remote_url(repo))
        request = CreateDeployRequest(
            type=decision.deploy_type,
            description=(inputs.description or cut_description(head.subject)) or None,
            git=git,
            bundleType=inputs.bundle_type or None,
            bundleMountPath=inputs.bundle_mount_path or None,
        )
        deploy = self._create(client, request, {d.id for d in history})
        result.deploy_id = deploy.id
        runner.info(f"Created deploy {deploy.id} ({deploy.type}) for commit {head.sha[:12]}.")

        finalize = FinalizeDeployRequest()
        if artifacts.dags is not None:
            version = self._upload(deploy, deploy.dagsUploadUrl, artifacts.dags.data)
            result.dag_tarball_version = version
            finalize = FinalizeDeployRequest(dagTarballVersion=version)
        elif artifacts.bundle is not None:
            version = self._upload(deploy, deploy.bundleUploadUrl, artifacts.bundle.data)
            finalize = FinalizeDeployRequest(bundleTarballVersion=version)
        elif decision.deploy_type == "IMAGE_ONLY" or (
            decision.deploy_type in IMAGE_TYPES and deployment.isDagDeployEnabled
        ):
            finalize = FinalizeDeployRequest(dagTarballVersion="")
        if artifacts.image is not None:
            self._push(artifacts.image, deploy)

        finalized_at = datetime.now(UTC)
        client.finalize_deploy(self.deployment_id, deploy.id, finalize)
        result.finalized = True
        runner.info(f"Finalized deploy {deploy.id}.")

        if not inputs.wait:
            result.deployment_state = "not awaited (wait: false)"
            result.status = "deployed"
            return
        rollout = self._rollout(client)
        target = Target(
            dag_version=result.dag_tarball_version or None,
            image_tag=deploy.imageTag if artifacts.image is not None else None,
        )
        try:
            rollout.wait(target, f"deploy {deploy.id}")
            if inputs.check_import_errors and artifacts.dags is not None:
                prefix = _dags_prefix(rules.root_folder, inputs.dags_folder)
                rollout.check_imports(finalized_at, artifacts.dags.members, prefix)
        except RolloutError as failure:
            result.deployment_state = rollout.last_seen
            self._after_failed_rollout(rollout, failure, deploy, rollback_target)
        result.deployment_state = rollout.last_seen
        result.status = "deployed"

    def _create(self, client: AstroClient, request: CreateDeployRequest, known: set[str]) -> Deploy:
        """Create the deploy exactly once, even when an answer is lost on the way back.

        ``known`` holds the ids of the deploys that existed before. After an ambiguous
        failure the deploy history is read again: a new ``INITIALIZED`` deploy of this commit
        is the one the lost answer would have named.
        """
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                return client.create_deploy(self.deployment_id, request)
            except ApiAmbiguousError as exc:
                self.runner.info(
                    f"The answer to creating the deploy was lost ({exc.message}); reading the "
                    "deploy history to see whether it was created."
                )
                adopted = self._created_meanwhile(client, request, known)
                if adopted is not None:
                    self.runner.info(f"It was: deploy {adopted.id}. Continuing with it.")
                    return adopted
                if attempt == CREATE_ATTEMPTS:
                    raise
                self.runner.info(f"It was not; creating it again (attempt {attempt + 1}).")
        raise AssertionError("unreachable")

    def _created_meanwhile(
        self, client: AstroClient, request: CreateDeployRequest, known: set[str]
    ) -> Deploy | None:
        sha = request.git.commitSha if request.git else None
        for deploy in reversed(client.list_deploys(self.deployment_id)):
            same_commit = sha is None or (deploy.git is not None and deploy.git.commitSha == sha)
            if (
                deploy.id not in known
                and deploy.status == "INITIALIZED"
                and deploy.type == request.type
                and same_commit
            ):
                return client.get_deploy(self.deployment_id, deploy.id)
        return None

    def _upload(self, deploy: Deploy, url: str | None, data: bytes) -> str:
        if not url:
            raise DeployRejectedError(
                f"The API created deploy {deploy.id} without an upload URL, so the files "
                "cannot be uploaded."
            )
        for signature in parse_qs(urlsplit(url).query).get("sig", []):
            self.runner.mask(signature)
        self.runner.info(f"Uploading {len(data)} bytes to {redact_url(url)}")
        return upload_blob(url, data, sleep=self.sleep, on_retry=self.runner.info)

    def _push(self, image: BuiltImage, deploy: Deploy) -> None:
        if not deploy.imageRepository or not deploy.imageTag:
            raise DeployRejectedError(
                f"The API created deploy {deploy.id} without an image repository and tag, so "
                "the image cannot be pushed."
            )
        self._image_builder().push(
            image,
            deploy.imageRepository,
            deploy.imageTag,
            token=self.inputs.api_token.get_secret_value(),
        )
        self.result.image = f"{deploy.imageRepository}:{deploy.imageTag}"
        self.runner.info(f"Pushed {self.result.image}.")

    # -- after a failed rollout ---------------------------------------------------------

    def _after_failed_rollout(
        self,
        rollout: Rollout,
        failure: RolloutError,
        deploy: Deploy,
        target: Deploy | None,
    ) -> None:
        if not self.inputs.rollback_on_failure:
            raise RolloutError(
                f"{failure.message} rollback-on-failure is false, so deploy {deploy.id} was "
                "left in place: check the Deployment in the Astro UI."
            ) from failure
        if target is None:
            raise RolloutError(
                f"{failure.message} A rollback was impossible: the Deployment has no earlier "
                "DEPLOYED deploy to return to."
            ) from failure
        description = self._with_run_url(
            f"ci-deploy: automatic rollback after deploy {deploy.id} failed"
        )
        try:
            outcome = rollout.roll_back(target, description)
        except RolloutError:
            raise
        except CiDeployError as exc:
            raise RolloutError(
                f"{failure.message} The automatic rollback to deploy {target.id} failed too: "
                f"{exc.message} Check the Deployment in the Astro UI.",
                title="Rollout failed and the rollback failed",
            ) from exc
        self.result.rolled_back = True
        self.result.rollback_deploy_id = outcome.deploy.id
        self.result.deployment_state = rollout.last_seen
        raise RolloutError(
            f"{failure.message} The Deployment was rolled back to deploy {target.id} "
            f"({commit_of(target)}) with rollback deploy {outcome.deploy.id}; "
            f"{outcome.summary}.",
            title="Rollout failed and was rolled back",
        ) from failure

    def _rollback_on_demand(self, client: AstroClient, history: Sequence[Deploy]) -> None:
        """``action: rollback``: return to ``rollback-to`` or the deploy before the running one."""
        inputs, result = self.inputs, self.result
        if inputs.rollback_to:
            matches = [d for d in history if d.id == inputs.rollback_to]
            if not matches or matches[0].status != "DEPLOYED":
                raise DeployRejectedError(
                    f"rollback-to '{inputs.rollback_to}' is not a DEPLOYED deploy of this "
                    "Deployment. Pick one from the Deployment's deploy history.",
                    title="Invalid input 'rollback-to'",
                )
            target: Deploy | None = matches[0]
        else:
            target = previous_deploy(history)
        if target is None:
            raise DeployRejectedError(
                "There is no earlier DEPLOYED deploy to roll back to.",
                title="Nothing to roll back to",
            )
        if inputs.dry_run:
            result.status = "planned"
            self.runner.notice(
                f"Dry run: would roll back to deploy {target.id} ({commit_of(target)}).",
                title="Rollback planned",
            )
            return
        rollout = self._rollout(client)
        outcome = rollout.roll_back(target, self._with_run_url("ci-deploy: rollback requested"))
        result.rolled_back = True
        result.rollback_deploy_id = outcome.deploy.id
        result.deploy_type = target.type
        result.deployment_state = rollout.last_seen
        if not outcome.healthy:
            raise RolloutError(f"Rolled back to deploy {target.id}, but {outcome.summary}.")
        result.status = "rolled-back"
        self.runner.notice(
            f"Rolled back to deploy {target.id} ({commit_of(target)}); {outcome.summary}.",
            title="Rolled back",
        )


def _dags_prefix(root_folder: str, dags_folder: str) -> str:
    """What turns a DAG tarball member (``dags/x.py``) into its repository path."""
    parent = "/".join(p for p in (root_folder, dags_folder) if p not in ("", "."))
    parent = parent.rsplit("/", 1)[0] if "/" in parent else ""
    return parent + "/" if parent else ""


def _default_image_builder(runner: Runner) -> ImageBuilder:
    return ImageBuilder(log=runner.info, group=runner.group)


@contextmanager
def _cancellable() -> Iterator[None]:
    """Turn SIGTERM and SIGINT (a cancelled workflow) into :class:`CancelledError`."""

    def cancel(signum: int, frame: FrameType | None) -> None:
        raise CancelledError(
            f"The run was cancelled ({signal.Signals(signum).name}) and stopped where it was.",
        )

    try:
        previous = {sig: signal.signal(sig, cancel) for sig in (signal.SIGTERM, signal.SIGINT)}
    except ValueError:  # not the main thread: no signal handling
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
