"""The config file of many Deployments (default ``.astro/ci-deploy.yaml``).

It maps Deployments to what feeds them: the branches they are deployed from, the Astro project
folder (monorepos hold several) and per-Deployment options, which are inputs of the action::

    deployments:
      - deployment-id: clmh57jtm000008lb58fe2wmv    # or deployment-name (+ workspace-id)
        branches: [main]                            # omitted: every branch
        root-folder: projects/sales
        deploy-type: dags-only                      # any of OPTION_INPUTS
        wait-timeout: 20m

:func:`parse_config` checks the file's shape with pydantic (:mod:`ci_deploy.config_shape`,
loaded only then) and every option with the same rule as the input of that name, and raises
one :class:`~ci_deploy.errors.ConfigError` holding one problem per bad field (its path, such as
``deployments[1].deploy-type``, and what is accepted). Which entries feed a branch, which
entry a Deployment has, and how an entry's options fill the step's inputs are pure functions
here; :func:`read_config` is the one read.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_deploy.errors import ConfigError, ConfigProblem, InputError
from ci_deploy.input_rules import InvalidInput, Run
from ci_deploy.inputs import INPUT_RULES, INPUTS, Inputs, is_default_config, load_inputs

OPTION_INPUTS: tuple[str, ...] = (
    "workspace-id",
    "root-folder",
    "dags-folder",
    "deploy-type",
    "image-name",
    "bundle-type",
    "bundle-mount-path",
    "compare-to",
    "dag-paths",
    "image-paths",
    "ignore-paths",
    "force",
    "description",
    "syntax-check",
    "wait",
    "wait-timeout",
    "wake-on-deploy",
    "check-import-errors",
    "rollback-on-failure",
    "verify-window",
    "smoke-dags",
    "smoke-timeout",
    "smoke-unpause",
)
"""The inputs an entry may set. Not the token, the API's URL and organization, the action,
``rollback-to``, ``dry-run`` nor ``config``: those belong to the step."""

CONFIG_MAX_BYTES = 1024 * 1024
"""The largest config file read."""


@dataclass(frozen=True)
class Entry:
    """One Deployment of the config file and what feeds it."""

    index: int
    """Its place in ``deployments``, from 0."""
    deployment_id: str = ""
    deployment_name: str = ""
    branches: tuple[str, ...] = ()
    """Branch names (``*`` and ``?`` as in shell patterns); empty: every branch."""
    options: Mapping[str, str] = field(default_factory=dict)
    """Input texts by input name, root-folder included when set (relative to the repository
    holding the file, as written)."""

    @property
    def where(self) -> str:
        """The entry's place in the file, as a problem names it."""
        return f"deployments[{self.index}]"

    @property
    def label(self) -> str:
        """How the log names the entry: its Deployment and project folder."""
        who = self.deployment_id or f"named {self.deployment_name!r}"
        return f"Deployment {who} ({self.options.get('root-folder', '.')})"

    def feeds(self, branch: str) -> bool:
        """Whether a commit on ``branch`` is for this Deployment ("" matches no branch list)."""
        if not self.branches:
            return True
        return bool(branch) and any(fnmatch.fnmatchcase(branch, p) for p in self.branches)


@dataclass(frozen=True)
class Config:
    """The validated config file: ``path`` as the user named it, its entries in order."""

    path: str
    entries: tuple[Entry, ...]
    base: str = "."
    """The repository holding the file, relative to the workspace ("." when it is the
    workspace): the entries' ``root-folder`` are relative to it (the reusable workflows check
    the caller's repository out in ``project/``)."""

    def entry_for(self, deployment_id: str, deployment_name: str) -> Entry | None:
        """The entry of the Deployment with this id or name, or None."""
        for entry in self.entries:
            if (deployment_id and entry.deployment_id == deployment_id) or (
                deployment_name and entry.deployment_name == deployment_name
            ):
                return entry
        return None

    def for_branch(self, branch: str) -> tuple[Entry, ...]:
        """The entries a commit on ``branch`` feeds, in file order."""
        return tuple(entry for entry in self.entries if entry.feeds(branch))


def option_text(value: object) -> str:
    """An option's YAML value as the input's text: booleans lower-case, lists one per line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "\n".join(str(item) for item in value)
    return str(value)


def parse_config(text: str, path: str, workspace: Path, base: str = ".") -> Config:
    """Validate the config file's ``text`` (``path`` names it in problems); pure but for the
    folder checks of ``root-folder`` inside ``workspace`` / ``base`` (the repository holding
    the file). Raises ConfigError."""
    import yaml  # on first use: a run without a config file never loads it

    try:
        data: object = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        what = getattr(exc, "problem", None) or "cannot be parsed"
        raise ConfigError(
            path, [ConfigProblem("", f"{where}is not valid YAML ({what}); fix the file's syntax")]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            path,
            [ConfigProblem("", "must be a mapping with one field, deployments: a list of entries")],
        )
    from ci_deploy import config_shape  # pydantic, on first use: most runs have no file

    listed, problems = config_shape.deployments(data)
    if problems:
        raise ConfigError(path, problems)
    entries: list[Entry] = []
    run = Run(workspace=workspace / base, token_from_env=False)
    for index, raw in enumerate(listed):
        fields, found = config_shape.entry(raw, f"deployments[{index}]")
        problems += found
        if fields is None:
            continue
        entry, found = _entry(index, fields, run)
        problems += found
        if entry is not None:
            problems += _duplicate(entry, entries)
            entries.append(entry)
    if problems:
        raise ConfigError(path, problems)
    return Config(path, tuple(entries), base)


def _entry(
    index: int, data: Mapping[str, Any], run: Run
) -> tuple[Entry | None, list[ConfigProblem]]:
    where = f"deployments[{index}]"
    problems: list[ConfigProblem] = []
    options: dict[str, str] = {}
    for name in OPTION_INPUTS:
        if data.get(name) is None:
            continue
        text = option_text(data[name]).strip()
        try:
            INPUT_RULES[name](text, run)
        except InvalidInput as exc:
            problems.append(ConfigProblem(f"{where}.{name}", str(exc)))
        options[name] = text
    deployment_id, name = data["deployment-id"].strip(), data["deployment-name"].strip()
    for key, value in (("deployment-id", deployment_id), ("deployment-name", name)):
        try:
            INPUT_RULES[key](value, run)
        except InvalidInput as exc:
            problems.append(ConfigProblem(f"{where}.{key}", str(exc)))
    if bool(deployment_id) == bool(name):
        problems.append(
            ConfigProblem(
                where,
                "must name its Deployment with deployment-id or deployment-name (exactly one of"
                " them)",
            )
        )
    if options.get("workspace-id") and not name:
        problems.append(
            ConfigProblem(f"{where}.workspace-id", "is only used with deployment-name: remove it")
        )
    branches = data["branches"]
    listed = tuple(b.strip() for b in ([branches] if isinstance(branches, str) else branches))
    if any(not branch for branch in listed):
        problems.append(
            ConfigProblem(f"{where}.branches", "must list branch names such as main; got ''")
        )
    if problems:
        return None, problems
    return Entry(index, deployment_id, name, listed, options), []


def _duplicate(entry: Entry, earlier: list[Entry]) -> list[ConfigProblem]:
    for other in earlier:
        if (entry.deployment_id, entry.deployment_name) == (
            other.deployment_id,
            other.deployment_name,
        ):
            who = entry.deployment_id or entry.deployment_name
            return [
                ConfigProblem(
                    entry.where,
                    f"names Deployment {who!r} again ({other.where} does): each Deployment has"
                    " one entry; list all its branches in that entry's branches",
                )
            ]
    return []


def read_config(
    config: str, workspace: Path, *, required: bool, action: str = "deploy"
) -> Config | None:
    """Read and validate the config file ``config`` (relative to ``workspace``).

    A missing file is None when not ``required`` (the default path, with a deploy or a
    rollback), else a ConfigError saying what to do.
    """
    path = workspace / config
    try:
        data = path.read_bytes()[: CONFIG_MAX_BYTES + 1]
    except FileNotFoundError:
        if not required:
            return None
        why = (
            f"action: {action} reads the Deployments from it"
            if action == "matrix"
            else "the config input names it (only a file named .astro/ci-deploy.yaml may be absent)"
        )
        hint = " (the config input's default)" if is_default_config(config) else ""
        raise ConfigError(
            config,
            [
                ConfigProblem(
                    "",
                    f"the file does not exist{hint}, and {why}: add it (see the README's"
                    " 'Many Deployments from one repository') or set the config input to it",
                )
            ],
        ) from None
    except OSError as exc:
        raise ConfigError(
            config, [ConfigProblem("", f"the file cannot be read ({exc.strerror})")]
        ) from None
    if len(data) > CONFIG_MAX_BYTES:
        raise ConfigError(
            config, [ConfigProblem("", f"the file is larger than {CONFIG_MAX_BYTES} bytes")]
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(config, [ConfigProblem("", "the file is not UTF-8 text")]) from None
    return parse_config(text, config, workspace, repository_base(workspace, config))


def repository_base(workspace: Path, config: str) -> str:
    """The repository holding the config file, relative to ``workspace``: the nearest folder
    above the file with a ``.git`` in it, up to the workspace ("." when none below it)."""
    folder = (workspace / config).parent
    while folder != workspace and workspace in folder.parents:
        if (folder / ".git").exists():
            return folder.relative_to(workspace).as_posix()
        folder = folder.parent
    return "."


def _unset(raw: Mapping[str, str], name: str, base: str = ".") -> bool:
    """Whether the step left input ``name`` at its default: empty, or the default's text (the
    runner passes every input's default from action.yml, so the two cannot be told apart); a
    ``root-folder`` at the config file's repository (``base``) counts as its default too."""
    text = raw.get(name, "").strip()
    if name == "root-folder" and text and posixpath.normpath(text) == posixpath.normpath(base):
        return True
    return not text or text == INPUTS.get(name)


def filled(raw: Mapping[str, str], entry: Entry, base: str = ".") -> dict[str, str]:
    """The step's raw inputs with the entry's options in those the step left at their default."""
    taken = from_entry(raw, entry, base)
    options = dict(entry.options)
    if "root-folder" in options:  # relative to the repository; the input, to the workspace
        options["root-folder"] = posixpath.normpath(posixpath.join(base, options["root-folder"]))
    return {
        name: options[name] if name in taken else text
        for name, text in {**dict.fromkeys(taken, ""), **raw}.items()
    }


def from_entry(raw: Mapping[str, str], entry: Entry, base: str = ".") -> frozenset[str]:
    """The inputs whose value :func:`filled` takes from ``entry``."""
    return frozenset(name for name in entry.options if _unset(raw, name, base))


def entry_inputs(
    raw: Mapping[str, str],
    entry: Entry,
    environ: Mapping[str, str],
    config: str,
    fixed: Mapping[str, str] | None = None,
    base: str = ".",
) -> Inputs:
    """The inputs of a run for ``entry``: the step's ``raw`` inputs, the entry's options in
    those the step left at their default, then ``fixed``. A problem with an input the entry set is a
    ConfigError naming the entry's field; one with the step's own an InputError."""
    taken = from_entry(raw, entry, base)
    try:
        return load_inputs({**filled(raw, entry, base), **(fixed or {})}, environ)
    except InputError as exc:
        if not any(p.name in taken for p in exc.problems):
            raise
        raise ConfigError(
            config,
            [
                ConfigProblem(
                    f"{entry.where}.{p.name}" if p.name in taken else entry.where,
                    p.message
                    if p.name in taken
                    else f"with the step's input {p.name}: " + p.message,
                )
                for p in exc.problems
            ],
        ) from None
