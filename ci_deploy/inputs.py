"""The action's inputs: raw strings from ``INPUT_*`` and flags -> one validated :class:`Inputs`.

:func:`load_inputs` checks every input and raises one :class:`~ci_deploy.errors.InputError`
holding one :class:`~ci_deploy.errors.InputProblem` per invalid input. Each problem message
completes the sentence "input 'NAME' ...": it says what is wrong and what is accepted. The API
token is kept in a :class:`pydantic.SecretStr` and never appears in a repr, a str or a problem.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import os
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, NamedTuple, cast, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from ci_deploy.astro.wire import DESCRIPTION_MAX
from ci_deploy.changeset import glob_problem
from ci_deploy.errors import InputError, InputProblem

__all__ = [
    "ACTIONS",
    "DEPLOYMENT_NAME_MAX",
    "DEPLOY_TYPES",
    "DESCRIPTION_MAX",
    "IMAGE_DEPLOY_TYPES",
    "INPUTS",
    "MAX_WAIT_TIMEOUT",
    "Action",
    "DeployType",
    "Inputs",
    "load_inputs",
    "organization_from_token",
    "parse_duration",
    "raw_inputs",
    "resolve_token",
]

DEFAULT_IGNORE_PATHS = "**/*.md, .github/**, tests/**, .astro/test_*"
"""Changes that never need a deploy, as gitignore-style globs relative to root-folder."""

COMPARE_MODES: tuple[str, ...] = ("auto", "deployed", "event")

INPUTS: dict[str, str] = {
    "api-token": "",
    "api-url": "https://api.astronomer.io/v1",
    "organization-id": "",
    "deployment-id": "",
    "deployment-name": "",
    "workspace-id": "",
    "action": "deploy",
    "rollback-to": "",
    "root-folder": ".",
    "dags-folder": "dags",
    "deploy-type": "infer",
    "image-name": "",
    "bundle-type": "",
    "bundle-mount-path": "",
    "compare-to": "auto",
    "dag-paths": "",
    "image-paths": "",
    "ignore-paths": DEFAULT_IGNORE_PATHS,
    "force": "false",
    "description": "",
    "syntax-check": "true",
    "wait": "true",
    "wait-timeout": "10m",
    "wake-on-deploy": "false",
    "check-import-errors": "true",
    "rollback-on-failure": "true",
    "dry-run": "false",
}
"""Every input of action.yml, in its order, with its default."""

DeployType = Literal["infer", "dags-only", "image-and-dags", "image-only", "bundle"]
DEPLOY_TYPES: tuple[str, ...] = get_args(DeployType)
IMAGE_DEPLOY_TYPES: tuple[str, ...] = ("infer", "image-and-dags", "image-only")
"""The deploy types that may deploy an image, and so may take ``image-name``."""

Action = Literal["deploy", "rollback"]
ACTIONS: tuple[str, ...] = get_args(Action)

DEPLOYMENT_NAME_MAX = 256
"""The longest ``deployment-name``, in characters."""

MAX_WAIT_TIMEOUT = 6 * 3600
"""The longest ``wait-timeout``, in seconds."""

TOKEN_ENV = "ASTRO_API_TOKEN"  # noqa: S105 - a variable name, not a secret

_DURATION = re.compile(r"([0-9]+)([smh]?)", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")
_ID_FORBIDDEN = re.compile(r"[\s/\\?#%\x00-\x1f\x7f]")
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")
_PROBLEM = "ci_deploy_input"
_REV = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}")
_BUNDLE_TYPE = re.compile(r"[a-z0-9_-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# A docker image reference, after the grammar of github.com/distribution/reference:
# [registry[:port]/]name-component[/name-component...][:tag][@sha256:hex]
_REGISTRY_PART = r"(?:[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9])"
_REGISTRY = rf"{_REGISTRY_PART}(?:\.{_REGISTRY_PART})*(?::[0-9]+)?"
_NAME_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REFERENCE = re.compile(
    rf"(?:(?P<registry>{_REGISTRY})/)?(?P<name>{_NAME_PART}(?:/{_NAME_PART})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?"
)
_IMAGE_NAME_MAX = 255  # the longest repository name (registry and path) docker accepts


class Inputs(BaseModel):
    """The validated inputs of one run. Paths are absolute; folders are POSIX and relative."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    api_token: SecretStr
    api_url: str
    organization_id: str
    deployment_id: str
    """The Deployment's ID; empty when it is to be looked up by ``deployment_name``."""
    workspace: Path
    root_folder: str
    """The root folder relative to the workspace, ``.`` for the workspace itself."""
    root_path: Path
    dags_folder: str
    """The DAG folder relative to the root folder."""
    dags_path: Path
    deploy_type: DeployType
    compare_to: str
    """``auto``, ``deployed``, ``event``, or a commit SHA or ref."""
    dag_paths: tuple[str, ...]
    """Globs relative to root-folder; the default is the DAGs folder."""
    image_paths: tuple[str, ...]
    ignore_paths: tuple[str, ...]
    force: bool
    description: str
    wait: bool
    wait_timeout: float
    """Seconds."""
    rollback_on_failure: bool
    dry_run: bool
    warnings: tuple[str, ...] = ()
    """Messages for warning annotations, e.g. that the description was cut."""
    # The fields below have defaults so that tests elsewhere can build Inputs without them.
    action: Action = "deploy"
    rollback_to: str = ""
    """The deploy ID to roll back to (``action: rollback`` only); empty for the default."""
    deployment_name: str = ""
    """The Deployment's name, when ``deployment_id`` is empty; exactly one of them is set."""
    workspace_id: str = ""
    """Narrows the ``deployment_name`` lookup to one Workspace; empty for any."""
    image_name: str = ""
    """A local image reference built earlier in the workflow; empty to build the image."""
    bundle_type: str = ""
    """Set exactly when ``deploy_type`` is ``bundle``, e.g. ``dbt``."""
    bundle_mount_path: str = ""
    """Set exactly when ``deploy_type`` is ``bundle``: an absolute POSIX path."""
    syntax_check: bool = True
    wake_on_deploy: bool = False
    check_import_errors: bool = True


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


def parse_duration(text: str) -> float:
    """Return the seconds of ``90``, ``90s``, ``5m`` or ``1h`` (more than 0, at most 6h).

    Raises ValueError whose message completes "wait-timeout ...".
    """
    value = text.strip()
    match = _DURATION.fullmatch(value)
    if match is None:
        raise ValueError(f"must be a duration such as 90, 90s, 5m or 1h; got {_shown(value)}")
    digits = match.group(1).lstrip("0")
    too_long = f"must be at most 6h ({MAX_WAIT_TIMEOUT} seconds); got {_shown(value)}"
    if len(digits) > 9:
        raise ValueError(too_long)
    seconds = int(digits or "0") * _UNIT_SECONDS[match.group(2).lower()]
    if seconds == 0:
        raise ValueError(f"must be more than 0 seconds; got {_shown(value)}")
    if seconds > MAX_WAIT_TIMEOUT:
        raise ValueError(too_long)
    return float(seconds)


def organization_from_token(token: str) -> str | None:
    """Return the organization ID in a JWT's ``permissions`` claim, or None.

    The signature is not verified: the API does that. Any malformed token gives None.
    """
    parts = token.strip().split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims: object = json.loads(data)
    except (ValueError, binascii.Error, RecursionError):
        return None
    if not isinstance(claims, dict):
        return None
    permissions = claims.get("permissions")
    if not isinstance(permissions, list):
        return None
    for entry in permissions:
        if isinstance(entry, str) and entry.startswith("organizationId:"):
            organization = entry.removeprefix("organizationId:").strip()
            if organization and _id_problem(organization) is None:
                return organization
    return None


def load_inputs(raw: Mapping[str, str], environ: Mapping[str, str]) -> Inputs:
    """Validate every input; raise InputError with one problem per invalid input.

    ``raw`` maps input names to raw values (see :func:`raw_inputs`); a missing or empty value
    takes the default. ``environ`` gives ``ASTRO_API_TOKEN`` and ``GITHUB_WORKSPACE``.
    """
    values = {name: raw.get(name, "").strip() or default for name, default in INPUTS.items()}
    values["api-token"] = resolve_token(raw, environ)
    from_env = not raw.get("api-token", "").strip() and bool(values["api-token"])
    workspace = Path(environ.get("GITHUB_WORKSPACE") or os.getcwd()).resolve()
    context = _Context(workspace=workspace, token_from_env=from_env, values=values)
    try:
        parsed = _Parsed.model_validate(values, context=context)
    except ValidationError as exc:
        problems = [
            _problem_of(error) for error in exc.errors(include_url=False, include_input=False)
        ]
        token = values["api-token"]
        if len(token) >= 8:  # defence in depth: no message may show the token
            problems = [InputProblem(p.name, p.message.replace(token, "***")) for p in problems]
        order = list(INPUTS)
        problems.sort(key=lambda p: order.index(p.name) if p.name in order else len(order))
        raise InputError(problems) from None

    warnings: list[str] = []
    if len(values["description"]) > DESCRIPTION_MAX:
        warnings.append(
            f"The description is {len(values['description'])} characters long; it was cut to"
            f" the first {DESCRIPTION_MAX}, the most the Astro API accepts."
        )
    root_relative, root_path = parsed.root_folder
    return Inputs(
        api_token=parsed.api_token,
        api_url=parsed.api_url,
        organization_id=parsed.organization_id,
        deployment_id=parsed.deployment_id,
        workspace=workspace,
        root_folder=root_relative,
        root_path=root_path,
        dags_folder=parsed.dags_folder,
        dags_path=root_path / parsed.dags_folder,
        deploy_type=parsed.deploy_type,
        compare_to=parsed.compare_to,
        dag_paths=parsed.dag_paths or (f"{parsed.dags_folder}/**",),
        image_paths=parsed.image_paths or ("**",),
        ignore_paths=parsed.ignore_paths,
        force=parsed.force,
        description=parsed.description,
        wait=parsed.wait,
        wait_timeout=parsed.wait_timeout,
        rollback_on_failure=parsed.rollback_on_failure,
        dry_run=parsed.dry_run,
        warnings=tuple(warnings),
        action=parsed.action,
        rollback_to=parsed.rollback_to,
        deployment_name=parsed.deployment_name,
        workspace_id=parsed.workspace_id,
        image_name=parsed.image_name,
        bundle_type=parsed.bundle_type,
        bundle_mount_path=parsed.bundle_mount_path,
        syntax_check=parsed.syntax_check,
        wake_on_deploy=parsed.wake_on_deploy,
        check_import_errors=parsed.check_import_errors,
    )


# --- validation -----------------------------------------------------------------------------


class _Context(NamedTuple):
    workspace: Path
    token_from_env: bool
    values: Mapping[str, str]
    """Every input's trimmed value (or default), for a rule that looks at a later input."""


class _Root(NamedTuple):
    relative: str
    path: Path


def _fail(message: str) -> PydanticCustomError:
    """A validation error whose message is exactly ``message``."""
    return PydanticCustomError(_PROBLEM, "{message}", {"message": message})


def _problem_of(error: Mapping[str, object]) -> InputProblem:
    """Map one pydantic error to our problem, never showing pydantic's format or the input."""
    loc = cast(tuple[object, ...], error.get("loc", ()))
    name = str(loc[0]) if loc else "inputs"
    if error.get("type") == _PROBLEM:
        return InputProblem(name, str(error.get("msg", "")))
    return InputProblem(name, "is not valid")


def _shown(value: str, limit: int = 80) -> str:
    """The value quoted for a message, cut when long; control characters stay visible."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise _fail("must be a string")
    return value


def _id_problem(value: str) -> str | None:
    if _ID_FORBIDDEN.search(value):
        return (
            "must be an Astro ID without whitespace or the characters / \\ ? # %;"
            f" got {_shown(value)}"
        )
    return None


def _context(info: ValidationInfo) -> _Context:
    context = info.context
    if not isinstance(context, _Context):
        raise TypeError("_Parsed needs a _Context")
    return context


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _repository(match: re.Match[str]) -> str:
    """The registry and name of a matched image reference, without tag and digest."""
    registry = match["registry"]
    return f"{registry}/{match['name']}" if registry else match["name"]


def _bundle_input_given(value: str, info: ValidationInfo) -> bool:
    """Whether bundle-type or bundle-mount-path (``value``) is to be checked.

    Both are required with ``deploy-type: bundle`` and refused with any other type; when
    deploy-type itself is invalid only the value's own rules apply.
    """
    name = "bundle-type" if info.field_name == "bundle_type" else "bundle-mount-path"
    deploy_type = info.data.get("deploy_type")
    if deploy_type == "bundle" and not value:
        example = "dbt" if name == "bundle-type" else "/usr/local/airflow/dbt/my_project"
        raise _fail(f"is required with deploy-type: bundle; set it, e.g. to {example}")
    if deploy_type not in (None, "bundle") and value:
        raise _fail(
            f"is only used with deploy-type: bundle; deploy-type is {deploy_type}:"
            f" remove {name} or set deploy-type to bundle"
        )
    return bool(value)


def _one_of(value: object, choices: tuple[str, ...]) -> str:
    """``value`` trimmed and lower-cased, which must be one of ``choices``."""
    text = _text(value).strip()
    if text.lower() not in choices:
        raise _fail(f"must be one of {', '.join(choices)}; got {_shown(text)}")
    return text.lower()


def _parse_bool(value: object) -> bool:
    text = _text(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise _fail(f"must be true or false, got {_shown(_text(value).strip())}")


class _Parsed(BaseModel):
    """The inputs parsed one field at a time; pydantic collects every field's error."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    # Fields in INPUTS order: later validators read earlier results from info.data; an
    # earlier one that depends on a later input (deployment-id on deployment-name) reads the
    # trimmed raw value from the context.
    api_token: SecretStr = Field(alias="api-token")
    api_url: str = Field(alias="api-url")
    organization_id: str = Field(alias="organization-id")
    deployment_id: str = Field(alias="deployment-id")
    deployment_name: str = Field(alias="deployment-name")
    workspace_id: str = Field(alias="workspace-id")
    action: Action = Field(alias="action")
    rollback_to: str = Field(alias="rollback-to")
    root_folder: _Root = Field(alias="root-folder")
    dags_folder: str = Field(alias="dags-folder")
    deploy_type: DeployType = Field(alias="deploy-type")
    image_name: str = Field(alias="image-name")
    bundle_type: str = Field(alias="bundle-type")
    bundle_mount_path: str = Field(alias="bundle-mount-path")
    compare_to: str = Field(alias="compare-to")
    dag_paths: tuple[str, ...] = Field(alias="dag-paths")
    image_paths: tuple[str, ...] = Field(alias="image-paths")
    ignore_paths: tuple[str, ...] = Field(alias="ignore-paths")
    force: bool = Field(alias="force")
    description: str = Field(alias="description")
    syntax_check: bool = Field(alias="syntax-check")
    wait: bool = Field(alias="wait")
    wait_timeout: float = Field(alias="wait-timeout")
    wake_on_deploy: bool = Field(alias="wake-on-deploy")
    check_import_errors: bool = Field(alias="check-import-errors")
    rollback_on_failure: bool = Field(alias="rollback-on-failure")
    dry_run: bool = Field(alias="dry-run")

    @field_validator("api_token", mode="before")
    @classmethod
    def _token(cls, value: object, info: ValidationInfo) -> str:
        token = _text(value)
        if not token:
            raise _fail(
                f"is required: set the api-token input or the {TOKEN_ENV} environment variable"
            )
        if not _TOKEN_CHARS.fullmatch(token):
            where = f" (read from {TOKEN_ENV})" if _context(info).token_from_env else ""
            raise _fail(
                f"must be one line of printable ASCII without spaces{where}; the value is not shown"
            )
        return token

    @field_validator("api_url", mode="before")
    @classmethod
    def _url(cls, value: object) -> str:
        url = _text(value)
        example = "an absolute https URL such as https://api.astronomer.io/v1"
        if "?" in url or "#" in url:
            raise _fail("must not have a query (?...) or a fragment (#...); the URL is not shown")
        if "@" in url:
            raise _fail("must not contain '@' nor a user name or password; the URL is not shown")
        if _SPACE_OR_CONTROL.search(url):
            raise _fail(f"must be {example} without whitespace; got {_shown(url)}")
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError:
            raise _fail(f"must be {example}; got {_shown(url)}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not host:
            raise _fail(f"must be {example}; got {_shown(url)}")
        if scheme == "http" and not _is_loopback(host):
            raise _fail(
                f"{_shown(url)} must use https"
                " (http is allowed only for a loopback host such as 127.0.0.1)"
            )
        return url.rstrip("/")

    @field_validator("organization_id", mode="before")
    @classmethod
    def _organization(cls, value: object, info: ValidationInfo) -> str:
        organization = _text(value)
        if organization:
            problem = _id_problem(organization)
            if problem:
                raise _fail(problem)
            return organization
        token = info.data.get("api_token")
        if not isinstance(token, SecretStr):
            return ""  # the token's own problem is reported; no second one here
        from_token = organization_from_token(token.get_secret_value())
        if from_token is None:
            raise _fail(
                "could not be read from the API token (it is not an Astro API token with an"
                " organizationId permission): set the organization-id input"
            )
        return from_token

    @field_validator("deployment_id", mode="before")
    @classmethod
    def _deployment(cls, value: object, info: ValidationInfo) -> str:
        deployment = _text(value)
        if not deployment:
            if _context(info).values.get("deployment-name"):
                return ""  # looked up by name; deployment-name has its own rules
            raise _fail(
                "is required: set deployment-id or deployment-name to choose the Astro"
                " Deployment to deploy to"
            )
        problem = _id_problem(deployment)
        if problem:
            raise _fail(problem)
        return deployment

    @field_validator("deployment_name", mode="before")
    @classmethod
    def _deployment_name(cls, value: object, info: ValidationInfo) -> str:
        name = _text(value)
        if not name:
            return ""  # deployment-id reports when neither is set
        if info.data.get("deployment_id"):
            raise _fail(
                "must not be set together with deployment-id: set only one of them"
                " (deployment-id is the more precise)"
            )
        if len(name) > DEPLOYMENT_NAME_MAX or not name.isprintable():
            raise _fail(
                f"must be a Deployment's name: printable text of at most {DEPLOYMENT_NAME_MAX}"
                f" characters on one line; got {_shown(name)}"
            )
        return name

    @field_validator("workspace_id", mode="before")
    @classmethod
    def _workspace_id(cls, value: object, info: ValidationInfo) -> str:
        workspace_id = _text(value)
        if not workspace_id:
            return ""
        problem = _id_problem(workspace_id)
        if problem:
            raise _fail(problem)
        if info.data.get("deployment_name") == "":  # not given (a bad name is reported there)
            raise _fail(
                "is only used with deployment-name, to narrow the search for the Deployment"
                " by name to one Workspace: set deployment-name or remove workspace-id"
            )
        return workspace_id

    @field_validator("action", mode="before")
    @classmethod
    def _action(cls, value: object) -> str:
        return _one_of(value, ACTIONS)

    @field_validator("rollback_to", mode="before")
    @classmethod
    def _rollback_to(cls, value: object, info: ValidationInfo) -> str:
        deploy_id = _text(value)
        if not deploy_id:
            return ""
        problem = _id_problem(deploy_id)
        if problem:
            raise _fail(problem.replace("an Astro ID", "a deploy ID", 1))
        if info.data.get("action") == "deploy":
            raise _fail(
                "is only used with action: rollback; set action to rollback to roll back to"
                " this deploy, or remove rollback-to"
            )
        return deploy_id

    @field_validator("root_folder", mode="before")
    @classmethod
    def _root(cls, value: object, info: ValidationInfo) -> _Root:
        text = _text(value)
        workspace = _context(info).workspace
        where = f"the workspace {str(workspace)!r}"
        if "\x00" in text or Path(text).is_absolute():
            raise _fail(
                f"must be a folder relative to {where} such as . or airflow; got {_shown(text)}"
            )
        try:
            path = (workspace / text).resolve()
        except (OSError, RuntimeError):  # a symlink loop
            raise _fail(f"must be a folder that can be resolved; {_shown(text)} cannot") from None
        if not path.is_relative_to(workspace):
            raise _fail(
                f"must stay inside {where} (after following .. and symlinks);"
                f" {_shown(text)} leads to {str(path)!r}"
            )
        if not path.is_dir():
            what = "is not a directory" if path.exists() else "does not exist"
            raise _fail(f"must be an existing directory inside {where}; {_shown(text)} {what}")
        return _Root(path.relative_to(workspace).as_posix(), path)

    @field_validator("dags_folder", mode="before")
    @classmethod
    def _dags(cls, value: object, info: ValidationInfo) -> str:
        text = _text(value)
        folder = posixpath.normpath(text.replace("\\", "/"))
        if "\x00" in text or folder.startswith("/") or folder == ".." or folder.startswith("../"):
            raise _fail(
                "must be a folder inside root-folder, relative to it, such as dags;"
                f" got {_shown(text)}"
            )
        root = info.data.get("root_folder")
        if isinstance(root, _Root):
            try:
                inside = (root.path / folder).resolve().is_relative_to(root.path)
            except (OSError, RuntimeError):  # a symlink loop
                inside = False
            if not inside:
                raise _fail(
                    f"must stay inside root-folder; {_shown(text)} is a symlink that leads out"
                    " of it"
                )
        return folder

    @field_validator("deploy_type", mode="before")
    @classmethod
    def _deploy_type(cls, value: object) -> str:
        return _one_of(value, DEPLOY_TYPES)

    @field_validator("image_name", mode="before")
    @classmethod
    def _image_name(cls, value: object, info: ValidationInfo) -> str:
        image = _text(value)
        if not image:
            return ""
        match = _IMAGE_REFERENCE.fullmatch(image)
        if match is None or len(_repository(match)) > _IMAGE_NAME_MAX:
            raise _fail(
                "must be a docker image reference such as my-airflow:1.0 or"
                " registry.example.com:5000/team/airflow:v2"
                " ([registry[:port]/]name[:tag][@sha256:digest], lower-case name, no"
                f" whitespace); got {_shown(image)}"
            )
        deploy_type = info.data.get("deploy_type")
        if deploy_type is not None and deploy_type not in IMAGE_DEPLOY_TYPES:
            raise _fail(
                f"is only used with deploy-type {', '.join(IMAGE_DEPLOY_TYPES[:-1])} or"
                f" {IMAGE_DEPLOY_TYPES[-1]}; deploy-type {deploy_type} deploys no image"
            )
        return image

    @field_validator("bundle_type", mode="before")
    @classmethod
    def _bundle_type(cls, value: object, info: ValidationInfo) -> str:
        bundle_type = _text(value)
        if not _bundle_input_given(bundle_type, info):
            return ""
        if not _BUNDLE_TYPE.fullmatch(bundle_type):
            raise _fail(
                "must be a bundle type such as dbt: lower-case letters, digits, _ and -;"
                f" got {_shown(bundle_type)}"
            )
        return bundle_type

    @field_validator("bundle_mount_path", mode="before")
    @classmethod
    def _bundle_mount_path(cls, value: object, info: ValidationInfo) -> str:
        path = _text(value)
        if not _bundle_input_given(path, info):
            return ""
        segments = path.split("/")
        if not path.startswith("/") or ".." in segments or _CONTROL.search(path):
            raise _fail(
                "must be an absolute POSIX path without .. such as"
                f" /usr/local/airflow/dbt/jaffle_shop; got {_shown(path)}"
            )
        normal = "/" + "/".join(s for s in segments if s not in ("", "."))
        if normal == "/":
            raise _fail(f"must name a folder below /, not / itself; got {_shown(path)}")
        return normal

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, value: object) -> str:
        return _text(value)[:DESCRIPTION_MAX]

    @field_validator("compare_to", mode="before")
    @classmethod
    def _compare_to(cls, value: object) -> str:
        text = _text(value).strip()
        if text.lower() in COMPARE_MODES:
            return text.lower()
        if _REV.fullmatch(text) and ".." not in text and not text.endswith((".", "/", ".lock")):
            return text
        raise _fail(
            f"must be {', '.join(COMPARE_MODES)}, or a commit SHA or git ref such as "
            f"main or v1.2.0; got {_shown(text)}"
        )

    @field_validator("dag_paths", "image_paths", "ignore_paths", mode="before")
    @classmethod
    def _globs(cls, value: object) -> tuple[str, ...]:
        patterns = tuple(p.strip() for p in re.split(r"[\n,]", _text(value)) if p.strip())
        for pattern in patterns:
            problem = glob_problem(pattern)
            if problem:
                raise _fail(
                    f"must be gitignore-style globs relative to root-folder, one per line or "
                    f"separated by commas, such as dags/** or **/*.md; {_shown(pattern)} {problem}"
                )
        return patterns

    @field_validator(
        "wait",
        "rollback_on_failure",
        "dry_run",
        "force",
        "syntax_check",
        "wake_on_deploy",
        "check_import_errors",
        mode="before",
    )
    @classmethod
    def _boolean(cls, value: object) -> bool:
        return _parse_bool(value)

    @field_validator("wait_timeout", mode="before")
    @classmethod
    def _wait_timeout(cls, value: object) -> float:
        try:
            return parse_duration(_text(value))
        except ValueError as exc:
            raise _fail(str(exc)) from None
