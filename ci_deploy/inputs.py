"""The action's inputs: raw texts from ``INPUT_*`` and flags -> one validated :class:`Inputs`.

:class:`Inputs` is the one place an input is declared: one field per input, in action.yml's
order, whose :class:`ActionInput` gives the input's name, its default (the text action.yml
shows) and its own rule. :data:`INPUTS` is derived from these fields. Adding an input is adding
one field, plus its entry in action.yml and its row in the README's Inputs table
(tests/test_action_yml.py keeps the three in step).

An input's own rule sees its own text and the run (workspace, token source), never another
input. The rules between inputs are all in :meth:`Inputs._validate`, which reads every input's
value after all were checked, so the order of the fields does not matter. A rule between
inputs is checked only when its inputs passed their own rules, so one cause gives one problem.

:func:`load_inputs` raises one :class:`~ci_deploy.errors.InputError` holding one
:class:`~ci_deploy.errors.InputProblem` per invalid input, in action.yml's order. Each message
completes the sentence "input 'NAME' ...": it says what is wrong and what is accepted. The API
token is kept in a :class:`~ci_deploy.secret.Secret` and never appears in a repr, a str or a
problem.

:class:`Inputs` is a frozen dataclass checked by these rules, not a pydantic model: importing
pydantic takes about 80 ms, which would come before the step could say anything, also before
it says that an input is wrong.
"""

# No ``from __future__ import annotations`` here: the fields' annotations are evaluated as the
# class is made, so _INPUT_FIELDS reads their ActionInputs without typing.get_type_hints
# (which would evaluate them again from text: about 2 ms of every start).
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, NamedTuple, get_args

from ci_deploy import input_rules as rules
from ci_deploy.astro.limits import DESCRIPTION_MAX
from ci_deploy.changeset import literal_glob
from ci_deploy.compression import DEFAULT_LEVEL
from ci_deploy.errors import InputError, InputProblem
from ci_deploy.input_rules import (
    DEFAULT_IGNORE_PATHS,
    DEPLOYMENT_NAME_MAX,
    DIGITALOCEAN_API_URL,
    DIGITALOCEAN_TOKEN_ENV,
    GITHUB_TOKEN_DEFAULT,
    MAX_WAIT_TIMEOUT,
    TOKEN_ENV,
    InvalidInput,
    Run,
    organization_from_token,
    parse_duration,
    shown,
)
from ci_deploy.secret import Secret
from ci_deploy.verification import SmokeDag

__all__ = [
    "ACTIONS",
    "DEFAULT_CONFIG",
    "DEFAULT_IGNORE_PATHS",
    "DEPLOYMENT_NAME_MAX",
    "DEPLOY_TYPES",
    "DESCRIPTION_MAX",
    "IMAGE_DEPLOY_TYPES",
    "INPUTS",
    "INPUT_RULES",
    "MAX_WAIT_TIMEOUT",
    "TOKEN_ENV",
    "Action",
    "ActionInput",
    "DeployType",
    "Inputs",
    "is_default_config",
    "load_inputs",
    "organization_from_token",
    "parse_duration",
    "raw_inputs",
    "resolve_digitalocean_token",
    "resolve_github_token",
    "resolve_token",
]

DEFAULT_CONFIG = ".astro/ci-deploy.yaml"


def is_default_config(path: str) -> bool:
    """Whether ``path`` names the default config file, at the workspace's root or in a folder
    of it (the reusable workflows check the caller's repository out in ``project/``): such a
    file may be absent."""
    return path == DEFAULT_CONFIG or path.endswith("/" + DEFAULT_CONFIG)


"""Where the config file of many Deployments is, unless the ``config`` input says."""

DeployType = Literal["infer", "dags-only", "image-and-dags", "image-only", "bundle"]
DEPLOY_TYPES: tuple[str, ...] = get_args(DeployType)
IMAGE_DEPLOY_TYPES: tuple[str, ...] = ("infer", "image-and-dags", "image-only")
"""The deploy types that may deploy an image, and so may take ``image-name``."""

Action = Literal[
    "deploy",
    "rollback",
    "matrix",
    "preview",
    "preview-delete",
    "preview-cleanup",
    "rollback-commit",
    "rollback-revert",
]
ACTIONS: tuple[str, ...] = get_args(Action)
PIN_ACTIONS: tuple[str, ...] = ("rollback-commit", "rollback-revert")
"""The actions that decide on an App Platform rollback that pinned the app."""

PlatformName = Literal["astro", "digitalocean"]
PLATFORMS: tuple[str, ...] = get_args(PlatformName)
RollbackPin = Literal["commit", "hold", "skip"]
ROLLBACK_PINS: tuple[str, ...] = get_args(RollbackPin)

ASTRO_ONLY: tuple[str, ...] = (
    "api-token",
    "organization-id",
    "deployment-id",
    "deployment-name",
    "workspace-id",
    "image-name",
    "bundle-type",
    "bundle-mount-path",
    "deploy-type",
    "wake-on-deploy",
    "dags-folder",
    "syntax-check",
    "compression-level",
    "check-import-errors",
    "smoke-dags",
    "smoke-timeout",
    "smoke-unpause",
)
"""Inputs that mean something only with platform: astro (rejected when given otherwise)."""
DIGITALOCEAN_ONLY: tuple[str, ...] = (
    "digitalocean-token",
    "app-id",
    "app-name",
    "app-spec",
    "rollback-pin",
    "docr-registry",
)
"""Inputs that mean something only with platform: digitalocean."""
DIGITALOCEAN_ACTIONS: tuple[str, ...] = (
    "deploy",
    "rollback",
    *PIN_ACTIONS,
    "preview",
    "preview-delete",
    "preview-cleanup",
)


class ActionInput(NamedTuple):
    """``Annotated`` metadata that makes a field of :class:`Inputs` an input of the action."""

    name: str
    """The input's name in action.yml."""
    default: str
    """The text action.yml shows as the default; a missing, empty or blank input takes it."""
    rule: rules.Rule
    """The input's own rule: its trimmed text and the run -> the field's value.

    It raises InvalidInput, whose message completes "input 'NAME' ...".
    """


@dataclass(frozen=True, slots=True)
class Inputs:
    """The validated inputs of one run. Paths are absolute; folders are POSIX and relative.

    Made by :func:`load_inputs` from ``raw``, which maps input names to raw texts, and
    ``environ``, which gives ``ASTRO_API_TOKEN`` and ``GITHUB_WORKSPACE``; an invalid input
    raises InputError. The fields hold what the rules made, and nothing checks them again.
    """

    # The inputs, in action.yml's order.
    api_token: Annotated[Secret, ActionInput("api-token", "", rules.token)]
    """The api-token input, else ``ASTRO_API_TOKEN``."""
    api_url: Annotated[str, ActionInput("api-url", "https://api.astronomer.io/v1", rules.url)]
    organization_id: Annotated[str, ActionInput("organization-id", "", rules.astro_id)]
    """The input, else read from the token's permissions."""
    deployment_id: Annotated[str, ActionInput("deployment-id", "", rules.astro_id)]
    """The Deployment's ID; empty when it is to be looked up by ``deployment_name``."""
    deployment_name: Annotated[str, ActionInput("deployment-name", "", rules.deployment_name)]
    """The Deployment's name, when ``deployment_id`` is empty; exactly one of them is set."""
    workspace_id: Annotated[str, ActionInput("workspace-id", "", rules.astro_id)]
    """Narrows the ``deployment_name`` lookup to one Workspace; empty for any."""
    action: Annotated[Action, ActionInput("action", "deploy", rules.one_of(ACTIONS))]
    rollback_to: Annotated[str, ActionInput("rollback-to", "", rules.deploy_id)]
    """The deploy ID to roll back to (``action: rollback`` only); empty for the default."""
    config: Annotated[str, ActionInput("config", DEFAULT_CONFIG, rules.config_file)]
    """The config file of many Deployments, relative to the workspace (see config.py)."""
    root_folder: Annotated[str, ActionInput("root-folder", ".", rules.root_folder)]
    """The root folder relative to the workspace, ``.`` for the workspace itself."""
    dags_folder: Annotated[str, ActionInput("dags-folder", "dags", rules.dags_folder)]
    """The DAG folder relative to the root folder."""
    deploy_type: Annotated[
        DeployType, ActionInput("deploy-type", "infer", rules.one_of(DEPLOY_TYPES))
    ]
    image_name: Annotated[str, ActionInput("image-name", "", rules.image_name)]
    """A local image reference built earlier in the workflow; empty to build the image."""
    bundle_type: Annotated[str, ActionInput("bundle-type", "", rules.bundle_type)]
    """Set exactly when ``deploy_type`` is ``bundle``, e.g. ``dbt``."""
    bundle_mount_path: Annotated[str, ActionInput("bundle-mount-path", "", rules.bundle_mount_path)]
    """Set exactly when ``deploy_type`` is ``bundle``: an absolute POSIX path."""
    compare_to: Annotated[str, ActionInput("compare-to", "auto", rules.compare_to)]
    """``auto``, ``deployed``, ``event``, or a commit SHA or ref."""
    dag_paths_input: Annotated[tuple[str, ...], ActionInput("dag-paths", "", rules.globs)]
    """The dag-paths input's globs; empty for its default, see :attr:`dag_paths`."""
    image_paths: Annotated[tuple[str, ...], ActionInput("image-paths", "", rules.globs)]
    """Globs relative to root-folder; the default is everything."""
    ignore_paths: Annotated[
        tuple[str, ...], ActionInput("ignore-paths", DEFAULT_IGNORE_PATHS, rules.globs)
    ]
    force: Annotated[bool, ActionInput("force", "false", rules.boolean)]
    description: Annotated[str, ActionInput("description", "", rules.description)]
    """Cut to the most the Astro API accepts, with a warning."""
    syntax_check: Annotated[bool, ActionInput("syntax-check", "true", rules.boolean)]
    compression_level: Annotated[
        int, ActionInput("compression-level", str(DEFAULT_LEVEL), rules.compression_level)
    ]
    """gzip's 0 (stored) to 9 (smallest) for the tarballs; see ci_deploy.compression."""
    wait: Annotated[bool, ActionInput("wait", "true", rules.boolean)]
    wait_timeout: Annotated[float, ActionInput("wait-timeout", "10m", rules.wait_timeout)]
    """Seconds."""
    wake_on_deploy: Annotated[bool, ActionInput("wake-on-deploy", "false", rules.boolean)]
    check_import_errors: Annotated[bool, ActionInput("check-import-errors", "true", rules.boolean)]
    rollback_on_failure: Annotated[bool, ActionInput("rollback-on-failure", "true", rules.boolean)]
    verify_window: Annotated[float, ActionInput("verify-window", "60s", rules.verify_window)]
    """Seconds the settle window watches a healthy rollout; 0: none."""
    smoke_dags: Annotated[tuple[SmokeDag, ...], ActionInput("smoke-dags", "", rules.smoke_dags)]
    """The DAGs whose runs are triggered and followed once the rollout settled."""
    smoke_timeout: Annotated[float, ActionInput("smoke-timeout", "10m", rules.wait_timeout)]
    """Seconds a smoke run may take."""
    smoke_unpause: Annotated[bool, ActionInput("smoke-unpause", "false", rules.boolean)]
    dry_run: Annotated[bool, ActionInput("dry-run", "false", rules.boolean)]
    github_token: Annotated[
        Secret, ActionInput("github-token", GITHUB_TOKEN_DEFAULT, rules.github_token)
    ]
    """The github-token input, else ``GITHUB_TOKEN``; empty when neither is set."""
    pr_comment: Annotated[bool, ActionInput("pr-comment", "true", rules.boolean)]
    environment: Annotated[str, ActionInput("environment", "", rules.github_environment)]
    """The GitHub environment a deploy is recorded in as a GitHub Deployment; "" for none."""
    preview_env: Annotated[
        tuple[tuple[str, Secret], ...], ActionInput("preview-env", "", rules.preview_env)
    ]
    """Secret variables of a preview (``action: preview``): (key, value) in the input's order."""
    open_pull_requests: Annotated[
        tuple[int, ...] | None,
        ActionInput("open-pull-requests", "", rules.pull_request_numbers),
    ]
    """The repository's open pull requests (``action: preview-cleanup``); None when not set."""
    platform: Annotated[PlatformName, ActionInput("platform", "astro", rules.one_of(PLATFORMS))]
    digitalocean_token: Annotated[
        Secret, ActionInput("digitalocean-token", "", rules.digitalocean_token)
    ]
    """The digitalocean-token input, else ``DIGITALOCEAN_TOKEN`` (platform: digitalocean)."""
    app_id: Annotated[str, ActionInput("app-id", "", rules.app_id)]
    app_name: Annotated[str, ActionInput("app-name", "", rules.app_name)]
    app_spec: Annotated[str, ActionInput("app-spec", ".do/app.yaml", rules.app_spec)]
    """The app spec, relative to root-folder; it may be absent (the app's own spec is kept)."""
    rollback_pin: Annotated[
        RollbackPin, ActionInput("rollback-pin", "commit", rules.one_of(ROLLBACK_PINS))
    ]
    docr_registry: Annotated[str, ActionInput("docr-registry", "", rules.docr_registry)]
    """The account's container registry, where an image component's image is pushed."""

    # Not inputs: computed by _validate.
    workspace: Path
    """``GITHUB_WORKSPACE``, else the current directory; resolved."""
    root_path: Path
    dags_path: Path
    warnings: tuple[str, ...]
    """Messages for warning annotations, e.g. that the description was cut."""

    @property
    def dag_paths(self) -> tuple[str, ...]:
        """Globs relative to root-folder; the default is the DAGs folder, taken literally.

        Escaped here, where change detection reads it, so pathspec (which escapes it) loads
        only when the globs are compiled.
        """
        return self.dag_paths_input or (f"{literal_glob(self.dags_folder)}/**",)

    @staticmethod
    def _validate(data: Mapping[str, str], environ: Mapping[str, str]) -> dict[str, Any]:
        """Check every input by its own rule, then the rules between inputs; add the rest.

        ``data`` maps input names to raw texts; ``environ`` is the environment. Returns the
        fields, by field name. Raises InputError with every problem found.
        """
        if (
            not isinstance(data, Mapping)
            or not all(isinstance(text, str) for text in data.values())
            or not isinstance(environ, Mapping)
        ):
            raise TypeError("Inputs are validated from texts by input name; see load_inputs")
        api_token = resolve_token(data, environ)
        run = Run(
            workspace=Path(environ.get("GITHUB_WORKSPACE") or os.getcwd()).resolve(),
            token_from_env=bool(api_token) and not data.get("api-token", "").strip(),
        )
        texts = {name: data.get(name, "").strip() or default for name, default in INPUTS.items()}
        texts["api-token"] = api_token
        texts["github-token"] = resolve_github_token(data, environ)
        digitalocean = texts["platform"].strip().lower() == "digitalocean"
        do_token = resolve_digitalocean_token(data, environ) if digitalocean else ""
        texts["digitalocean-token"] = do_token
        if digitalocean and not _given(data, "api-url"):
            texts["api-url"] = DIGITALOCEAN_API_URL
        values: dict[str, object] = {}  # by input name: every input that passed its own rule
        problems: dict[str, str] = {}  # by input name
        for spec in _INPUT_FIELDS.values():
            try:
                values[spec.name] = spec.rule(texts[spec.name], run)
            except InvalidInput as exc:
                problems[spec.name] = str(exc)

        # The rules between inputs, each checked only when its inputs passed their own rule.
        def valid(*names: str) -> bool:
            return all(name in values for name in names)

        if digitalocean:
            problems.update(_digitalocean_problems(data, values, problems, do_token))
        else:
            problems.update(_astro_only_problems(data, values))
        astro = not digitalocean
        if (
            astro
            and valid("deployment-id", "deployment-name", "action")
            and (values["action"] == "matrix")
        ):
            for name in ("deployment-id", "deployment-name"):
                if values[name]:
                    problems[name] = (
                        "is not used with action: matrix, which reads the Deployments from the"
                        " config file: remove it"
                    )
        elif astro and valid("deployment-id", "deployment-name"):
            if values["deployment-id"] and values["deployment-name"]:
                problems["deployment-name"] = (
                    "must not be set together with deployment-id: set only one of them"
                    " (deployment-id is the more precise)"
                )
            elif not values["deployment-id"] and not values["deployment-name"]:
                problems["deployment-id"] = (
                    "is required: set deployment-id or deployment-name to choose the Astro"
                    " Deployment to deploy to"
                )
        if (
            astro
            and valid("workspace-id", "deployment-name")
            and (values["workspace-id"] and not values["deployment-name"])
        ):
            problems["workspace-id"] = (
                "is only used with deployment-name, to narrow the search for the Deployment by"
                " name to one Workspace: set deployment-name or remove workspace-id"
            )
        if valid("rollback-to", "action") and (
            values["rollback-to"] and values["action"] != "rollback"
        ):
            problems["rollback-to"] = (
                "is only used with action: rollback; set action to rollback to roll back to"
                " this deploy, or remove rollback-to"
            )
        if valid("image-name", "deploy-type") and (
            values["image-name"] and values["deploy-type"] not in IMAGE_DEPLOY_TYPES
        ):
            problems["image-name"] = (
                f"is only used with deploy-type {', '.join(IMAGE_DEPLOY_TYPES[:-1])} or"
                f" {IMAGE_DEPLOY_TYPES[-1]}; deploy-type {values['deploy-type']} deploys no image"
            )
        for name, example in (
            ("bundle-type", "dbt"),
            ("bundle-mount-path", "/usr/local/airflow/dbt/my_project"),
        ):
            if not valid(name, "deploy-type"):
                continue
            if values["deploy-type"] == "bundle" and not values[name]:
                problems[name] = f"is required with deploy-type: bundle; set it, e.g. to {example}"
            elif values["deploy-type"] != "bundle" and values[name]:
                problems[name] = (
                    f"is only used with deploy-type: bundle; deploy-type is"
                    f" {values['deploy-type']}: remove {name} or set deploy-type to bundle"
                )
        if valid("preview-env", "action") and (
            values["preview-env"] and values["action"] != "preview"
        ):
            problems["preview-env"] = (
                "is only used with action: preview, to set the preview's secret variables;"
                " remove preview-env or set action to preview"
            )
        if valid("open-pull-requests", "action"):
            cleanup = values["action"] == "preview-cleanup"
            if not cleanup and values["open-pull-requests"] is not None:
                problems["open-pull-requests"] = (
                    "is only used with action: preview-cleanup; remove it or set action to"
                    " preview-cleanup"
                )
        if valid("smoke-dags", "wait") and values["smoke-dags"] and not values["wait"]:
            problems["smoke-dags"] = (
                "needs wait: true: smoke runs are triggered once the rollout is verified;"
                " set wait to true or remove smoke-dags"
            )
        if valid("root-folder", "dags-folder"):
            root_path = run.workspace / str(values["root-folder"])
            if not _stays_inside(root_path / str(values["dags-folder"]), root_path):
                problems["dags-folder"] = (
                    f"must stay inside root-folder; {shown(texts['dags-folder'])} is a symlink"
                    " that leads out of it"
                )
        if astro and valid("organization-id", "api-token") and not values["organization-id"]:
            organization = organization_from_token(api_token)
            if organization is None:
                problems["organization-id"] = (
                    "could not be read from the API token (it is not an Astro API token with an"
                    " organizationId permission): set the organization-id input"
                )
            else:
                values["organization-id"] = organization

        if problems:
            raise _input_error(problems, api_token, do_token) from None
        root_path = run.workspace / str(values["root-folder"])
        warnings = []
        if len(texts["description"]) > DESCRIPTION_MAX:
            warnings.append(
                f"The description is {len(texts['description'])} characters long; it was cut"
                f" to the first {DESCRIPTION_MAX}, the most the Astro API accepts."
            )
        return {field: values[spec.name] for field, spec in _INPUT_FIELDS.items()} | {
            "image_paths": values["image-paths"] or ("**",),
            "workspace": run.workspace,
            "root_path": root_path,
            "dags_path": root_path / str(values["dags-folder"]),
            "warnings": tuple(warnings),
        }


_INPUT_FIELDS: Mapping[str, ActionInput] = MappingProxyType(
    {
        field_name: spec
        for field_name, hint in Inputs.__annotations__.items()
        for spec in getattr(hint, "__metadata__", ())
        if isinstance(spec, ActionInput)
    }
)
"""The fields of :class:`Inputs` that are inputs, by field name, in action.yml's order."""

INPUT_RULES: Mapping[str, rules.Rule] = MappingProxyType(
    {spec.name: spec.rule for spec in _INPUT_FIELDS.values()}
)
"""Each input's own rule, by input name: what the config file's options are checked with."""

INPUTS: Mapping[str, str] = MappingProxyType(
    {spec.name: spec.default for spec in _INPUT_FIELDS.values()}
)
"""Every input of action.yml, in its order, with its default: derived from :class:`Inputs`."""


def load_inputs(raw: Mapping[str, str], environ: Mapping[str, str]) -> Inputs:
    """Validate every input; raise InputError with one problem per invalid input.

    ``raw`` maps input names to raw values (see :func:`raw_inputs`); a missing or empty value
    takes the default. ``environ`` gives ``ASTRO_API_TOKEN`` and ``GITHUB_WORKSPACE``.
    """
    return Inputs(**Inputs._validate(raw, environ))


def raw_inputs(
    environ: Mapping[str, str], flags: Mapping[str, str | None] | None = None
) -> dict[str, str]:
    """Return every input's raw value: ``INPUT_<NAME>`` overridden by the non-None ``flags``.

    ``flags`` are keyed by input name; an unknown name raises ValueError.
    """
    raw = {name: environ.get(f"INPUT_{name.upper()}", "") for name in INPUTS}
    for name, value in (flags or {}).items():
        if name not in INPUTS:
            raise ValueError(f"unknown input {name!r}")
        if value is not None:
            raw[name] = value
    return raw


def resolve_token(raw: Mapping[str, str], environ: Mapping[str, str]) -> str:
    """Return the API token: the ``api-token`` input, else ``ASTRO_API_TOKEN``; "" when none."""
    return raw.get("api-token", "").strip() or environ.get(TOKEN_ENV, "").strip()


def resolve_digitalocean_token(raw: Mapping[str, str], environ: Mapping[str, str]) -> str:
    """The DigitalOcean token: ``digitalocean-token``, else ``DIGITALOCEAN_TOKEN``; "" if none."""
    return (
        raw.get("digitalocean-token", "").strip() or environ.get(DIGITALOCEAN_TOKEN_ENV, "").strip()
    )


def _given(raw: Mapping[str, str], name: str) -> bool:
    """Whether input ``name`` was set to something other than its default (the runner
    passes every input, its default included)."""
    return raw.get(name, "").strip() not in ("", INPUTS[name])


def _astro_only_problems(raw: Mapping[str, str], values: Mapping[str, object]) -> dict[str, str]:
    """With platform: astro, the App Platform inputs and actions that were given."""
    problems = {
        name: "is only used with platform: digitalocean; remove it or set platform to digitalocean"
        for name in DIGITALOCEAN_ONLY
        if _given(raw, name)
    }
    if values.get("action") in PIN_ACTIONS:
        problems["action"] = (
            f"{values['action']} is only used with platform: digitalocean (an App Platform"
            " rollback pins the app); on Astro use action: rollback"
        )
    return problems


def _digitalocean_problems(
    raw: Mapping[str, str],
    values: dict[str, object],
    problems: dict[str, str],
    token: str,
) -> dict[str, str]:
    """With platform: digitalocean: the Astro inputs given, the app and the token; the
    Astro token's own problems dropped (App Platform does not use it)."""
    for name in ("api-token", "organization-id"):
        problems.pop(name, None)
    found = {
        name: "is only used with platform: astro; remove it (App Platform uses app-id or"
        " app-name and digitalocean-token)"
        for name in ASTRO_ONLY
        if _given(raw, name)
    }
    if values.get("action") not in (None, *DIGITALOCEAN_ACTIONS):
        found["action"] = (
            f"{values['action']} is not available with platform: digitalocean; use one of"
            f" {', '.join(DIGITALOCEAN_ACTIONS)}"
        )
    if not token:
        found["digitalocean-token"] = (
            f"is required with platform: digitalocean: set the digitalocean-token input or the"
            f" {DIGITALOCEAN_TOKEN_ENV} environment variable"
        )
    if "app-id" in values and "app-name" in values:
        if values["app-id"] and values["app-name"]:
            found["app-name"] = "must not be set together with app-id: set only one of them"
        elif not values["app-id"] and not values["app-name"]:
            found["app-id"] = (
                "is required with platform: digitalocean: set app-id or app-name to choose the"
                " app to deploy to"
            )
    values.setdefault("api-token", Secret(""))
    values.setdefault("organization-id", "")
    return found


def resolve_github_token(raw: Mapping[str, str], environ: Mapping[str, str]) -> str:
    """The GitHub token: the ``github-token`` input, else ``GITHUB_TOKEN``; "" when none.

    The runner expands action.yml's default, ``${{ github.token }}``; outside GitHub that
    text arrives unexpanded and counts as unset.
    """
    text = raw.get("github-token", "").strip()
    if text and text != GITHUB_TOKEN_DEFAULT:
        return text
    return environ.get("GITHUB_TOKEN", "").strip()


def _stays_inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is inside ``folder`` once symlinks are followed."""
    try:
        return path.resolve().is_relative_to(folder)
    except (OSError, RuntimeError):  # a symlink loop
        return False


def _input_error(problems: Mapping[str, str], *tokens: str) -> InputError:
    """One InputError with ``problems`` (by input name) in action.yml's order."""
    ordered = [InputProblem(name, problems[name]) for name in INPUTS if name in problems]
    for token in tokens:
        if len(token) >= 8:  # defence in depth: no message may show a token
            ordered = [InputProblem(p.name, p.message.replace(token, "***")) for p in ordered]
    return InputError(ordered)
