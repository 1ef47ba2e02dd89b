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

from ci_deploy.errors import InputError, InputProblem
from ci_deploy.models import DESCRIPTION_MAX
from ci_deploy.paths import glob_problem

__all__ = [
    "DEPLOY_TYPES",
    "DESCRIPTION_MAX",
    "INPUTS",
    "MAX_WAIT_TIMEOUT",
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
    "root-folder": ".",
    "dags-folder": "dags",
    "deploy-type": "infer",
    "compare-to": "auto",
    "dag-paths": "",
    "image-paths": "",
    "ignore-paths": DEFAULT_IGNORE_PATHS,
    "force": "false",
    "description": "",
    "wait": "true",
    "wait-timeout": "10m",
    "rollback-on-failure": "true",
    "dry-run": "false",
}
"""Every input of action.yml, in its order, with its default."""

DeployType = Literal["infer", "dags-only", "image-and-dags", "image-only", "bundle"]
DEPLOY_TYPES: tuple[str, ...] = get_args(DeployType)

"""The longest deploy description the Astro API accepts, in characters."""

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


class Inputs(BaseModel):
    """The validated inputs of one run. Paths are absolute; folders are POSIX and relative."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    api_token: SecretStr
    api_url: str
    organization_id: str
    deployment_id: str
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
    context = _Context(workspace=workspace, token_from_env=from_env)
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
    )


# --- validation -----------------------------------------------------------------------------


class _Context(NamedTuple):
    workspace: Path
    token_from_env: bool


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


def _parse_bool(value: object) -> bool:
    text = _text(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise _fail(f"must be true or false, got {_shown(_text(value).strip())}")


class _Parsed(BaseModel):
    """The inputs parsed one field at a time; pydantic collects every field's error."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    # Fields in INPUTS order: later validators read earlier results from info.data.
    api_token: SecretStr = Field(alias="api-token")
    api_url: str = Field(alias="api-url")
    organization_id: str = Field(alias="organization-id")
    deployment_id: str = Field(alias="deployment-id")
    root_folder: _Root = Field(alias="root-folder")
    dags_folder: str = Field(alias="dags-folder")
    deploy_type: DeployType = Field(alias="deploy-type")
    compare_to: str = Field(alias="compare-to")
    dag_paths: tuple[str, ...] = Field(alias="dag-paths")
    image_paths: tuple[str, ...] = Field(alias="image-paths")
    ignore_paths: tuple[str, ...] = Field(alias="ignore-paths")
    force: bool = Field(alias="force")
    description: str = Field(alias="description")
    wait: bool = Field(alias="wait")
    wait_timeout: float = Field(alias="wait-timeout")
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
    def _deployment(cls, value: object) -> str:
        deployment = _text(value)
        if not deployment:
            raise _fail("is required: set it to the ID of the Astro Deployment to deploy to")
        problem = _id_problem(deployment)
        if problem:
            raise _fail(problem)
        return deployment

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
        deploy_type = _text(value).strip().lower()
        if deploy_type not in DEPLOY_TYPES:
            raise _fail(
                f"must be one of {', '.join(DEPLOY_TYPES)}; got {_shown(_text(value).strip())}"
            )
        return deploy_type

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

    @field_validator("wait", "rollback_on_failure", "dry_run", "force", mode="before")
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
