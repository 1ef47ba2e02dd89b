"""``action: matrix``: the config file's Deployments whose inputs changed, for ``strategy.matrix``.

For each entry of the config file (:mod:`ci_deploy.config`) whose branches take the event's
branch, the entry's deploy is planned exactly as its deploy job will plan it: a dry run
(:func:`ci_deploy.run.run` with ``dry-run: true``) with the step's inputs and the entry's
options, so the base is that Deployment's own (``compare-to``, by default the commit the
Deployment runs, else the event's base) and the same rules say deploy or skip. A dry run
reads the Deployment and its history and creates nothing. The entries whose plan is a
deploy form the ``matrix`` output; GitHub's own matrix then runs their deploys in parallel.
"""

from __future__ import annotations

from collections.abc import Mapping

from ci_deploy.config import Config, Entry, entry_inputs, read_config
from ci_deploy.errors import CiDeployError, ConfigError, ConfigProblem
from ci_deploy.github import GitHubContext
from ci_deploy.inputs import Inputs
from ci_deploy.plan import Operation
from ci_deploy.result import Journal, MatrixEntry, RunResult, Selected, Subject, assemble
from ci_deploy.run import Dependencies, run
from ci_deploy.runner import Runner


def event_branch(context: GitHubContext) -> str:
    """The branch the event's commits are for: a pull request's base (the branch it merges
    into), else the pushed or dispatched branch; "" for a tag or no ref."""
    if context.is_pull_request:
        base = context.event.get("pull_request")
        ref = base.get("base", {}).get("ref") if isinstance(base, Mapping) else None
        return ref if isinstance(ref, str) else ""
    return context.ref.removeprefix("refs/heads/") if context.ref.startswith("refs/heads/") else ""


def include(entry: Entry) -> dict[str, str]:
    """The entry's ``include`` entry: its Deployment (both keys, one empty), a ``deployment``
    to show in job names, ``root-folder`` and the entry's other options, as input texts."""
    return {
        "deployment": entry.deployment_id or entry.deployment_name,
        "deployment-id": entry.deployment_id,
        "deployment-name": entry.deployment_name,
        "root-folder": ".",
        **entry.options,
    }


def run_matrix(
    inputs: Inputs,
    raw: Mapping[str, str],
    environ: Mapping[str, str],
    context: GitHubContext,
    runner: Runner,
    dependencies: Dependencies,
) -> RunResult:
    """Decide, for each Deployment of the config file, whether this event changed its inputs.

    A config file that is missing or bad raises ConfigError before any API call; a
    Deployment whose plan could not be made (not found, API down) fails the run, naming it,
    after the others were decided.
    """
    started = dependencies.timing.clock()
    config = read_config(inputs.config, inputs.workspace, required=True, action="matrix")
    assert config is not None
    branch = event_branch(context)
    planned = _entries_inputs(config, config.for_branch(branch), raw, environ)
    runner.info(
        f"{config.path}: {len(config.entries)} Deployments, {len(planned)} deployed from"
        f" {f'branch {branch}' if branch else 'this ref (no branch)'}."
    )
    decided: list[MatrixEntry] = []
    failed: list[str] = []
    for entry in config.entries:
        entry_run = planned.get(entry.index)
        if entry_run is None:
            where = ", ".join(entry.branches)
            decided.append(
                MatrixEntry(include(entry), entry.label, f"deployed from {where} only", False)
            )
            continue
        runner.info(f"{entry.label}: planning its deploy (a dry run: nothing is created).")
        result = run(entry_run, context, runner, dependencies)
        plan = result.plan
        if result.error is not None or plan is None:
            why = result.error.message if result.error is not None else "no plan was made"
            failed.append(f"{entry.label}: {why}")
            decided.append(MatrixEntry(include(entry), entry.label, f"not decided: {why}", False))
        elif plan.operation is Operation.DEPLOY:
            decision = f"deploy {plan.kind}: {plan.reason}"
            decided.append(MatrixEntry(include(entry), entry.label, decision, True))
        else:
            decided.append(MatrixEntry(include(entry), entry.label, f"skip: {plan.reason}", False))
    journal = Journal()
    journal.add(Subject(""))
    journal.add(Selected(config.path, branch, tuple(decided)))
    chosen = [entry.label for entry in decided if entry.selected]
    runner.info(f"In the matrix: {', '.join(chosen) if chosen else 'no Deployment'}.")
    error = None
    if failed:
        error = CiDeployError(
            f"Whether {len(failed)} Deployment(s) changed could not be decided, so the matrix"
            f" may miss them: {'; '.join(failed)}. Fix what is named and run the workflow again.",
            title="Matrix incomplete",
        )
    return assemble(journal, error, dependencies.timing.clock() - started)


def _entries_inputs(
    config: Config, entries: tuple[Entry, ...], raw: Mapping[str, str], environ: Mapping[str, str]
) -> dict[int, Inputs]:
    """The dry-run inputs of each entry, by its index; every problem of every entry at once."""
    planned: dict[int, Inputs] = {}
    problems: list[ConfigProblem] = []
    for entry in entries:
        fixed = {
            "action": "deploy",
            "dry-run": "true",
            "pr-comment": "false",  # an entry's plan is no Deployment's comment
            "environment": "",
            "deployment-id": entry.deployment_id,
            "deployment-name": entry.deployment_name,
        }
        try:
            planned[entry.index] = entry_inputs(
                raw, entry, environ, config.path, fixed, base=config.base
            )
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(config.path, problems)
    return planned
