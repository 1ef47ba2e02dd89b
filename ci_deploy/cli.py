"""The ``ci-deploy`` command, and the action's entry point.

``ci-deploy`` (or ``ci-deploy deploy``) deploys, reading inputs from ``INPUT_*`` variables as
the GitHub runner sets them, or from ``--flags`` that override them. The API token is never a
flag: command lines are visible to other processes, so it comes from the ``api-token``
input or ``ASTRO_API_TOKEN``. ``ci-deploy emulator`` serves the local Astro emulator of the
separate ``ci-deploy-testkit`` package, when it is installed.

:func:`deploy` takes its collaborators (:class:`~ci_deploy.run.Dependencies`) as an
argument, so the whole action runs in process in the tests.

Exit codes: 0 deployed, skipped or planned; 1 failed (bad input included); 2 bad usage.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, TextIO

from ci_deploy import __version__, report
from ci_deploy.cancel import guarded, until_exit
from ci_deploy.errors import CiDeployError, ConfigError, InputError, unexpected_error
from ci_deploy.github import GitHubContext, load_context
from ci_deploy.input_rules import preview_env_values
from ci_deploy.inputs import (
    INPUTS,
    Inputs,
    is_default_config,
    load_inputs,
    raw_inputs,
    resolve_digitalocean_token,
    resolve_github_token,
    resolve_token,
)
from ci_deploy.preview import PULL_REQUEST_ACTIONS, fork_error, fork_of
from ci_deploy.result import Journal, RunResult, Subject, assemble
from ci_deploy.runner import Runner

if TYPE_CHECKING:
    from ci_deploy.github_side import GitHubSide
    from ci_deploy.run import Dependencies
    from ci_deploy.stages.prebuild import Prebuild
    from ci_deploy.timing import Timing

COMMANDS = ("deploy", "plan", "emulator")
SECRET = ("api-token", "github-token", "preview-env", "digitalocean-token")
"""Inputs that are never flags: command lines are visible to other processes."""


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run ``ci-deploy`` with ``argv`` (default: the process's) and return the exit code."""
    environ = dict(os.environ if environ is None else environ)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in (*COMMANDS, "-h", "--help", "--version"):
        args.insert(0, "deploy")
    parsed = _parser().parse_args(args)
    if parsed.command == "emulator":
        return _emulator(
            parsed.host,
            parsed.port,
            parsed.rollout_seconds,
            parsed.registry,
            parsed.airflow_version,
        )
    flags = {name: getattr(parsed, _dest(name), None) for name in INPUTS if name not in SECRET}
    if parsed.command == "plan":
        flags["dry-run"] = "true"
    with until_exit():  # no SIGTERM is lost before the run, nor kills it after the report
        return deploy(environ, flags)


def deploy(
    environ: Mapping[str, str],
    flags: Mapping[str, str | None],
    *,
    dependencies: Dependencies | None = None,
    stream: TextIO | None = None,
) -> int:
    """Deploy with inputs from ``environ`` and ``flags``; report through the runner.

    Returns the exit code: 0 deployed, skipped or planned; 1 failed.
    """
    with (
        guarded(),  # a second SIGTERM must not cut the outputs and the summary off
        ExitStack() as started,  # what the run starts early (a packing process) ends with it
    ):
        return _deploy(environ, flags, dependencies, Runner(environ, stream), started)


def _deploy(
    environ: Mapping[str, str],
    flags: Mapping[str, str | None],
    dependencies: Dependencies | None,
    runner: Runner,
    started: ExitStack,
) -> int:
    github: GitHubSide | None = None
    prebuild: Prebuild | None = None
    raw = raw_inputs(environ, flags)
    runner.mask(resolve_token(raw, environ))  # before anything else is printed
    runner.mask(resolve_github_token(raw, environ))
    runner.mask(resolve_digitalocean_token(raw, environ))
    for value in preview_env_values(raw.get("preview-env", "")):
        runner.mask(value)
    runner.info(f"ci-deploy {__version__}")
    context = GitHubContext()
    try:
        context = load_context(environ)
        fork = fork_of(context)
        if fork and raw.get("action", "").strip().lower() in PULL_REQUEST_ACTIONS:
            raise fork_error(fork)  # before the inputs: a fork's run has no token to check
        inputs = load_inputs(raw, environ)
        for warning in inputs.warnings:
            runner.warning(warning, title="Input adjusted")
        if dependencies is None:  # before any thread starts: the packing process is a fork
            prebuild = _start_prebuild(inputs, runner, started)
        # the run's code (git, HTTP, the platforms) is loaded only once the inputs are good,
        # while the TLS context of its API clients is made on a thread
        from ci_deploy import tls

        tls.prepare()
        # the real run's first API request goes out meanwhile (a deploy on Astro)
        timing = None if dependencies is not None else _start_early_read(inputs, runner)
        from ci_deploy.matrix import run_matrix
        from ci_deploy.run import Dependencies, run

        if timing is not None:
            dependencies = Dependencies(timing=timing)

        if inputs.action == "matrix":
            result = run_matrix(
                inputs, raw, environ, context, runner, dependencies or Dependencies()
            )
        else:
            inputs = _configured(inputs, raw, environ, runner)
            dependencies = dependencies or Dependencies()
            github = dependencies.github(inputs, context, runner, dependencies.timing)
            result = run(inputs, context, runner, dependencies, github=github, prebuild=prebuild)
    except InputError as exc:
        for problem in exc.problems:
            runner.error(problem.message, title=f"Invalid input '{problem.name}'")
        result = _failed(exc, raw)
    except ConfigError as exc:
        for found in exc.problems:
            where = f"{found.field}: " if found.field else ""
            runner.error(f"{where}{found.message}", title=f"Invalid {exc.path}", file=exc.path)
        result = _failed(exc, raw)
    except CiDeployError as exc:
        result = _failed(exc, raw)
    except Exception as exc:  # a bug: say so plainly, keep the traceback for debug logs
        runner.debug(traceback.format_exc())
        result = _failed(unexpected_error(exc), raw)
    code = _finish(runner, result, context)
    if github is not None:  # after the report: a slow GitHub must not delay or cut it off
        github.finished(result)
    return code


def _start_prebuild(inputs: Inputs, runner: Runner, started: ExitStack) -> Prebuild | None:
    """Start packing the DAG tarball in a process of its own (see
    :mod:`ci_deploy.stages.prebuild`), discarded by ``started`` when the run ends."""
    from ci_deploy.stages.prebuild import start_prebuild

    prebuild = start_prebuild(inputs, runner.environ)
    if prebuild is not None:
        started.callback(prebuild.discard)
    return prebuild


def _start_early_read(inputs: Inputs, runner: Runner) -> Timing:
    """Start the platform's first read (see :mod:`ci_deploy.astro.early`) with the run's
    timing, which is returned: the platform takes the read over when it connects."""
    from ci_deploy.astro import early
    from ci_deploy.timing import Timing

    timing = Timing()
    early.start(inputs, runner, timing)
    return timing


def _configured(
    inputs: Inputs, raw: Mapping[str, str], environ: Mapping[str, str], runner: Runner
) -> Inputs:
    """The inputs with the options of the Deployment's entry in the config file, when it has
    one: they fill the inputs the step left at their default. A file other than the default
    must exist (the runner passes the default as the input's value: it cannot be told from
    an input set to it)."""
    from ci_deploy.config import entry_inputs, from_entry, read_config

    config = read_config(
        inputs.config, inputs.workspace, required=not is_default_config(inputs.config)
    )
    entry = (
        None if config is None else config.entry_for(inputs.deployment_id, inputs.deployment_name)
    )
    if config is None or entry is None:
        return inputs
    taken = sorted(from_entry(raw, entry, config.base))
    runner.info(
        f"Options from {config.path} {entry.where}: {', '.join(taken) if taken else 'none'}"
        " (the step's own inputs, when not at their default, win)."
    )
    return entry_inputs(raw, entry, environ, config.path, base=config.base)


def _failed(error: CiDeployError, raw: Mapping[str, str]) -> RunResult:
    """The result of a run that failed before it started (``raw``: the inputs as given)."""
    journal = Journal()
    journal.add(Subject(raw.get("deployment-id", "").strip()))
    return assemble(journal, error, 0.0)


def _finish(runner: Runner, result: RunResult, context: GitHubContext) -> int:
    if result.error is not None and not isinstance(result.error, InputError | ConfigError):
        runner.error(report.failure_message(result), title=result.error.title)
    cut = report.changed_files_cut(result)
    if cut:
        runner.warning(cut, title="changed-files cut")
    runner.set_outputs(report.outputs(result))
    runner.append_summary(report.summary(result, context))
    return 1 if result.error is not None else 0


def _emulator(
    host: str, port: int, rollout_seconds: float, registry: str | None, airflow_version: str
) -> int:
    try:  # a separate package: the action's image does not have it
        emulator = importlib.import_module("ci_deploy_testkit.emulator")
    except ImportError:
        print(
            "ci-deploy emulator: the emulator is in the ci-deploy-testkit package, which is not "
            "installed. From a checkout of ci-deploy: pip install ./testkit (make demo does).",
            file=sys.stderr,
        )
        return 2
    return int(
        emulator.serve(
            host=host,
            port=port,
            rollout_seconds=rollout_seconds,
            registry=registry,
            airflow_version=airflow_version,
        )
    )


def _dest(name: str) -> str:
    return name.replace("-", "_")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ci-deploy",
        description="Deploy an Apache Airflow project to Astronomer's Astro.",
    )
    parser.add_argument("--version", action="version", version=f"ci-deploy {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    deploy_cmd = commands.add_parser(
        "deploy",
        help="deploy (the default command)",
        description="Deploy. Each flag overrides the INPUT_* variable of the same input; "
        "the token comes from INPUT_API-TOKEN or ASTRO_API_TOKEN (platform digitalocean: "
        "INPUT_DIGITALOCEAN-TOKEN or DIGITALOCEAN_TOKEN), never from a flag.",
    )
    plan_cmd = commands.add_parser(
        "plan",
        help="decide and report what would be deployed; create nothing (dry-run: true)",
        description="Read the Deployment and its history, compare commits, and print the "
        "plan: base, files by class, deploy type and reason. Nothing is created.",
    )
    for command in (deploy_cmd, plan_cmd):
        for name, default in INPUTS.items():
            if name in SECRET or (command is plan_cmd and name == "dry-run"):
                continue
            shown = f"default: {default!r}" if default else None
            command.add_argument(f"--{name}", dest=_dest(name), metavar="VALUE", help=shown)
    emulator_cmd = commands.add_parser("emulator", help="serve the local Astro emulator")
    emulator_cmd.add_argument("--host", default="127.0.0.1")
    emulator_cmd.add_argument("--port", type=int, default=8765)
    emulator_cmd.add_argument("--rollout-seconds", type=float, default=1.0)
    emulator_cmd.add_argument(
        "--registry",
        metavar="HOST:PORT",
        help="a real registry for image deploys: imageRepository points at it and a finalize "
        "needs the image there (user cli, the API token as password)",
    )
    emulator_cmd.add_argument(
        "--airflow-version",
        default="3.0.1",
        metavar="VERSION",
        help="the Deployments' Airflow: 2.x serves the Airflow API at /api/v1, 3.x at /api/v2",
    )
    return parser
